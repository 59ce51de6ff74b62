"""Reader for folders of image files (LEGO bricks, CelebA): decode, convert, resize to uint8 arrays.

A file that cannot be decoded is reported back as skipped with its reason, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aegan.errors import DataFormatError

_MODES = {1: "L", 3: "RGB"}


def load_image(path: Path, size: int, channels: int, resize: str) -> np.ndarray:
    """Decode one image into a (channels, size, size) uint8 array; DataFormatError when unreadable."""
    if channels not in _MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as img:
            img.load()
            img = _to_8_bit(img).convert(_MODES[channels])
    except Exception as exc:  # PIL's decoders raise many types on bad bytes (OSError, SyntaxError, struct.error...)
        raise DataFormatError(f"{path}: unreadable image ({exc.__class__.__name__}: {exc})") from exc
    if resize == "center_crop":
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif resize != "stretch":
        raise ValueError(f"resize must be 'stretch' or 'center_crop', got {resize!r}")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _to_8_bit(img: Image.Image) -> Image.Image:
    """16-bit greyscale (PNG mode I;16, or I holding 16-bit values) scaled to 8 bits: PIL's own convert
    clips every value above 255, which turns such an image almost white."""
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "I" and values.max() > 65535:
            raise DataFormatError(f"32-bit integer pixels up to {values.max():.0f}: save it as 8 or 16 bits")
        return Image.fromarray(np.round(values / 257.0).astype(np.uint8), "L")
    if img.mode == "F":
        raise DataFormatError("floating-point pixels have no agreed range: save it as an 8- or 16-bit image")
    return img


def label_from_filename(path: Path) -> str:
    """LEGO renders are named '<part> <name> <view>.png': the label is everything but the view."""
    stem = path.stem
    return stem.rsplit(" ", 1)[0] if " " in stem else stem
