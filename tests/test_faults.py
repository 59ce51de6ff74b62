"""The fault suite: what happens when a run is killed, the disk refuses writes, or MLflow is down.

Each test provokes a real fault (a SIGKILLed process, a path that cannot be a directory, a refused TCP
connection, a corrupt or locked database) or, where the machine cannot produce one (disk full), the
exact OSError the kernel would raise.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FIXTURE_OVERRIDES, run_cfg

from aegan.errors import OutputError, TrackingError
from aegan.io import atomic_dir, atomic_torch_save, atomic_write_json
from aegan.tracking import check_tracking


def train_cmd(fashion_prepared: Path, tmp: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aegan.cli",
        "train",
        "model=dense_ae",
        "model.batch_size=16",  # ~190 steps an epoch
        "trainer.max_epochs=4",  # an epoch takes well under a second: leave room to be killed mid-run
        f"hydra.run.dir={run_dir}",
        f"paths.prepared_dir={fashion_prepared / 'prepared'}",
        f"paths.raw_dir={fashion_prepared / 'raw'}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "logger.progress_bar=false",
        "logger.log_model=false",  # tests/test_mlflow_models.py covers the MLflow model (0.4-3 s a run)
        *FIXTURE_OVERRIDES,
        *extra,
    ]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else "process ended"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_reaches_the_uninterrupted_result(root, fashion_prepared, tmp_path):
    cmd = train_cmd(fashion_prepared, tmp_path, tmp_path / "reference")
    reference = subprocess.run(cmd, cwd=root, env=env(), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-3000:]

    victim_dir = tmp_path / "victim"
    cmd = train_cmd(fashion_prepared, tmp_path, victim_dir)
    proc = subprocess.Popen(cmd, cwd=root, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(victim_dir / "checkpoints" / "last.ckpt", proc)  # epoch 1 is saved: kill inside a later one
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (victim_dir / "model.ckpt").exists()  # no final artifact from a killed run
    killed_at = torch.load(victim_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"]
    assert killed_at < 3  # the kill landed before the last epoch ended

    resumed = subprocess.run([*cmd, "ckpt_path=last"], cwd=root, env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    want = json.loads((tmp_path / "reference" / "run.json").read_text())["metrics"]
    got = json.loads((victim_dir / "run.json").read_text())["metrics"]
    assert got["val/loss"] == pytest.approx(want["val/loss"], abs=1e-6)
    assert got["val/mse"] == pytest.approx(want["val/mse"], abs=1e-6)


def test_sigkilled_prepare_leaves_no_output_and_the_rerun_is_clean(params, fashion_dir, tmp_path):
    """A prepare killed mid-way: the output path never holds a partial dataset (what DVC would cache)."""
    from aegan.data.sources import download_dataset

    raw = download_dataset(params.datasets.fashion_mnist, tmp_path / "raw", progress=False).parent
    prepared_root = tmp_path / "prepared"
    script = (
        "import sys, yaml\n"
        "from pathlib import Path\n"
        "from omegaconf import OmegaConf\n"
        "from aegan.data.prepare import prepare_dataset\n"
        "params = OmegaConf.create(yaml.safe_load(open(sys.argv[1])))\n"
        "prepare_dataset(params.datasets.fashion_mnist, Path(sys.argv[2]), Path(sys.argv[3]), {}, 0)\n"
    )
    args = [sys.executable, "-c", script, str(Path("params.yaml").resolve()), str(raw), str(prepared_root)]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 120
    while not list(prepared_root.glob(".fashion_mnist.*.tmp/*")):
        assert proc.poll() is None and time.monotonic() < deadline, "prepare finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (prepared_root / "fashion_mnist").exists()
    assert list(prepared_root.glob(".fashion_mnist.*.tmp"))  # the debris is a hidden temporary

    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    manifest = json.loads((prepared_root / "fashion_mnist" / "manifest.json").read_text())
    assert manifest["splits"]["test"]["count"] == 10_000
    assert not list(prepared_root.glob(".fashion_mnist.*.tmp"))  # the next writer removed it


def test_disk_full_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.ckpt"
    atomic_torch_save(target, {"weights": torch.ones(3)})

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpo")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OutputError, match="the disk is full"):
        atomic_torch_save(target, {"weights": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no temporary left behind


def test_read_only_file_system_is_a_clear_error(tmp_path, monkeypatch):
    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OutputError, match="read-only"):
        atomic_write_json(tmp_path / "metrics.json", {"mse": 0.1})
    with pytest.raises(OutputError, match="read-only"), atomic_dir(tmp_path / "prepared") as tmp:
        (tmp / "train.pt").write_bytes(b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            atomic_write_json(locked / "metrics.json", {})
    finally:
        locked.chmod(0o700)


def test_training_into_a_path_that_cannot_be_a_directory_fails_before_work(root, fashion_prepared, tmp_path):
    from aegan.training.fit import fit

    blocker = tmp_path / "models"
    blocker.write_text("a file where a directory must go")
    cfg = run_cfg(root, fashion_prepared, tmp_path, "model=dense_ae", "trainer.max_epochs=1")
    with pytest.raises(OutputError, match=r"cannot write .*models/dense_ae"):
        fit(cfg, blocker / "dense_ae", root)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_stops_training_before_it_starts(root, fashion_prepared, tmp_path, monkeypatch):
    from aegan.training.fit import fit

    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = run_cfg(root, fashion_prepared, tmp_path, "model=dense_ae", "trainer.max_epochs=1")
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"MLflow backend {uri} is not usable.*start the tracking server"):
        fit(cfg, tmp_path / "out", root)
    assert time.monotonic() - started < 30  # no minutes of silent retries
    assert not (tmp_path / "out" / "model.ckpt").exists()


def test_corrupt_tracking_database_is_reported(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TrackingError, match="file is not a database"):
        check_tracking(f"sqlite:///{db}")


@pytest.mark.slow
def test_locked_tracking_database_is_reported_after_the_busy_timeout(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_tracking(uri)  # creates the schema
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        with pytest.raises(TrackingError, match="database is locked"):
            check_tracking(uri)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    check_tracking(uri)  # usable again once the lock is gone
