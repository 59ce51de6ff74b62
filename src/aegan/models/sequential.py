"""Networks written the way the Keras sources write them: a list of layers, shapes inferred.

A model config can give an encoder, decoder, generator or critic as `kind: sequential` with `layers:`,
one entry per Keras layer of the seed notebook, e.g. Géron's DCGAN generator:

    layers:
      - {dense: 6272}
      - {reshape: [128, 7, 7]}
      - {batchnorm: {}}
      - {conv_transpose: 64, kernel: 5, stride: 2, padding: same, activation: selu}
      - {batchnorm: {}}
      - {conv_transpose: 1, kernel: 5, stride: 2, padding: same}

Shapes are (C, H, W) as in PyTorch; padding is Keras' `valid` unless `same` is given, which keeps
H/stride (transposed: H*stride) as Keras does. `init: keras` next to `layers` initialises as Keras does.
The family adds the output activation (sigmoid/tanh) itself, so the last layer has none. Layers:
dense, reshape, flatten, conv, conv_transpose, maxpool, upsample, batchnorm, dropout, activation,
global_avg_pool, minibatch_std (a critic's: `{minibatch_std: 4}`, the group size). A `dense`/`conv`/
`conv_transpose` may carry `activation:` and `bias: false` (Keras' arguments); `conv_transpose: image` makes
as many channels as the images have, `dense: out` as many units as the network must output (a VAE encoder's
mean and log-variance: 2 x latent_dim). `layers` may also map image sizes to lists ({"28": [...], "64":
[...]}), like `channels`.
A network ending in a different shape of the same size is reshaped to what the family needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from aegan.errors import ConfigError

LAYER_KINDS = (
    "dense",
    "reshape",
    "flatten",
    "conv",
    "conv_transpose",
    "maxpool",
    "upsample",
    "batchnorm",
    "dropout",
    "activation",
    "global_avg_pool",
    "minibatch_std",
)


class Reshape(nn.Module):
    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape)


class MinibatchStd(nn.Module):
    """Karras et al. 2018: the standard deviation over groups of samples, averaged, as one more feature
    (a channel of an image-shaped input). A critic that sees how varied a batch is tells a collapsed
    generator from the data at once, which a per-sample critic cannot."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 2:
            raise ConfigError(f"minibatch_std needs a group size >= 2, got {group_size}")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        groups = math.gcd(n, self.group_size)  # a last batch of another size still splits evenly
        # sample g * (n / groups) + m is member g of group m
        spread = x.reshape(groups, -1, *x.shape[1:]).float().var(0, unbiased=False).add(1e-8).sqrt()
        stat = spread.flatten(1).mean(1).repeat(groups).to(x.dtype)
        stat = stat.reshape(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, stat], 1)


def _same_padding(kernel: int, stride: int) -> int:
    if (kernel - stride) % 2 and stride == 1:
        raise ConfigError(f"padding 'same' needs an odd kernel at stride 1, got kernel {kernel}")
    return (kernel - 1) // 2 if stride == 1 else max(kernel - stride + 1, 0) // 2


def _layer(spec: dict[str, Any], shape: tuple[int, ...], image_channels: int, out_units: int) -> nn.Module:
    from aegan.models.blocks import Dropout, activation

    kinds = [k for k in spec if k in LAYER_KINDS]
    if len(kinds) == 2 and "activation" in kinds:  # `activation:` as an argument of another layer
        kinds.remove("activation")
    if len(kinds) != 1:
        raise ConfigError(f"a sequential layer names exactly one of {list(LAYER_KINDS)}, got {spec}")
    kind, arg = kinds[0], spec[kinds[0]]
    if arg == "image":  # the image's channel count, so one spec serves grayscale and colour data
        arg = image_channels
    elif arg == "out":  # what the network must output (a VAE encoder: 2 x latent_dim), whatever the latent size
        arg = out_units
    kernel, stride = int(spec.get("kernel", 3)), int(spec.get("stride", 1))
    padding = spec.get("padding", "valid")  # Keras' default
    bias = bool(spec.get("bias", True))  # Keras' use_bias
    if kind == "dense":
        layer: nn.Module = nn.Linear(math.prod(shape), int(arg), bias=bias)
    elif kind == "reshape":
        layer = Reshape(arg)
    elif kind == "flatten":
        layer = nn.Flatten()
    elif kind in ("conv", "conv_transpose"):
        if len(shape) != 3:
            raise ConfigError(f"{kind} needs an image-shaped input (C, H, W), got {shape}: add a reshape")
        pad = _same_padding(kernel, stride) if padding == "same" else 0
        if padding not in ("same", "valid"):
            raise ConfigError(f"padding must be 'same' or 'valid', got {padding!r}")
        if kind == "conv":
            layer = nn.Conv2d(shape[0], int(arg), kernel, stride, pad, bias=bias)
        else:
            # 'same' doubles (x stride) the size exactly as Keras does: the extra row/column goes at the end
            extra = stride - 1 - (kernel - 2 * pad - 1) % stride if padding == "same" else 0
            layer = nn.ConvTranspose2d(shape[0], int(arg), kernel, stride, pad, max(extra, 0), bias=bias)
    elif kind == "maxpool":
        layer = nn.MaxPool2d(int(arg or 2), ceil_mode=padding == "same")
    elif kind == "upsample":
        layer = nn.Upsample(scale_factor=int(arg or 2), mode="nearest")
    elif kind == "batchnorm":
        opts = arg or {}
        # Keras' defaults (momentum 0.99 of the old average, epsilon 1e-3), not PyTorch's (0.9, 1e-5)
        momentum, eps = 1 - float(opts.get("momentum", 0.99)), float(opts.get("epsilon", 1e-3))
        norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        layer = norm(shape[0], eps=eps, momentum=momentum)
    elif kind == "dropout":
        layer = Dropout(float(arg))
    elif kind == "activation":
        layer = activation(arg)
    elif kind == "minibatch_std":
        layer = MinibatchStd(int(arg or 4))
    else:  # global_avg_pool
        layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if spec.get("activation") and kind != "activation":
        layer = nn.Sequential(layer, activation(spec["activation"]))
    return layer


class SequentialNet(nn.Module):
    """Layers built from specs, each for the shape the previous one produces."""

    def __init__(self, layers: Sequence[dict[str, Any]], in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        image = in_shape if len(in_shape) == 3 else out_shape
        if isinstance(layers, dict):
            from aegan.models.blocks import _for_size

            layers = _for_size({"layers": layers}, "layers", int(image[-1]))
        shape = tuple(int(s) for s in in_shape)
        modules = []
        for spec in layers:
            module = _layer(dict(spec), shape, int(image[0]), math.prod(out_shape))
            with torch.no_grad():
                try:
                    shape = tuple(module.eval()(torch.zeros(2, *shape)).shape[1:])
                except RuntimeError as exc:
                    raise ConfigError(f"layer {dict(spec)} does not fit its input of shape {shape}: {exc}") from exc
            modules.append(module.train())
        if shape != tuple(out_shape) and math.prod(shape) == math.prod(out_shape):
            modules.append(Reshape(out_shape))
        elif shape != tuple(out_shape):
            raise ConfigError(f"the layers end with shape {shape}, the model needs {tuple(out_shape)}")
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def keras_init(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases (PyTorch's default is He-uniform
    with a=sqrt(5) and uniform biases). Dense and conv layers; batch norm keeps (1, 0)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(layer.weight)  # fan_in + fan_out: the same for Keras' kernel layout
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
