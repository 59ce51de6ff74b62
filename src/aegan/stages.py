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
from aegan.models.registry import load_module
from aegan.reports.grids import reconstruction_grid
from aegan.reports.summary import write_summary
from aegan.tracking import client


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
    root, cfg = _setup(model, data)
    run_dir = model_dir(cfg, root, model, data)
    module = load_module(run_dir / "model.ckpt")
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    test = torch.load(prepared / "test.pt", weights_only=True)["images"]
    train_images = torch.load(prepared / "train.pt", weights_only=True)["images"]
    run = json.loads((run_dir / "run.json").read_text())

    metrics = {
        "test": {**reconstruction_metrics(module, test), "n": len(test)},
        "baseline": {f"mean_image_{k}": v for k, v in mean_image_baseline(train_images, test).items()},
        "train": {"epochs": run["epochs"]},
    }
    metrics_path = resolve_path(root, cfg.paths.metrics_dir) / model / f"{data}.json"
    atomic_write_json(metrics_path, metrics)

    report_dir = resolve_path(root, cfg.paths.reports_dir) / model / data
    with torch.no_grad():
        grid = reconstruction_grid(test[:64].float(), module(test[:64].float()), report_dir / "reconstructions.png")

    mlflow = client(run["tracking_uri"])
    for key, value in {"test/mse": metrics["test"]["mse"], "test/bce": metrics["test"]["bce"]}.items():
        mlflow.log_metric(run["run_id"], key, value)
    mlflow.log_artifact(run["run_id"], str(grid), "evaluation")
    mlflow.log_artifact(run["run_id"], str(metrics_path), "evaluation")
    print(f"evaluate: {model} on {data}: {json.dumps(metrics['test'])}")
    return metrics


def summary() -> str:
    root = project_root()
    params = load_params(root)
    text = write_summary(resolve_path(root, params.paths.metrics_dir), resolve_path(root, params.paths.reports_dir))
    print("\n" + text)
    return text
