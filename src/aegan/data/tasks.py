"""Translation tasks built from a prepared dataset, deterministically, so they work offline.

Paired tasks turn the base dataset's images (the targets) into inputs, and name their naive baseline (what
a model must beat: an output computed from the input without learning):
  edges    Sobel edge map of the image (as edges2shoes was made from photos)   baseline: the mean image
  superres the image shrunk by `factor` (area), upsampled back (bicubic)      baseline: that upsampling
           (the input is a first estimate of the target: a translator `refines` it, learning a correction)
  inpaint  the centre square (`hole` of the side) set to 0 (mid-grey)         baseline: the hole mean-filled
           (the pixels outside the hole are `known`: a translator keeps them and paints only the hole)
The unpaired task `classes` takes two classes of the base as two domains (`domains: [a, b]`, e.g. sneaker
and ankle boot: the horse <-> zebra of this data): inputs are the images of class a, images those of class
b in a seeded random order (no pairing to learn from), both cut to the smaller count.
The prepared split holds `images` (targets / domain b), `inputs` (domain a) and labels; a batch is
{"input", "image", "label"} (data/datamodule.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError


def sobel_edges(images: torch.Tensor, threshold: float) -> torch.Tensor:
    """Binary edge maps in [-1, 1] (edges 1) where the Sobel gradient magnitude of [0, 1] pixels exceeds threshold."""
    unit = (images.float() + 1) / 2
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)  # (2, 1, 3, 3)
    channels = unit.shape[1]
    grads = F.conv2d(F.pad(unit, (1, 1, 1, 1), mode="replicate"), kernels.repeat(channels, 1, 1, 1), groups=channels)
    magnitude = grads.view(len(unit), channels, 2, *unit.shape[-2:]).pow(2).sum(2).sqrt().amax(1, keepdim=True)
    edges = (magnitude > threshold).float().expand(-1, channels, -1, -1)
    return edges * 2 - 1


def shrink_and_upsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    size = images.shape[-1]
    if size % factor:
        raise ConfigError(f"data.factor must divide the image size {size}, got {factor}")
    small = F.interpolate(images.float(), scale_factor=1 / factor, mode="area")
    return F.interpolate(small, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def hole_mask(shape: torch.Size, hole: float) -> torch.Tensor:
    """True inside the centre square whose side is `hole` of the image's."""
    size = shape[-1]
    side = max(1, round(size * hole))
    start = (size - side) // 2
    mask = torch.zeros(1, 1, *shape[-2:], dtype=torch.bool)
    mask[..., start : start + side, start : start + side] = True
    return mask


def mask_centre(images: torch.Tensor, hole: float) -> torch.Tensor:
    return images.float().masked_fill(hole_mask(images.shape, hole), 0.0)


def _mean_image(cfg: Any, train_images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    mean = train_images.float().mean(0, keepdim=True)
    return lambda inputs: mean.expand(len(inputs), -1, -1, -1)


def _unchanged(cfg: Any, train_images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda inputs: inputs.float()


def _mean_filled_hole(cfg: Any, train_images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    mean, mask = train_images.float().mean(0, keepdim=True), hole_mask(train_images.shape, float(cfg.hole))
    return lambda inputs: torch.where(mask, mean, inputs.float())


@dataclass(frozen=True)
class Task:
    pairing: str  # "paired": inputs and images correspond one to one; "unpaired": two domains
    baseline_name: str
    # (data cfg, training targets) -> (input -> the naive output)
    baseline: Callable[[Any, torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
    inputs: Callable[[Any, torch.Tensor], torch.Tensor] | None = None  # (data cfg, images) -> inputs, paired only
    # (data cfg, image shape) -> where the input already holds the target's pixels, which a model keeps
    known: Callable[[Any, tuple[int, ...]], torch.Tensor] | None = None
    refines: bool = False  # the input is a first estimate of the whole target, which a model corrects


TASKS = {
    "edges": Task("paired", "mean image", _mean_image, lambda cfg, x: sobel_edges(x, float(cfg.edge_threshold))),
    "superres": Task(
        "paired",
        "bicubic upsampling",
        _unchanged,
        lambda cfg, x: shrink_and_upsample(x, int(cfg.factor)),
        refines=True,
    ),
    "inpaint": Task(
        "paired",
        "mean-filled hole",
        _mean_filled_hole,
        lambda cfg, x: mask_centre(x, float(cfg.hole)),
        lambda cfg, shape: ~hole_mask(torch.Size(shape), float(cfg.hole)),
    ),
    "classes": Task("unpaired", "the input unchanged", _unchanged),
}


def task(cfg: Any) -> Task:
    if cfg.task not in TASKS:
        raise ConfigError(f"data.task must be one of {sorted(TASKS)}, got {cfg.task!r}")
    return TASKS[cfg.task]


def pairing(cfg: Any) -> str:
    return task(cfg).pairing


def task_inputs(cfg: Any, images: torch.Tensor) -> torch.Tensor:
    """The paired task's input for every target image."""
    make = task(cfg).inputs
    if make is None:
        raise ConfigError(
            f"data.task {cfg.task} is unpaired: its inputs are a domain of their own, not made from images"
        )
    return make(cfg, images)


def known_pixels(cfg: Any, image_shape: tuple[int, ...]) -> torch.Tensor | None:
    """(1, 1, H, W) True where the task's input is the target itself (inpainting: outside the hole), or None:
    a translator pastes these pixels into its output and paints only the rest, as context encoders do."""
    known = task(cfg).known
    return None if known is None else known(cfg, image_shape)


def refines_input(cfg: Any) -> bool:
    """Whether the task's input is already an estimate of the target (an upsampled image): a translator then
    outputs a correction of it rather than an image from scratch (residual learning, VDSR: Kim et al. 2016)."""
    return task(cfg).refines


def naive_baseline(cfg: Any, train_images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """input -> the task's naive output (fitted on the training targets where it needs them)."""
    return task(cfg).baseline(cfg, train_images)


def class_domains(cfg: Any, split: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    a, b = (int(c) for c in cfg.domains)
    labels = split.get("labels")
    if labels is None:
        raise ConfigError(f"data.task classes needs a base dataset with class labels; {cfg.base.name} has none")
    images_a, images_b = split["images"][labels == a], split["images"][labels == b]
    n = min(len(images_a), len(images_b))
    order = torch.randperm(len(images_b), generator=torch.Generator().manual_seed(seed))[:n]
    return {"images": images_b[order], "inputs": images_a[:n], "labels": torch.full((n,), b, dtype=torch.int64)}


def derive_split(cfg: Any, split: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """A base split -> the task's split: `images` (targets), `inputs`, and labels."""
    if pairing(cfg) == "unpaired":
        return class_domains(cfg, split, seed)
    images = split["images"]
    return {**split, "inputs": task_inputs(cfg, images).to(images.dtype)}
