"""Where a model's new codes come from: its prior, or a density fitted to the training codes afterwards.

An autoencoder has no prior, and a VAE's aggregate posterior rarely matches N(0, I), so sampling the
prior lands off the data. Two ex-post samplers fix both (`evaluation.samplers`):
  gmm        a Gaussian mixture fitted to the training codes (Ghosh et al. 2020, "From variational to
             deterministic autoencoders"; pythae's GaussianMixtureSampler)
  two_stage  a second, small VAE trained on the codes, with a learned decoder variance (Dai & Wipf 2019,
             "Diagnosing and enhancing VAE models"); its own prior N(0, I) -> its decoder -> a code
Each takes codes (N, d) in `fit` and returns new codes in `sample`; the model's decoder makes the images.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from aegan.errors import ConfigError
from aegan.models.vae import kl_to_standard_normal


class CodeSampler(Protocol):
    def fit(self, codes: torch.Tensor, seed: int) -> CodeSampler: ...

    def sample(self, n: int, seed: int) -> torch.Tensor: ...


class PriorSampler:
    """N(0, I): what a VAE or GAN was trained to decode."""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim

    def fit(self, codes: torch.Tensor, seed: int) -> PriorSampler:
        return self

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))


class GaussianMixtureSampler:
    def __init__(self, components: int = 10, covariance: str = "full", max_codes: int = 20000) -> None:
        self.components, self.covariance, self.max_codes = int(components), covariance, int(max_codes)
        self.mixture: Any = None

    def fit(self, codes: torch.Tensor, seed: int) -> GaussianMixtureSampler:
        from sklearn.mixture import GaussianMixture

        codes = _subset(codes, self.max_codes, seed)

        def fitted(dtype: torch.dtype) -> Any:
            return GaussianMixture(
                n_components=min(self.components, len(codes)),
                covariance_type=self.covariance,
                reg_covar=1e-5,
                random_state=seed,
            ).fit(codes.to(dtype).numpy())

        # float32 halves the time of EM on 200-d codes (a conv VAE's: 128 s -> 69 s, 39 iterations, the same
        # lower bound to 6 digits); float64 when a covariance is too ill-conditioned for float32's Cholesky.
        try:
            self.mixture = _in_float64(fitted(torch.float32))
        except ValueError:
            self.mixture = fitted(torch.float64)
        return self

    def sample(self, n: int, seed: int) -> torch.Tensor:
        self.mixture.random_state = seed
        codes, _ = self.mixture.sample(n)
        # sklearn returns the samples grouped by component: shuffle so any prefix is a fair draw.
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return torch.from_numpy(codes).float()[order]


def _in_float64(mixture: Any) -> Any:
    """A float32 fit, its parameters in float64: sampling checks each covariance for positive semi-definiteness
    at float64 tolerance, which float32 round-off (and asymmetry) fails."""
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(mixture, name, np.asarray(getattr(mixture, name), dtype=np.float64))
    if mixture.covariance_type in ("full", "tied"):
        mixture.covariances_ = (mixture.covariances_ + np.swapaxes(mixture.covariances_, -1, -2)) / 2
    return mixture


class _CodeVAE(nn.Module):
    """The second stage: an MLP VAE on standardised codes, Gaussian decoder with a learned scale gamma."""

    def __init__(self, dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.encoder = _mlp([dim, *hidden, 2 * dim])
        self.decoder = _mlp([dim, *hidden, dim])
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def loss(self, u: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encoder(u).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = (u - self.decoder(z)).pow(2).sum(1) / (2 * torch.exp(2 * self.log_gamma))
        recon = recon + u.shape[1] * (self.log_gamma + 0.5 * math.log(2 * math.pi))
        return (recon + kl_to_standard_normal(mu, logvar)).mean()


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TwoStageVAESampler:
    def __init__(
        self,
        hidden: list[int] | None = None,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        max_codes: int = 20000,
    ) -> None:
        self.hidden = list(hidden or [256, 256])
        self.epochs, self.batch_size, self.lr, self.max_codes = int(epochs), int(batch_size), float(lr), int(max_codes)
        self.vae: _CodeVAE | None = None
        self.mean = self.std = torch.zeros(())

    def fit(self, codes: torch.Tensor, seed: int) -> TwoStageVAESampler:
        codes = _subset(codes, self.max_codes, seed).float()
        self.mean, self.std = codes.mean(0), codes.std(0).clamp_min(1e-6)
        u = (codes - self.mean) / self.std
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.vae = _CodeVAE(u.shape[1], self.hidden)
        # fused: one kernel per step instead of a Python loop over the tensors (-10 % of this small net's step)
        optimizer = torch.optim.Adam(self.vae.parameters(), lr=self.lr, fused=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.epochs)
        with torch.enable_grad():
            for _ in range(self.epochs):
                for index in torch.randperm(len(u), generator=generator).split(self.batch_size):
                    optimizer.zero_grad(set_to_none=True)
                    self.vae.loss(u[index]).backward()
                    optimizer.step()
                schedule.step()
        self.vae.eval()
        return self

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        z = torch.randn(n, len(self.mean), generator=torch.Generator().manual_seed(seed))
        return self.vae.decoder(z) * self.std + self.mean


SAMPLERS = {"gmm": GaussianMixtureSampler, "two_stage": TwoStageVAESampler}


def build_sampler(name: str, options: Mapping[str, Any] | None = None) -> CodeSampler:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; valid: {sorted(SAMPLERS)} (and 'prior' for VAEs and GANs)")
    try:
        return SAMPLERS[name](**dict(options or {}))
    except TypeError as exc:
        raise ConfigError(f"evaluation.samplers.{name}: {exc}") from exc


def _subset(codes: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    if len(codes) <= limit:
        return codes
    return codes[torch.randperm(len(codes), generator=torch.Generator().manual_seed(seed))[:limit]]
