"""The real pipeline: `dvc repro` of dvc.yaml on the tiny CI profile, and the DVC workflows on top of it.

In CI the project is the fresh clone of HEAD on which `.ci/run` ran the README's main command
(`make run PROFILE=ci`; AEGAN_E2E_PROJECT names it); elsewhere a scratch copy of this checkout on which
the fixture runs the same two steps (`aegan params experiment=ci`, `dvc repro`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aegan.tracking import client

pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def project(root, tmp_path_factory, fashion_dir):
    if os.environ.get("AEGAN_E2E_PROJECT"):
        return Path(os.environ["AEGAN_E2E_PROJECT"])
    work = tmp_path_factory.mktemp("project")
    for name in ("conf", "src"):
        shutil.copytree(root / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(root / "dvc.yaml", work)
    shutil.copy(root / ".gitignore", work)  # DVC checks outputs and dvc.lock against it: test the real one
    sh(["git", "init", "-q"], work)
    sh(["dvc", "init", "-q"], work)
    shutil.copy(root / ".dvc" / "config", work / ".dvc" / "config")
    shutil.copytree(root / ".dvc" / "plots", work / ".dvc" / "plots")
    sh(["aegan", "params", "experiment=ci"], work)
    sh(["git", "add", "-A"], work)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "scratch project"], work)
    sh(["dvc", "repro"], work)
    return work


MODELS = ["dense_ae", "stacked_ae", "conv_ae", "denoising_ae", "vae", "conv_vae", "mlp_gan", "dcgan", "wgan", "wgan_gp"]
GANS = ("mlp_gan", "dcgan", "wgan", "wgan_gp")


def test_dvc_repro_ran_every_stage_and_wrote_the_summary(project):
    stages = ["download@fashion_mnist", "prepare@fashion_mnist", "classifier@fashion_mnist", "reference@fashion_mnist"]
    stages += ["summary", "report"]
    stages += [f"{stage}@{m}-fashion_mnist" for m in MODELS for stage in ("train", "evaluate")]
    stages += ["derive@edges2fashion", "derive@sneaker2boot"]
    stages += [f"anomaly@{m}-fashion_mnist" for m in MODELS if m not in GANS]
    stages += [
        f"{s}_translation@{t}"
        for s in ("train", "evaluate")
        for t in ("pix2pix-edges2fashion", "cyclegan-sneaker2boot")
    ]
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(stages) <= set(lock["stages"])
    summary = (project / "reports" / "summary.md").read_text()
    for model in MODELS:
        assert f"| {model} | fashion_mnist |" in summary
    assert "| pix2pix | edges2fashion |" in summary and "| cyclegan | sneaker2boot |" in summary


def test_every_family_gets_its_metrics(project):
    work = project
    classifier = json.loads((work / "metrics/domain_classifier/fashion_mnist.json").read_text())
    assert 0.1 < classifier["test_accuracy"] <= 1.0
    pixel_probe = json.loads((work / "data/reference/fashion_mnist/pixel_probe.json").read_text())["pixels"]
    for model in MODELS:
        metrics = json.loads((work / f"metrics/{model}/fashion_mnist.json").read_text())
        if model in GANS:
            assert "test" not in metrics
            assert (work / f"reports/{model}/fashion_mnist/samples.png").exists()
        else:
            assert 0 < metrics["test"]["mse"] < 1  # one epoch on 400 images: no quality claim here
            assert metrics["reconstruction"]["domain"]["n_fake"] == 200
            assert 0.1 < metrics["probe"]["codes"] <= 1 and metrics["probe"]["pixels"] == pixel_probe  # computed once
            assert 0.1 < pixel_probe <= 1
            anomaly = json.loads((work / f"metrics/anomaly/{model}/fashion_mnist.json").read_text())["anomaly"]
            assert 0 <= anomaly["auc"] <= 1 and anomaly["held_out_class"] == 0
            assert (work / f"reports/{model}/fashion_mnist/reconstructions.png").exists()
            assert (work / f"models/{model}/fashion_mnist/anomaly/model.ckpt").exists()
        if model.endswith("vae") or model.endswith("gan"):
            samples = metrics["samples"]["domain"]
            assert samples["fid"] > 0 and samples["n_fake"] == 200 and samples["n_real"] == 200
            assert {"kid", "precision", "recall", "density", "coverage"} <= set(samples)
            assert 1 <= metrics["mode_coverage"]["classes_covered"] <= 10
        if model.endswith("vae"):
            assert metrics["vae"]["log_likelihood"] >= metrics["vae"]["elbo"] - 5
    denoising = json.loads((work / "metrics/denoising_ae/fashion_mnist.json").read_text())["denoising"]
    assert {"noisy_psnr", "denoised_psnr", "psnr_gain", "ssim_gain"} <= set(denoising)
    translation = json.loads((work / "metrics/pix2pix/edges2fashion.json").read_text())
    assert {"l1", "psnr", "ssim"} <= set(translation["test"]) and translation["baseline"]["name"] == "mean image"
    assert translation["test"]["n"] == 200 and translation["samples"]["domain"]["n_real"] == 200
    assert 0 <= translation["semantic"]["outputs"] <= 1 and translation["semantic"]["targets"] > 0.1
    assert (work / "reports/pix2pix/edges2fashion/translations.png").exists()
    cycle = json.loads((work / "metrics/cyclegan/sneaker2boot.json").read_text())
    for direction in ("a_to_b", "b_to_a"):
        assert {"success", "baseline_success", "cycle_l1", "shape", "samples"} <= set(cycle[direction])
        assert 0 <= cycle[direction]["success"] <= 1 and cycle[direction]["samples"]["domain"]["fid"] > 0
    assert (work / "reports/cyclegan/sneaker2boot/translations.png").exists()


def test_outputs_metrics_and_manifest(project):
    work = project
    manifest = json.loads((work / "data/prepared/fashion_mnist/manifest.json").read_text())
    assert {k: v["count"] for k, v in manifest["splits"].items()} == {"train": 400, "val": 100, "test": 200}
    metrics = json.loads((work / "metrics/dense_ae/fashion_mnist.json").read_text())
    assert metrics["test"]["n"] == 200 and 0 < metrics["test"]["mse"] < 1
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    assert "train@dense_ae-fashion_mnist" in lock["stages"]


def test_mlflow_run_in_the_sqlite_db_at_the_project_root(project):
    work = project
    assert (work / "mlflow.db").exists()
    run = json.loads((work / "models/dense_ae/fashion_mnist/run.json").read_text())
    assert run["tracking_uri"] == f"sqlite:///{work / 'mlflow.db'}"
    metrics = client(run["tracking_uri"]).get_run(run["run_id"]).data.metrics
    assert {"val/loss", "eval/test.mse", "eval/test.psnr", "eval/reconstruction.domain.fid", "eval/probe.codes"} <= set(
        metrics
    )


def test_second_repro_is_a_no_op_and_params_change_reruns_only_downstream(project):
    work = project
    status = sh(["dvc", "status"], work)
    assert "up to date" in status.stdout
    sh(["aegan", "params", "experiment=ci", "logger.progress_bar=true", "logger.log_every_n_steps=7"], work)
    assert "up to date" in sh(["dvc", "status"], work).stdout  # display settings retrain nothing
    sh(["aegan", "params", "experiment=ci", "models.dense_ae.latent_dim=16"], work)
    status = sh(["dvc", "status"], work).stdout
    assert "train@dense_ae-fashion_mnist" in status and "prepare@fashion_mnist" not in status
    assert "train@vae-fashion_mnist" not in status
    sh(["aegan", "params", "experiment=ci"], work)


def _exp_show(work: Path):
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(sh(["dvc", "exp", "show", "--csv"], work).stdout))
    return table.set_index("Experiment")


def test_dvc_experiments_record_compare_and_reach_mlflow(project):
    """Two `dvc exp run -S ...` experiments (one in a temporary copy), then the DVC commands that compare them."""
    work = project
    # DVC composes conf/ for each experiment: the tiny profile is a Hydra override like any other
    sh(["dvc", "exp", "run", "-n", "ae16", "-S", "experiment=ci", "-S", "models.dense_ae.latent_dim=16"], work)
    sh(["dvc", "exp", "run", "--temp", "-n", "ae4", "-S", "experiment=ci", "-S", "models.dense_ae.latent_dim=4"], work)
    table = _exp_show(work)
    mse = "scores/dense_ae/fashion_mnist.json:test.mse"
    for name, latent in (("ae16", 16), ("ae4", 4)):
        assert float(table.loc[name, "models.dense_ae.latent_dim"]) == latent
        assert 0 < float(table.loc[name, mse]) < 1  # recorded, not '!'
        assert 0 < float(table.loc[name, "scores/vae/fashion_mnist.json:test.mse"]) < 1
    assert float(table.loc["ae16", mse]) != float(table.loc["ae4", mse])
    narrow = sh(["dvc", "exp", "show", "--csv", "--only-changed"], work).stdout.splitlines()[0].split(",")

    every = list(table.reset_index().columns)  # every parameter and metric of the pipeline
    assert "models.dense_ae.latent_dim" in narrow and mse in narrow
    assert len(narrow) < len(every) / 2, (len(narrow), len(every))  # the unchanged parameters are left out

    exp_diff = sh(["dvc", "exp", "diff", "ae16", "ae4"], work).stdout
    assert "models.dense_ae.latent_dim" in exp_diff and "test.mse" in exp_diff
    metrics_diff = sh(["dvc", "metrics", "diff", "ae16", "ae4"], work).stdout
    assert "scores/dense_ae/fashion_mnist.json" in metrics_diff and "test.mse" in metrics_diff

    plots = json.loads(sh(["dvc", "plots", "diff", "ae16", "ae4", "--json"], work).stdout)["data"]
    (curves,) = plots["models/dense_ae/fashion_mnist/curves.csv"]
    values = curves["content"]["data"]["values"]
    assert {v["curve"] for v in values} == {"train/loss", "val/loss"} and {v["rev"] for v in values} == {"ae16", "ae4"}
    assert curves["content"]["encoding"]["x"]["field"] == "epoch"
    gan = plots["models/dcgan/fashion_mnist/curves.csv"][0]["content"]["data"]["values"]
    assert {"train/d_loss", "train/g_loss"} <= {v["curve"] for v in gan}
    images = [key for key, value in plots.items() if value and value[0]["type"] == "image"]
    assert any(key.endswith("dense_ae/fashion_mnist/reconstructions.png") for key in images), sorted(plots)

    # Both experiments, the temporary one included, logged to the project's MLflow database.
    mlflow = client(f"sqlite:///{work / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("aegan")
    runs = mlflow.search_runs([experiment.experiment_id], "tags.model = 'dense_ae'")
    assert {"ae16", "ae4"} <= {r.data.tags.get("dvc_exp") for r in runs}


def test_dvc_remote_push_then_pull_into_a_fresh_clone_needs_no_retraining(project, tmp_path):
    work = project
    remote = tmp_path / "remote"
    sh(["dvc", "remote", "add", "-f", "-d", "local", str(remote)], work)
    sh(["git", "add", "dvc.lock", "params.yaml", ".dvc/config"], work)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], work)
    sh(["dvc", "push"], work)
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    sh(["dvc", "pull"], clone)
    status = sh(["dvc", "status"], clone).stdout
    assert "up to date" in status, status
    for path in ("models/dcgan/fashion_mnist/model.ckpt", "metrics/dense_ae/fashion_mnist.json", "reports/index.html"):
        assert (clone / path).read_bytes() == (work / path).read_bytes()


def test_mlflow_ui_shows_the_pipeline_run(project):
    """Start the real `mlflow ui` on the project's database and find the run through its REST API."""
    import socket
    import time
    import urllib.request

    work = project
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    ui = subprocess.Popen(
        [
            str(mlflow_bin),
            "ui",
            "--backend-store-uri",
            f"sqlite:///{work / 'mlflow.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # mlflow ui starts worker processes: stop the whole group afterwards
    )
    try:
        run = json.loads((work / "models/dense_ae/fashion_mnist/run.json").read_text())
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run['run_id']}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise
                time.sleep(0.5)
        assert body["run"]["info"]["run_name"] == "dense_ae-fashion_mnist"
        assert any(m["key"] == "eval/test.mse" for m in body["run"]["data"]["metrics"])
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # workers that ignored SIGTERM
            os.killpg(ui.pid, signal.SIGKILL)


def test_report_renders_in_headless_chromium_with_every_image(project):
    """The report stage's page in a real browser: every image must decode (the page counts them)."""
    import re

    work = project
    page = work / "reports" / "index.html"
    result = subprocess.run(
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    total = int(re.search(r'data-images-total="(\d+)"', result.stdout).group(1))
    broken = int(re.search(r'data-images-broken="(\d+)"', result.stdout).group(1))
    # per model: curves + samples or reconstructions + interpolation strip and GIF (+ latent map, samples)
    assert total >= 4 * len(MODELS) and broken == 0, (total, broken)
    for model in MODELS:
        assert f'id="{model}-fashion_mnist"' in result.stdout


def test_dvc_plots_show_renders_the_training_curves(project):
    work = project
    result = sh(["dvc", "plots", "show", "-o", "plots"], work)
    html = (work / "plots" / "index.html").read_text()
    assert "dense_ae" in html and "val/loss" in html, result.stdout
