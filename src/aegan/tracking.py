"""MLflow: where runs go (SQLite file at the project root by default, a server when asked)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from aegan.errors import TrackingError, first_line

if TYPE_CHECKING:
    from aegan.training.step_logger import StepLogger


def tracking_uri(logger_cfg: DictConfig | dict, root: Path) -> str:
    """MLFLOW_TRACKING_URI wins; a relative sqlite path is anchored at the project root.

    Lightning's MLFlowLogger would otherwise fall back to the deprecated ./mlruns file store, and a
    relative sqlite path would follow the current directory. DVC runs temporary and queued experiments
    in a copy of the project under .dvc/tmp/exps/, deleted afterwards; it sets DVC_ROOT to the project
    itself, so their runs land in the project's database.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or logger_cfg["tracking_uri"]
    return anchored_sqlite(uri, Path(os.environ.get("DVC_ROOT") or root))


SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (None for other stores)."""
    return Path(uri[len(SQLITE) :]) if uri.startswith(SQLITE) else None


def anchored_sqlite(uri: str, anchor: Path) -> str:
    """A relative sqlite:/// path taken from `anchor`, not from the current directory."""
    path = sqlite_path(uri)
    return uri if path is None or path.is_absolute() else SQLITE + str((anchor / path).resolve())


def dvc_tags() -> dict[str, str]:
    """Inside `dvc exp run`: the experiment's name and baseline commit, so MLflow runs and DVC experiments meet."""
    names = {"DVC_EXP_NAME": "dvc_exp", "DVC_EXP_BASELINE_REV": "dvc_exp_baseline", "DVC_STAGE": "dvc_stage"}
    return {tag: os.environ[var] for var, tag in names.items() if os.environ.get(var)}


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}, for MLflow params."""
    if OmegaConf.is_config(cfg):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _schema_lock(uri: str) -> Iterator[None]:
    """Serialise first use of a SQLite database across processes: parallel sweep members creating a
    new database race in MLflow's schema migrations ("duplicate column", "Online migration ...")."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".init-lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_tracking(uri: str, timeout: float = 10.0) -> None:
    """Fail before any training, with the cause, when the MLflow backend cannot be used.

    Metrics are never dropped silently: a backend that fails later (mid-run) stops the run with its
    error, and the last checkpoint resumes it. A server gets a /health request (MLflow's client would
    retry for minutes); a database gets a real query (a locked SQLite file fails after its busy timeout).
    """
    import urllib.request

    hint = "start the tracking server, or point logger.tracking_uri / MLFLOW_TRACKING_URI elsewhere"
    try:
        if uri.startswith(("http://", "https://")):
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                response.read()
        else:
            with _schema_lock(uri):
                client(uri).search_experiments(max_results=1)
            _check_writable(uri)
    except Exception as exc:
        raise TrackingError(f"MLflow backend {uri} is not usable ({first_line(exc)}); {hint}") from exc


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts in mlruns/ beside the database file. MLflow's default is ./mlruns of the
    directory the first run happened to start from, fixed in the experiment forever."""
    db = sqlite_path(uri)
    if db is None:
        return None  # a server decides (--default-artifact-root)
    return (db.resolve().parent / "mlruns").as_uri()


def _check_writable(uri: str) -> None:
    """A read-only SQLite file (or directory, where SQLite writes its journal) reads fine and fails at the
    first write, mid-run: refuse it up front."""
    db = sqlite_path(uri)
    if db is None:
        return
    for path in (db, db.parent):
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is not writable")


def ensure_experiment(uri: str, name: str) -> str:
    """The experiment's id, creating it if needed; parallel sweep members may race to create it."""
    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location(uri))
    except Exception:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def mlflow_logger(
    uri: str, experiment: str, run_name: str, tags: dict[str, str], run_id: str | None = None
) -> StepLogger:
    """Lightning's MLFlowLogger on `uri` (see tracking_uri), after checking that the backend works."""
    from aegan.training.step_logger import StepLogger  # Lightning: only where a run trains

    check_tracking(uri)
    ensure_experiment(uri, experiment)
    tags = {**dvc_tags(), **tags}
    logger = StepLogger(experiment_name=experiment, run_name=run_name, tracking_uri=uri, tags=tags, run_id=run_id)
    with tracking_env_kept():  # the logger calls mlflow.set_tracking_uri on first use
        _ = logger.experiment
    return logger


@contextlib.contextmanager
def tracking_env_kept() -> Iterator[None]:
    """mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in MLflow 3; left there it would override
    logger.tracking_uri for every later run in this process (a sweep, evaluate's anomaly model)."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def git_tags(root: Path) -> dict[str, str]:
    """The commit the run's code came from (MLflow's own tag, shown on the run page) and whether the work tree
    differed from it. MLflow only finds it itself for scripts inside the repository, not for `aegan` in a venv."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"mlflow.source.git.commit": commit, "git_dirty": str(bool(dirty)).lower()}


def log_datasets(uri: str, run_id: str, prepared: Path, manifest: dict[str, Any]) -> None:
    """Each prepared split as an MLflow dataset input (Datasets column, run page): the md5 the manifest
    records for it as digest, the split as context, the image tensor's shape as schema."""
    import numpy as np
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.types.schema import Schema, TensorSpec

    inputs = []
    for split, info in manifest["splits"].items():
        dataset = MetaDataset(
            source=LocalArtifactDatasetSource(str(prepared / f"{split}.pt")),
            name=f"{manifest['dataset']}-{split}",
            digest=info["md5"],
            schema=Schema([TensorSpec(np.dtype(np.float32), (-1, *info["shape"][1:]), "images")]),
        )
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", split)]))
    client(uri).log_inputs(run_id, datasets=inputs)
