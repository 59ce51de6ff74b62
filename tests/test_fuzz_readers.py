"""Property-based fuzzing of the readers: any bytes give data or one clear DataFormatError, never a crash."""

from __future__ import annotations

import gzip
import io
import json
import struct

import numpy as np
import pytest
import torch
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


@pytest.fixture(scope="module")
def checkpoint_bytes(params) -> bytes:
    """A checkpoint of the dense autoencoder with what load_module reads of Lightning's format."""
    from omegaconf import OmegaConf

    from aegan.models.registry import build_module

    module = build_module(OmegaConf.to_container(params.models.dense_ae), (1, 28, 28))
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, buffer)
    return buffer.getvalue()


@settings(FUZZ, max_examples=60)  # each example builds a model: 0.25 s
@given(st.data())
def test_load_module_on_truncated_and_flipped_checkpoints(tmp_path, checkpoint_bytes, data):
    """Any damage to a checkpoint loads a model or raises one aegan error, never another exception."""
    from aegan.errors import AeganError
    from aegan.models.registry import load_module

    raw = bytearray(checkpoint_bytes)
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    path = tmp_path / "model.ckpt"
    path.write_bytes(bytes(raw))
    try:
        module = load_module(path)
    except AeganError:
        return
    assert module.family == "autoencoder"


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=512).map(lambda b: b.decode("latin-1")),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.sampled_from(["splits", "train", "val", "test", "shape", "x"]), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(json.dumps),
    )
)
def test_read_manifest_on_random_json_and_bytes(tmp_path, text):
    from aegan.data.prepare import read_manifest

    (tmp_path / "manifest.json").write_text(text, encoding="latin-1")
    try:
        manifest = read_manifest(tmp_path)
    except DataFormatError:
        return
    assert all(isinstance(manifest["splits"][name], dict) for name in ("train", "val", "test"))
