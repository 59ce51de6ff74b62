"""Reconstruction metrics on [0, 1] pixels, the scale the sources report them on."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-7  # Keras' clip for binary cross-entropy, so numbers compare with the sources


@torch.no_grad()
def reconstruction_metrics(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> dict[str, float]:
    """Per-pixel mean MSE and BCE between images and module(images), both mapped to [0, 1]."""
    module.eval()
    device = next(module.parameters()).device
    sums = {"mse": 0.0, "bce": 0.0}
    count = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float().to(device)
        target = (x + 1) / 2
        recon = ((module(x) + 1) / 2).clamp(_EPS, 1 - _EPS)
        sums["mse"] += F.mse_loss(recon, target, reduction="sum").item()
        sums["bce"] += F.binary_cross_entropy(recon, target, reduction="sum").item()
        count += target.numel()
    return {k: v / count for k, v in sums.items()}


def mean_image_baseline(train: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    """The scores of always predicting the mean training image: what any autoencoder must beat."""
    mean = ((train.float().mean(0, keepdim=True) + 1) / 2).clamp(_EPS, 1 - _EPS)
    target = (test.float() + 1) / 2
    expanded = mean.expand_as(target)
    return {
        "mse": F.mse_loss(expanded, target).item(),
        "bce": F.binary_cross_entropy(expanded, target).item(),
    }
