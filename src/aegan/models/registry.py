"""Model families by name: `model.family` in conf/model/*.yaml picks the LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aegan.errors import ConfigError, DataFormatError, first_line
from aegan.models.autoencoder import AutoencoderModule
from aegan.models.base import GenerativeModule
from aegan.models.cyclegan import CycleGANModule
from aegan.models.gan import GANModule
from aegan.models.pix2pix import Pix2PixModule
from aegan.models.vae import VAEModule

FAMILIES: dict[str, type[GenerativeModule]] = {
    "autoencoder": AutoencoderModule,
    "vae": VAEModule,
    "gan": GANModule,
    "pix2pix": Pix2PixModule,
    "cyclegan": CycleGANModule,
}


def build_module(model_cfg: dict[str, Any], image_shape: tuple[int, int, int]) -> GenerativeModule:
    family = model_cfg.get("family")
    if family not in FAMILIES:
        raise ConfigError(f"model.family {family!r} is not a model family; valid: {sorted(FAMILIES)}")
    return FAMILIES[family](model=model_cfg, image_shape=tuple(image_shape))


def load_module(checkpoint: Path | str, map_location: str | torch.device = "cpu") -> GenerativeModule:
    """Load any aegan checkpoint; the family is read from the saved hyperparameters.

    A file that is not one (garbage, truncated, another program's) is a DataFormatError naming it."""
    hint = "pass the model.ckpt of an aegan run (models/<model>/<data>/ or runs/...), or retrain it"
    try:
        ckpt = torch.load(checkpoint, map_location=map_location, weights_only=False)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ConfigError(f"checkpoint {checkpoint} does not exist or is not a file; {hint}") from exc
    except Exception as exc:  # torch.load raises many kinds (UnpicklingError, EOFError, RuntimeError, ...)
        first = first_line(exc)
        raise DataFormatError(f"{checkpoint} is not a readable checkpoint ({first}); {hint}") from exc
    hparams = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    family = (hparams.get("model") or {}).get("family") if isinstance(hparams, dict) else None
    if family not in FAMILIES or "state_dict" not in ckpt:
        raise DataFormatError(f"{checkpoint}: not an aegan checkpoint of a known family (family={family!r}); {hint}")
    try:
        module = FAMILIES[family](**hparams)
        module.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, ConfigError) as exc:
        first = first_line(exc)
        raise DataFormatError(f"{checkpoint}: its weights do not fit its own config ({first}); {hint}") from exc
    return module.eval()
