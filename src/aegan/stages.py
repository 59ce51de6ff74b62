"""DVC stage entry points: each reads params.yaml and does one step of the pipeline.

download <data>          data/raw/<data>/
prepare <data>           data/prepared/<data>/
train <model> <data>     models/<model>/<data>/
classifier <data>        models/domain_classifier/<data>/ + metrics/domain_classifier/<data>.json
reference <data>         data/reference/<data>/<backbone>.pt (real test-image features per FID backbone)
evaluate <model> <data>  metrics/<model>/<data>.json (all), scores/<model>/<data>.json (headline) + reports/...
summary                  reports/summary.md, summary.csv (and the table on stdout)
report                   reports/index.html (one self-contained page, also an MLflow artifact)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from aegan.config import load_params, project_root, resolve_path, run_config
from aegan.data.prepare import prepare_dataset, read_split
from aegan.data.sources import download_dataset
from aegan.errors import ConfigError
from aegan.io import atomic_dir, atomic_write_json
from aegan.models.inference import reconstruct
from aegan.models.registry import load_module
from aegan.reports.grids import reconstruction_grid, save_grid
from aegan.reports.summary import headline_scores, write_summary
from aegan.tracking import client, ensure_experiment, mlflow_logger, tracking_uri
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


def _device(cfg) -> torch.device:
    use_gpu = cfg.trainer.accelerator != "cpu" and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


def _split(prepared: Path, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    data = read_split(prepared, name)
    return data["images"].float(), data.get("labels", data.get("attributes"))


def classifier_path(cfg, root: Path, data: str) -> Path:
    return resolve_path(root, cfg.paths.models_dir) / "domain_classifier" / data / "classifier.pt"


def classifier(data: str) -> dict:
    """Train the dataset's domain classifier (FID backbone, mode coverage); its accuracy is a metric."""
    from aegan.metrics.domain_classifier import train_classifier

    root, cfg = _setup(None, data)
    tags = {"model": "domain_classifier", "dataset": data, "source": "dvc"}
    uri = tracking_uri(cfg.logger, root)
    logger = mlflow_logger(uri, cfg.logger.experiment_name, f"domain_classifier-{data}", tags)
    logger.log_hyperparams(tracking_flatten(cfg.evaluation.domain_classifier))
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    scores = train_classifier(
        OmegaConf.to_container(cfg.evaluation.domain_classifier, resolve=True),
        prepared,
        classifier_path(cfg, root, data),
        cfg.seed,
        cfg.trainer,
        cfg.logger,
        logger,
    )
    atomic_write_json(resolve_path(root, cfg.paths.metrics_dir) / "domain_classifier" / f"{data}.json", scores)
    for key, value in scores.items():
        logger.experiment.log_metric(logger.run_id, f"eval/{key}", value)
    print(f"classifier: {data}: test accuracy {scores['test_accuracy']:.4f}")
    return scores


def _backbones(cfg, root: Path, data: str, device: torch.device) -> tuple[dict, Any]:
    from aegan.metrics.domain_classifier import load_classifier
    from aegan.metrics.features import build_backbone

    domain = load_classifier(classifier_path(cfg, root, data)).to(device)
    return {name: build_backbone(name, cfg.evaluation, domain) for name in cfg.evaluation.backbones}, domain


def reference(data: str) -> Path:
    """Features of the real test images (the first evaluation.n_real) per backbone, computed once."""
    from aegan.metrics.features import batch_size_for, extract_features

    root, cfg = _setup(None, data)
    device = _device(cfg)
    backbones, _ = _backbones(cfg, root, data, device)
    test, _ = _split(resolve_path(root, cfg.paths.prepared_dir) / data, "test")
    real = test[: int(cfg.evaluation.n_real)]
    dest = resolve_path(root, cfg.paths.reference_dir) / data
    with atomic_dir(dest) as tmp:
        for name, backbone in backbones.items():
            features = extract_features(
                backbone, real, batch_size_for(backbone, cfg.evaluation), device, f"real {name}"
            )
            torch.save({"features": features, "backbone": name, "n": len(real)}, tmp / f"{name}.pt")
            print(f"reference: {data}: {len(real)} real images -> {name} features {tuple(features.shape)}")
    return dest


def evaluate(model: str, data: str) -> dict:
    """Score one trained model with the shared protocol (metrics/evaluate.py); log to its MLflow run."""
    from aegan.metrics.evaluate import (
        EvaluationInputs,
        anomaly_config,
        encoder_metrics,
        ex_post_sampler_metrics,
        load_real_features,
        numeric_leaves,
        sample_metrics,
    )
    from aegan.training.fit import fit

    root, cfg = _setup(model, data)
    device = _device(cfg)
    run_dir = model_dir(cfg, root, model, data)
    if not (run_dir / "model.ckpt").is_file() or not (run_dir / "run.json").is_file():
        raise ConfigError(
            f"{model} has not been trained on {data} ({run_dir} has no model.ckpt and run.json): "
            f"run `dvc repro train@{model}-{data}` or `aegan stage train {model} {data}` first"
        )
    module = load_module(run_dir / "model.ckpt").to(device)
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    test_split = _split(prepared, "test")
    train_split = _split(prepared, "train") if module.capabilities.encode else None  # only encoders use it
    backbones, domain = _backbones(cfg, root, data, device)
    n_real = min(int(cfg.evaluation.n_real), len(test_split[0]))
    inputs = EvaluationInputs(
        train=train_split,
        test=test_split,
        backbones=backbones,
        real_features=load_real_features(resolve_path(root, cfg.paths.reference_dir) / data, list(backbones), n_real),
        classifier=domain,
        device=device,
    )
    run = json.loads((run_dir / "run.json").read_text())
    report_dir = resolve_path(root, cfg.paths.reports_dir) / model / data

    metrics: dict = {"train": {"epochs": run["epochs"]}}
    grids = []
    if module.capabilities.encode:
        labels = train_split[1]
        n_classes = int(labels.max()) + 1 if labels is not None and labels.dim() == 1 else None
        anomaly_cfg = anomaly_config(cfg, n_classes)
        if anomaly_cfg is not None:
            # A copy of the model trained without the held-out class (resumable like any run).
            record = fit(anomaly_cfg, run_dir / "anomaly", root, tags={"source": "dvc", "purpose": "anomaly"})
            inputs.extras["anomaly_module"] = load_module(run_dir / "anomaly" / "model.ckpt").to(device)
            print(f"evaluate: anomaly model without class {anomaly_cfg.data.exclude_class}: run {record['run_id']}")
        torch.manual_seed(cfg.seed)
        metrics.update(encoder_metrics(module, inputs, cfg.evaluation))
        test = test_split[0][:64]
        grids.append(reconstruction_grid(test, reconstruct(module, test), report_dir / "reconstructions.png"))
        metrics["samplers"], sampled_images = ex_post_sampler_metrics(module, inputs, cfg.evaluation, cfg.seed)
        for name, images in sampled_images.items():
            grids.append(save_grid(images[:64], report_dir / f"samples_{name}.png", nrow=8))
    if module.capabilities.sample:
        torch.manual_seed(cfg.seed)
        sampled, samples = sample_metrics(module, inputs, cfg.evaluation)
        metrics.update(sampled)
        grids.append(save_grid(samples[:64], report_dir / "samples.png", nrow=8))
    grids += latent_pictures(module.cpu(), model, data, prepared, report_dir, cfg.evaluation.pictures)
    metrics_path = resolve_path(root, cfg.paths.metrics_dir) / model / f"{data}.json"
    atomic_write_json(metrics_path, metrics)
    atomic_write_json(resolve_path(root, cfg.paths.scores_dir) / model / f"{data}.json", headline_scores(metrics))

    mlflow = client(run["tracking_uri"])
    scores = numeric_leaves({k: v for k, v in metrics.items() if k != "train"})
    for key, value in scores.items():
        mlflow.log_metric(run["run_id"], f"eval/{key}", value)
    for path in [*grids, metrics_path]:
        mlflow.log_artifact(run["run_id"], str(path), "evaluation")
    print(f"evaluate: {model} on {data}: {json.dumps(scores)}")
    return metrics


def latent_pictures(module, model: str, data: str, prepared: Path, out: Path, pictures) -> list[Path]:
    """The latent map (models with an encoder) and interpolation strips, for the report."""
    from aegan.reports import tools

    loaded = tools.Loaded(module, model, data, prepared)
    paths = tools.interpolate(loaded, out, steps=int(pictures.interpolation_steps))
    if module.family in tools.ENCODER_FAMILIES:
        paths += tools.latent_map(loaded, out, n=int(pictures.latent_map_points))
    return paths


def report() -> Path:
    """reports/index.html: one self-contained page for the pipeline run, also logged to MLflow."""
    from aegan.reports.html import write_report

    root = project_root()
    params = load_params(root)
    path = write_report(
        list(params.pipeline.models),
        list(params.pipeline.datasets),
        resolve_path(root, params.paths.metrics_dir),
        resolve_path(root, params.paths.models_dir),
        resolve_path(root, params.paths.reports_dir),
    )
    uri = tracking_uri(params.logger, root)
    mlflow = client(uri)
    experiment_id = ensure_experiment(uri, params.logger.experiment_name)
    run = mlflow.create_run(experiment_id, run_name="report", tags={"source": "dvc", "kind": "report"})
    mlflow.log_artifact(run.info.run_id, str(path))
    mlflow.set_terminated(run.info.run_id)
    print(f"report: {path} (MLflow run {run.info.run_id})")
    return path


def summary() -> str:
    root = project_root()
    params = load_params(root)
    text = write_summary(resolve_path(root, params.paths.metrics_dir), resolve_path(root, params.paths.reports_dir))
    print("\n" + text)
    return text
