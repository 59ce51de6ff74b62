"""Callbacks: per-epoch history (CSV for DVC plots) and preview grids logged to MLflow."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import lightning as L
import torch

from aegan.io import atomic_write_text
from aegan.reports.grids import reconstruction_grid, save_grid


class EpochHistory(L.Callback):
    """Writes history.csv (one row per epoch: every epoch-level metric) after each epoch."""

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
        self.rows = [r for r in self.rows if r["epoch"] != trainer.current_epoch]
        self.rows.append({"epoch": trainer.current_epoch, **metrics})
        keys = sorted({k for row in self.rows for k in row} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *keys])
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))


class PreviewImages(L.Callback):
    """Saves a reconstruction (autoencoders) or sample (generators) grid each N epochs, logs it to MLflow."""

    def __init__(self, out_dir: Path, every_n_epochs: int = 1, n: int = 64) -> None:
        self.out_dir, self.every, self.n = out_dir, every_n_epochs, n

    def render(self, module: L.LightningModule, batch: torch.Tensor, epoch: int) -> list[Path]:
        """Reconstructions for models with an encoder, samples for models that generate (VAEs: both)."""
        paths = []
        with torch.no_grad():
            if hasattr(module, "encode"):
                paths.append(reconstruction_grid(batch, module(batch), self.out_dir / f"recon_{epoch:03d}.png"))
            if hasattr(module, "sample"):
                paths.append(save_grid(module.sample(len(batch)), self.out_dir / f"samples_{epoch:03d}.png", nrow=8))
        return paths

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if not trainer.is_global_zero:
            return
        if trainer.sanity_checking or not (last or (self.every and (trainer.current_epoch + 1) % self.every == 0)):
            return
        images, _ = trainer.datamodule.load_split("val")
        batch = images[: self.n].float().to(module.device)
        was_training = module.training
        module.eval()
        paths = self.render(module, batch, trainer.current_epoch)
        module.train(was_training)
        logger = trainer.logger
        if logger is not None and hasattr(logger, "run_id"):
            for path in paths:
                logger.experiment.log_artifact(logger.run_id, str(path), "images")
