"""Reconstruction quality on [0, 1] pixels, the scale the sources report it on.

l1, mse, bce: per-pixel means over the split. psnr, ssim: per-image values (data range 1, SSIM with the
usual 11x11 Gaussian window, sigma 1.5) averaged over the split.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

_EPS = 1e-7  # Keras' clip for binary cross-entropy, so numbers compare with the sources


def image_quality(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image L1, MSE, BCE, PSNR and SSIM of pred against target, both (N, C, H, W) in [0, 1]."""
    pred = pred.clamp(_EPS, 1 - _EPS)
    return {
        "l1": (pred - target).abs().flatten(1).mean(1),
        "mse": F.mse_loss(pred, target, reduction="none").flatten(1).mean(1),
        "bce": F.binary_cross_entropy(pred, target, reduction="none").flatten(1).mean(1),
        "psnr": peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none"),
    }


@torch.no_grad()
def mean_quality(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Mean image_quality over (output, target) batches, both in [-1, 1]."""
    sums: dict[str, float] = {}
    count = 0
    for output, target in pairs:
        scores = image_quality((output.float() + 1) / 2, (target.float() + 1) / 2)
        for key, value in scores.items():
            sums[key] = sums.get(key, 0.0) + float(value.double().sum())
        count += len(target)
    return {key: value / count for key, value in sums.items()}


def _batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size].float()


@torch.no_grad()
def reconstruction_metrics(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    module.eval()
    device = next(module.parameters()).device
    return mean_quality((module(x.to(device)).cpu(), x) for x in _batches(images, batch_size))


@torch.no_grad()
def denoising_metrics(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Quality of the corrupted input and of its reconstruction, both against the clean image.

    Both are scored on the very same corrupted images.
    """
    module.eval()
    device = next(module.parameters()).device
    clean = list(_batches(images, batch_size))
    noisy = [module.corrupt(x) for x in clean]
    noisy_scores = mean_quality(zip(noisy, clean, strict=True))
    denoised_scores = mean_quality((module(n.to(device)).cpu(), x) for n, x in zip(noisy, clean, strict=True))
    return {
        **{f"noisy_{k}": v for k, v in noisy_scores.items()},
        **{f"denoised_{k}": v for k, v in denoised_scores.items()},
        "psnr_gain": denoised_scores["psnr"] - noisy_scores["psnr"],
        "ssim_gain": denoised_scores["ssim"] - noisy_scores["ssim"],
    }


def mean_image_baseline(train: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    """The scores of always predicting the mean training image: what any autoencoder must beat."""
    mean = train.float().mean(0, keepdim=True)
    return mean_quality((mean.expand_as(x), x) for x in _batches(test, 500))
