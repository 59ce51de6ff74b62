"""`aegan train` through Hydra: one run, a multirun sweep grouped in MLflow, an Optuna search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURE_OVERRIDES

from aegan.tracking import client

pytestmark = pytest.mark.slow


def aegan_train(root: Path, fashion_prepared: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "aegan.cli",
        "train",
        *args,
        f"paths.prepared_dir={fashion_prepared / 'prepared'}",
        f"paths.raw_dir={fashion_prepared / 'raw'}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "trainer.enable_progress_bar=false",
        "trainer.max_epochs=1",
        *FIXTURE_OVERRIDES,
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def runs(tmp: Path):
    mlflow = client(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("aegan")
    return mlflow.search_runs([experiment.experiment_id])


def test_single_run_writes_its_run_dir_and_an_mlflow_run(root, fashion_prepared, tmp_path):
    aegan_train(root, fashion_prepared, tmp_path, "model=conv_ae", f"hydra.run.dir={tmp_path / 'run'}")
    assert (tmp_path / "run" / "model.ckpt").exists()
    manifest = json.loads((fashion_prepared / "prepared" / "fashion_mnist" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 3000  # the fixture's data was used, not re-prepared
    (run,) = runs(tmp_path)
    assert run.data.tags["model"] == "conv_ae" and run.data.tags["source"] == "hydra"
    assert run.data.params["model.encoder.kind"] == "conv"


def test_multirun_members_are_grouped_by_a_sweep_tag(root, fashion_prepared, tmp_path):
    aegan_train(
        root, fashion_prepared, tmp_path, "-m", "model.latent_dim=8,16", f"hydra.sweep.dir={tmp_path / 'sweep'}"
    )
    members = runs(tmp_path)
    assert len(members) == 2
    assert {r.data.tags["sweep"] for r in members} == {str(tmp_path / "sweep")}
    assert sorted(r.data.params["model.latent_dim"] for r in members) == ["16", "8"]


def test_optuna_search_minimises_the_validation_metric(root, fashion_prepared, tmp_path):
    aegan_train(
        root,
        fashion_prepared,
        tmp_path,
        "hparams_search=vae_optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
        f"hydra.sweep.dir={tmp_path / 'optuna'}",
    )
    results = yaml.safe_load((tmp_path / "optuna" / "optimization_results.yaml").read_text())
    trials = runs(tmp_path)
    assert len(trials) == 3
    best = min(trials, key=lambda r: r.data.metrics["val/loss"])
    assert results["best_value"] == pytest.approx(best.data.metrics["val/loss"], rel=1e-5)
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.latent_dim"}
