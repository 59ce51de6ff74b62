"""User mistakes through the `aegan` command, table-driven: each ends with one `aegan: error: ...` line that
names the bad value, exit code 2, and leaves every file of the project as it was.

`aegan train` (Hydra) cases live in test_train_workflows.py; these run the other entry points in-process,
in a scratch project with a real trained checkpoint and planted bad files.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_cfg

from aegan.cli import main
from aegan.training.fit import fit


@pytest.fixture(scope="module")
def project(root, fashion_prepared, tmp_path_factory):
    """conf/, params.yaml and dvc.yaml of this checkout; a VAE trained for a few steps; bad checkpoints."""
    here = tmp_path_factory.mktemp("project")
    shutil.copytree(root / "conf", here / "conf")
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(root / name, here / name)
    cfg = run_cfg(root, fashion_prepared, here, "model=vae", "trainer.max_epochs=1", "+trainer.limit_train_batches=2")
    fit(cfg, here / "models" / "vae" / "fashion_mnist", root)
    good = here / "models" / "vae" / "fashion_mnist" / "model.ckpt"
    bad = here / "bad"
    bad.mkdir()
    (bad / "garbage.ckpt").write_bytes(b"this is not a checkpoint\n" * 40)
    (bad / "empty.ckpt").write_bytes(b"")
    (bad / "truncated.ckpt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"weights": torch.zeros(3)}, bad / "foreign.ckpt")
    (bad / "a_directory.ckpt").mkdir()
    # a prepared dataset of another image size (its manifest is what the tools check)
    prepared = here / "data" / "prepared"
    shape = '{"shape": [10, 3, 64, 64]}'
    for name, manifest in [
        ("celeba", f'{{"splits": {{"train": {shape}, "val": {shape}, "test": {shape}}}}}'),
        ("garbled", '{"splits": {"train": {"shape": [10, 1, 28, 28]}, "val": {}, "test": {"shape": [10, 1, 28, 28]}}}'),
        ("not_json", "{splits: oops"),
        ("no_splits", '{"dataset": "no_splits"}'),
    ]:
        (prepared / name).mkdir(parents=True)
        (prepared / name / "manifest.json").write_text(manifest)
    (prepared / "garbled" / "test.pt").write_bytes(b"\x80\x04 not a tensor file")
    return here


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def run_aegan(project: Path, argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project.parent / 'tracking.db'}")
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


VAE = ["--ckpt", "models/vae/fashion_mnist/model.ckpt"]
CASES = [
    # counts and values of the latent tools
    (["generate", *VAE, "--n", "0"], "--n: 0 is out of range"),
    (["generate", *VAE, "--n", "-3"], "--n: -3 is out of range"),
    (["generate", *VAE, "--n", "1000000000"], "--n: 1000000000 is out of range"),
    (["generate", *VAE, "--n", "abc"], "'abc' is not a whole number"),
    (["generate", *VAE, "--n", "2.5"], "'2.5' is not a whole number"),
    (["reconstruct", *VAE, "--n", "100000"], "give 1 to 1000"),
    (["latent-map", *VAE, "--n", "0"], "--n: 0 is out of range"),
    (["arithmetic", *VAE, "--attribute", "Trouser", "--n", "0"], "--n: 0 is out of range"),
    (["interpolate", *VAE, "--pairs", "1-2"], "'1-2' is not a pair"),
    (["interpolate", *VAE, "--pairs", "1,2,3"], "'1,2,3' is not a pair"),
    (["interpolate", *VAE, "--pairs", "a,b"], "'a,b' is not a pair"),
    (["interpolate", *VAE, "--steps", "0"], "--steps: 0 is out of range"),
    (["interpolate", *VAE, "--steps", "100000"], "give 1 to 200"),
    (["interpolate", *VAE, "--mode", "cubic"], "invalid choice: 'cubic'"),
    (["generate", *VAE, "--sampler", "flow"], "invalid choice: 'flow'"),
    (["generate", *VAE, "--seed", "x"], "invalid int value: 'x'"),
    (["arithmetic", *VAE], "--attribute"),
    # naming the model
    (["generate"], "exactly one of --ckpt PATH, --run-id ID or --model-uri URI"),
    (["generate", *VAE, "--run-id", "abc"], "exactly one of"),
    (["generate", "--ckpt", "nowhere/model.ckpt"], "does not exist"),
    (["generate", "--ckpt", "bad/garbage.ckpt", "--data", "fashion_mnist"], "is not a readable checkpoint"),
    (["generate", "--ckpt", "bad/empty.ckpt", "--data", "fashion_mnist"], "is not a readable checkpoint"),
    (["generate", "--ckpt", "bad/truncated.ckpt", "--data", "fashion_mnist"], "is not a readable checkpoint"),
    (["generate", "--ckpt", "bad/foreign.ckpt", "--data", "fashion_mnist"], "not an aegan checkpoint"),
    (["generate", "--ckpt", "bad/a_directory.ckpt", "--data", "fashion_mnist"], "does not exist"),
    (["generate", "--model-uri", "s3://bucket/model"], "expected models:/NAME/VERSION"),
    (["generate", "--model-uri", "models:/no-such-model/1"], "not found"),
    (["generate", "--model-uri", "models:/no-such-model"], "has no versions"),
    (["generate", "--run-id", "0123456789abcdef"], "MLflow run 0123456789abcdef not found"),
    # what the model can do, and with which data
    (["reconstruct", *VAE, "--data", "celeba"], "trained on images of shape (1, 28, 28), celeba has (3, 64, 64)"),
    (["reconstruct", *VAE], "prepare fashion_mnist first"),
    (["arithmetic", *VAE, "--attribute", "Smiling"], "prepare fashion_mnist first"),
    (["translate", *VAE], "`aegan translate` needs a translation model (e.g. pix2pix); vae is a vae model"),
    (["translate", *VAE, "--n", "0"], "--n: 0 is out of range"),
    # prepared data that is not what it claims to be
    (["reconstruct", *VAE, "--data", "garbled"], "test.pt is not a prepared split"),
    (["reconstruct", *VAE, "--data", "not_json"], "is not a JSON manifest"),
    (["reconstruct", *VAE, "--data", "no_splits"], "lacks the train, val, test splits"),
    # stages
    (["stage", "train"], "stage train takes 2 argument(s)"),
    (["stage", "train", "nope", "fashion_mnist"], "unknown model 'nope'"),
    (["stage", "train", "vae", "nope"], "unknown dataset 'nope'"),
    (["stage", "prepare", "imagenet"], "unknown dataset 'imagenet'"),
    (["stage", "evaluate", "dcgan", "fashion_mnist"], "dcgan has not been trained on fashion_mnist"),
    (["stage", "summary", "extra"], "stage summary takes 0 argument(s)"),
    (["stage", "anomaly", "dcgan", "fashion_mnist"], "dcgan has no encoder"),
    (["stage", "evaluate", "pix2pix", "fashion_mnist"], "needs a translation dataset"),
    (["stage", "bogus"], "invalid choice: 'bogus'"),
    # the command itself
    ([], "the following arguments are required: command"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["options", "extra"], "unrecognized arguments: extra"),
    (["bench", "--steps", "x"], "'x' is not a whole number"),
    (["bench", "--steps", "0"], "--steps: 0 is out of range: give 1 to"),
    (["bench", "--repeats", "0"], "--repeats: 0 is out of range"),
    (["bench", "--batch-sizes", "32", "-4"], "--batch-sizes: -4 is out of range"),
    (["bench", "--warmup", "-1"], "--warmup: -1 is out of range: give 0 to"),
    (["bench", "--steps-per-execution", "0"], "--steps-per-execution: 0 is out of range"),
    (["bench", "--inception-images", "-1"], "--inception-images: -1 is out of range"),
    (["bench", "--scaling", "--image-sizes", "0"], "--image-sizes: 0 is out of range"),
    (["bench", "--models", "dense_ae", "transformer"], "unknown model 'transformer'; valid: conv_ae"),
    (["bench", "--data", "imagenet"], "unknown data 'imagenet'; valid:"),
    (["params", "model.nope=1"], "model.nope"),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(a)[:60] or "no-args" for a, _ in CASES])
def test_a_mistake_is_one_clear_line_exit_2_and_nothing_changes(project, capsys, monkeypatch, argv, message):
    before = snapshot(project)
    code, err = run_aegan(project, argv, capsys, monkeypatch)
    errors = [line for line in err.splitlines() if line.startswith("aegan: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err[-2000:]
    assert "Traceback" not in err
    assert snapshot(project) == before


def _set(tree: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


PARAMS_CASES = [
    ("models.vae.latent_dimm", 4, "models.vae.latent_dimm"),
    ("models.vae.encoder.hiden", [64], "models.vae.encoder.hiden"),
    ("trainer.bogus_option", 1, "trainer.bogus_option"),
    ("seed", "abc", "seed must be a non-negative integer, got 'abc'"),
    ("seed", -1, "seed must be a non-negative integer, got -1"),
    ("models.vae.batch_size", -3, "model.batch_size must be a positive integer, got -3"),
    ("models.vae.batch_size", 0.5, "model.batch_size must be a positive integer, got 0.5"),
    ("models.vae.latent_dim", 0, "model.latent_dim must be a positive integer, got 0"),
    ("models.vae.optimizer.lr", "fast", "model.optimizer.lr must be a positive number, got 'fast'"),
    ("models.vae.optimizer.lr", -0.001, "model.optimizer.lr must be a positive number, got -0.001"),
    ("models.vae.optimizer.name", "adamax9", "unknown optimizer 'adamax9'"),
    ("models.vae.family", "diffusion", "model.family 'diffusion' is unknown"),
    ("models.vae.epochs.short", 0, "model.epochs.short must be a positive integer, got 0"),
    ("trainer.max_epochs", 0, "trainer.max_epochs must be a positive integer, got 0"),
    ("trainer.steps_per_execution", 0, "trainer.steps_per_execution must be a positive integer"),
    ("trainer.schedule", "medium", "trainer.schedule must be 'short' or 'full', got 'medium'"),
    ("datasets.fashion_mnist.channels", 2, "data.channels must be 1 or 3, got 2"),
    ("datasets.fashion_mnist.image_size", -28, "data.image_size must be a positive integer, got -28"),
    ("datasets.fashion_mnist.kind", "parquet", "data.kind must be 'idx', 'image_folder' or 'translation'"),
    ("limits.train", 0, "limits.train must be a positive integer, got 0"),
    ("models.vae.latent_dim", 7, None),  # valid: the check must not refuse it (it fails later, for want of data)
]


@pytest.mark.parametrize(("key", "value", "message"), PARAMS_CASES, ids=[f"{k}={v}" for k, v, _ in PARAMS_CASES])
def test_a_bad_value_in_params_yaml_is_refused_before_any_work(project, capsys, monkeypatch, key, value, message):
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    _set(params, key, value)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        before = snapshot(project)
        code, err = run_aegan(project, ["stage", "train", "vae", "fashion_mnist"], capsys, monkeypatch)
        if message is None:
            assert "unknown" not in err and "must be" not in err, err[-2000:]
            return
        errors = [line for line in err.splitlines() if line.startswith("aegan: error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0], err[-2000:]
        assert snapshot(project) == before
    finally:
        (project / "params.yaml").write_text(original)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [\n", "is not valid YAML"),
        ("- a list\n- not a mapping\n", "holds no mapping"),
        ("", "holds no mapping"),
    ],
)
def test_a_broken_params_yaml_is_one_clear_error(project, capsys, monkeypatch, text, message):
    original = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text)
    try:
        code, err = run_aegan(project, ["stage", "summary"], capsys, monkeypatch)
        errors = [line for line in err.splitlines() if line.startswith("aegan: error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0], err[-2000:]
    finally:
        (project / "params.yaml").write_text(original)


def test_an_unreachable_tracking_server_is_reported_within_seconds(project, capsys, monkeypatch):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.time()
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    code = main(["generate", "--run-id", "0123456789abcdef"])
    err = capsys.readouterr().err
    assert code == 2 and "is not usable" in err and f"127.0.0.1:{port}" in err, err
    assert time.time() - started < 15


SOURCE_CASES = [  # (datasets.lego.source key, planted path, message)
    ("archive", "missing.zip", "missing.zip does not exist; set datasets.lego.source.archive"),
    ("archive", "folder", "is a directory, not an archive file"),
    ("archive", "loop.zip", "is a symbolic link loop"),
    ("archive", "garbage.zip", "not a readable zip archive"),
    ("local_dir", "missing", "does not exist; set datasets.lego.source.local_dir"),
    ("local_dir", "garbage.zip", "is a file, not a directory"),
    ("local_dir", "loop.zip", "is a symbolic link loop"),
]


@pytest.mark.parametrize(("key", "name", "message"), SOURCE_CASES, ids=[f"{k}={n}" for k, n, _ in SOURCE_CASES])
def test_a_data_source_that_cannot_be_read_is_named_and_nothing_is_written(
    project, capsys, monkeypatch, tmp_path, key, name, message
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbage.zip").write_bytes(b"PK not really a zip" * 10)
    (tmp_path / "loop.zip").symlink_to(tmp_path / "loop.zip")
    original = (project / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["datasets"]["lego"]["source"][key] = str(tmp_path / name)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        before = snapshot(project)
        code, err = run_aegan(project, ["stage", "download", "lego"], capsys, monkeypatch)
        errors = [line for line in err.splitlines() if line.startswith("aegan: error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0], err[-2000:]
        assert "cannot write" not in err and "Traceback" not in err
        assert snapshot(project) == before and not (project / "data" / "raw" / "lego").exists()
    finally:
        (project / "params.yaml").write_text(original)
