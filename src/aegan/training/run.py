"""`aegan train`: one Hydra job (or one member of a sweep) -> data ready -> fit -> sweep objective."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from aegan.config import resolve_path
from aegan.data.prepare import prepare_dataset, prepare_translation, read_manifest
from aegan.data.sources import download_dataset
from aegan.training.fit import fit

log = logging.getLogger(__name__)


def _wanted_manifest(cfg: DictConfig) -> dict:
    return {
        "config": OmegaConf.to_container(cfg.data, resolve=True),
        "limits": OmegaConf.to_container(cfg.limits, resolve=True),
        "seed": cfg.seed,
    }


def _matches(prepared: Path, wanted: dict) -> bool:
    if not (prepared / "manifest.json").exists():
        return False
    current = read_manifest(prepared)
    return {key: current.get(key) for key in wanted} == wanted


def ensure_prepared(cfg: DictConfig, root: Path) -> Path:
    """The prepared directory for cfg.data, cfg.limits and cfg.seed.

    The pipeline's data/prepared/<name> is used when it was prepared with this very config. Otherwise
    the data are prepared under runs/prepared/<name>-<config hash>/ (reused by later runs): `aegan train`
    never rewrites what DVC tracks (data/raw, data/prepared).
    """
    wanted = _wanted_manifest(cfg)
    pipeline_dir = resolve_path(root, cfg.paths.prepared_dir)
    if _matches(pipeline_dir / cfg.data.name, wanted):
        return pipeline_dir
    digest = hashlib.sha1(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:10]
    own_root = resolve_path(root, cfg.paths.runs_dir) / "prepared" / f"{cfg.data.name}-{digest}"
    if _matches(own_root / cfg.data.name, wanted):
        return own_root
    if cfg.data.kind == "translation":  # a translation task: made from its prepared base dataset
        base = cfg.copy()
        with open_dict(base):
            base.data = cfg.data.base
        base_root = ensure_prepared(base, root)
        log.info("deriving %s from %s in %s", cfg.data.name, cfg.data.base.name, own_root)
        prepare_translation(cfg.data, base_root / cfg.data.base.name, own_root, cfg.seed)
        return own_root
    raw_root = resolve_path(root, cfg.paths.raw_dir)
    if not (raw_root / cfg.data.name / "SOURCE.json").exists():
        raw_root = resolve_path(root, cfg.paths.runs_dir) / "raw"
        if not (raw_root / cfg.data.name / "SOURCE.json").exists():
            download_dataset(cfg.data, raw_root, cfg.paths.mirror_dir)
    log.info("preparing %s for this run's data config, limits and seed in %s", cfg.data.name, own_root)
    prepare_dataset(cfg.data, raw_root, own_root, cfg.limits, cfg.seed)
    return own_root


def objective_name(cfg: DictConfig) -> str:
    """cfg.optimized_metric, or the family's own (what its module declares as a measure of quality)."""
    from aegan.models.registry import FAMILIES

    return cfg.get("optimized_metric") or FAMILIES[cfg.model.family].objective


def train_one(
    cfg: DictConfig, root: Path, output_dir: str, tags: dict[str, str] | None = None, run_name: str | None = None
) -> float | None:
    """Returns the run's objective (objective_name), the value Hydra's sweepers minimise."""
    prepared_root = ensure_prepared(cfg, root)
    cfg = OmegaConf.merge(cfg, {"paths": {"prepared_dir": str(prepared_root)}})
    record = fit(cfg, Path(output_dir), root, tags={"source": "hydra", **(tags or {})}, run_name=run_name)
    metric = objective_name(cfg)
    if metric not in record["metrics"]:
        from aegan.training.objective import log_objective

        record = log_objective(cfg, root, Path(output_dir), record, metric)
    print(run_summary(record, output_dir), flush=True)
    return record["metrics"][metric]


def run_summary(record: dict, output_dir: str) -> str:
    """The end-of-run block: where the run is, how to look at it, its final numbers."""
    uri = record["tracking_uri"]
    ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite:") else uri
    shown = {k.removesuffix("_epoch"): v for k, v in sorted(record["metrics"].items()) if not k.endswith("_step")}
    numbers = "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
    return "\n".join(
        [
            f"aegan train: {record['model']} on {record['dataset']}, {record['epochs']} epochs ({record['precision']})",
            f"  run dir     {output_dir}",
            f"  MLflow run  {record['run_id']}  ({ui})",
            *([f"  model       {record['model_uri']}  (mlflow.pyfunc.load_model)"] if record.get("model_uri") else []),
            f"  final       {numbers}",
        ]
    )
