"""Shared fixtures: the real offline data and small generated inputs."""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test` runs two workers), the cores are shared out between the workers:
    each worker's torch, and the aegan processes its tests start, get cores / workers threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"{FASHION_DIR} is missing: `make test` installs the Debian package dataset-fashion-mnist")
    return FASHION_DIR


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"{MNIST_DIR} is missing: CI runs with ../shared beside the clone")
    return MNIST_DIR


@pytest.fixture(scope="session")
def params():
    from aegan.config import render_params

    return OmegaConf.create(render_params(ROOT))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (the format's own header, big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_gz(path: Path, array: np.ndarray) -> Path:
    path.write_bytes(gzip.compress(idx_bytes(array)))
    return path


def _render(size: int, seed: int, channels: int) -> np.ndarray:
    """A simple synthetic render: a bright rectangle on a dark background at a seeded place."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, channels), 20, np.uint8)
    x, y = rng.integers(0, size // 2, 2)
    img[y : y + size // 3, x : x + size // 3] = rng.integers(120, 255, channels)
    return img[..., 0] if channels == 1 else img


@pytest.fixture
def lego_folder(tmp_path) -> Path:
    """A folder like the Kaggle LEGO set: '<part> <name> <view>.png' renders of a few bricks."""
    from PIL import Image

    folder = tmp_path / "lego_src" / "dataset"
    folder.mkdir(parents=True)
    for b, brick in enumerate(["3003 brick 2x2", "3022 plate 2x2", "3040 roof tile 1x2"]):
        for view in range(12):
            Image.fromarray(_render(100, b * 100 + view, 3)).save(folder / f"{brick} {view:03d}L.png")
    return folder.parent


@pytest.fixture
def celeba_folder(tmp_path) -> Path:
    """A folder like the Kaggle CelebA set: JPEG faces 178x218 + list_attr_celeba.csv."""
    from PIL import Image

    root = tmp_path / "celeba_src"
    images = root / "img_align_celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    rows = ["image_id,Smiling,Male"]
    for i in range(30):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(_render(178, i, 3)).resize((178, 218)).save(images / name, quality=90)
        rows.append(f"{name},{1 if i % 2 else -1},{1 if i % 3 else -1}")
    (root / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
    return root


FIXTURE_LIMITS = {"train": 3000, "val": 500, "test": 1000}
FIXTURE_SEED = 0
# `aegan train` re-prepares data whose manifest does not match its config: runs on the fixture pass these.
FIXTURE_OVERRIDES = [f"limits.{k}={v}" for k, v in FIXTURE_LIMITS.items()] + [f"seed={FIXTURE_SEED}"]


@pytest.fixture(scope="session")
def fashion_prepared(tmp_path_factory, params, fashion_dir) -> Path:
    """A real Fashion-MNIST subset, prepared once per test session: 3,000 train, 500 val, 1,000 test."""
    from aegan.data.prepare import prepare_dataset
    from aegan.data.sources import download_dataset

    base = tmp_path_factory.mktemp("fashion")
    raw = download_dataset(params.datasets.fashion_mnist, base / "raw", progress=False).parent
    prepare_dataset(params.datasets.fashion_mnist, raw, base / "prepared", FIXTURE_LIMITS, FIXTURE_SEED)
    return base


# One MLflow database for the in-process runs of the whole session: creating a SQLite tracking DB runs
# MLflow's schema migrations (2-7 s each). Tests find their runs by run id; a test that needs a
# database of its own passes logger.tracking_uri in its overrides (later overrides win).
SESSION_TRACKING_DB = Path(tempfile.mkdtemp(prefix="aegan-tests-mlflow-")) / "mlflow.db"


def run_cfg(root_dir: Path, data_base: Path, tmp: Path, *overrides: str):
    """A one-run config (conf/config.yaml) that reads data from data_base and writes under tmp."""
    from aegan.config import compose

    cfg = compose(
        root_dir,
        "config",
        [
            f"paths.raw_dir={data_base / 'raw'}",
            f"paths.prepared_dir={data_base / 'prepared'}",
            f"logger.tracking_uri=sqlite:///{SESSION_TRACKING_DB}",
            "logger.progress_bar=false",
            "logger.log_model=false",  # tests/test_mlflow_models.py covers the MLflow model (0.4-3 s a run)
            *overrides,
        ],
    )
    return cfg
