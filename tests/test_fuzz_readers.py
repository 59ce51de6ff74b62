"""Property-based fuzzing of the readers: any bytes give data or one clear DataFormatError, never a crash."""

from __future__ import annotations

import gzip
import io
import struct

import numpy as np
import pytest
from conftest import idx_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from aegan.data.idx import parse_idx, read_idx
from aegan.data.images import load_image
from aegan.errors import DataFormatError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=2048))
def test_parse_idx_on_random_bytes(data):
    try:
        array = parse_idx(data)
    except DataFormatError:
        return
    assert array.size * array.dtype.itemsize == len(data) - 4 - 4 * array.ndim


@FUZZ
@given(
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
    st.binary(max_size=512),
)
def test_parse_idx_on_random_headers(type_byte, dims, payload):
    data = bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload
    try:
        array = parse_idx(data)
    except DataFormatError:
        return
    assert list(array.shape) == dims


def test_header_with_an_empty_dimension_beside_huge_ones():
    """Found by the fuzzer: 0 x 43 x 463126282 x 463150187 declares 0 data bytes, but numpy cannot shape it."""
    data = bytes([0, 0, 0x08, 4]) + struct.pack(">IIII", 0, 43, 463126282, 463150187)
    with pytest.raises(DataFormatError, match="implausible"):
        parse_idx(data)


def test_header_whose_int64_product_wraps_to_zero():
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2**31, 2**31, 4)
    with pytest.raises(DataFormatError):
        parse_idx(data)


@FUZZ
@given(st.data())
def test_truncations_of_a_real_gzipped_idx(tmp_path, data):
    whole = gzip.compress(idx_bytes(np.arange(3 * 5 * 5, dtype=np.uint8).reshape(3, 5, 5)))
    cut = data.draw(st.integers(0, len(whole) - 1))
    path = tmp_path / "cut.gz"
    path.write_bytes(whole[:cut])
    with pytest.raises(DataFormatError):
        read_idx(path)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@FUZZ
@given(st.binary(max_size=4096))
def test_load_image_on_random_bytes(tmp_path, data):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    try:
        array = load_image(path, 16, 1, "stretch")
    except DataFormatError:
        return
    assert array.shape == (1, 16, 16) and array.dtype == np.uint8


@FUZZ
@given(st.data())
def test_load_image_on_truncated_and_flipped_pngs(tmp_path, data):
    good = bytearray(_png())
    cut = data.draw(st.integers(0, len(good)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=4))
    for position, value in flips:
        good[position] = value
    path = tmp_path / "x.png"
    path.write_bytes(bytes(good[:cut]))
    try:
        array = load_image(path, 16, 3, "center_crop")
    except DataFormatError:
        return
    assert array.shape == (3, 16, 16)
