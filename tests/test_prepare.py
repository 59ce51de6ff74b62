"""The prepare stage on real IDX data and on generated image folders with broken files."""

from __future__ import annotations

import json

import pytest
import torch

from aegan.data.prepare import prepare_dataset
from aegan.data.sources import download_dataset
from aegan.errors import DataFormatError


@pytest.fixture(scope="module")
def fashion_raw(tmp_path_factory, params, fashion_dir):
    return download_dataset(params.datasets.fashion_mnist, tmp_path_factory.mktemp("raw"), progress=False).parent


def test_prepare_fashion_mnist(fashion_raw, params, tmp_path):
    limits = {"train": 1000, "val": None, "test": 500}
    dest = prepare_dataset(params.datasets.fashion_mnist, fashion_raw, tmp_path, limits, seed=0)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 1000
    assert manifest["splits"]["val"]["count"] == 6000  # 10% of 60,000, the official train split
    assert manifest["splits"]["test"]["count"] == 500
    assert manifest["splits"]["train"]["shape"] == [1000, 1, 28, 28]
    assert manifest["inputs"]["train-images-idx3-ubyte.gz"]
    train = torch.load(dest / "train.pt", weights_only=True)
    assert train["images"].dtype == torch.float32
    assert train["images"].min() == -1.0 and train["images"].max() == 1.0
    assert len(train["labels"].unique()) == 10


def test_prepare_is_deterministic_and_seeded(fashion_raw, params, tmp_path):
    limits = {"train": 200, "val": 50, "test": 50}
    cfg = params.datasets.fashion_mnist
    a = torch.load(prepare_dataset(cfg, fashion_raw, tmp_path / "a", limits, 1) / "val.pt", weights_only=True)
    b = torch.load(prepare_dataset(cfg, fashion_raw, tmp_path / "b", limits, 1) / "val.pt", weights_only=True)
    c = torch.load(prepare_dataset(cfg, fashion_raw, tmp_path / "c", limits, 2) / "val.pt", weights_only=True)
    assert torch.equal(a["images"], b["images"])
    assert not torch.equal(a["images"], c["images"])


def test_lego_folder_with_broken_files_skips_and_counts_them(params, lego_folder, tmp_path):
    (lego_folder / "dataset" / "3003 brick 2x2 999L.png").write_bytes(b"")  # empty
    (lego_folder / "dataset" / "3022 plate 2x2 998L.png").write_text("not an image")  # text
    good = (lego_folder / "dataset" / "3040 roof tile 1x2 000L.png").read_bytes()
    (lego_folder / "dataset" / "3040 roof tile 1x2 997L.png").write_bytes(good[: len(good) // 3])  # truncated
    cfg = params.datasets.lego.copy()
    cfg.source.local_dir = str(lego_folder)
    raw = download_dataset(cfg, tmp_path / "raw").parent
    dest = prepare_dataset(cfg, raw, tmp_path / "prepared", {}, seed=0)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["skipped"]["count"] == 3
    assert {s["file"].split("/")[-1] for s in manifest["skipped"]["files"]} == {
        "3003 brick 2x2 999L.png",
        "3022 plate 2x2 998L.png",
        "3040 roof tile 1x2 997L.png",
    }
    assert all("unreadable image" in s["reason"] for s in manifest["skipped"]["files"])
    assert manifest["classes"] == ["3003 brick 2x2", "3022 plate 2x2", "3040 roof tile 1x2"]
    counts = {name: split["count"] for name, split in manifest["splits"].items()}
    assert sum(counts.values()) == 36 and counts["test"] > 0 and counts["val"] > 0
    train = torch.load(dest / "train.pt", weights_only=True)
    assert train["images"].shape[1:] == (1, 64, 64)  # grayscale 64x64 as in the book


def test_celeba_center_crop_rgb_with_attributes(params, celeba_folder, tmp_path):
    cfg = params.datasets.celeba.copy()
    cfg.source.local_dir = str(celeba_folder)
    raw = download_dataset(cfg, tmp_path / "raw").parent
    dest = prepare_dataset(cfg, raw, tmp_path / "prepared", {}, seed=0)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["attribute_names"] == ["Smiling", "Male"]
    splits = [torch.load(dest / f"{s}.pt", weights_only=True) for s in ("train", "val", "test")]
    assert sum(len(s["images"]) for s in splits) == 30
    assert splits[0]["images"].shape[1:] == (3, 64, 64) and splits[0]["images"].dtype == torch.float16
    assert set(splits[0]["attributes"].unique().tolist()) <= {-1, 1}


def test_folder_with_no_images_is_a_clear_error(params, tmp_path):
    (tmp_path / "raw" / "lego").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no files match"):
        prepare_dataset(params.datasets.lego, tmp_path / "raw", tmp_path / "prepared", {}, seed=0)


def test_prepare_before_download_is_a_clear_error(params, tmp_path):
    with pytest.raises(DataFormatError, match="run the download stage first"):
        prepare_dataset(params.datasets.mnist, tmp_path, tmp_path / "prepared", {}, seed=0)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped_white(tmp_path, mode):
    import numpy as np
    from PIL import Image

    from aegan.data.images import load_image

    ramp = np.arange(28 * 28).reshape(28, 28) * 83 % 65536
    if mode == "I;16":
        path = tmp_path / "deep.png"
        Image.fromarray(ramp.astype(np.uint16)).save(path)
    else:
        path = tmp_path / "deep.tif"
        Image.fromarray(ramp.astype(np.int32), "I").save(path)
    assert Image.open(path).mode == mode
    grey = load_image(path, 28, 1, "stretch")[0].astype(int)
    assert np.abs(grey - np.round(ramp / 257)).max() <= 1  # PIL's convert would give 255 almost everywhere
    assert load_image(path, 28, 3, "stretch").shape == (3, 28, 28)


def test_a_floating_point_image_is_refused_with_its_reason(tmp_path):
    import numpy as np
    from PIL import Image

    from aegan.data.images import load_image

    Image.fromarray(np.random.default_rng(0).random((28, 28)).astype(np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(DataFormatError, match="floating-point pixels"):
        load_image(tmp_path / "f.tif", 28, 1, "stretch")


def test_a_folder_that_yields_an_empty_split_is_refused_and_writes_nothing(params, lego_folder, tmp_path):
    cfg = params.datasets.lego.copy()
    cfg.source.local_dir = str(lego_folder)
    cfg.split.test_fraction = 0.0
    raw = download_dataset(cfg, tmp_path / "raw").parent
    with pytest.raises(DataFormatError, match="the test split is empty"):
        prepare_dataset(cfg, raw, tmp_path / "prepared", {}, seed=0)
    assert not (tmp_path / "prepared" / "lego").exists()
