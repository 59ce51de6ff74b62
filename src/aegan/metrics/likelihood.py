"""The VAE's ELBO terms and an importance-sampled estimate of log p(x) (Burda et al. 2016).

log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,  z_k ~ q(z|x).
The estimate is a lower bound that tightens with K and is never below the ELBO (in expectation).
p(x|z) is the likelihood the model was trained with: Bernoulli on [0, 1] pixels for loss=bce, and for
loss=mse the Gaussian N(x; decoder(z), 1/2) whose negative log-density is the summed squared error
plus a constant. Nats per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aegan.models.autoencoder import to_unit

_HALF_LOG_PI = 0.5 * math.log(math.pi)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp())).sum(-1)


def _log_likelihood(module: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per (sample, image): logits (K, B, ...) against target (B, ...)."""
    target = target.expand_as(logits)
    if module.cfg["loss"] == "bce":
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).sum(-1)
    squared = (torch.sigmoid(logits) - target).pow(2).flatten(2)
    return -squared.sum(-1) - squared.shape[-1] * _HALF_LOG_PI


@torch.no_grad()
def importance_log_likelihood(
    module: torch.nn.Module, images: torch.Tensor, k: int = 100, batch_size: int = 50
) -> float:
    """Mean importance-sampled log p(x) over images (in [-1, 1]), in nats per image."""
    module.eval()
    device = module.device
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float().to(device)
        mu, logvar = module.posterior(x)
        z = mu + torch.randn(k, *mu.shape, device=device) * (0.5 * logvar).exp()  # (K, B, D)
        logits = module.decoder(z.flatten(0, 1)).view(k, len(x), *x.shape[1:])
        log_w = (
            _log_likelihood(module, logits, to_unit(x))
            + _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
            - _log_normal(z, mu, logvar)
        )
        total += float((torch.logsumexp(log_w, dim=0) - math.log(k)).double().sum())
    return total / len(images)


@torch.no_grad()
def elbo_terms(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> dict[str, float]:
    """Mean reconstruction term and KL per image over the split (one posterior sample per image)."""
    module.eval()
    sums = {"recon": 0.0, "kl": 0.0}
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float().to(module.device)
        logs = module.step(x).logs
        for key in sums:
            sums[key] += float(logs[key]) * len(x)
    terms = {key: value / len(images) for key, value in sums.items()}
    # The training loss drops the Gaussian's constant; the ELBO keeps it, to compare with log p(x).
    constant = 0.0 if module.cfg["loss"] == "bce" else images[0].numel() * _HALF_LOG_PI
    terms["elbo"] = -(terms["recon"] + terms["kl"] + constant)
    return terms
