"""Real Lightning training on real Fashion-MNIST (a subset): the model must beat a baseline."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cfg

from aegan.errors import TrainingDivergedError
from aegan.metrics.reconstruction import mean_image_baseline, reconstruction_metrics
from aegan.models.registry import load_module
from aegan.tracking import client
from aegan.training.fit import fit


@pytest.fixture(scope="module")
def trained(root, fashion_prepared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = run_cfg(root, fashion_prepared, tmp, "model=dense_ae", "model.batch_size=32", "trainer.max_epochs=4")
    record = fit(cfg, tmp / "out", root)
    return cfg, tmp / "out", record


def test_dense_ae_beats_the_mean_image_baseline(trained, fashion_prepared):
    _, out, _ = trained
    module = load_module(out / "model.ckpt")
    test = torch.load(fashion_prepared / "prepared" / "fashion_mnist" / "test.pt", weights_only=True)["images"]
    train = torch.load(fashion_prepared / "prepared" / "fashion_mnist" / "train.pt", weights_only=True)["images"]
    ours = reconstruction_metrics(module, test)
    baseline = mean_image_baseline(train, test)
    print("dense_ae", ours, "mean image", baseline)
    assert ours["mse"] < 0.6 * baseline["mse"], (ours, baseline)
    assert ours["bce"] < baseline["bce"]


def test_loss_falls_and_history_is_written(trained):
    _, out, _ = trained
    lines = (out / "history.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [dict(zip(lines[0].split(","), r.split(","), strict=True)) for r in lines[1:]]
    assert header[0] == "epoch" and len(rows) == 4
    assert float(rows[-1]["val/loss"]) < float(rows[0]["val/loss"])


def test_mlflow_has_params_per_epoch_metrics_checkpoint_and_grids(trained):
    _, out, record = trained
    mlflow = client(record["tracking_uri"])
    run = mlflow.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.latent_dim"] == "32"
    assert len(mlflow.get_metric_history(record["run_id"], "val/loss")) == 4
    artifacts = {a.path for a in mlflow.list_artifacts(record["run_id"])}
    assert {"checkpoints", "images", "history.csv"} <= artifacts
    pictures = [a.path for a in mlflow.list_artifacts(record["run_id"], "images") if a.path.endswith(".png")]
    assert len(pictures) == 4 and all("/reconstructions+step+" in p for p in pictures), pictures
    assert json.loads((out / "run.json").read_text())["run_id"] == record["run_id"]


def test_same_config_same_numbers(root, fashion_prepared, trained, tmp_path):
    cfg, _, record = trained
    again = fit(cfg, tmp_path / "again", root)
    assert again["metrics"]["val/loss"] == pytest.approx(record["metrics"]["val/loss"], abs=1e-6)


@pytest.mark.parametrize(("model", "epochs"), [("vae", 2), ("wgan_gp", 1)])
def test_steps_per_execution_changes_speed_not_results(root, fashion_prepared, tmp_path, model, epochs):
    """16 optimiser steps per Lightning batch run the same mini-batches in the same order as 1 (47 steps an
    epoch: two whole chunks and a partial one)."""
    records = {}
    for k in (1, 16):
        cfg = run_cfg(
            root,
            fashion_prepared,
            tmp_path / str(k),
            f"model={model}",
            f"trainer.max_epochs={epochs}",
            f"trainer.steps_per_execution={k}",
            "model.batch_size=64",
        )
        records[k] = fit(cfg, tmp_path / str(k) / "out", root)["metrics"]
    assert records[1].keys() == records[16].keys()
    for key, value in records[1].items():
        assert records[16][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert "val/loss" in records[1] or "val/d_loss" in records[1]


@pytest.mark.parametrize("model", ["dense_ae", "wgan_gp"])
def test_direct_optimiser_steps_count_and_train_as_lightnings_wrapper(root, fashion_prepared, model):
    """Without step hooks the module steps its optimisers itself (models/base.py optimize); a callback with
    on_before_optimizer_step puts Lightning's wrapper back. Both give the same weights and global_step."""
    import lightning as L
    from omegaconf import OmegaConf

    from aegan.data.datamodule import PreparedDataModule
    from aegan.models.registry import build_module

    class Hooked(L.Callback):
        calls = 0

        def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
            Hooked.calls += 1

    cfg = run_cfg(root, fashion_prepared, fashion_prepared, f"model={model}", "model.batch_size=64")
    results = {}
    for callbacks in ([], [Hooked()]):
        L.seed_everything(cfg.seed, verbose=False)
        data = PreparedDataModule(fashion_prepared / "prepared" / "fashion_mnist", batch_size=64, seed=cfg.seed)
        module = build_module(OmegaConf.to_container(cfg.model, resolve=True), data.image_shape)
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=1, limit_train_batches=5, limit_val_batches=0, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
        )  # fmt: skip
        trainer.fit(module, datamodule=data)
        assert module._direct is not bool(callbacks)
        results[bool(callbacks)] = (trainer.global_step, [p.detach().clone() for p in module.parameters()])
    optimizers = 2 if model == "wgan_gp" else 1
    assert results[False][0] == results[True][0] == 5 * optimizers == Hooked.calls
    for direct, wrapped in zip(results[False][1], results[True][1], strict=True):
        torch.testing.assert_close(direct, wrapped, rtol=0, atol=0)


def test_gradient_clipping_bounds_the_updates(root, fashion_prepared, tmp_path):
    """trainer.gradient_clip_val under manual optimisation: clipped to 1e-9, Adam's steps shrink to ~lr * 1e-3."""
    import lightning as L
    from omegaconf import OmegaConf

    from aegan.models.registry import build_module

    moved = {}
    for clip, precision in ((None, "32-true"), (1e-9, "32-true"), (1e-9, "bf16-mixed")):  # bf16: fused Adam too
        cfg = run_cfg(root, fashion_prepared, tmp_path, "model=dense_ae", "trainer.max_epochs=1")
        cfg.trainer.gradient_clip_val, cfg.trainer.precision = clip, precision
        fit(cfg, tmp_path / f"{clip}-{precision}", root)
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # fit's seeding: the same initial weights
        initial = build_module(OmegaConf.to_container(cfg.model, resolve=True), (1, 28, 28)).state_dict()
        trained = load_module(tmp_path / f"{clip}-{precision}" / "model.ckpt").state_dict()
        moved[clip, precision] = max(float((trained[k] - initial[k]).abs().max()) for k in initial)
    assert moved[None, "32-true"] > 1e-3, moved
    assert moved[1e-9, "32-true"] < 1e-4 and moved[1e-9, "bf16-mixed"] < 1e-4, moved


def test_compiled_training_writes_checkpoints_that_load_eagerly(root, fashion_prepared, tmp_path):
    """trainer.compile=true: torch.compile (inductor, C++ on CPU) in place, so checkpoint keys stay plain."""
    cfg = run_cfg(root, fashion_prepared, tmp_path, "model=dense_ae", "trainer.max_epochs=1", "trainer.compile=true")
    record = fit(cfg, tmp_path / "out", root)
    assert 0 < record["metrics"]["val/loss"] < 1
    module = load_module(tmp_path / "out" / "model.ckpt")
    assert not any("_orig_mod" in key for key in module.state_dict())


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(root, fashion_prepared, tmp_path):
    import shutil

    from aegan.io import md5_file

    data = tmp_path / "data"
    shutil.copytree(fashion_prepared / "prepared", data / "prepared")
    out = tmp_path / "out"
    fit(run_cfg(root, data, tmp_path, "trainer.max_epochs=1"), out, root)
    last = out / "checkpoints" / "last.ckpt"
    good = md5_file(last)

    train_pt = data / "prepared" / "fashion_mnist" / "train.pt"
    split = torch.load(train_pt, weights_only=True)
    split["images"][:] = float("nan")
    torch.save(split, train_pt)
    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 1, batch 0"):
        fit(run_cfg(root, data, tmp_path, "trainer.max_epochs=2", "ckpt_path=last"), out, root)
    assert md5_file(last) == good  # the last good checkpoint is untouched and still loads
    assert load_module(last).family == "autoencoder"


def test_runs_in_one_process_log_to_their_own_tracking_uri(root, fashion_prepared, tmp_path, monkeypatch):
    """MLflow 3's set_tracking_uri (called by Lightning's logger) exports MLFLOW_TRACKING_URI; a second run
    in the same process must still log to the database its config names."""
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    records = []
    for name in ("first", "second"):
        uri = f"logger.tracking_uri=sqlite:///{tmp_path / name / 'mlflow.db'}"
        cfg = run_cfg(root, fashion_prepared, tmp_path / name, "model=dense_ae", "trainer.max_epochs=1", uri)
        records.append(fit(cfg, tmp_path / name / "out", root))
        assert "MLFLOW_TRACKING_URI" not in os.environ
    for name, record in zip(("first", "second"), records, strict=True):
        assert record["tracking_uri"] == f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        assert client(record["tracking_uri"]).get_run(record["run_id"]).info.run_name == "dense_ae-fashion_mnist"
