"""DVC stage entry points: each reads params.yaml and does one step of the pipeline.

download <data>          data/raw/<data>/
prepare <data>           data/prepared/<data>/ (a translation task: from its base's prepared data)
train <model> <data>     models/<model>/<data>/
classifier <data>        models/domain_classifier/<data>/ + metrics/domain_classifier/<data>.json
reference <data>         data/reference/<data>/<backbone>.pt (real test-image features per FID backbone)
evaluate <model> <data>  metrics/<model>/<data>.json (all), scores/<model>/<data>.json (headline) + reports/...
anomaly <model> <data>   models/<model>/<data>/anomaly/ + metrics/anomaly/<model>/<data>.json (encoders)
summary                  reports/summary.md, summary.csv (and the table on stdout)
report                   reports/index.html (one self-contained page, also an MLflow artifact)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from aegan.config import load_params, project_root, resolve_path, run_config
from aegan.errors import ConfigError
from aegan.io import atomic_dir, atomic_write_json

if TYPE_CHECKING:
    import torch

# Each stage imports what it uses: a stage is one process, and summary/report/download need neither
# torch nor Lightning (seconds of start-up each, in every `dvc repro`).


def _setup(model: str | None, data: str, trains: bool = True):
    root = project_root()
    cfg = run_config(load_params(root), model, data, trains)  # type: ignore[arg-type]
    return root, cfg


def download(data: str) -> Path:
    from aegan.data.sources import download_dataset

    root, cfg = _setup(None, data, trains=False)
    dest = download_dataset(cfg.data, resolve_path(root, cfg.paths.raw_dir), cfg.paths.mirror_dir)
    print(f"download: {cfg.data.name} -> {dest}")
    return dest


def prepare(data: str) -> Path:
    """A dataset from its raw files, or a translation task from its prepared base dataset."""
    from aegan.data.prepare import prepare_dataset, prepare_translation

    root, cfg = _setup(None, data, trains=False)
    prepared = resolve_path(root, cfg.paths.prepared_dir)
    if cfg.data.kind == "translation":
        dest = prepare_translation(cfg.data, prepared / cfg.data.base.name, prepared, cfg.seed)
    else:
        dest = prepare_dataset(cfg.data, resolve_path(root, cfg.paths.raw_dir), prepared, cfg.limits, cfg.seed)
    manifest = json.loads((dest / "manifest.json").read_text())
    counts = ", ".join(f"{k} {v['count']}" for k, v in manifest["splits"].items())
    skipped = manifest.get("skipped", {}).get("count", 0)
    print(f"prepare: {data} -> {dest} ({counts}; skipped {skipped})")
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
    import torch

    use_gpu = cfg.trainer.accelerator != "cpu" and torch.cuda.is_available()
    return torch.device("cuda" if use_gpu else "cpu")


def _split(prepared: Path, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    from aegan.data.prepare import read_split

    return _images_and_labels(read_split(prepared, name))


def _images_and_labels(data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    return data["images"].float(), data.get("labels", data.get("attributes"))


def classifier_path(cfg, root: Path, data: str) -> Path:
    return resolve_path(root, cfg.paths.models_dir) / "domain_classifier" / data / "classifier.pt"


def classifier(data: str) -> dict:
    """Train the dataset's domain classifier (FID backbone, mode coverage); its accuracy is a metric."""
    from aegan.metrics.domain_classifier import train_classifier
    from aegan.tracking import flatten, mlflow_logger, tracking_uri

    root, cfg = _setup(None, data)
    tags = {"model": "domain_classifier", "dataset": data, "source": "dvc"}
    uri = tracking_uri(cfg.logger, root)
    logger = mlflow_logger(uri, cfg.logger.experiment_name, f"domain_classifier-{data}", tags)
    logger.log_hyperparams(flatten(cfg.evaluation.domain_classifier))
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
        if key == "task":
            logger.experiment.set_tag(logger.run_id, "classifier_task", value)
        else:
            logger.experiment.log_metric(logger.run_id, f"eval/{key}", value)
    print(f"classifier: {data}: {scores['task']}: test accuracy {scores['test_accuracy']:.4f}")
    return scores


def _domain_dataset(cfg) -> str:
    """The dataset whose classifier and real features judge cfg.data's images: its own, or a task's base."""
    return cfg.data.base.name if cfg.data.kind == "translation" else cfg.data.name


def _backbones(cfg, root: Path, data: str, device: torch.device) -> tuple[dict, Any]:
    from aegan.metrics.domain_classifier import load_classifier
    from aegan.metrics.features import build_backbone

    domain = load_classifier(classifier_path(cfg, root, data)).to(device)
    return {name: build_backbone(name, cfg.evaluation, domain) for name in cfg.evaluation.backbones}, domain


def reference(data: str) -> Path:
    """Features of the real test images (the first evaluation.n_real) per backbone, and the linear probe on
    raw pixels (labelled datasets): the same for every model, computed once."""
    import torch

    from aegan.metrics.features import batch_size_for, extract_features
    from aegan.metrics.probe import PIXEL_PROBE, pixel_probe, probe_applies, single_label

    root, cfg = _setup(None, data)
    device = _device(cfg)
    backbones, _ = _backbones(cfg, root, data, device)
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    test = _split(prepared, "test")
    real = test[0][: int(cfg.evaluation.n_real)]
    dest = resolve_path(root, cfg.paths.reference_dir) / data
    with atomic_dir(dest) as tmp:
        for name, backbone in backbones.items():
            features = extract_features(
                backbone, real, batch_size_for(backbone, cfg.evaluation), device, f"real {name}"
            )
            torch.save({"features": features, "backbone": name, "n": len(real)}, tmp / f"{name}.pt")
            print(f"reference: {data}: {len(real)} real images -> {name} features {tuple(features.shape)}")
        # single_label first: the 54,000 training images are read only for a probe
        if single_label(test[1]) and probe_applies(train := _split(prepared, "train"), test):
            probe = cfg.evaluation.probe
            pixels = pixel_probe(train, test, int(probe.max_train), int(probe.max_iter))
            atomic_write_json(
                tmp / PIXEL_PROBE, {"pixels": pixels, "n_train": min(len(train[1]), int(probe.max_train))}
            )
            print(f"reference: {data}: the linear probe on raw pixels scores {pixels:.3f} on the test split")
    return dest


def evaluate(model: str, data: str) -> dict:
    """Score one trained model with the shared protocol (metrics/evaluate.py); log to its MLflow run."""
    import torch

    from aegan.data.prepare import read_manifest, read_split
    from aegan.metrics.evaluate import (
        EvaluationInputs,
        encoder_metrics,
        ex_post_sampler_metrics,
        load_pixel_probe,
        load_real_features,
        numeric_leaves,
        sample_metrics,
    )
    from aegan.metrics.probe import probe_applies
    from aegan.models.inference import reconstruct
    from aegan.models.registry import load_module
    from aegan.reports.grids import reconstruction_grid, save_grid, strips_grid
    from aegan.reports.summary import headline_scores
    from aegan.tracking import client

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
    test_data = read_split(prepared, "test")
    test_split = _images_and_labels(test_data)
    train_split = _split(prepared, "train") if module.capabilities.encode else None  # only encoders use it
    probe = train_split is not None and probe_applies(train_split, test_split)
    domain_of = _domain_dataset(cfg)  # a translation task is judged against its base dataset's images
    backbones, domain = _backbones(cfg, root, domain_of, device)
    base_test = read_manifest(resolve_path(root, cfg.paths.prepared_dir) / domain_of)["splits"]["test"]["count"]
    n_real = min(int(cfg.evaluation.n_real), base_test)  # the reference stage's count
    reference = resolve_path(root, cfg.paths.reference_dir) / domain_of
    inputs = EvaluationInputs(
        train=train_split,
        test=test_split,
        backbones=backbones,
        real_features=load_real_features(reference, list(backbones), n_real),
        classifier=domain,
        device=device,
        pixel_probe=load_pixel_probe(reference, probe),
    )
    run = json.loads((run_dir / "run.json").read_text())
    report_dir = resolve_path(root, cfg.paths.reports_dir) / model / data

    metrics: dict = {"train": {"epochs": run["epochs"]}}
    grids = []
    if module.capabilities.encode:
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
    if module.capabilities.translate:
        from aegan.metrics.translation import PROTOCOLS

        protocol = PROTOCOLS[module.pairing]
        train_images = read_split(prepared, "train")["images"]
        metrics.update(protocol(module, test_data, train_images, cfg.data, inputs, cfg.evaluation))
        shown = {"input": test_data["inputs"][:64].to(device), "image": test_data["images"][:64].to(device)}
        with torch.no_grad():
            grids.append(strips_grid(module.translation_rows(shown), report_dir / "translations.png"))
    if module.capabilities.encode or module.capabilities.sample:
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


def anomaly(model: str, data: str) -> dict:
    """The anomaly-detection protocol of a model with an encoder: a copy trained with the model's own settings
    on every class but evaluation.anomaly.held_out_class (resumable like any run), test images scored by
    reconstruction error, the ROC AUC of the held-out class. Writes metrics/anomaly/<model>/<data>.json."""
    import torch

    from aegan.metrics.anomaly import anomaly_auc
    from aegan.metrics.evaluate import anomaly_config
    from aegan.models.registry import FAMILIES, load_module
    from aegan.training.fit import fit

    root, cfg = _setup(model, data)
    if not FAMILIES[cfg.model.family].capabilities.encode:
        raise ConfigError(
            f"{model} has no encoder: the anomaly protocol scores reconstructions (pipeline.anomaly_models)"
        )
    prepared = resolve_path(root, cfg.paths.prepared_dir) / data
    train_labels, (test_images, test_labels) = _split(prepared, "train")[1], _split(prepared, "test")
    n_classes = int(train_labels.max()) + 1 if train_labels is not None and train_labels.dim() == 1 else None
    derived = anomaly_config(cfg, n_classes)
    out = model_dir(cfg, root, model, data) / "anomaly"
    metrics_path = resolve_path(root, cfg.paths.metrics_dir) / "anomaly" / model / f"{data}.json"
    if derived is None:  # switched off, or a dataset without classes: DVC still gets its (empty) outputs
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "skipped.json", {"why": "evaluation.anomaly.enabled is false or no class labels"})
        atomic_write_json(metrics_path, {})
        return {}
    record = fit(derived, out, root, tags={"source": "dvc", "purpose": "anomaly"})
    module = load_module(out / "model.ckpt").to(_device(cfg))
    torch.manual_seed(cfg.seed)
    scores = {"anomaly": anomaly_auc(module, test_images, test_labels, int(derived.data.exclude_class))}
    atomic_write_json(metrics_path, scores)
    print(f"anomaly: {model} on {data} without class {derived.data.exclude_class}: {scores} (run {record['run_id']})")
    return scores


def latent_pictures(module, model: str, data: str, prepared: Path, out: Path, pictures) -> list[Path]:
    """The latent map (models with an encoder) and interpolation strips, for the report."""
    from aegan.reports import tools

    loaded = tools.Loaded(module, model, data, prepared)
    paths = tools.interpolate(loaded, out, steps=int(pictures.interpolation_steps))
    if module.capabilities.encode:
        paths += tools.latent_map(loaded, out, n=int(pictures.latent_map_points))
    return paths


def report() -> Path:
    """reports/index.html: one self-contained page for the pipeline run, also logged to MLflow."""
    from aegan.reports.html import write_report
    from aegan.tracking import client, ensure_experiment, tracking_uri

    root = project_root()
    params = load_params(root)
    runs = [(m, d) for d in params.pipeline.datasets for m in params.pipeline.models]
    runs += [(t.model, t.data) for t in (params.pipeline.get("translations") or {}).values()]
    path = write_report(
        runs,
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
    from aegan.reports.summary import write_summary

    root = project_root()
    params = load_params(root)
    text = write_summary(resolve_path(root, params.paths.metrics_dir), resolve_path(root, params.paths.reports_dir))
    print("\n" + text)
    return text
