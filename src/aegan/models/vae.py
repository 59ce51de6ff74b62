"""The variational autoencoder family (Kingma & Welling): dense for 28x28, convolutional for 64x64.

The encoder outputs the mean and log-variance of q(z|x); z = mu + sigma * eps (reparameterisation);
the loss is the negative ELBO per image: reconstruction (summed over pixels) + beta * KL(q(z|x) || N(0, I)).
New images are decoded from z ~ N(0, I).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError
from aegan.models.autoencoder import from_unit, to_unit
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_decoder, build_encoder, build_optimizer
from aegan.models.outputs import ModelOutput


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


class VAEModule(GenerativeModule):
    family = "vae"
    capabilities = Capabilities(encode=True, sample=True, likelihood=True)

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        if model["loss"] not in ("bce", "mse"):
            raise ConfigError(f"model.loss must be 'bce' or 'mse', got {model['loss']!r}")
        self.latent_dim = int(model["latent_dim"])
        self.encoder = build_encoder(model["encoder"], image_shape, 2 * self.latent_dim)
        self.decoder = build_decoder(model["decoder"], self.latent_dim, image_shape)
        self.example_input_array = torch.zeros(1, *image_shape)  # the model summary: sizes and FLOPs

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the code used for reconstructions and latent-space pictures."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return from_unit(torch.sigmoid(self.decoder(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.latent_dim, device=self.device))

    def step(self, x: torch.Tensor) -> ModelOutput:
        # Under bf16 autocast the networks run in bf16; the likelihood and KL sums stay in float32
        # (784 summed bf16 terms lose about 2 of their 3 significant digits).
        mu, logvar = (t.float() for t in self.posterior(x))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(z).float()
        target = to_unit(x)
        prob = torch.sigmoid(logits)
        if self.cfg["loss"] == "bce":
            recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
        else:
            recon = F.mse_loss(prob, target, reduction="none").flatten(1).sum(1)
        kl = kl_to_standard_normal(mu, logvar)
        loss = (recon + float(self.cfg.get("beta", 1.0)) * kl).mean()
        logs = {"recon": recon.mean(), "kl": kl.mean(), "mse": F.mse_loss(prob, target)}
        return ModelOutput(loss=loss, recon=from_unit(prob), z=z, logs=logs)

    def reference_step(self, optimizers: list[torch.optim.Optimizer], x: torch.Tensor, index: int) -> None:
        self.plain_loss_step(optimizers, self.step(x).loss)

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        out = self.step(batch["image"])
        self.optimize(self.optimizers(), out.loss)
        return {"train/loss": out.loss, **{f"train/{k}": v for k, v in out.logs.items()}}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.step(batch["image"])
        self.log_validation({"val/loss": out.loss, **{f"val/{k}": v for k, v in out.logs.items()}})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.cfg["optimizer"], self.parameters())
