"""bf16 on the CPU for every model, `precision: auto`, and the GPU profile's code paths run on the CPU."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import run_cfg
from omegaconf import OmegaConf
from test_models import ROOT_MODELS

from aegan.models.adversarial import gradient_penalty
from aegan.models.registry import build_module, load_module
from aegan.training.fit import fit
from aegan.training.trainer_args import resolve_precision, trainer_kwargs

SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2"]
SHORT += ["trainer.steps_per_execution=2", "model.batch_size=32"]


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [({"avx512_bf16": True}, "bf16-mixed"), ({"amx_bf16": True}, "bf16-mixed"), ({"avx2": True}, "32-true")],
)
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_for_models_that_gain(
    monkeypatch, root, capabilities, expected
):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert resolve_precision("auto", "cpu", bf16_on_cpu=True) == expected
    assert resolve_precision("auto", "cpu", bf16_on_cpu=False) == "32-true"
    assert resolve_precision("16-mixed", "cpu", bf16_on_cpu=False) == "16-mixed"  # anything else is Lightning's
    model = OmegaConf.load(root / "conf" / "model" / "mlp_gan.yaml")
    assert trainer_kwargs({"accelerator": "cpu", "precision": "auto"}, model)["precision"] == expected
    model = OmegaConf.load(root / "conf" / "model" / "stacked_ae.yaml")  # slower in bf16 at its batch 32
    assert trainer_kwargs({"accelerator": "cpu", "precision": "auto"}, model)["precision"] == "32-true"


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("model", ROOT_MODELS)
def test_bf16_mixed_trains_every_model_on_the_cpu(root, fashion_prepared, tmp_path, model):
    """Every model trains under bf16 autocast: finite losses, float32 weights that moved, close to float32's loss."""
    records = {}
    gan = OmegaConf.load(root / "conf" / "model" / f"{model}.yaml").get("family") == "gan"
    for precision in ("bf16-mixed",) if gan else ("32-true", "bf16-mixed"):
        cfg = run_cfg(root, fashion_prepared, tmp_path, f"model={model}", f"trainer.precision={precision}", *SHORT)
        torch.manual_seed(0)
        initial = _weights(build_module(OmegaConf.to_container(cfg.model), (1, 28, 28)))
        records[precision] = fit(cfg, tmp_path / precision, root)
    record = records["bf16-mixed"]
    assert record["precision"] == "bf16-mixed"
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
    trained = _weights(load_module(tmp_path / "bf16-mixed" / "model.ckpt"))
    assert all(v.dtype == torch.float32 for v in trained.values())
    assert max(float((trained[k] - initial[k]).abs().max()) for k in initial) > 1e-4
    if not gan:  # autoencoders and VAEs: bf16 rounding, not another result (GAN losses measure nothing)
        ours, reference = record["metrics"]["val/loss"], records["32-true"]["metrics"]["val/loss"]
        assert ours == pytest.approx(reference, rel=0.05), (ours, reference)


def test_vae_likelihood_and_kl_stay_float32_under_autocast(params):
    module = build_module(OmegaConf.to_container(params.models.vae), (1, 28, 28))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module.step(x)
    assert out.loss.dtype == torch.float32 and out.logs["kl"].dtype == torch.float32
    reference = module.step(x).logs["kl"]  # float32 throughout (the noise differs: compare magnitudes)
    assert float(out.logs["kl"].detach()) == pytest.approx(float(reference.detach()), rel=0.5)


def test_gradient_penalty_differentiates_twice_under_bf16_autocast(params):
    module = build_module(OmegaConf.to_container(params.models.wgan_gp), (1, 28, 28))
    real, fake = torch.rand(8, 1, 28, 28) * 2 - 1, torch.rand(8, 1, 28, 28) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(module.critic, real, fake)
    assert gp.dtype == torch.float32 and math.isfinite(float(gp))
    gp.backward()  # the penalty's gradient reaches the critic's weights (not the output bias: d/dx ignores it)
    weights = [p for name, p in module.critic.named_parameters() if name.endswith("weight")]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in weights)


@pytest.mark.parametrize("model", ["conv_ae", "conv_vae", "wgan_gp"])
def test_the_gpu_profile_runs_on_the_cpu(root, fashion_prepared, tmp_path, model):
    """experiment=full (trainer=gpu: bf16-mixed, compiled networks, data on the device) with accelerator=cpu."""
    cfg = run_cfg(root, fashion_prepared, tmp_path, f"model={model}", "experiment=full", *SHORT)
    cfg.trainer.accelerator = "cpu"
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.compile and cfg.trainer.schedule == "full"
    record = fit(cfg, tmp_path / "out", root)
    assert record["precision"] == "bf16-mixed"
    assert all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
    module = load_module(tmp_path / "out" / "model.ckpt")
    assert not any("_orig_mod" in key for key in module.state_dict())
