"""The evaluation protocol: every model scored the same way, one metrics dict per (model, dataset).

encoder models   test-split reconstruction (MSE, BCE, PSNR, SSIM) vs the mean-image baseline;
                 reconstruction FID/KID/precision/recall per backbone; linear probe (anomaly AUC: stages.anomaly);
                 denoising: the noisy input's scores and the gain; VAE: ELBO terms and log p(x)
generators       (VAE prior and GANs) sample FID/KID/precision/recall per backbone; mode coverage
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from aegan.errors import ConfigError
from aegan.metrics.distribution import distribution_metrics, mode_coverage
from aegan.metrics.domain_classifier import DomainClassifier
from aegan.metrics.features import Backbone, DomainBackbone, batch_size_for, extract_features
from aegan.metrics.likelihood import elbo_terms, importance_log_likelihood
from aegan.metrics.probe import PIXEL_PROBE, linear_probe, probe_applies
from aegan.metrics.reconstruction import denoising_metrics, mean_image_baseline, reconstruction_metrics
from aegan.models.inference import batched, decode, encode, reconstruct, sample
from aegan.models.samplers import build_sampler
from aegan.tracking import flatten

log = logging.getLogger(__name__)


@dataclass
class EvaluationInputs:
    """What the protocol needs, loaded by the stage: prepared splits, real features, the classifier."""

    train: tuple[torch.Tensor, torch.Tensor | None] | None  # loaded for models with an encoder only
    test: tuple[torch.Tensor, torch.Tensor | None]
    backbones: dict[str, Backbone]
    real_features: dict[str, torch.Tensor]  # per backbone, of test[:n_real]
    classifier: DomainClassifier
    device: torch.device
    pixel_probe: float | None = None  # the probe on raw pixels, computed once by the reference stage


def image_features(images: torch.Tensor, inputs: EvaluationInputs, evaluation: DictConfig, what: str) -> dict:
    """Features of `images` per backbone."""
    return {
        name: extract_features(backbone, images, batch_size_for(backbone, evaluation), inputs.device, f"{what} {name}")
        for name, backbone in inputs.backbones.items()
    }


def feature_scores(
    images: torch.Tensor,
    inputs: EvaluationInputs,
    evaluation: DictConfig,
    what: str,
    real: torch.Tensor | None = None,
    features: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """distribution_metrics of `images` (or their precomputed `features`) per backbone, against the real test
    features or the `real` images."""
    features = features or image_features(images, inputs, evaluation, what)
    scores = {}
    for name, backbone in inputs.backbones.items():
        if real is None:
            reference = inputs.real_features[name]
        else:
            size = batch_size_for(backbone, evaluation)
            reference = extract_features(backbone, real, size, inputs.device, f"real {what} {name}")
        scores[name] = distribution_metrics(backbone.cpu(), reference, features[name], evaluation)
    return scores


def class_logits(
    images: torch.Tensor,
    inputs: EvaluationInputs,
    evaluation: DictConfig,
    features: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The domain classifier's logits for `images`: its head on their domain features when those are at hand
    (the same numbers without a second pass through the convolutions)."""
    if features and DomainBackbone.name in features:
        return batched(inputs.classifier.head, features[DomainBackbone.name], inputs.classifier, 10_000)
    return batched(inputs.classifier, images, inputs.classifier, int(evaluation.batch_size))


def generated_metrics(
    images: torch.Tensor,
    inputs: EvaluationInputs,
    evaluation: DictConfig,
    what: str,
    features: dict[str, torch.Tensor] | None = None,
) -> dict:
    """Distribution scores per backbone and (single-label data) the classes the images cover."""
    features = features or image_features(images, inputs, evaluation, what)
    metrics: dict[str, Any] = {"samples": feature_scores(images, inputs, evaluation, what, features=features)}
    if inputs.classifier.judges_classes:
        logits = class_logits(images, inputs, evaluation, features)
        metrics["mode_coverage"] = mode_coverage(logits, float(evaluation.mode_coverage.min_share))
    return metrics


def sample_metrics(
    module: torch.nn.Module, inputs: EvaluationInputs, evaluation: DictConfig
) -> tuple[dict, torch.Tensor]:
    """Samples from the model's prior, N(0, I)."""
    samples = sample(module, int(evaluation.n_samples), int(evaluation.batch_size))
    return generated_metrics(samples, inputs, evaluation, "samples"), samples


def ex_post_sampler_metrics(
    module: torch.nn.Module, inputs: EvaluationInputs, evaluation: DictConfig, seed: int
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Each of evaluation.samplers fitted to the training codes, its codes decoded and scored like samples."""
    codes = encode(module, inputs.train[0], int(evaluation.batch_size))
    metrics, images = {}, {}
    for name, options in (evaluation.get("samplers") or {}).items():
        sampler = build_sampler(name, options).fit(codes, seed)
        images[name] = decode(module, sampler.sample(int(evaluation.n_samples), seed), int(evaluation.batch_size))
        metrics[name] = generated_metrics(images[name], inputs, evaluation, f"{name} samples")
    return metrics, images


def encoder_metrics(module: torch.nn.Module, inputs: EvaluationInputs, evaluation: DictConfig) -> dict[str, Any]:
    test_images, test_labels = inputs.test
    train_images, train_labels = inputs.train
    metrics: dict[str, Any] = {
        "test": {**reconstruction_metrics(module, test_images), "n": len(test_images)},
        "baseline": {f"mean_image_{k}": v for k, v in mean_image_baseline(train_images, test_images).items()},
    }
    n_real = len(next(iter(inputs.real_features.values())))
    metrics["reconstruction"] = feature_scores(reconstruct(module, test_images[:n_real]), inputs, evaluation, "recon")
    if module.capabilities.denoise:
        metrics["denoising"] = denoising_metrics(module, test_images)
    if module.capabilities.likelihood:
        n = min(int(evaluation.vae.n_images), len(test_images))
        k = int(evaluation.vae.importance_samples)
        metrics["vae"] = {
            **elbo_terms(module, test_images),
            "log_likelihood": importance_log_likelihood(module, test_images[:n], k),
            "importance_samples": k,
            "n_log_likelihood": n,
        }
    if probe_applies(inputs.train, inputs.test):
        metrics["probe"] = linear_probe(
            module,
            (train_images, train_labels),
            (test_images, test_labels),
            int(evaluation.probe.max_train),
            int(evaluation.probe.max_iter),
        )
        if inputs.pixel_probe is not None:
            metrics["probe"]["pixels"] = inputs.pixel_probe
    return metrics


def anomaly_config(cfg: DictConfig, n_classes: int | None) -> DictConfig | None:
    """The run config of the anomaly model (cfg with data.exclude_class), or None when it does not apply."""
    anomaly = cfg.evaluation.anomaly
    if not anomaly.enabled or n_classes is None:
        return None
    held_out = int(anomaly.held_out_class)
    if not 0 <= held_out < n_classes:
        raise ConfigError(f"evaluation.anomaly.held_out_class must be in [0, {n_classes - 1}], got {held_out}")
    derived = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    derived.data.exclude_class = held_out
    return derived


def numeric_leaves(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar numbers of a nested metrics dict, flattened to 'a.b.c' keys (for MLflow)."""
    return {
        key: float(value)
        for key, value in flatten(metrics).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def load_pixel_probe(reference_dir: Path, labelled: bool) -> float | None:
    """The reference stage's probe on raw pixels (datasets with one label per image)."""
    if not labelled:
        return None
    path = reference_dir / PIXEL_PROBE
    if not path.exists():
        raise ConfigError(f"no pixel probe at {path}: rerun the reference stage (`dvc repro reference`)")
    return float(json.loads(path.read_text())["pixels"])


def load_real_features(reference_dir: Path, backbones: list[str], n_real: int) -> dict[str, torch.Tensor]:
    features = {}
    for name in backbones:
        path = reference_dir / f"{name}.pt"
        if not path.exists():
            raise ConfigError(f"no real-image features at {path}: run `dvc repro` (stage reference) first")
        saved = torch.load(path, weights_only=True)
        if len(saved["features"]) != n_real:
            raise ConfigError(
                f"{path} holds {len(saved['features'])} real images, the config asks for {n_real}: "
                "rerun the reference stage"
            )
        features[name] = saved["features"]
    return features
