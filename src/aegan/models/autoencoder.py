"""The autoencoder family: dense, stacked, convolutional and denoising autoencoders.

Data arrive in [-1, 1]; the reconstruction loss is computed on [0, 1] pixels as in the sources
(sigmoid output + binary cross-entropy, or MSE), and reconstructions are mapped back to [-1, 1].
A denoising autoencoder is this module with `noise` set: the input is corrupted, the target is clean.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_decoder, build_encoder, build_optimizer, dropout
from aegan.models.outputs import ModelOutput

LOSSES = ("bce", "mse")
NOISES = ("none", "gaussian", "dropout")


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1.0) * 0.5


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def corrupt(x: torch.Tensor, noise: dict[str, Any] | None) -> torch.Tensor:
    """The denoising autoencoder's input noise, applied on [0, 1] pixels and clipped back into range.

    gaussian: x + N(0, std^2), clipped (Keras GaussianNoise + clip); dropout: pixels zeroed with
    probability `rate` and the rest scaled by 1/(1-rate) as Keras' Dropout layer does, then clipped.
    """
    kind = (noise or {}).get("kind", "none")
    if kind == "none":
        return x
    unit = to_unit(x)
    if kind == "gaussian":
        unit = unit + torch.randn_like(unit) * float(noise["std"])
    elif kind == "dropout":
        unit = dropout(unit, float(noise["rate"]))
    else:
        raise ConfigError(f"model.noise.kind must be one of {list(NOISES)}, got {kind!r}")
    return from_unit(unit.clamp(0.0, 1.0))


class AutoencoderModule(GenerativeModule):
    """Encoder -> code -> decoder, trained to reconstruct its (optionally corrupted) input."""

    family = "autoencoder"
    capabilities = Capabilities(encode=True)

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        if model["loss"] not in LOSSES:
            raise ConfigError(f"model.loss must be one of {list(LOSSES)}, got {model['loss']!r}")
        corrupt(torch.zeros(1), model.get("noise"))  # validate the noise config now, not mid-training
        if model.get("noise"):
            self.capabilities = Capabilities(encode=True, denoise=True)
        latent = int(model["latent_dim"])
        self.encoder = build_encoder(model["encoder"], image_shape, latent, model.get("latent_activation"))
        self.decoder = build_decoder(model["decoder"], latent, image_shape)
        self.example_input_array = torch.zeros(1, *image_shape)  # the model summary: sizes and FLOPs

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Code -> image in [-1, 1]."""
        return from_unit(torch.sigmoid(self.decoder(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return corrupt(x, self.cfg.get("noise"))

    def step(self, x: torch.Tensor, noisy: bool) -> ModelOutput:
        z = self.encode(self.corrupt(x) if noisy else x)
        logits = self.decoder(z)
        target = to_unit(x)
        prob = torch.sigmoid(logits)
        mse = F.mse_loss(prob, target)
        loss = F.binary_cross_entropy_with_logits(logits, target) if self.cfg["loss"] == "bce" else mse
        return ModelOutput(loss=loss, recon=from_unit(prob), z=z, logs={"mse": mse})

    def reference_step(self, optimizers: list[torch.optim.Optimizer], x: torch.Tensor, index: int) -> None:
        self.plain_loss_step(optimizers, self.step(x, noisy=True).loss)

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        out = self.step(batch["image"], noisy=True)
        self.optimize(self.optimizers(), out.loss)
        return {"train/loss": out.loss}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.step(batch["image"], noisy=False)
        self.log_validation({"val/loss": out.loss, "val/mse": out.logs["mse"]})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.cfg["optimizer"], self.parameters())
