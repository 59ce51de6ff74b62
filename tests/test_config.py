"""Config: params.yaml matches conf/, names are checked before any work starts."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from aegan.config import compose, load_params, params_are_current, run_config, validate
from aegan.errors import ConfigError


def test_params_yaml_is_current(root):
    assert params_are_current(root), "params.yaml is stale: run `aegan params` and commit it"


def test_params_yaml_holds_every_dataset_and_model(root):
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert sorted(params["datasets"]) == sorted(path.stem for path in (root / "conf" / "data").glob("*.yaml"))
    assert set(params["pipeline"]["models"]) <= set(params["models"])
    assert set(params["pipeline"]["datasets"]) <= set(params["datasets"])
    assert params["pipeline"]["datasets"] == ["fashion_mnist"]  # the offline default


def test_single_run_config_has_the_same_shape_as_a_pipeline_run(root):
    hydra_run = compose(root, "config", ["model=dense_ae", "data=fashion_mnist"])
    stage_run = run_config(load_params(root), "dense_ae", "fashion_mnist")
    assert set(stage_run) - {"ckpt_path"} <= set(hydra_run)
    assert hydra_run.model == stage_run.model and hydra_run.data == stage_run.data


def test_unknown_dataset_lists_the_valid_ones(root):
    valid = r"unknown dataset 'cifar'; valid: \['celeba', 'edges2bricks', 'edges2fashion', 'fashion"
    with pytest.raises(ConfigError, match=valid):
        run_config(load_params(root), "dense_ae", "cifar")


def test_unknown_model_lists_the_valid_ones(root):
    with pytest.raises(ConfigError, match=r"unknown model 'transformer'; valid: \[.*'dense_ae'"):
        run_config(load_params(root), "transformer", "fashion_mnist")


def test_unknown_group_option_and_key_are_config_errors(root):
    with pytest.raises(ConfigError, match="model/nosuch"):
        compose(root, "config", ["model=nosuch"])
    with pytest.raises(ConfigError, match="no_such_key"):
        compose(root, "config", ["model.no_such_key=3"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.batch_size=-4", "model.batch_size must be a positive integer"),
        ("model.latent_dim=0", "model.latent_dim must be a positive integer"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be a positive integer"),
        ("data.channels=2", "data.channels must be 1 or 3"),
        ("model.family=diffusion", "model.family 'diffusion' is unknown"),
    ],
)
def test_bad_values_are_caught_before_training(root, override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(root, "config", [override]))


def test_cli_reports_config_errors_without_a_traceback(root):
    result = subprocess.run(
        [sys.executable, "-m", "aegan.cli", "stage", "train", "nosuch", "fashion_mnist"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "aegan: error: unknown model 'nosuch'; valid:" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_train_rejects_an_unknown_model_with_the_options(root):
    result = subprocess.run(
        [sys.executable, "-m", "aegan.cli", "train", "model=nosuch"], cwd=root, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Could not find 'model/nosuch'" in result.stderr and "dense_ae" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=conv_ae", "model.decoder.channels.28=[256, 128, 64]"], "not divisible by 2\\^3"),
        (["model=conv_ae", "data.image_size=30"], "conv_ae .* 30"),
        (["model=dense_ae", "data=celeba", "model.decoder.kind=mlp"], "unknown decoder kind 'mlp'"),
        (["model=pix2pix", "data=fashion_mnist"], "needs a translation dataset .* fashion_mnist is not one"),
        (["model=vae", "data=edges2fashion"], "vae does not translate images; edges2fashion is a translation"),
        (["model=pix2pix", "data=sneaker2boot"], "learns from paired images; sneaker2boot is a task of unpaired"),
        (["model=cyclegan", "data=edges2fashion"], "learns from unpaired images; edges2fashion is a task of paired"),
        (["model=pix2pix", "data=edges2fashion", "data.base.image_size=27"], "pix2pix does not fit .* even image"),
    ],
)
def test_a_model_that_does_not_fit_the_images_is_caught_before_training(root, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(root, "config", overrides))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"derived": {"edges2fashion": "mnist"}}, "edges2fashion is made from 'fashion_mnist'"),
        ({"derived": {"fashion_mnist": "mnist"}}, "fashion_mnist is not a translation dataset"),
        ({"translations": {"p": {"model": "pix2pix", "data": "edges2fashion"}}}, "needs model, data and base"),
        ({"translations": {"p": {"model": "pix2pix", "data": "sketches", "base": "x"}}}, "not in pipeline.derived"),
        ({"translations": {"p": {"model": "p2p", "data": "edges2fashion", "base": "fashion_mnist"}}}, "unknown model"),
        ({"datasets": ["mnist"]}, "which must also be in pipeline.datasets"),
        ({"anomaly_models": ["dcgan_x"]}, "pipeline.anomaly_models has \\['dcgan_x'\\]"),
    ],
)
def test_translation_entries_of_the_pipeline_must_agree(root, tmp_path, change, message):
    shutil.copytree(root / "conf", tmp_path / "conf")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["pipeline"].update(change)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=message):
        load_params(tmp_path)
