"""The GAN family: MLP GAN and DCGAN (non-saturating loss), WGAN (weight clipping) and WGAN-GP.

One module, three adversarial losses (`model.loss`):
  nonsaturating  Goodfellow et al.: D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z))
  wasserstein    Arjovsky et al.: a linear-output critic, weights clipped to [-c, c] after each step
  wasserstein_gp Gulrajani et al.: the critic's gradient norm pulled to 1 on random interpolates
The critic takes `n_critic` steps (each on a fresh real batch) per generator step. Lightning manual
optimisation: the Lightning 2 way for two optimisers (no optimizer_idx).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_decoder, build_encoder, build_optimizer

LOSSES = ("nonsaturating", "wasserstein", "wasserstein_gp")


def gradient_penalty(
    critic: torch.nn.Module,
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


class GANModule(GenerativeModule):
    family = "gan"
    capabilities = Capabilities(sample=True)
    objective = "val/fid"  # adversarial losses do not measure quality (training/objective.py)
    monitor = None  # adversarial losses do not measure quality: keep the last checkpoint
    prog_bar = ("train/d_loss", "train/g_loss")

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        if model["loss"] not in LOSSES:
            raise ConfigError(f"model.loss must be one of {list(LOSSES)}, got {model['loss']!r}")
        self.latent_dim = int(model["latent_dim"])
        self.n_critic = int(model.get("n_critic", 1))
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic must be >= 1, got {self.n_critic}")
        self.generator = build_decoder(model["generator"], self.latent_dim, image_shape)
        self.critic = build_encoder(model["critic"], image_shape, 1)
        self.example_input_array = torch.zeros(1, self.latent_dim)  # the summary: the generator's sizes, FLOPs
        # A fixed latent batch, so sample grids of successive epochs show the same points.
        self.register_buffer("fixed_z", torch.randn(64, self.latent_dim, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes -> images in [-1, 1] (tanh output)."""
        return torch.tanh(self.generator(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self(z)

    def sample(self, n: int) -> torch.Tensor:
        """n fresh draws from the prior."""
        return self(torch.randn(n, self.latent_dim, device=self.device))

    def preview_samples(self, n: int) -> torch.Tensor:
        """The same codes every epoch (up to 64, fresh beyond), so successive grids are comparable."""
        if n <= len(self.fixed_z):
            return self(self.fixed_z[:n])
        return self.sample(n)

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d_real, d_fake = self.critic(real), self.critic(fake)
        if self.cfg["loss"] == "nonsaturating":
            loss = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            return loss, {"d_real": torch.sigmoid(d_real).mean(), "d_fake": torch.sigmoid(d_fake).mean()}
        distance = d_real.mean() - d_fake.mean()
        logs = {"wasserstein": distance}
        loss = -distance
        if self.cfg["loss"] == "wasserstein_gp":
            gp = gradient_penalty(self.critic, real, fake)
            loss = loss + float(self.cfg["gp_lambda"]) * gp
            logs["gp"] = gp
        return loss, logs

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        scores = self.critic(fake)
        if self.cfg["loss"] == "nonsaturating":
            return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))
        return -scores.mean()

    @torch.no_grad()
    def clip_critic(self) -> None:
        """WGAN's Lipschitz constraint: critic weights clamped to [-clip_value, clip_value] after each step."""
        if self.cfg["loss"] == "wasserstein":
            clip = float(self.cfg["clip_value"])
            for p in self.critic.parameters():
                p.clamp_(-clip, clip)

    def compile_networks(self) -> None:
        """The WGAN-GP critic stays eager: its penalty differentiates twice, which compiled graphs do not support."""
        self.generator.compile()
        if self.cfg["loss"] != "wasserstein_gp":
            self.critic.compile()

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def train_minibatch(self, real: torch.Tensor, index: int) -> dict[str, torch.Tensor]:
        """A critic step on this batch; every n_critic-th batch also a generator step."""
        opt_g, opt_d = self.optimizers()
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self(self.noise(len(real)))
        d_loss, logs = self.critic_loss(real, fake)
        self.optimize(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)
        self.clip_critic()
        logs = {"train/d_loss": d_loss, **{f"train/{k}": v for k, v in logs.items()}}

        if (index + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            g_loss = self.generator_loss(self(self.noise(len(real))))
            self.optimize(opt_g, g_loss)
            self.untoggle_optimizer(opt_g)
            logs["train/g_loss"] = g_loss
        return logs

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real = batch[0]
        fake = self(self.noise(len(real)))
        with torch.set_grad_enabled(self.cfg["loss"] == "wasserstein_gp"):  # the penalty needs input gradients
            d_loss, logs = self.critic_loss(real, fake)
        logs = {f"val/{k}": v for k, v in logs.items()}
        self.log_validation({"val/d_loss": d_loss, "val/g_loss": self.generator_loss(fake), **logs})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        gen = build_optimizer(self.cfg["generator_optimizer"], self.generator.parameters())
        critic = build_optimizer(self.cfg["critic_optimizer"], self.critic.parameters())
        return [gen, critic]
