"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzipped).

Every malformed input raises DataFormatError naming the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from aegan.errors import DataFormatError

# Third byte of the magic number -> numpy dtype (big-endian), per the IDX specification.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_BYTES = 1 << 32  # refuse headers that promise absurd sizes instead of trying to allocate them


def read_bytes(path: Path | str) -> bytes:
    """The file's payload, decompressed when it is gzipped; truncated gzip streams raise DataFormatError."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc


def payload_md5(path: Path | str) -> str:
    """md5 of the decompressed payload: identical for every gzip re-compression of the same data."""
    return hashlib.md5(read_bytes(path), usedforsecurity=False).hexdigest()


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array of the declared shape and dtype."""
    if len(data) < 4:
        raise DataFormatError(f"{name}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataFormatError(
            f"{name}: wrong IDX magic number {data[:4].hex()} (expected 0000 + type byte in "
            f"{sorted(hex(k) for k in _DTYPES)} + ndim); is this an IDX file?"
        )
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataFormatError(f"{name}: IDX header declares {ndim} dimensions but the file is too short")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize  # exact: numpy's int64 product can wrap around to 0
    # An empty dimension makes `expected` 0 whatever the others say; numpy still refuses huge ones.
    if math.prod(d for d in shape if d) * dtype.itemsize > _MAX_BYTES:
        raise DataFormatError(f"{name}: IDX header declares an implausible shape {shape}")
    if len(data) - header != expected:
        raise DataFormatError(
            f"{name}: IDX shape {shape} needs {expected} data bytes but the file has {len(data) - header} "
            "(truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (raw or .gz)."""
    return parse_idx(read_bytes(path), str(path))
