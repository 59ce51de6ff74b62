"""Image grids without torchvision: tensors in [-1, 1] -> one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aegan.io import atomic_path


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (H', W', C) uint8 grid with `nrow` images per row."""
    images = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = images[i]
    array = ((grid + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return array[..., 0] if c == 1 else array


def save_grid(images: torch.Tensor, path: Path | str, nrow: int | None = None, scale: int = 2) -> Path:
    array = make_grid(images, nrow)
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def strips_grid(rows: list[torch.Tensor], path: Path | str, per_row: int = 16) -> Path:
    """Blocks of per_row images: a row of each tensor in turn (originals / reconstructions; input / output / target)."""
    n = (len(rows[0]) // per_row) * per_row or len(rows[0])
    per_row = min(per_row, n)
    strips = []
    for start in range(0, n, per_row):
        strips += [images[start : start + per_row] for images in rows]
    return save_grid(torch.cat(strips), path, nrow=per_row)


def reconstruction_grid(originals: torch.Tensor, recons: torch.Tensor, path: Path | str, per_row: int = 16) -> Path:
    """Rows of originals, each followed by a row of their reconstructions."""
    return strips_grid([originals, recons], path, per_row)
