"""Autoencoder use cases measured on real Fashion-MNIST: what each metric says about a trained model."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cfg

from aegan.metrics.anomaly import anomaly_auc
from aegan.metrics.evaluate import anomaly_config
from aegan.metrics.likelihood import elbo_terms, importance_log_likelihood
from aegan.metrics.probe import linear_probe, pixel_probe
from aegan.metrics.reconstruction import denoising_metrics
from aegan.models.registry import load_module
from aegan.training.fit import fit


def split(base, name):
    data = torch.load(base / "prepared" / "fashion_mnist" / f"{name}.pt", weights_only=True)
    return data["images"].float(), data["labels"]


def train(root, fashion_prepared, tmp, *overrides):
    cfg = run_cfg(root, fashion_prepared, tmp, *overrides)
    fit(cfg, tmp / "out", root)
    return load_module(tmp / "out" / "model.ckpt"), cfg


@pytest.fixture(scope="module")
def dense_ae(root, fashion_prepared, tmp_path_factory):
    return train(root, fashion_prepared, tmp_path_factory.mktemp("ae"), "model=dense_ae", "trainer.max_epochs=3")


def test_linear_probe_on_codes_pixels_and_pca(dense_ae, fashion_prepared):
    module, _ = dense_ae
    train, test = split(fashion_prepared, "train"), split(fashion_prepared, "test")
    scores = {**linear_probe(module, train, test, 3000, 300), "pixels": pixel_probe(train, test, 3000, 300)}
    print(scores)
    assert scores["code_dim"] == 32 and scores["n_train"] == 3000
    for key in ("codes", "pixels", "pca"):
        assert 0.6 < scores[key] <= 1.0, scores  # chance is 0.1


def test_anomaly_auc_for_a_class_the_autoencoder_never_saw(root, fashion_prepared, tmp_path, dense_ae):
    """Trousers (class 1) held out: they reconstruct worse than the classes seen in training."""
    _, cfg = dense_ae
    cfg.evaluation.anomaly.held_out_class = 1
    derived = anomaly_config(cfg, n_classes=10)
    assert derived.data.exclude_class == 1
    fit(derived, tmp_path / "anomaly", root)
    module = load_module(tmp_path / "anomaly" / "model.ckpt")
    test_images, test_labels = split(fashion_prepared, "test")
    scores = anomaly_auc(module, test_images, test_labels, held_out=1)
    print(scores)
    assert scores["n_anomalies"] == int((test_labels == 1).sum()) > 50
    assert scores["mse_anomalies"] > scores["mse_normal"]
    assert scores["auc"] > 0.6


def test_anomaly_config_rejects_a_class_that_does_not_exist(dense_ae):
    from aegan.errors import ConfigError

    _, cfg = dense_ae
    cfg.evaluation.anomaly.held_out_class = 10
    with pytest.raises(ConfigError, match=r"held_out_class must be in \[0, 9\]"):
        anomaly_config(cfg, n_classes=10)
    assert anomaly_config(cfg, n_classes=None) is None  # no labels (CelebA): nothing to hold out


def test_denoising_autoencoder_improves_psnr_over_its_noisy_input(root, fashion_prepared, tmp_path):
    module, _ = train(root, fashion_prepared, tmp_path, "model=denoising_ae", "trainer.max_epochs=6")
    test_images, _ = split(fashion_prepared, "test")
    torch.manual_seed(0)
    scores = denoising_metrics(module, test_images)
    print(scores)
    assert scores["psnr_gain"] > 0.5 and scores["denoised_psnr"] > scores["noisy_psnr"]
    assert scores["ssim_gain"] > 0


def test_vae_importance_sampled_likelihood_is_at_least_the_elbo(root, fashion_prepared, tmp_path):
    module, _ = train(root, fashion_prepared, tmp_path, "model=vae", "trainer.max_epochs=2")
    test_images, _ = split(fashion_prepared, "test")
    images = test_images[:200]
    torch.manual_seed(0)
    terms = elbo_terms(module, images)
    one = importance_log_likelihood(module, images, k=1)
    many = importance_log_likelihood(module, images, k=64)
    print(terms, one, many)
    assert terms["elbo"] == pytest.approx(-(terms["recon"] + terms["kl"]))  # bce: no Gaussian constant
    assert one == pytest.approx(terms["elbo"], rel=0.02)  # K=1 is an unbiased ELBO estimate
    assert terms["elbo"] < many < 0  # the bound tightens with K; a log-density of [0,1] Bernoullis is < 0
