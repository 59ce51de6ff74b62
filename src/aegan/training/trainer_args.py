"""The `trainer` config group: aegan's own training options, everything else passed to Lightning's Trainer."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from aegan.errors import ConfigError

# Options aegan carries out itself (models/base.py, training/fit.py); not Trainer arguments.
AEGAN_TRAINER_KEYS = frozenset(
    {"schedule", "steps_per_execution", "channels_last", "compile", "gradient_clip_val", "checkpoint_every_n_epochs"}
)
# Trainer arguments aegan sets from elsewhere (the logger group, the run's callbacks and directory).
MANAGED = frozenset({"logger", "callbacks", "enable_progress_bar", "log_every_n_steps", "default_root_dir"})


def lightning_trainer_keys() -> frozenset[str]:
    return frozenset(inspect.signature(L.Trainer.__init__).parameters) - {"self"}


def trainer_kwargs(trainer_cfg: Mapping[str, Any], model_cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Lightning Trainer arguments in trainer_cfg; unknown keys are refused with the valid list.

    model_cfg: the model's `bf16_on_cpu` decides what `precision: auto` means on a bf16 CPU."""
    valid = lightning_trainer_keys()
    kwargs = {key: value for key, value in trainer_cfg.items() if key not in AEGAN_TRAINER_KEYS}
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise ConfigError(
            f"unknown trainer option(s) {unknown}: trainer.* takes aegan's {sorted(AEGAN_TRAINER_KEYS)} "
            f"and Lightning Trainer arguments {sorted(valid - MANAGED)}"
        )
    managed = sorted(set(kwargs) & MANAGED)
    if managed:
        raise ConfigError(
            f"trainer.{managed[0]} is set by aegan: use logger.progress_bar / logger.log_every_n_steps for the console"
        )
    if kwargs.get("max_epochs") is None:
        kwargs.pop("max_epochs", None)
    if kwargs.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={kwargs['accelerator']} but this machine has no CUDA GPU: "
            "use trainer=default (CPU here), or trainer=gpu trainer.accelerator=cpu to try the GPU profile's settings"
        )
    kwargs["precision"] = model_precision(trainer_cfg, model_cfg)
    return kwargs


def model_precision(
    trainer_cfg: Mapping[str, Any], model_cfg: Mapping[str, Any] | None, accelerator: str | None = None
) -> Any:
    """trainer.precision resolved for this model (its `bf16_on_cpu`) on accelerator (default trainer.accelerator)."""
    return resolve_precision(
        trainer_cfg.get("precision", "auto"),
        accelerator or trainer_cfg.get("accelerator", "auto"),
        bf16_on_cpu=bool((model_cfg or {}).get("bf16_on_cpu", False)),
    )


def resolve_precision(precision: Any, accelerator: str, bf16_on_cpu: bool) -> Any:
    """`auto`: bf16-mixed where the hardware computes in bf16 natively (and, on a CPU, the model gains by it),
    else 32-true.

    On a GPU: one that supports bf16 (Ampere and later). On a CPU: AVX512-BF16 or AMX (elsewhere bf16 is
    emulated and slower than float32), for a model whose config sets `bf16_on_cpu` (measured faster by
    `aegan bench --precisions 32-true bf16-mixed`: small dense networks lose more to autocast's casts than
    their bf16 matrix products save). Any other value is Lightning's and passes through.
    """
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    native = capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")
    return "bf16-mixed" if native and bf16_on_cpu else "32-true"
