"""Cheap statistics of generated samples against real images (FID and KID are a separate module).

diversity = mean pairwise distance between samples / the same for real images: about 1 for a generator
that spreads like the data, near 0 for a collapsed one that emits (nearly) the same image.
mean_image_mse = MSE between the mean sample and the mean real image, on [0, 1] pixels.
"""

from __future__ import annotations

import torch


def mean_pairwise_distance(images: torch.Tensor, max_n: int = 1000) -> float:
    flat = images[:max_n].float().flatten(1)
    dist = torch.cdist(flat, flat)
    n = len(flat)
    return float(dist.sum() / (n * (n - 1)))


@torch.no_grad()
def generate(module: torch.nn.Module, n: int, batch_size: int = 500) -> torch.Tensor:
    module.eval()
    chunks = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        z = torch.randn(count, module.latent_dim, device=module.device)
        chunks.append(module.decode(z) if hasattr(module, "decode") else module(z))
    return torch.cat(chunks).cpu()


def sample_statistics(samples: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    real = real.float()
    return {
        "diversity": mean_pairwise_distance(samples) / mean_pairwise_distance(real),
        "mean_image_mse": float((((samples.mean(0) - real.mean(0)) / 2) ** 2).mean()),
        "n": len(samples),
    }
