"""What a run leaves in MLflow, read back through MLflow's own APIs: the model (pyfunc, registry, serving),
the datasets, the pictures by step, system metrics, the git commit, the optimiser-step axis."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import mlflow.pyfunc
import numpy as np
import pytest
import torch
from conftest import run_cfg

from aegan.models.registry import load_module
from aegan.reports import tools
from aegan.tracking import client
from aegan.training.fit import fit

REGISTERED = f"aegan-test-vae-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def vae_run(root, fashion_prepared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vae")
    cfg = run_cfg(
        root,
        fashion_prepared,
        tmp,
        "model=vae",
        "logger.log_model=true",
        "trainer.max_epochs=2",
        f"logger.register_as={REGISTERED}",
        "logger.system_metrics_every_s=0.2",
        "logger.log_every_n_steps=4",
    )
    return cfg, tmp / "out", fit(cfg, tmp / "out", root)


@pytest.fixture(scope="module")
def ae_run(root, fashion_prepared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ae")
    cfg = run_cfg(root, fashion_prepared, tmp, "model=dense_ae", "logger.log_model=true", "trainer.max_epochs=1")
    return cfg, tmp / "out", fit(cfg, tmp / "out", root)


def _codes(n: int, dim: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32)


def test_a_vae_is_logged_as_a_registered_generator_that_pyfunc_loads(vae_run):
    _, out, record = vae_run
    assert record["model_uri"] == f"models:/{REGISTERED}/1"
    _use_store_of(record)
    model = mlflow.pyfunc.load_model(record["model_uri"])
    inputs = model.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, 10) and str(inputs.type) == "float32"
    assert model.metadata.get_output_schema().inputs[0].shape == (-1, 1, 28, 28)
    codes = _codes(5, 10)
    images = model.predict(codes)
    expected = load_module(out / "model.ckpt").decode(torch.from_numpy(codes)).detach().numpy()
    assert images.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(images, expected, atol=1e-5)
    assert images.min() >= -1 and images.max() <= 1
    version = client(record["tracking_uri"]).get_model_version(REGISTERED, "1")
    assert version.run_id == record["run_id"]


def _use_store_of(record: dict) -> None:
    """Point MLflow's fluent API (pyfunc, models:/ resolution) at the run's store."""
    mlflow.set_tracking_uri(record["tracking_uri"])
    mlflow.set_registry_uri(record["tracking_uri"])


def test_an_autoencoder_is_logged_as_a_reconstructor(ae_run, fashion_prepared):
    _, out, record = ae_run
    assert record["model_uri"] == f"runs:/{record['run_id']}/model"
    _use_store_of(record)
    model = mlflow.pyfunc.load_model(record["model_uri"])
    test = torch.load(fashion_prepared / "prepared" / "fashion_mnist" / "test.pt", weights_only=True)["images"][:4]
    recon = model.predict(test.numpy())
    expected = load_module(out / "model.ckpt")(test).detach().numpy()
    np.testing.assert_allclose(recon, expected, atol=1e-5)
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 1, 28, 28)


def test_datasets_are_logged_with_their_manifest_md5_per_split(vae_run, fashion_prepared):
    _, _, record = vae_run
    manifest = json.loads((fashion_prepared / "prepared" / "fashion_mnist" / "manifest.json").read_text())
    run = client(record["tracking_uri"]).get_run(record["run_id"])
    logged = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in run.inputs.dataset_inputs
    }
    assert set(logged) == {"train", "val", "test"}
    for split, dataset in logged.items():
        assert dataset.digest == manifest["splits"][split]["md5"]
        assert dataset.name == f"fashion_mnist-{split}"
        assert json.loads(dataset.source)["uri"].endswith(f"{split}.pt")


def test_metrics_and_pictures_are_on_the_optimiser_step_axis(vae_run, fashion_prepared):
    cfg, _, record = vae_run
    mlflow = client(record["tracking_uri"])
    steps_per_epoch = math.ceil(3000 / int(cfg.model.batch_size))  # the fixture's 3,000 training images
    val_steps = [m.step for m in mlflow.get_metric_history(record["run_id"], "val/loss")]
    assert val_steps == [steps_per_epoch, 2 * steps_per_epoch]
    train_steps = [m.step for m in mlflow.get_metric_history(record["run_id"], "train/loss_step")]
    assert train_steps and max(train_steps) <= 2 * steps_per_epoch and len(set(train_steps)) == len(train_steps)
    pictures = [a.path for a in mlflow.list_artifacts(record["run_id"], "images")]
    for key in ("samples", "reconstructions"):
        steps = sorted({int(p.split("+step+")[1].split("+")[0]) for p in pictures if f"/{key}+step+" in p})
        assert steps == [steps_per_epoch, 2 * steps_per_epoch], pictures


def test_system_metrics_and_the_git_commit_are_recorded(vae_run, root):
    _, _, record = vae_run
    run = client(record["tracking_uri"]).get_run(record["run_id"])
    assert any(key.startswith("system/cpu_utilization") for key in run.data.metrics), sorted(run.data.metrics)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert run.data.tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert run.data.tags["git_dirty"] in ("true", "false")


def test_latent_tools_take_a_registered_model_uri(vae_run, tmp_path, monkeypatch):
    _, _, record = vae_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", record["tracking_uri"])
    for uri in (f"models:/{REGISTERED}/1", f"models:/{REGISTERED}", f"runs:/{record['run_id']}/model"):
        loaded = tools.load(None, None, "fashion_mnist", model_uri=uri)
        assert loaded.model == "vae"
        [grid] = tools.generate(loaded, tmp_path, n=8)
        assert grid.stat().st_size > 0


@pytest.mark.parametrize(
    ("uri", "message"),
    [("models:/no-such-model/1", "not found"), ("s3://bucket/model", "expected models:/")],
)
def test_a_bad_model_uri_is_one_clear_error(vae_run, monkeypatch, uri, message):
    from aegan.errors import AeganError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", vae_run[2]["tracking_uri"])
    with pytest.raises(AeganError, match=message):
        tools.load(None, None, "fashion_mnist", model_uri=uri)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_returns_images_from_codes(vae_run, tmp_path):
    """`mlflow models serve` of the registered generator on loopback: codes in, the decoder's images out."""
    _, out, record = vae_run
    port = _free_port()
    bin_dir = os.path.dirname(sys.executable)  # the server runs `uvicorn` from PATH, as in an activated venv
    env = {**os.environ, "MLFLOW_TRACKING_URI": record["tracking_uri"], "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    serve = ["models", "serve", "-m", record["model_uri"], "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    mlflow_cli = os.path.join(bin_dir, "mlflow")
    server = subprocess.Popen([mlflow_cli, *serve], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                assert time.time() < deadline, "the server did not answer /ping within 120 s"
                time.sleep(1)
        codes = _codes(3, 10)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": codes.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    images = np.asarray(answer["predictions"], dtype=np.float32)
    expected = load_module(out / "model.ckpt").decode(torch.from_numpy(codes)).detach().numpy()
    assert images.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(images, expected, atol=1e-4)


def test_a_new_experiment_keeps_its_artifacts_beside_the_database_whatever_the_cwd(tmp_path, monkeypatch):
    from aegan.tracking import ensure_experiment

    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")  # a first run started from a subdirectory
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = client(uri).get_experiment(ensure_experiment(uri, "where-artifacts-go"))
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()
