"""Scale-out with existing engines: Lightning DDP on 2 CPU processes (gloo) and the data shards behind it."""

from __future__ import annotations

import csv
import os

import pytest
import torch
from conftest import run_cfg

from aegan.data.datamodule import TensorBatches
from aegan.models.registry import load_module
from aegan.tracking import client
from aegan.training.fit import fit


def test_ddp_shards_are_disjoint_equal_and_reshuffled_per_epoch():
    images = torch.arange(103, dtype=torch.float32).view(103, 1, 1, 1)
    targets = torch.zeros(103, dtype=torch.int64)
    epoch = {"n": 0}

    def seen(rank: int) -> list[int]:
        tensors = {"image": images, "label": targets}
        batches = TensorBatches(tensors, 8, shuffle=True, seed=1, epoch=lambda: epoch["n"], shard=(rank, 2))
        return [int(v) for b in batches for v in b["image"].flatten()]

    first = [seen(0), seen(1)]
    assert len(first[0]) == len(first[1]) == 51  # 103 // 2: equal step counts on every rank
    assert not set(first[0]) & set(first[1])
    epoch["n"] = 1
    assert seen(0) != first[0]
    assert len(TensorBatches({"image": images, "label": targets}, 8, shuffle=False, shard=(1, 2))) == 7


def test_ddp_trains_on_two_gloo_processes(root, fashion_prepared, tmp_path):
    cfg = run_cfg(
        root, fashion_prepared, tmp_path, "model=dense_ae", "trainer=ddp", "trainer.devices=2", "trainer.max_epochs=3"
    )
    record = fit(cfg, tmp_path / "out", root)
    ckpt = torch.load(tmp_path / "out" / "model.ckpt", map_location="cpu", weights_only=False)
    # 3,000 training images in two shards of 1,500: 6 steps of 256 per epoch and process (12 in one process)
    assert ckpt["global_step"] == 3 * 6
    rows = list(csv.DictReader((tmp_path / "out" / "history.csv").open()))
    assert len(rows) == 3 and float(rows[-1]["val/loss"]) < float(rows[0]["val/loss"])  # it learns
    assert load_module(tmp_path / "out" / "model.ckpt").family == "autoencoder"
    run = client(record["tracking_uri"]).get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val/loss"] == pytest.approx(record["metrics"]["val/loss"], rel=1e-6)


def test_slurm_launcher_config_is_accepted_by_submitit(root, tmp_path, monkeypatch):
    """conf/hydra/launcher/slurm.yaml composes and every key is a valid submitit SLURM parameter; the sbatch
    script it would submit asks for what the file says. No SLURM here: nothing is submitted, and a
    placeholder `srun` on PATH only passes submitit's "am I on a cluster" check."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher.pop("_target_").endswith("SlurmLauncher")
    # The plugin's mapping: base keys as they are, the others prefixed with the cluster name.
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    launcher.pop("submitit_folder"), launcher.pop("name")
    executor = submitit.AutoExecutor(
        folder=tmp_path / "submitit", cluster="slurm", slurm_max_num_timeout=launcher.pop("max_num_timeout")
    )
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in launcher.items()})
    script = executor._executor._make_submission_file_text("python -m aegan.cli train", "uid")
    for line in ("--time=240", "--cpus-per-task=8", "--gpus-per-node=1", "--mem=32GB", "--nodes=1"):
        assert line in script, (line, script)
