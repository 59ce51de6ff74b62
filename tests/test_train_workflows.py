"""`aegan train` as users run it: every model, run directories, resuming, the GAN objective, config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURE_OVERRIDES

from aegan.tracking import client

pytestmark = pytest.mark.slow

MODELS = ["dense_ae", "stacked_ae", "conv_ae", "denoising_ae", "vae", "conv_vae", "mlp_gan", "dcgan", "wgan", "wgan_gp"]


def train(root: Path, data: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "aegan.cli",
        "train",
        f"paths.prepared_dir={data / 'prepared'}",
        f"paths.raw_dir={data / 'raw'}",
        f"paths.runs_dir={tmp / 'runs'}",
        f"paths.models_dir={tmp / 'models'}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        "logger.progress_bar=false",
        "logger.log_model=false",  # tests/test_mlflow_models.py covers the MLflow model (0.4-3 s a run)
        "trainer.max_epochs=1",
        "evaluation.domain_classifier.epochs=1",
        *FIXTURE_OVERRIDES,
        *args,  # last: they win over the defaults above
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def run_dirs(tmp: Path, model: str) -> list[Path]:
    return sorted(p.parent for p in (tmp / "runs" / model / "fashion_mnist").glob("*/run.json"))


def test_every_model_trains_in_one_multirun_and_returns_its_objective(root, fashion_prepared, tmp_path):
    """A sweep over all ten models: autoencoders return val/loss, GANs val/fid (domain FID of samples)."""
    ok(
        train(
            root,
            fashion_prepared,
            tmp_path,
            "-m",
            f"model={','.join(MODELS)}",
            "+trainer.limit_train_batches=2",
            "+trainer.limit_val_batches=2",
            "evaluation.objective.n_samples=300",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        )
    )
    for job, model in enumerate(MODELS):
        record = json.loads((tmp_path / "sweep" / str(job) / "run.json").read_text())
        assert record["model"] == model
        objective = "val/fid" if "gan" in model else "val/loss"
        assert record["metrics"][objective] > 0
    gan = json.loads((tmp_path / "sweep" / "6" / "run.json").read_text())
    assert gan["metrics"]["val/fid_n"] == 300
    logged = client(gan["tracking_uri"]).get_run(gan["run_id"]).data.metrics
    assert logged["val/fid"] == pytest.approx(gan["metrics"]["val/fid"])
    # the yardstick classifier was trained once, for the first GAN, and reused
    assert len(list((tmp_path / "runs" / "domain_classifier").glob("*/classifier.pt"))) == 1
    # one MLflow parent run for the sweep, a named child run per member, the best member's objective on it
    mlflow = client(gan["tracking_uri"])
    parent_id = json.loads((tmp_path / "sweep" / "mlflow_parent.json").read_text())["run_id"]
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    children = mlflow.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(run.info.run_name for run in children) == sorted(
        f"{model}-fashion_mnist #{job}" for job, model in enumerate(MODELS)
    )
    assert {run.data.tags["sweep_overrides"] for run in children} == {f"model={model}" for model in MODELS}
    objectives = [run.data.metrics["val/loss"] for run in children if "val/loss" in run.data.metrics]
    assert parent.data.metrics["best/val/loss"] == min(objectives)  # the first model's family decides the metric


def test_each_run_gets_its_own_directory_and_last_resumes_the_latest(root, fashion_prepared, tmp_path):
    ok(train(root, fashion_prepared, tmp_path, "model=dense_ae"))
    ok(train(root, fashion_prepared, tmp_path, "model=dense_ae", "model.latent_dim=8"))
    first, second = run_dirs(tmp_path, "dense_ae")
    assert (first / "model.ckpt").exists() and (second / "model.ckpt").exists()  # nothing overwritten
    assert (
        json.loads((first / "run.json").read_text())["run_id"]
        != json.loads((second / "run.json").read_text())["run_id"]
    )

    # A finished run resumed: reported complete with its metrics, nothing trained, no crash.
    again = ok(train(root, fashion_prepared, tmp_path, "model=dense_ae", "model.latent_dim=8", "ckpt_path=last"))
    assert "is complete" in again.stderr and str(second) in again.stderr
    assert run_dirs(tmp_path, "dense_ae") == [first, second]

    # More epochs on the latest run: it resumes there, same MLflow run.
    ok(
        train(
            root,
            fashion_prepared,
            tmp_path,
            "model=dense_ae",
            "model.latent_dim=8",
            "ckpt_path=last",
            "trainer.max_epochs=2",
        )
    )
    record = json.loads((second / "run.json").read_text())
    assert record["epochs"] == 2 and run_dirs(tmp_path, "dense_ae") == [first, second]

    # Resuming with another model config is refused before anything is touched.
    before = (second / "resume.json").read_bytes()
    refused = train(root, fashion_prepared, tmp_path, "model=dense_ae", "model.latent_dim=16", "ckpt_path=last")
    assert refused.returncode == 2 and "model.latent_dim: 8 -> 16" in refused.stderr
    assert (second / "resume.json").read_bytes() == before


def test_lightning_trainer_arguments_pass_through(root, fashion_prepared, tmp_path):
    ok(train(root, fashion_prepared, tmp_path, "model=conv_ae", "+trainer.fast_dev_run=true"))
    (run,) = run_dirs(tmp_path, "conv_ae")
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2  # one epoch of one batch, not the full epoch
    assert (run / "model.ckpt").exists()


def test_a_run_refused_after_its_mlflow_run_began_is_marked_failed(root, fashion_prepared, tmp_path):
    """Lightning refuses the accelerator only when its Trainer is built, after the MLflow run was created."""
    result = train(root, fashion_prepared, tmp_path, "trainer.accelerator=abacus")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [error] = [line for line in result.stderr.splitlines() if line.startswith("aegan: error:")]
    assert "Trainer refused" in error and "abacus" in error
    mlflow = client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    assert run.info.status == "FAILED"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU profile runs on this machine")
def test_the_gpu_profile_without_a_gpu_is_one_clear_error(root, fashion_prepared, tmp_path):
    result = train(root, fashion_prepared, tmp_path, "trainer=gpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "no CUDA GPU" in result.stderr and "trainer.accelerator=cpu" in result.stderr
    if (tmp_path / "mlflow.db").exists():  # refused before any MLflow run was created
        mlflow = client(f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert not mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=nope"], "Could not find 'model/nope'"),
        (["model.latent_dimm=3"], "model.latent_dimm"),
        (["+trainer.bogus=1"], "unknown trainer option(s) ['bogus']"),
        (["trainer.enable_progress_bar=false"], "trainer.enable_progress_bar"),
        (["seed=abc"], "seed must be a non-negative integer"),
        (["model.batch_size=-3"], "model.batch_size must be a positive integer"),
        (["-m", "model.latent_dim=16,-1"], "model.latent_dim must be a positive integer, got -1"),
        (["model=dcgan", "ckpt_path=last"], "no run of dcgan on fashion_mnist to resume"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(root, fashion_prepared, tmp_path, args, message):
    result = train(root, fashion_prepared, tmp_path, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("aegan: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("model.ckpt"))
