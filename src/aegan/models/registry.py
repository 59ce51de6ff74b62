"""Model families by name: `model.family` in conf/model/*.yaml picks the LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from aegan.errors import ConfigError
from aegan.models.autoencoder import AutoencoderModule
from aegan.models.gan import GANModule
from aegan.models.vae import VAEModule

FAMILIES: dict[str, type[L.LightningModule]] = {
    "autoencoder": AutoencoderModule,
    "vae": VAEModule,
    "gan": GANModule,
}


def build_module(model_cfg: dict[str, Any], image_shape: tuple[int, int, int]) -> L.LightningModule:
    family = model_cfg.get("family")
    if family not in FAMILIES:
        raise ConfigError(f"model.family {family!r} is not a model family; valid: {sorted(FAMILIES)}")
    return FAMILIES[family](model=model_cfg, image_shape=tuple(image_shape))


def load_module(checkpoint: Path | str, map_location: str | torch.device = "cpu") -> L.LightningModule:
    """Load any aegan checkpoint; the family is read from the saved hyperparameters."""
    ckpt = torch.load(checkpoint, map_location=map_location, weights_only=False)
    hparams = ckpt.get("hyper_parameters", {})
    family = hparams.get("model", {}).get("family")
    if family not in FAMILIES:
        raise ConfigError(f"{checkpoint}: not an aegan checkpoint of a known family (family={family!r})")
    module = FAMILIES[family](**hparams)
    module.load_state_dict(ckpt["state_dict"])
    return module.eval()
