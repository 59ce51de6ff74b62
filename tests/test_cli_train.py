"""`aegan train` through Hydra: one run, a multirun sweep grouped in MLflow, an Optuna search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURE_OVERRIDES

from aegan.tracking import client

pytestmark = pytest.mark.slow


def aegan_train(
    root: Path, fashion_prepared: Path, tmp: Path, *args: str, progress_bar: bool = False, log_model: bool = False
) -> subprocess.CompletedProcess:
    cmd, env = train_command(fashion_prepared, tmp, *args, progress_bar=progress_bar, log_model=log_model)
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def train_command(
    fashion_prepared: Path, tmp: Path, *args: str, progress_bar: bool = False, log_model: bool = False
) -> tuple[list[str], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "aegan.cli",
        "train",
        *args,
        f"paths.prepared_dir={fashion_prepared / 'prepared'}",
        f"paths.raw_dir={fashion_prepared / 'raw'}",
        f"logger.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        f"logger.progress_bar={str(progress_bar).lower()}",
        # the MLflow model costs 0.4-3 s a run: tests/test_mlflow_models.py and the single-run test cover it
        f"logger.log_model={str(log_model).lower()}",
        "trainer.max_epochs=1",
        *FIXTURE_OVERRIDES,
    ]
    return cmd, {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def all_runs(tmp: Path):
    mlflow = client(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("aegan")
    return mlflow.search_runs([experiment.experiment_id])


def runs(tmp: Path):
    """The training runs (a sweep's parent run aside)."""
    return [run for run in all_runs(tmp) if "swept" not in run.data.tags]


def test_single_run_writes_its_run_dir_and_an_mlflow_run(root, fashion_prepared, tmp_path):
    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    result = aegan_train(root, fashion_prepared, tmp_path, "model=conv_ae", run_dir, progress_bar=True, log_model=True)
    assert (tmp_path / "run" / "model.ckpt").exists()
    # The console: the bar counts optimiser steps (3,000 images at batch 32) and epochs from 1, no v_num,
    # no advertisement; the run ends with where it is and its numbers.
    out = result.stdout + result.stderr
    assert "Epoch 1/1" in out and "94/94" in out and "v_num" not in out and "litlogger" not in out, out[-3000:]
    (run,) = runs(tmp_path)
    assert f"MLflow run  {run.info.run_id}" in result.stdout and f"run dir     {tmp_path / 'run'}" in result.stdout
    assert "val/loss" in result.stdout.split("final", 1)[1]
    assert f"model       runs:/{run.info.run_id}/model" in result.stdout
    manifest = json.loads((fashion_prepared / "prepared" / "fashion_mnist" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 3000  # the fixture's data was used, not re-prepared
    assert run.data.tags["model"] == "conv_ae" and run.data.tags["source"] == "hydra"
    assert run.data.params["model.encoder.kind"] == "conv"


def test_multirun_members_are_named_child_runs_of_one_sweep_run(root, fashion_prepared, tmp_path):
    aegan_train(
        root, fashion_prepared, tmp_path, "-m", "model.latent_dim=8,16", f"hydra.sweep.dir={tmp_path / 'sweep'}"
    )
    [parent] = [run for run in all_runs(tmp_path) if "swept" in run.data.tags]
    assert parent.data.tags["swept"] == "model.latent_dim" and parent.info.status == "FINISHED"
    members = runs(tmp_path)
    assert len(members) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in members} == {parent.info.run_id}
    assert {r.data.tags["sweep"] for r in members} == {str(tmp_path / "sweep")}
    named = {r.info.run_name: r.data.tags["sweep_overrides"] for r in members}
    assert named == {
        "dense_ae-fashion_mnist #0": "model.latent_dim=8",
        "dense_ae-fashion_mnist #1": "model.latent_dim=16",
    }
    assert parent.data.metrics["best/val/loss"] == min(r.data.metrics["val/loss"] for r in members)


def test_an_optuna_search_in_sqlite_resumes_after_it_is_killed(root, fashion_prepared, tmp_path):
    """An Optuna search minimising val/loss, killed after its first finished trial: the same command again
    completes the study's n_trials, keeping the finished trials."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = ["hparams_search=vae_optuna", "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={storage}"]
    cmd, env = train_command(fashion_prepared, tmp_path, *search, f"hydra.sweep.dir={tmp_path / 'first'}")
    first = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def trials(state=optuna.trial.TrialState.COMPLETE):
        try:
            return optuna.load_study(study_name="aegan_vae", storage=storage).get_trials(states=(state,))
        except KeyError:  # the study does not exist yet
            return []

    deadline = time.time() + 300
    while not trials():
        assert first.poll() is None, first.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "no trial finished within 300 s"
        time.sleep(0.1)
    first.kill()
    first.wait()
    kept = trials()  # a fast machine may finish a second trial before the kill lands
    assert 1 <= len(kept) < 3, [t.number for t in kept]

    aegan_train(root, fashion_prepared, tmp_path, *search, f"hydra.sweep.dir={tmp_path / 'second'}")
    done = trials()
    assert len(done) == 3 and not trials(optuna.trial.TrialState.RUNNING)
    assert [(t.number, t.params, t.value) for t in kept] == [(t.number, t.params, t.value) for t in done[: len(kept)]]
    results = yaml.safe_load((tmp_path / "second" / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min(t.value for t in done))
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.latent_dim"}
    # each finished trial is an MLflow child run whose val/loss is the value Optuna was told
    finished = {round(r.data.metrics["val/loss"], 6) for r in runs(tmp_path) if r.info.status == "FINISHED"}
    assert {round(t.value, 6) for t in done} <= finished


def test_parallel_sweep_members_share_one_sqlite_database_without_losing_writes(root, fashion_prepared, tmp_path):
    """The joblib launcher runs members in parallel processes; every metric of every member arrives."""
    aegan_train(
        root,
        fashion_prepared,
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model.latent_dim=8,16,24",
        "logger.log_every_n_steps=1",
        "trainer.steps_per_execution=1",
        f"hydra.sweep.dir={tmp_path / 'parallel'}",
    )
    members = runs(tmp_path)
    assert len(members) == 3 and all(r.info.status == "FINISHED" for r in members)
    mlflow = client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run in members:
        # dense_ae at batch 256 on 3,000 images: 12 steps, each logged (log_every_n_steps=1)
        steps = mlflow.get_metric_history(run.info.run_id, "train/loss_step")
        assert len(steps) == 12, (run.data.params["model.latent_dim"], len(steps))


def test_submitit_launcher_runs_a_sweep(root, fashion_prepared, tmp_path):
    """hydra/launcher=submitit_local: the submitit path that conf/hydra/launcher/slurm.yaml uses on a cluster
    (pickled job, separate process, results collected from the submitit folder)."""
    aegan_train(
        root,
        fashion_prepared,
        tmp_path,
        "-m",
        "hydra/launcher=submitit_local",
        "model.latent_dim=8,16",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    members = runs(tmp_path)
    assert len(members) == 2 and all(r.info.status == "FINISHED" for r in members)
    assert sorted(r.data.params["model.latent_dim"] for r in members) == ["16", "8"]
    assert list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))


def test_training_logs_to_a_real_mlflow_tracking_server(root, fashion_prepared, tmp_path):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server starts workers: stop the whole group afterwards
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        cmd = [sys.executable, "-m", "aegan.cli", "train", "model=dense_ae", "trainer.max_epochs=1"]
        cmd += [f"hydra.run.dir={tmp_path / 'run'}", f"paths.prepared_dir={fashion_prepared / 'prepared'}"]
        cmd += ["logger.progress_bar=false", *FIXTURE_OVERRIDES]
        result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        record = json.loads((tmp_path / "run" / "run.json").read_text())
        assert record["tracking_uri"] == uri
        run = client(uri).get_run(record["run_id"])
        assert "val/loss" in run.data.metrics and run.data.tags["model"] == "dense_ae"
        artifacts = [a.path for a in client(uri).list_artifacts(record["run_id"], "checkpoints")]
        assert artifacts == ["checkpoints/model.ckpt"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _aegan(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The installed `aegan` command (completion scripts name the program they were installed for)."""
    aegan = Path(sys.executable).parent / "aegan"
    return subprocess.run([aegan, *args], cwd=root, capture_output=True, text=True, env={**os.environ, **env})


def test_train_help_explains_aegans_options_first(root):
    result = _aegan(root, "train", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: aegan train"), result.stderr[-2000:]
    assert "model " in result.stdout and "dcgan" in result.stdout and "ckpt_path=last" in result.stdout
    assert len(result.stdout.splitlines()) < 60 and "--hydra-help" in result.stdout


def test_shell_completion_completes_subcommands_and_train_overrides(root):
    script = _aegan(root, "-sc", "install=bash")
    assert script.returncode == 0 and script.stdout.rstrip().endswith("-F hydra_bash_completion aegan")
    groups = _aegan(root, "-sc", "query=bash", COMP_LINE="aegan train model=").stdout.split()
    assert "model=dcgan" in groups and "model=vae" in groups
    keys = _aegan(root, "-sc", "query=bash", COMP_LINE="aegan train trainer.max_").stdout.split()
    assert keys == ["trainer.max_epochs="]
    assert _aegan(root, "-sc", "query=bash", COMP_LINE="aegan ge").stdout.split() == ["generate"]
