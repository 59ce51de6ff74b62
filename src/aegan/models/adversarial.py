"""Adversarial losses as small pieces that any family with a critic combines (GANs, Pix2Pix, CycleGAN).

A loss turns critic scores into the critic's and the generator's objectives; a constraint keeps the
critic Lipschitz (weight clipping after each critic step, or a gradient penalty added to its loss).

  nonsaturating  Goodfellow et al. 2014: D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z))
  lsgan          Mao et al. 2017: least squares to 1 (real) and 0 (fake); CycleGAN's loss
  wasserstein    Arjovsky et al. 2017: a linear-output critic; needs a constraint (clip or penalty)
  hinge          Lim & Ye 2017 / Miyato et al. 2018: max(0, 1 - D(x)) + max(0, 1 + D(G(z))); G: -D(G(z))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError

Logs = dict[str, torch.Tensor]


class AdversarialLoss:
    name: str

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NonSaturating(AdversarialLoss):
    name = "nonsaturating"

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
        loss = loss + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        return loss, {"d_real": torch.sigmoid(d_real).mean(), "d_fake": torch.sigmoid(d_fake).mean()}

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


class LeastSquares(AdversarialLoss):
    name = "lsgan"

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        loss = F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake))
        return loss, {"d_real": d_real.mean(), "d_fake": d_fake.mean()}

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(d_fake, torch.ones_like(d_fake))


class Wasserstein(AdversarialLoss):
    name = "wasserstein"

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        distance = d_real.mean() - d_fake.mean()
        return -distance, {"wasserstein": distance}

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        return -d_fake.mean()


class Hinge(AdversarialLoss):
    name = "hinge"

    def critic(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        return loss, {"d_real": d_real.mean(), "d_fake": d_fake.mean()}

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        return -d_fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """WGAN-GP's E[(||grad_x critic(x_hat)||_2 - 1)^2] at x_hat = alpha * real + (1 - alpha) * fake.

    alpha is drawn per sample from U(0, 1) (one scalar per image, broadcast over its pixels), as in the
    paper's Algorithm 1. eps sits inside the square root: sqrt(0) has an infinite derivative, so a zero
    gradient would otherwise give NaN.
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = torch.sqrt(grad.float().flatten(1).pow(2).sum(1) + eps)  # float32 under bf16 autocast
    return (norm - 1).pow(2).mean()


@dataclass(frozen=True)
class Adversarial:
    """A loss and its critic constraint: `clip` (WGAN's weight clipping) or `gp_lambda` (WGAN-GP)."""

    loss: AdversarialLoss
    clip: float | None = None
    gp_lambda: float | None = None

    @property
    def differentiates_twice(self) -> bool:
        """The penalty differentiates through the critic's input gradients (no compiled critic, grads in val)."""
        return self.gp_lambda is not None

    def critic_loss(
        self, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, Logs]:
        loss, logs = self.loss.critic(critic(real), critic(fake))
        if self.gp_lambda is not None:
            gp = gradient_penalty(critic, real, fake)
            loss = loss + self.gp_lambda * gp
            logs["gp"] = gp
        return loss, logs

    @torch.no_grad()
    def constrain(self, critic: torch.nn.Module) -> None:
        """After each critic step: WGAN's weights clamped to [-clip, clip]."""
        if self.clip is not None:
            for p in critic.parameters():
                p.clamp_(-self.clip, self.clip)


LOSSES: dict[str, type[AdversarialLoss]] = {cls.name: cls for cls in (NonSaturating, LeastSquares, Wasserstein, Hinge)}
# The names the sources use for a loss with its constraint.
PRESETS = {"wasserstein_gp": ("wasserstein", "gradient_penalty"), "wasserstein": ("wasserstein", "clip")}


def build_adversarial(model: dict[str, Any]) -> Adversarial:
    """From `model.loss` (a LOSSES name or a PRESETS name) and `model.constraint` (none/clip/gradient_penalty,
    with `clip_value` / `gp_lambda`)."""
    name = model.get("loss")
    valid = sorted({*LOSSES, *PRESETS})
    if name not in valid:
        raise ConfigError(f"model.loss must be one of {valid}, got {name!r}")
    loss_name, constraint = PRESETS.get(name, (name, "none"))
    constraint = model.get("constraint", constraint)
    if constraint == "clip":
        return Adversarial(LOSSES[loss_name](), clip=float(model["clip_value"]))
    if constraint == "gradient_penalty":
        return Adversarial(LOSSES[loss_name](), gp_lambda=float(model["gp_lambda"]))
    if constraint != "none":
        raise ConfigError(f"model.constraint must be none, clip or gradient_penalty, got {constraint!r}")
    return Adversarial(LOSSES[loss_name]())
