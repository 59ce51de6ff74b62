"""The per-dataset domain classifier: a small CNN whose penultimate features give a fast FID on CPU,
and whose predictions measure mode coverage.

Datasets with `labels` get a softmax classifier; CelebA (40 binary attributes in {-1, 1}) a multi-label
one; a dataset with neither (an image folder without `source.labels`) a rotation classifier, which tells
which of 0, 90, 180, 270 degrees each image was turned by (Gidaris et al. 2018): features learnt without
labels, so domain FID works everywhere, while mode coverage and the other class-based scores are skipped
(`judges_classes`). Trained with Lightning on the prepared training split; test accuracy is the number to
report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import MLFlowLogger
from torch import nn

from aegan.data.datamodule import PreparedDataModule
from aegan.data.prepare import read_split
from aegan.errors import ConfigError
from aegan.io import atomic_torch_save
from aegan.models.blocks import Dropout, build_encoder, build_optimizer


class DomainClassifier(L.LightningModule):
    """Conv features (num_features, ReLU) -> dropout -> linear logits."""

    def __init__(
        self,
        cfg: dict[str, Any],
        image_shape: tuple[int, int, int],
        n_outputs: int,
        multilabel: bool,
        rotation: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg, self.multilabel, self.rotation = cfg, multilabel, rotation
        self.num_features = int(cfg["features"])
        self.encoder = build_encoder(cfg["encoder"], image_shape, self.num_features, out_act="relu")
        self.head = nn.Sequential(Dropout(float(cfg.get("dropout", 0.0))), nn.Linear(self.num_features, n_outputs))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    @property
    def judges_classes(self) -> bool:
        """Whether its predictions are the dataset's classes (one per image): what mode coverage, translation
        success and semantic fidelity count."""
        return not self.multilabel and not self.rotation

    def _loss_and_accuracy(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rotation:  # every image in all four turns, each labelled by its turn
            x = batch["image"]
            y = torch.arange(4, device=x.device).repeat_interleave(len(x))
            x = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
        else:
            x, y = batch["image"], batch["attributes" if self.multilabel else "label"]
        if self.cfg.get("channels_last", False):
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self(x)
        if self.multilabel:
            target = (y > 0).float()
            loss = F.binary_cross_entropy_with_logits(logits, target)
            accuracy = ((logits > 0).float() == target).float().mean()
        else:
            loss = F.cross_entropy(logits, y)
            accuracy = (logits.argmax(1) == y).float().mean()
        return loss, accuracy

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log_dict({"train/loss": loss, "train/accuracy": accuracy}, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log_dict({"val/loss": loss, "val/accuracy": accuracy}, on_epoch=True, prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log_dict({"test/loss": loss, "test/accuracy": accuracy}, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.cfg["optimizer"], self.parameters())


def _targets(datamodule: PreparedDataModule) -> dict[str, Any]:
    """The classifier's outputs from what the prepared split carries: classes, attributes, or four turns."""
    data = read_split(datamodule.prepared_dir, "train")
    if "labels" in data:
        return {"n_outputs": int(data["labels"].max()) + 1, "multilabel": False}
    if "attributes" in data:
        return {"n_outputs": int(data["attributes"].shape[1]), "multilabel": True}
    height, width = datamodule.image_shape[1:]
    if height != width:
        raise ConfigError(
            f"{datamodule.prepared_dir}: no labels, and {height}x{width} images cannot be turned by 90 degrees"
        )
    return {"n_outputs": 4, "multilabel": False, "rotation": True}


def train_classifier(
    cfg: dict[str, Any],
    prepared: Path,
    out_path: Path,
    seed: int,
    trainer_cfg: Any,
    logger_cfg: Any,
    logger: MLFlowLogger | None,
) -> dict[str, float]:
    """Train on the training split, pick nothing on val (fixed epochs), report val and test accuracy."""
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule = PreparedDataModule(prepared, batch_size=int(cfg["batch_size"]), seed=seed)
    module = DomainClassifier(cfg, datamodule.image_shape, **_targets(datamodule))
    if cfg.get("channels_last", False):
        module = module.to(memory_format=torch.channels_last)
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        max_epochs=int(cfg["epochs"]),
        deterministic=trainer_cfg.deterministic,
        enable_progress_bar=logger_cfg.progress_bar,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=logger or False,
        log_every_n_steps=logger_cfg.log_every_n_steps,
    )
    trainer.fit(module, datamodule=datamodule)
    val = float(trainer.callback_metrics["val/accuracy"])
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    atomic_torch_save(out_path, {"hparams": dict(module.hparams), "state_dict": module.state_dict()})
    task = "rotation" if module.rotation else "attributes" if module.multilabel else "classes"
    return {
        "val_accuracy": val,
        "test_accuracy": float(test["test/accuracy"]),
        "epochs": int(cfg["epochs"]),
        "task": task,
    }


def load_classifier(path: Path, map_location: str | torch.device = "cpu") -> DomainClassifier:
    if not path.exists():
        raise ConfigError(
            f"no domain classifier at {path}: run `dvc repro classifier` (or `aegan stage classifier <data>`)"
        )
    saved = torch.load(path, map_location=map_location, weights_only=False)
    module = DomainClassifier(**saved["hparams"])
    module.load_state_dict(saved["state_dict"])
    return module.eval()
