"""`aegan train`: one Hydra job (or one member of a sweep) -> data ready -> fit -> MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aegan.config import resolve_path
from aegan.data.prepare import prepare_dataset, read_manifest
from aegan.data.sources import download_dataset
from aegan.errors import ConfigError
from aegan.training.fit import fit

log = logging.getLogger(__name__)


def ensure_prepared(cfg: DictConfig, root: Path) -> Path:
    """Download and prepare cfg.data unless data/prepared/<name> was prepared with this very config."""
    prepared = resolve_path(root, cfg.paths.prepared_dir) / cfg.data.name
    wanted = {
        "config": OmegaConf.to_container(cfg.data, resolve=True),
        "limits": OmegaConf.to_container(cfg.limits, resolve=True),
        "seed": cfg.seed,
    }
    current = read_manifest(prepared) if (prepared / "manifest.json").exists() else {}
    if {key: current.get(key) for key in wanted} != wanted:
        if current:
            log.warning("re-preparing %s: it was prepared with another data config, limits or seed", prepared)
        raw_root = resolve_path(root, cfg.paths.raw_dir)
        if not (raw_root / cfg.data.name / "SOURCE.json").exists():
            download_dataset(cfg.data, raw_root, cfg.paths.mirror_dir)
        prepare_dataset(cfg.data, raw_root, resolve_path(root, cfg.paths.prepared_dir), cfg.limits, cfg.seed)
    return prepared


def train_one(cfg: DictConfig, root: Path, output_dir: str, sweep: dict[str, str] | None = None) -> float | None:
    """Returns cfg.optimized_metric (default val/loss), the objective Hydra sweepers minimise."""
    ensure_prepared(cfg, root)
    tags = {"source": "hydra", **(sweep or {})}
    record = fit(cfg, Path(output_dir), root, tags=tags)
    metric = cfg.get("optimized_metric", "val/loss")
    if metric not in record["metrics"]:
        raise ConfigError(f"optimized_metric {metric!r} was not logged; logged: {sorted(record['metrics'])}")
    return record["metrics"][metric]
