"""Image-to-image networks (Isola et al. 2017, Zhu et al. 2017): U-Net and ResNet generators, PatchGAN critics.

Layer choices follow junyanz/pytorch-CycleGAN-and-pix2pix: 4x4 convolutions of stride 2 with LeakyReLU(0.2)
going down, transposed 4x4 convolutions with ReLU coming up, dropout 0.5 in the inner decoder layers (the
generator's only noise), no norm on the first and last layers; the norm is batch or instance norm.
Generators return pre-activations (the family applies tanh).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aegan.errors import ConfigError
from aegan.models.blocks import Dropout

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
    "none": lambda c: nn.Identity(),
}


def norm_layer(name: str, channels: int) -> nn.Module:
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; valid: {sorted(NORMS)}")
    return NORMS[name](channels)


def unet_depth(size: int, most: int) -> int:
    """How many stride-2 halvings a size-`size` image takes exactly (28 -> 14 -> 7: 2), at most `most`."""
    depth = 0
    while depth < most and size % 2 == 0 and size > 1:
        size //= 2
        depth += 1
    return depth


class UNetGenerator(nn.Module):
    """Encoder-decoder with skip connections between mirrored layers: the input's structure (edges, the
    unmasked pixels) reaches the output without squeezing through the bottleneck."""

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        image_size: int,
        filters: int = 64,
        depth: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        depth = unet_depth(image_size, depth)
        if depth < 1:
            raise ConfigError(f"a U-Net needs an even image size, got {image_size}")
        widths = [filters * min(2**i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        previous = channels_in
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=norm != "batch" or i == 0 or i == depth - 1))
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, width))
            self.down.append(nn.Sequential(*layers))
            previous = width
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            out = channels_out if i == 0 else widths[i - 1]
            n_in = widths[i] if i == depth - 1 else widths[i] * 2  # the innermost layer has no skip to join
            layers = [nn.ReLU(), nn.ConvTranspose2d(n_in, out, 4, 2, 1, bias=i == 0 or norm != "batch")]
            if i > 0:
                layers.append(norm_layer(norm, out))
                if dropout and i >= depth - 3 and i < depth - 1:  # the inner decoder layers, as pix2pix's
                    layers.append(Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the innermost output feeds the decoder directly
        for i, layer in enumerate(self.up):
            x = layer(x if i == 0 else torch.cat([x, skips.pop()], dim=1))
        return x


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: 7x7 conv, two stride-2 downsamplings, residual blocks, two upsamplings, 7x7 conv."""

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        image_size: int,
        filters: int = 64,
        blocks: int = 9,
        norm: str = "instance",
        downsamplings: int = 2,
    ) -> None:
        super().__init__()
        downsamplings = unet_depth(image_size, downsamplings)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels_in, filters, 7),
            norm_layer(norm, filters),
            nn.ReLU(),
        ]
        width = filters
        for _ in range(downsamplings):
            layers += [nn.Conv2d(width, width * 2, 3, 2, 1), norm_layer(norm, width * 2), nn.ReLU()]
            width *= 2
        layers += [ResnetBlock(width, norm) for _ in range(blocks)]
        for _ in range(downsamplings):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1), norm_layer(norm, width // 2)]
            layers.append(nn.ReLU())
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels_out, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchCritic(nn.Module):
    """PatchGAN: a fully convolutional critic whose outputs each judge one receptive-field patch
    (70x70 at 256x256 with 3 layers); the loss averages over patches."""

    def __init__(self, channels_in: int, image_size: int, filters: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        strided = min(layers, unet_depth(image_size, layers))
        modules: list[nn.Module] = [nn.Conv2d(channels_in, filters, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = filters
        for i in range(1, strided + 1):
            stride = 2 if i < strided else 1
            out = filters * min(2**i, 8)
            modules += [nn.Conv2d(width, out, 4, stride, 1, bias=norm != "batch"), norm_layer(norm, out)]
            modules.append(nn.LeakyReLU(0.2))
            width = out
        modules.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
