"""Building blocks shared by the model families: MLPs, dense encoders and decoders.

Decoders return logits / pre-activations; the family module decides the output activation, so that
losses can use their numerically stable fused forms (e.g. BCE with logits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from aegan.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def activation(name: str | None) -> nn.Module:
    key = name or "identity"
    if key not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def mlp(sizes: Sequence[int], act: str, out_act: str | None = None) -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1] with `act` between them and `out_act` at the end."""
    if any(int(s) <= 0 for s in sizes):
        raise ConfigError(f"layer sizes must be positive, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(int(n_in), int(n_out)))
        last = i == len(sizes) - 2
        if not last or out_act:
            layers.append(activation(out_act if last else act))
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    """Flatten -> MLP -> code of size latent_dim (with an optional activation on the code)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        hidden: Sequence[int],
        latent_dim: int,
        act: str = "relu",
        latent_act: str | None = None,
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), mlp([math.prod(image_shape), *hidden, latent_dim], act, latent_act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DenseDecoder(nn.Module):
    """Code -> MLP -> image-shaped pre-activations."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], image_shape: Sequence[int], act: str = "relu") -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = mlp([latent_dim, *hidden, math.prod(image_shape)], act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


def build_encoder(cfg: dict, image_shape: Sequence[int], latent_dim: int, latent_act: str | None) -> nn.Module:
    kind = cfg.get("kind", "dense")
    if kind == "dense":
        return DenseEncoder(image_shape, cfg.get("hidden", []), latent_dim, cfg.get("activation", "relu"), latent_act)
    raise ConfigError(f"unknown encoder kind {kind!r}; valid: ['dense']")


def build_decoder(cfg: dict, latent_dim: int, image_shape: Sequence[int]) -> nn.Module:
    kind = cfg.get("kind", "dense")
    if kind == "dense":
        return DenseDecoder(latent_dim, cfg.get("hidden", []), image_shape, cfg.get("activation", "relu"))
    raise ConfigError(f"unknown decoder kind {kind!r}; valid: ['dense']")


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(cfg: dict, params) -> torch.optim.Optimizer:  # noqa: ANN001 - any iterable of params
    cfg = dict(cfg)
    name = cfg.pop("name", "adam")
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; valid: {sorted(OPTIMIZERS)}")
    if "betas" in cfg:
        cfg["betas"] = tuple(cfg["betas"])
    return OPTIMIZERS[name](params, **cfg)
