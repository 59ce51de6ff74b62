"""Fit one model on one prepared dataset: Lightning Trainer + MLflow + checkpoints that resume.

Layout of a run directory (models/<model>/<data>/ for DVC stages, runs/... for Hydra runs):
  model.ckpt     the final weights (the best epoch by val/loss), what `evaluate` loads
  run.json       MLflow run id and tracking URI, so evaluate logs into the same run
  history.csv    per-epoch metrics; curves.csv the loss curves (DVC plots)
  images/        preview grids per epoch
  checkpoints/   last.ckpt + best.ckpt, for resuming a killed run
  resume.json    the config and MLflow run id of those checkpoints
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from aegan.config import resolve_path
from aegan.data.datamodule import PreparedDataModule
from aegan.data.prepare import read_manifest
from aegan.data.tasks import known_pixels, refines_input
from aegan.errors import ConfigError
from aegan.io import atomic_path, atomic_write_json, output_errors, run_lock
from aegan.models.registry import build_module
from aegan.serving import log_model
from aegan.tracking import flatten, git_tags, log_datasets, mlflow_logger, tracking_uri
from aegan.training.callbacks import EpochHistory, PreviewImages, SystemMetrics
from aegan.training.console import StepProgressBar, quiet_libraries
from aegan.training.trainer_args import trainer_kwargs

log = logging.getLogger(__name__)


def _config_fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """What must be equal for a checkpoint to be resumed by this run (where to resume from is not part of it)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("ckpt_path", None)  # type: ignore[union-attr]
    return config  # type: ignore[return-value]


# What `ckpt_path=last` may change: train for more epochs, log or evaluate differently.
FREE = ("trainer.max_epochs", "trainer.schedule", "logger.", "evaluation.")


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")]
    return [] if saved == current else [f"{prefix.rstrip('.')}: {saved!r} -> {current!r}"]


def resume_checkpoint(cfg: DictConfig, out_dir: Path, requested: str | None) -> str | None:
    """`last` -> checkpoints/last.ckpt; a path -> itself; None -> last.ckpt only if its config is ours.

    The automatic case lets a killed `dvc repro` pick up where it stopped, but never resumes a
    checkpoint trained with a different configuration (that one is deleted instead). An explicit
    `last` with a changed configuration is refused before anything is touched.
    """
    ckpt_dir = out_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    saved = _resume_record(out_dir)
    if requested == "last":
        if not last.exists():
            raise ConfigError(f"ckpt_path=last but {last} does not exist (nothing to resume)")
        changed = [d for d in _differences(saved.get("config"), _config_fingerprint(cfg)) if not d.startswith(FREE)]
        if saved and changed:
            raise ConfigError(
                f"the run in {out_dir} was trained with another configuration ({'; '.join(changed[:5])}): "
                "resume it with its own settings, or start a new run without ckpt_path"
            )
        return str(last)
    if requested:
        if not Path(requested).exists():
            raise ConfigError(f"ckpt_path {requested} does not exist")
        return requested
    if last.exists() and saved.get("config") == _config_fingerprint(cfg):
        log.warning("resuming the interrupted run from %s", last)
        return str(last)
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    return None


def completed_record(cfg: DictConfig, out_dir: Path) -> dict[str, Any] | None:
    """run.json of a run in out_dir that already trained all its epochs with this configuration."""
    path = out_dir / "run.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    saved = _resume_record(out_dir)
    same = saved.get("run_id") == record.get("run_id") and saved.get("config") == _config_fingerprint(cfg)
    return record if same and int(record.get("epochs", 0)) >= max_epochs(cfg) else None


def lightning_trainer(**kwargs: Any) -> L.Trainer:
    """L.Trainer(**kwargs), with the trainer.* values Lightning refuses as a config error (exit 2, not a traceback)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return L.Trainer(**kwargs)
    except (MisconfigurationException, ValueError, ImportError) as exc:
        raise ConfigError(f"Lightning's Trainer refused the trainer.* settings: {exc}") from exc


@contextlib.contextmanager
def failed_run_marked(logger: Any) -> Iterator[None]:
    """An error anywhere in the run marks its MLflow run FAILED (KILLED on Ctrl-C), not only errors inside
    Trainer.fit (which Lightning marks itself): a run is never left RUNNING forever."""
    try:
        yield
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):
            logger.experiment.set_terminated(logger.run_id, status)
        raise


def max_epochs(cfg: DictConfig) -> int:
    """trainer.max_epochs when set, else the model's epochs for trainer.schedule (short or full)."""
    if cfg.trainer.get("max_epochs"):
        return int(cfg.trainer.max_epochs)
    schedule = cfg.trainer.get("schedule", "short")
    epochs = cfg.model.get("epochs") or {}
    if schedule not in epochs:
        raise ConfigError(f"model {cfg.model.name} has no epochs for schedule {schedule!r}; it has {sorted(epochs)}")
    return int(epochs[schedule])


def lightning_log_every(log_every_n_steps: int, steps_per_execution: int) -> int:
    """Lightning counts its batches, each steps_per_execution optimiser steps: the interval in whole chunks."""
    return max(1, int(log_every_n_steps) // int(steps_per_execution))


def _resume_record(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "resume.json"
    return json.loads(path.read_text()) if path.exists() else {}


def fit(
    cfg: DictConfig, out_dir: Path, root: Path, tags: dict[str, str] | None = None, run_name: str | None = None
) -> dict[str, Any]:
    """Train cfg.model on cfg.data; returns the final metrics and where everything was written.

    tags and run_name go to the MLflow run (default name: <model>-<data>)."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    quiet_libraries()
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir):
        return _fit_locked(cfg, out_dir, root, tags, run_name)


def _fit_locked(
    cfg: DictConfig, out_dir: Path, root: Path, tags: dict[str, str] | None, run_name: str | None
) -> dict[str, Any]:
    kwargs = trainer_kwargs(cfg.trainer, cfg.model)
    ckpt_path = resume_checkpoint(cfg, out_dir, cfg.get("ckpt_path"))
    if ckpt_path and (done := completed_record(cfg, out_dir)) is not None:
        log.warning("the run in %s is complete (%d epochs); its metrics: %s", out_dir, done["epochs"], done["metrics"])
        return done
    prepared = resolve_path(root, cfg.paths.prepared_dir) / cfg.data.name
    steps_per_execution = int(cfg.trainer.steps_per_execution)
    datamodule = PreparedDataModule(
        prepared,
        batch_size=cfg.model.batch_size,
        seed=cfg.seed,
        exclude_class=cfg.data.get("exclude_class"),
        steps_per_execution=steps_per_execution,
    )
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    module = build_module(model_cfg, datamodule.image_shape)
    if cfg.data.kind == "translation":
        if (known := known_pixels(cfg.data, datamodule.image_shape)) is not None:
            module.keep_known_pixels(known)
        if refines_input(cfg.data):
            module.refine_input()
    module.configure_training(cfg.trainer)

    uri = tracking_uri(cfg.logger, root)
    logger = mlflow_logger(
        uri,
        cfg.logger.experiment_name,
        tags={
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "family": cfg.model.family,
            "precision": str(kwargs["precision"]),  # trainer.precision=auto resolved on this machine
            **git_tags(root),
            **(tags or {}),
        },
        run_name=run_name or f"{cfg.model.name}-{cfg.data.name}",
        run_id=_resume_record(out_dir).get("run_id") if ckpt_path else None,
    )
    logger.step_module = module
    with failed_run_marked(logger):
        if not ckpt_path:
            logger.log_hyperparams(flatten(cfg))
            log_datasets(uri, logger.run_id, prepared, read_manifest(prepared))
        atomic_write_json(out_dir / "resume.json", {"config": _config_fingerprint(cfg), "run_id": logger.run_id})

        checkpoint = ModelCheckpoint(
            dirpath=out_dir / "checkpoints",
            filename="best",
            monitor=module.monitor,  # None for GANs: their losses do not rank checkpoints, keep the latest
            save_top_k=1,
            save_last=True,
            every_n_epochs=cfg.trainer.checkpoint_every_n_epochs,
            enable_version_counter=False,
        )
        trainer = lightning_trainer(
            **{"max_epochs": max_epochs(cfg), **kwargs},
            log_every_n_steps=lightning_log_every(cfg.logger.log_every_n_steps, steps_per_execution),
            enable_progress_bar=cfg.logger.progress_bar,
            logger=logger,
            callbacks=[
                checkpoint,
                EpochHistory(out_dir / "history.csv"),
                PreviewImages(out_dir / "images", cfg.logger.image_every_n_epochs),
                SystemMetrics(logger.run_id, uri, cfg.logger.system_metrics_every_s, resume=bool(ckpt_path)),
                *([StepProgressBar()] if cfg.logger.progress_bar else []),
            ],
            default_root_dir=str(out_dir),
        )
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)

        best = checkpoint.best_model_path or checkpoint.last_model_path
        with atomic_path(out_dir / "model.ckpt") as tmp:
            if best:
                shutil.copyfile(best, tmp)
            else:  # no checkpoint callback ran (e.g. trainer.fast_dev_run): the weights as they are
                trainer.save_checkpoint(tmp)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        record = {
            "run_id": logger.run_id,
            "experiment_id": logger.experiment_id,
            "tracking_uri": uri,
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "epochs": trainer.current_epoch,
            "precision": str(kwargs["precision"]),
            "best_checkpoint_score": float(checkpoint.best_model_score)
            if checkpoint.best_model_score is not None
            else None,
            "metrics": metrics,
        }
        logger.experiment.log_artifact(logger.run_id, str(out_dir / "model.ckpt"), "checkpoints")
        logger.experiment.log_artifact(logger.run_id, str(out_dir / "history.csv"))
        logger.experiment.log_text(logger.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        if cfg.logger.log_model:
            record["model_uri"] = log_model(
                out_dir / "model.ckpt", datamodule.image_shape, uri, logger.run_id, cfg.logger.get("register_as")
            )
        atomic_write_json(out_dir / "run.json", record)  # last: a run.json means the run is complete
        return record
