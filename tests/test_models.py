"""Every model family: shapes for 28x28 and 64x64 images, and a short real training on Fashion-MNIST."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_cfg
from omegaconf import OmegaConf

from aegan.config import options
from aegan.models.gan import GANModule
from aegan.models.registry import FAMILIES, build_module, load_module
from aegan.training.fit import fit

CONF_MODELS = Path(__file__).resolve().parents[1] / "conf" / "model"


def _models(translate: bool) -> list[str]:
    """The model configs of conf/model whose family translates images (or not): a new config is tested here."""
    families = {path.stem: yaml.safe_load(path.read_text())["family"] for path in CONF_MODELS.glob("*.yaml")}
    return sorted(name for name, family in families.items() if FAMILIES[family].capabilities.translate is translate)


ROOT_MODELS = _models(translate=False)
TRANSLATION_MODELS = _models(translate=True)  # tests/test_translation.py: they need paired data


def test_the_model_lists_are_what_conf_offers(root):
    assert sorted(options(root, "model")) == sorted(ROOT_MODELS + TRANSLATION_MODELS)
    assert {"dcgan", "vae"} <= set(ROOT_MODELS) and {"pix2pix", "cyclegan"} <= set(TRANSLATION_MODELS)


@pytest.mark.parametrize("name", ROOT_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 64, 64), (3, 64, 64)])
def test_shapes(params, name, shape):
    module = build_module(OmegaConf.to_container(params.models[name]), shape)
    x = torch.rand(4, *shape) * 2 - 1
    assert module.capabilities.encode or module.capabilities.sample
    if module.capabilities.encode:
        out = module(x)
        assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    if module.capabilities.sample:
        samples = module.sample(4)
        assert samples.shape == x.shape and samples.min() >= -1 and samples.max() <= 1
    if isinstance(module, GANModule):
        assert module.critic(x).shape == (4, 1)


def history(out):
    with open(out / "history.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(root, params, fashion_prepared, tmp_path_factory):
    """Autoencoders for 2 epochs on 3,000 real Fashion-MNIST images (their loss must fall), GANs for 48 steps
    (their samples must move); trained once, lazily."""
    cache = {}

    def train(name):
        if name not in cache:
            tmp = tmp_path_factory.mktemp(name)
            gan = params.models[name].family == "gan"
            schedule = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3"] if gan else ["trainer.max_epochs=2"]
            cfg = run_cfg(root, fashion_prepared, tmp, f"model={name}", "model.batch_size=32", *schedule)
            before = build_module(OmegaConf.to_container(cfg.model), (1, 28, 28))
            initial = before.preview_samples(16).detach() if gan else None
            record = fit(cfg, tmp / "out", root)
            cache[name] = (tmp / "out", record, initial)
        return cache[name]

    return train


@pytest.mark.parametrize("name", ["dense_ae", "stacked_ae", "conv_ae", "denoising_ae", "vae", "conv_vae"])
def test_autoencoders_learn(trained, name):
    out, _record, _ = trained(name)
    rows = history(out)
    assert float(rows[1]["val/loss"]) < float(rows[0]["val/loss"]), rows
    assert float(rows[1]["train/loss"]) < float(rows[0]["train/loss"]), rows
    assert float(rows[-1]["val/mse"]) < 0.08  # the mean image scores 0.087 on this data


@pytest.mark.parametrize("name", ["mlp_gan", "dcgan", "wgan", "wgan_gp"])
def test_gan_samples_change_and_differ_from_each_other(trained, name):
    out, _, initial = trained(name)
    module = load_module(out / "model.ckpt")
    with torch.no_grad():
        samples = module.preview_samples(16)  # the same codes as `initial`
    assert torch.isfinite(samples).all()
    assert (samples - initial).abs().mean() > 0.05  # training moved the generator
    spread = samples.flatten(1).std(0).mean()
    assert spread > 0.05, f"samples are (nearly) constant: per-pixel std {spread}"
    with torch.no_grad():
        assert not torch.equal(module.sample(16), module.sample(16))  # fresh codes, not the preview batch


def test_vae_generates_from_the_prior(trained):
    out, _, _ = trained("vae")
    module = load_module(out / "model.ckpt")
    with torch.no_grad():
        a, b = module.sample(8), module.sample(8)
    assert not torch.allclose(a, b)


def test_denoising_noise_options(params):
    cfg = OmegaConf.to_container(params.models.denoising_ae)
    x = torch.zeros(1000, 1, 4, 4)  # pixel 0.5 on [0, 1]
    gaussian = build_module(cfg, (1, 4, 4)).corrupt(x)
    assert 0.15 < ((gaussian + 1) / 2 - 0.5).std() < 0.25 and gaussian.min() >= -1 and gaussian.max() <= 1
    cfg["noise"]["kind"] = "dropout"
    dropped = build_module(cfg, (1, 4, 4)).corrupt(x)
    assert 0.4 < (dropped == -1).float().mean() < 0.6  # rate 0.5 zeroes half of the pixels


def test_resume_from_last_gives_the_uninterrupted_result(root, fashion_prepared, tmp_path):
    whole = fit(run_cfg(root, fashion_prepared, tmp_path, "trainer.max_epochs=2"), tmp_path / "whole", root)
    fit(run_cfg(root, fashion_prepared, tmp_path, "trainer.max_epochs=1"), tmp_path / "parts", root)
    resumed = fit(
        run_cfg(root, fashion_prepared, tmp_path, "trainer.max_epochs=2", "ckpt_path=last"), tmp_path / "parts", root
    )
    assert [r["epoch"] for r in history(tmp_path / "parts")] == ["1", "2"]
    assert resumed["run_id"] == json_run_id(tmp_path / "parts")
    assert resumed["metrics"]["val/loss"] == pytest.approx(whole["metrics"]["val/loss"], abs=1e-6)


def json_run_id(out):
    import json

    return json.loads((out / "resume.json").read_text())["run_id"]


def test_a_gan_run_is_repeatable(root, fashion_prepared, tmp_path):
    """Same config twice on CPU -> the same numbers (seeded init, shuffling, noise; deterministic kernels)."""
    overrides = ("model=mlp_gan", "trainer.max_epochs=1")
    first = fit(run_cfg(root, fashion_prepared, tmp_path, *overrides), tmp_path / "a", root)
    second = fit(run_cfg(root, fashion_prepared, tmp_path, *overrides), tmp_path / "b", root)
    for key in ("train/d_loss_epoch", "train/g_loss_epoch", "val/d_loss"):
        assert second["metrics"][key] == pytest.approx(first["metrics"][key], abs=1e-6), key


def keras_count(network: torch.nn.Module) -> int:
    """The parameter count Keras' summary reports: batch norm's moving statistics included."""
    moving = sum(b.numel() for name, b in network.named_buffers() if "running" in name)
    return sum(p.numel() for p in network.parameters()) + moving


def test_sequential_layers_rebuild_the_seed_networks_with_keras_shapes_and_sizes(params):
    """Géron's DCGAN as conf/model/dcgan.yaml writes it: the parameter counts Keras reports for the seed's
    own layers (generator 401,665 incl. 384 batch-norm moving statistics; discriminator 212,865)."""
    cfg = OmegaConf.to_container(params.models.dcgan)
    gan = build_module(cfg, (1, 28, 28))
    assert keras_count(gan.generator) == 401_665 and sum(p.numel() for p in gan.critic.parameters()) == 212_865
    x = gan(torch.randn(3, cfg["latent_dim"]))
    assert x.shape == (3, 1, 28, 28) and gan.critic(x).shape == (3, 1)
    norms = [m for m in gan.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == pytest.approx(0.01) and m.eps == 1e-3 for m in norms)  # Keras' 0.99 / 1e-3
    biases = [m.bias for m in gan.critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(float(b.abs().max()) == 0 for b in biases)  # Keras initialisation: zero biases
    assert gan(torch.randn(2, cfg["latent_dim"])).shape == (2, 1, 28, 28)
    big = build_module(cfg, (1, 64, 64))
    assert big(torch.randn(2, cfg["latent_dim"])).shape == (2, 1, 64, 64) and big.critic(
        big(torch.randn(2, 30))
    ).shape == (2, 1)


def test_conv_vae_is_fosters_keras_layers_for_any_latent_size(params):
    """conf/model/conv_vae.yaml at 28x28: the parameter counts Keras reports for the seed's layers
    (benchmarks/fidelity/seeds.py: encoder 1,274,000, decoder 661,761, batch-norm moving statistics
    included); `dense: out` follows model.latent_dim."""
    cfg = OmegaConf.to_container(params.models.conv_vae)
    vae = build_module(cfg, (1, 28, 28))
    assert (keras_count(vae.encoder), keras_count(vae.decoder)) == (1_274_000, 661_761)
    small = build_module({**cfg, "latent_dim": 16}, (1, 28, 28))
    mu, logvar = small.posterior(torch.zeros(2, 1, 28, 28))
    assert mu.shape == logvar.shape == (2, 16) and small.sample(2).shape == (2, 1, 28, 28)


def test_sequential_layers_refuse_what_does_not_fit():
    from aegan.errors import ConfigError
    from aegan.models.sequential import SequentialNet

    with pytest.raises(ConfigError, match="needs an image-shaped input"):
        SequentialNet([{"conv": 8}], (10,), (8,))
    with pytest.raises(ConfigError, match="the layers end with shape"):
        SequentialNet([{"dense": 5}], (10,), (1, 28, 28))
    with pytest.raises(ConfigError, match="names exactly one of"):
        SequentialNet([{"dense": 5, "conv": 3}], (10,), (5,))


def test_minibatch_std_tells_a_collapsed_batch_from_a_varied_one():
    """The extra feature is the groups' mean standard deviation: zero for copies of one sample, the
    spread of each group for varied ones, on flat and image-shaped inputs, for any batch size."""
    from aegan.models.sequential import SequentialNet

    layers = [{"flatten": True}, {"dense": 8, "activation": "leaky_relu"}, {"minibatch_std": 4}, {"dense": 1}]
    critic = SequentialNet(layers, (1, 4, 4), (1,))
    layer = critic.net[2]
    same = torch.ones(8, 5)
    assert torch.allclose(layer(same)[:, -1], torch.full((8,), 1e-4))  # sqrt(0 + 1e-8)
    varied = torch.randn(8, 5)
    groups = varied.reshape(4, 2, 5).var(0, unbiased=False).add(1e-8).sqrt().mean(1)  # member g of group m
    assert torch.allclose(layer(varied)[:, -1], groups.repeat(4), atol=1e-6)
    assert layer(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)  # a channel; 6 splits into groups of 2
    assert critic(torch.randn(7, 1, 4, 4)).shape == (7, 1)


def test_generator_average_follows_the_live_generator_and_is_what_samples(params, tmp_path):
    model = {**OmegaConf.to_container(params.models["dcgan"]), "ema_decay": 0.999}
    module = build_module(model, (1, 28, 28)).eval()
    before = [p.clone() for p in module.generator_average.state_dict().values()]
    with torch.no_grad():
        module.generator.train()(torch.randn(16, module.latent_dim))  # moves batch norm's running statistics
        for p in module.generator.parameters():
            p.add_(0.01 * torch.randn_like(p))
    module.update_average()  # t = 1: decay (1 + 1) / (10 + 1), far below 0.999
    decay = 2 / 11
    live, average = module.generator.state_dict(), module.generator_average.state_dict()
    assert any(name.endswith("running_var") for name in live)  # the statistics are averaged too
    for old, (name, new) in zip(before, live.items(), strict=True):
        if new.is_floating_point():
            assert torch.allclose(average[name], decay * old + (1 - decay) * new, atol=1e-6), name
        else:
            assert torch.equal(average[name], new), name
    z = torch.randn(4, module.latent_dim)
    with torch.no_grad():
        assert torch.allclose(module(z), torch.tanh(module.generator_average(z)))
        assert not torch.allclose(module(z), torch.tanh(module.generator(z)))
    torch.save({"state_dict": module.state_dict()}, tmp_path / "state.pt")
    restored = build_module(model, (1, 28, 28)).eval()
    restored.load_state_dict(torch.load(tmp_path / "state.pt")["state_dict"])
    assert int(restored.average_updates) == 1
    with torch.no_grad():
        assert torch.allclose(restored(z), module(z))


def test_generator_average_decay_is_checked(params):
    from aegan.errors import ConfigError

    with pytest.raises(ConfigError, match="ema_decay"):
        build_module({**OmegaConf.to_container(params.models["dcgan"]), "ema_decay": 1.5}, (1, 28, 28))


def test_mode_seeking_term_charges_for_clumps_and_its_gradient_spreads_them(params):
    """MSGAN's term: the codes' distance over the images' distance (Mao et al. 2019). A generator that gives two
    codes the same image pays far more than one that keeps them apart, and a step down the term's gradient moves
    the two images apart; compared after pooling, pixel noise does not count as apart. The weight and the pool
    are checked; a weight of 0 leaves the generator's loss as it was."""
    from aegan.errors import ConfigError
    from aegan.models.gan import mode_seeking_penalty

    torch.manual_seed(0)
    z = torch.randn(8, 10)
    apart = torch.rand(8, 1, 4, 4) * 2 - 1
    clumped = apart[:4].repeat(2, 1, 1, 1) + 1e-3 * torch.randn(8, 1, 4, 4)
    assert mode_seeking_penalty(z, clumped) > 50 * mode_seeking_penalty(z, apart)
    images = clumped.clone().requires_grad_(True)
    mode_seeking_penalty(z, images).backward()
    moved = images.detach() - 1e-4 * images.grad
    assert (moved[:4] - moved[4:]).abs().mean() > (clumped[:4] - clumped[4:]).abs().mean()
    # Copies that differ only by pixel noise are apart in pixels and still a clump after pooling.
    shapes = torch.linspace(-0.9, 0.9, 8)[torch.randperm(8)].view(8, 1, 1, 1).expand(8, 1, 8, 8)
    speckled = shapes[:4].repeat(2, 1, 1, 1) + 0.5 * torch.randn(8, 1, 8, 8)
    assert mode_seeking_penalty(z, speckled) < 2 * mode_seeking_penalty(z, shapes)
    assert mode_seeking_penalty(z, speckled, pool=4) > 2 * mode_seeking_penalty(z, shapes, pool=4)

    model = OmegaConf.to_container(params.models["mlp_gan"])
    for key, bad in (("mode_seeking", -1.0), ("mode_seeking_pool", 0)):
        with pytest.raises(ConfigError, match=key):
            build_module({**model, key: bad}, (1, 28, 28))
    torch.manual_seed(0)
    plain = build_module({**model, "mode_seeking": 0.0}, (1, 28, 28))
    torch.manual_seed(1)
    loss = plain.generator_step_loss(16)
    torch.manual_seed(1)
    assert torch.equal(loss, plain.generator_loss(plain.fake(16)))
    seeking = build_module({**model, "mode_seeking": 10.0}, (1, 28, 28))
    seeking.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    assert seeking.generator_step_loss(16) > loss


def test_the_all_pairs_mode_seeking_term_charges_every_near_copy(params):
    """`mode_seeking_pairs: all` averages each pair's own ratio over every pair of the batch: one pair of
    near-copies anywhere in it costs far more than a batch without one, where MSGAN's two-halves form (one ratio
    of batch means, pairs i and i + n/2 only) does not see a copy inside one half at all. Its gradient moves the
    copies apart; an unknown form is refused."""
    from aegan.errors import ConfigError
    from aegan.models.gan import mode_seeking_penalty

    torch.manual_seed(0)
    z = torch.randn(8, 10)
    apart = torch.rand(8, 1, 4, 4) * 2 - 1
    one_copy = apart.clone()
    one_copy[1] = apart[0] + 1e-3 * torch.randn(1, 4, 4)  # both in the first half
    assert mode_seeking_penalty(z, one_copy, pairs="all") > 10 * mode_seeking_penalty(z, apart, pairs="all")
    halves = mode_seeking_penalty(z, one_copy) / mode_seeking_penalty(z, apart)
    assert 0.9 < halves < 1.1
    images = one_copy.clone().requires_grad_(True)
    mode_seeking_penalty(z, images, pairs="all").backward()
    moved = images.detach() - 1e-5 * images.grad
    assert (moved[0] - moved[1]).abs().mean() > (one_copy[0] - one_copy[1]).abs().mean()

    model = OmegaConf.to_container(params.models["mlp_gan"])
    with pytest.raises(ConfigError, match="mode_seeking_pairs"):
        build_module({**model, "mode_seeking_pairs": "some"}, (1, 28, 28))


def test_dropout_keeps_one_minus_p_in_every_bit_lane_and_is_seeded():
    from aegan.models.blocks import Dropout, dropout

    x = torch.ones(1_000_000)
    torch.manual_seed(0)
    y = dropout(x, 0.4)
    kept = y > 0
    # each element reads 16 bits of a 64-bit word: every lane of the four must keep 60 %, not only the mean
    lanes = kept.view(-1, 4).float().mean(0)
    assert torch.allclose(lanes, torch.full((4,), 0.6), atol=0.005), lanes
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.6))  # inverted dropout: E[y] = x
    assert abs(y.mean().item() - 1.0) < 0.01
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.4), y)  # the global seed makes the mask

    layer = Dropout(0.3)
    inputs = torch.randn(8, 64, 7, 7, requires_grad=True)
    out = layer(inputs)
    out.sum().backward()
    assert torch.equal(inputs.grad, (out != 0).float() / 0.7)  # the gradient flows through the kept ones
    assert torch.equal(layer.eval()(inputs), inputs)
    assert layer.state_dict() == torch.nn.Dropout(0.3).state_dict()
