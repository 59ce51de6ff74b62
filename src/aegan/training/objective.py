"""Sweep objectives that training itself does not log: `val/fid` for generators.

A GAN's losses say nothing about sample quality, so a sweep over GANs minimises `val/fid`: the Fréchet
distance between `evaluation.objective.n_samples` fresh samples and as many validation images, in the
feature space of the dataset's domain classifier (the pipeline's `classifier` stage, the same yardstick
as `evaluate`'s domain FID, but on the validation split and fewer images, so not comparable with it).
The classifier is the pipeline's models/domain_classifier/<data>/classifier.pt when it exists; otherwise
one is trained once on this run's prepared data and kept under runs/domain_classifier/.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from aegan.config import resolve_path
from aegan.io import atomic_write_json

log = logging.getLogger(__name__)

OBJECTIVES = ("val/fid",)


def objective_classifier(cfg: DictConfig, root: Path) -> Path:
    """The domain classifier that scores this dataset: the pipeline's, or one trained for `aegan train`."""
    from aegan.metrics.domain_classifier import train_classifier

    pipeline = resolve_path(root, cfg.paths.models_dir) / "domain_classifier" / cfg.data.name / "classifier.pt"
    if pipeline.exists():
        return pipeline
    prepared = resolve_path(root, cfg.paths.prepared_dir) / cfg.data.name
    clf_cfg = OmegaConf.to_container(cfg.evaluation.domain_classifier, resolve=True)
    key = json.dumps({"data": str(prepared), "classifier": clf_cfg, "seed": cfg.seed}, sort_keys=True)
    path = resolve_path(root, cfg.paths.runs_dir) / "domain_classifier" / hashlib.sha1(key.encode()).hexdigest()[:10]
    if not (path / "classifier.pt").exists():
        log.info("training a domain classifier for %s once (the yardstick of val/fid) in %s", cfg.data.name, path)
        scores = train_classifier(clf_cfg, prepared, path / "classifier.pt", cfg.seed, cfg.trainer, cfg.logger, None)
        atomic_write_json(path / "scores.json", scores)
    return path / "classifier.pt"


@torch.no_grad()
def sample_fid(module: torch.nn.Module, classifier_path: Path, val_images: torch.Tensor, n: int, seed: int) -> float:
    from aegan.metrics.distribution import fid
    from aegan.metrics.domain_classifier import load_classifier
    from aegan.metrics.features import DomainBackbone, extract_features
    from aegan.models.inference import sample

    backbone = DomainBackbone(load_classifier(classifier_path))
    real = val_images[:n].float()
    torch.manual_seed(seed)
    fake = sample(module.cpu().eval(), len(real))
    return fid(backbone, extract_features(backbone, real, 500), extract_features(backbone, fake, 500))


def log_objective(cfg: DictConfig, root: Path, run_dir: Path, record: dict[str, Any], metric: str) -> dict[str, Any]:
    """Compute `metric` after training, add it to run.json and the MLflow run, return the new record."""
    from aegan.errors import ConfigError
    from aegan.models.registry import load_module
    from aegan.tracking import client

    if metric not in OBJECTIVES:
        raise ConfigError(f"optimized_metric {metric!r} was not logged; logged: {sorted(record['metrics'])}")
    module = load_module(run_dir / "model.ckpt")
    if not module.capabilities.sample:
        raise ConfigError(f"optimized_metric {metric} needs a model that samples; {cfg.model.name} does not")
    prepared = resolve_path(root, cfg.paths.prepared_dir) / cfg.data.name
    val = torch.load(prepared / "val.pt", weights_only=True)["images"]
    n = min(int(cfg.evaluation.objective.n_samples), len(val))
    value = sample_fid(module, objective_classifier(cfg, root), val, n, int(cfg.seed))
    record = {**record, "metrics": {**record["metrics"], metric: value, f"{metric}_n": n}}
    atomic_write_json(run_dir / "run.json", record)
    client(record["tracking_uri"]).log_metric(record["run_id"], metric, value)
    log.info("%s = %.2f (%d samples vs %d validation images)", metric, value, n, n)
    return record
