"""DVC stage entry points: each reads params.yaml and does one step of the pipeline.

download <data>          data/raw/<data>/
prepare <data>           data/prepared/<data>/
train <model> <data>     models/<model>/<data>/
evaluate <model> <data>  metrics/<model>/<data>.json + reports/<model>/<data>/
summary                  reports/summary.md, summary.csv (and the table on stdout)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from aegan.config import load_params, project_root, resolve_path, run_config
from aegan.data.prepare import prepare_dataset
from aegan.data.sources import download_dataset
from aegan.io import atomic_write_json
from aegan.metrics.reconstruction import mean_image_baseline, reconstruction_metrics
from aegan.metrics.samples import generate, sample_statistics
from aegan.models.registry import load_module
from aegan.reports.grids import reconstruction_grid, save_grid
from aegan.reports.summary import write_summary
from aegan.tracking import client
from aegan.tracking import flatten as tracking_flatten


def _setup(model: str | None, data: str):
    root = project_root()
    cfg = run_config(load_params(root), model, data)  # type: ignore[arg-type]
    return root, cfg


def download(data: str) -> Path:
    root, cfg = _setup(None, data)
    dest = download_dataset(cfg.data, resolve_path(root, cfg.paths.raw_dir), cfg.paths.mirror_dir)
    print(f"download: {cfg.data.name} -> {dest}")
    return dest


def prepare(data: str) -> Path:
    root, cfg = _setup(None, data)
    dest = prepare_dataset(
        cfg.data,
        resolve_path(root, cfg.paths.raw_dir),
        resolve_path(root, cfg.paths.prepared_dir),
        cfg.limits,
        cfg.seed,
    )
    manifest = json.loads((dest / "manifest.json").read_text())
    counts = ", ".join(f"{k} {v['count']}" for k, v in manifest["splits"].items())
    print(f"prepare: {data} -> {dest} ({counts}; skipped {manifest['skipped']['count']})")
    return dest


def model_dir(cfg, root: Path, model: str, data: str) -> Path:
    return resolve_path(root, cfg.paths.models_dir) / model / data


def train(model: str, data: str) -> dict:
    from aegan.training.fit import fit

    root, cfg = _setup(model, data)
    record = fit(cfg, model_dir(cfg, root, model, data), root, tags={"source": "dvc"})
    print(f"train: {model} on {data}: {record['metrics']}")
    return record


def evaluate(model: str, data: str) -> dict:
    """Reconstruction metrics for models with an encoder, sample statistics for models that generate."""
    root, cfg = _setup(model, data)
    run_dir = model_dir(cfg, root, model, data)
    module = load_module(run_dir / "model.ckpt")
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    test = torch.load(prepared / "test.pt", weights_only=True)["images"].float()
    run = json.loads((run_dir / "run.json").read_text())
    report_dir = resolve_path(root, cfg.paths.reports_dir) / model / data
    torch.manual_seed(cfg.seed)

    metrics: dict = {"train": {"epochs": run["epochs"]}}
    grids = []
    if hasattr(module, "encode"):
        train_images = torch.load(prepared / "train.pt", weights_only=True)["images"]
        metrics["test"] = {**reconstruction_metrics(module, test), "n": len(test)}
        metrics["baseline"] = {f"mean_image_{k}": v for k, v in mean_image_baseline(train_images, test).items()}
        with torch.no_grad():
            grids.append(reconstruction_grid(test[:64], module(test[:64]), report_dir / "reconstructions.png"))
    if hasattr(module, "sample"):
        samples = generate(module, min(1000, len(test)))
        metrics["samples"] = sample_statistics(samples, test)
        grids.append(save_grid(samples[:64], report_dir / "samples.png", nrow=8))
    metrics_path = resolve_path(root, cfg.paths.metrics_dir) / model / f"{data}.json"
    atomic_write_json(metrics_path, metrics)

    mlflow = client(run["tracking_uri"])
    scores = {k: v for k, v in metrics.items() if k != "train"}
    for key, value in tracking_flatten(scores).items():
        mlflow.log_metric(run["run_id"], f"eval/{key}", value)
    for path in [*grids, metrics_path]:
        mlflow.log_artifact(run["run_id"], str(path), "evaluation")
    print(f"evaluate: {model} on {data}: {json.dumps(scores)}")
    return metrics


def summary() -> str:
    root = project_root()
    params = load_params(root)
    text = write_summary(resolve_path(root, params.paths.metrics_dir), resolve_path(root, params.paths.reports_dir))
    print("\n" + text)
    return text
