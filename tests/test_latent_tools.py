"""Latent-space tools: the maths of interpolation and attribute vectors, and the commands on real
checkpoints (trained here on a Fashion-MNIST subset)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cfg
from PIL import Image

from aegan.cli import main
from aegan.errors import ConfigError
from aegan.reports import latent, tools
from aegan.training.fit import fit


def test_interpolation_paths_start_and_end_at_the_endpoints():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    for mode in latent.MODES:
        path = latent.interpolation_path(a, b, 7, mode)
        assert path.shape == (7, 16)
        assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    # slerp between two codes of equal norm stays on their sphere; lerp cuts through the inside
    b_same_norm = b / b.norm() * a.norm()
    spherical = latent.interpolation_path(a, b_same_norm, 9, "spherical")
    linear = latent.interpolation_path(a, b_same_norm, 9, "linear")
    assert torch.allclose(spherical.norm(dim=1), a.norm().expand(9), rtol=1e-4)
    assert linear[4].norm() < 0.95 * a.norm()
    assert torch.allclose(latent.interpolation_path(a, a, 3, "spherical"), a.expand(3, 16))  # no NaN when a == b
    with pytest.raises(ConfigError, match="mode"):
        latent.interpolation_path(a, b, 5, "cubic")


def test_attribute_vector_is_the_difference_of_means():
    codes = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    mask = torch.tensor([True, True, False, False])
    assert torch.equal(latent.attribute_vector(codes, mask), torch.tensor([2.0, -3.0]))
    with pytest.raises(ConfigError, match="both with and without"):
        latent.attribute_vector(codes, torch.ones(4, dtype=torch.bool))


def test_gif_plays_forward_and_back(tmp_path):
    frames = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 1, 8, 8)
    path = latent.save_gif(frames, tmp_path / "strip.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 8  # 5 forward + 3 back


@pytest.fixture(scope="module")
def checkpoints(root, fashion_prepared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tools")
    out = {}
    for model in ("dense_ae", "mlp_gan"):
        cfg = run_cfg(root, fashion_prepared, tmp, f"model={model}", "trainer.max_epochs=1")
        out[model] = fit(cfg, tmp / model, root)
        out[model]["ckpt"] = tmp / model / "model.ckpt"
    out["tracking_uri"] = out["dense_ae"]["tracking_uri"]
    return out


def loaded(checkpoints, fashion_prepared, model):
    from aegan.models.registry import load_module

    return tools.Loaded(
        load_module(checkpoints[model]["ckpt"]), model, "fashion_mnist", fashion_prepared / "prepared" / "fashion_mnist"
    )


def image_size(path):
    with Image.open(path) as img:
        return img.size


def test_every_command_writes_its_pictures(checkpoints, fashion_prepared, tmp_path):
    ae, gan = loaded(checkpoints, fashion_prepared, "dense_ae"), loaded(checkpoints, fashion_prepared, "mlp_gan")
    written = [
        *tools.generate(gan, tmp_path, n=16),
        *tools.reconstruct(ae, tmp_path, n=16),
        *tools.interpolate(ae, tmp_path, pairs=[(0, 1), (2, 3)], steps=6, mode="spherical"),
        *tools.arithmetic(ae, tmp_path, "Trouser", n=4),
        *tools.latent_map(ae, tmp_path, n=300),
    ]
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "samples.png",
            "reconstructions.png",
            "interpolation_spherical.png",
            "interpolation_spherical.gif",
            "arithmetic_Trouser.png",
            "latent_map.png",
        ]
    )
    # strips: 2 pairs x 6 steps of 28x28 images (2 px padding, scaled 2x); arithmetic: 4 rows x 6 scales
    assert image_size(tmp_path / "interpolation_spherical.png") == ((6 * 30 + 2) * 2, (2 * 30 + 2) * 2)
    assert image_size(tmp_path / "arithmetic_Trouser.png") == ((6 * 30 + 2) * 2, (4 * 30 + 2) * 2)
    gan_strips = tools.interpolate(gan, tmp_path / "gan", steps=5)  # GANs: between random latent points
    assert gan_strips[0].exists()


def test_commands_say_which_models_support_them(checkpoints, capsys):
    gan_ckpt = str(checkpoints["mlp_gan"]["ckpt"])
    assert main(["arithmetic", "--ckpt", gan_ckpt, "--attribute", "Trouser"]) == 2
    message = capsys.readouterr().err
    assert "needs an encoder" in message and "mlp_gan is a gan model" in message
    assert "conv_vae" in message and "dense_ae" in message and "dcgan" not in message
    ae_ckpt = str(checkpoints["dense_ae"]["ckpt"])
    assert main(["generate", "--ckpt", ae_ckpt]) == 2
    assert "Models that support it" in capsys.readouterr().err
    assert main(["latent-map", "--ckpt", ae_ckpt, "--run-id", "abc"]) == 2
    assert "exactly one of --ckpt" in capsys.readouterr().err


def test_unknown_class_lists_the_classes(checkpoints, fashion_prepared, tmp_path):
    with pytest.raises(ConfigError, match="T-shirt/top, Trouser"):
        tools.arithmetic(loaded(checkpoints, fashion_prepared, "dense_ae"), tmp_path, "Hat")


def test_a_model_is_found_by_its_mlflow_run_id(checkpoints, monkeypatch, root):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", checkpoints["tracking_uri"])
    record = json.loads((checkpoints["dense_ae"]["ckpt"].parent / "run.json").read_text())
    found = tools.load(None, record["run_id"], None, root)
    assert (found.model, found.data, found.module.family) == ("dense_ae", "fashion_mnist", "autoencoder")
    with pytest.raises(ConfigError, match="not found"):
        tools.load(None, "0" * 32, None, root)
