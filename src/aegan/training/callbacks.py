"""Callbacks: per-epoch history (CSV for DVC plots) and preview grids logged to MLflow."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from PIL import Image

from aegan.io import atomic_write_text
from aegan.reports.grids import reconstruction_grid, save_grid, strips_grid


def _csv(fieldnames: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class EpochHistory(L.Callback):
    """After each epoch (counted from 1): history.csv, one row per epoch with every epoch-level metric, and
    curves.csv, the loss curves in long form (epoch, curve, value) for DVC's one-line-per-curve plot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:  # DDP: metrics are synced, rank 0 writes
            return
        metrics = {
            k.removesuffix("_epoch"): float(v)
            for k, v in trainer.callback_metrics.items()
            if not k.endswith("_step") and v.numel() == 1
        }
        epoch = trainer.current_epoch + 1
        self.rows = [r for r in self.rows if r["epoch"] != epoch]
        self.rows.append({"epoch": epoch, **metrics})
        keys = sorted({k for row in self.rows for k in row} - {"epoch"})
        atomic_write_text(self.path, _csv(["epoch", *keys], self.rows))
        curves = [
            {"epoch": row["epoch"], "curve": key, "value": row[key]}
            for row in self.rows
            for key in keys
            if key.endswith("loss") and key in row
        ]
        atomic_write_text(self.path.with_name("curves.csv"), _csv(["epoch", "curve", "value"], curves))

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))


class PreviewImages(L.Callback):
    """Saves a reconstruction (autoencoders) or sample (generators) grid each N epochs, logs it to MLflow."""

    def __init__(self, out_dir: Path, every_n_epochs: int = 1, n: int = 64) -> None:
        self.out_dir, self.every, self.n = out_dir, every_n_epochs, n

    def render(self, module: L.LightningModule, val: dict[str, torch.Tensor], epoch: int) -> dict[str, Path]:
        """Reconstructions for models with an encoder, samples for models that generate (VAEs: both),
        input / output / target strips for models that translate."""
        paths = {}
        batch = val["image"]
        with torch.no_grad():
            if module.capabilities.translate:
                rows = module.translation_rows(val)  # what the family shows: input / output / target, ...
                paths["translations"] = strips_grid(rows, self.out_dir / f"translate_{epoch:03d}.png")
            if module.capabilities.encode:
                paths["reconstructions"] = reconstruction_grid(
                    batch, module(batch), self.out_dir / f"recon_{epoch:03d}.png"
                )
            if module.capabilities.sample:
                samples = module.preview_samples(len(batch))
                paths["samples"] = save_grid(samples, self.out_dir / f"samples_{epoch:03d}.png", nrow=8)
        return paths

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if not trainer.is_global_zero:
            return
        if trainer.sanity_checking or not (last or (self.every and (trainer.current_epoch + 1) % self.every == 0)):
            return
        val = {k: t[: self.n].float().to(module.device) for k, t in trainer.datamodule.load_split("val").items()}
        was_training = module.training
        module.eval()
        paths = self.render(module, val, trainer.current_epoch)
        module.train(was_training)
        logger = trainer.logger
        if isinstance(logger, MLFlowLogger):  # the run page's image slider, one picture per key and step
            for key, path in paths.items():
                with Image.open(path) as image:
                    logger.experiment.log_image(logger.run_id, image.copy(), key=key, step=module.steps_total)


class SystemMetrics(L.Callback):
    """MLflow's system metrics (CPU, memory, disk, network; GPU with pynvml) for the run, every `every_s` s.

    Lightning's MLFlowLogger does not start MLflow's monitor, which only follows fluent-API runs."""

    def __init__(self, run_id: str, tracking_uri: str, every_s: float, resume: bool = False) -> None:
        self.run_id, self.tracking_uri, self.every_s, self.resume = run_id, tracking_uri, every_s, resume
        self.monitor = None

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.every_s or not trainer.is_global_zero:
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self.monitor = SystemMetricsMonitor(
            self.run_id, sampling_interval=self.every_s, resume_logging=self.resume, tracking_uri=self.tracking_uri
        )
        self.monitor.start()

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if self.monitor is not None:
            self.monitor.finish()
            self.monitor = None
