"""What a model's step returns, in the spirit of pythae's ModelOutput."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    loss: torch.Tensor
    recon: torch.Tensor | None = None  # reconstruction in [-1, 1], the data's range
    z: torch.Tensor | None = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
