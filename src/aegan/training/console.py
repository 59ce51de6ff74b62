"""What a training run prints: a progress bar in optimiser steps, and none of the libraries' chatter.

Lightning's bar counts its own batches, each `trainer.steps_per_execution` optimiser steps (27/27 where
Keras shows 422/422), numbers epochs from 0 and shows `v_num`. This one counts the mini-batches the
module has stepped through, numbers epochs from 1, and shows the loss values only.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from aegan.models.base import GenerativeModule

# Lines that tell a user nothing about their run: an advertisement, a deprecation inside Lightning
# itself, and a hint about log intervals that steps_per_execution makes moot.
_NOISE = ("litlogger", "isinstance(treespec, LeafSpec)", "is smaller than the logging interval")


def _is_noise(record: logging.LogRecord) -> bool:
    return not any(text in record.getMessage() for text in _NOISE)


def quiet_libraries() -> None:
    for text in _NOISE:
        warnings.filterwarnings("ignore", message=f".*{text.replace('(', '.').replace(')', '.')}")
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _is_noise not in logger.filters:
        logger.addFilter(_is_noise)
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # "Started/Stopping monitoring ..."


class StepProgressBar(RichProgressBar):
    def _steps_in_epoch(self) -> int:
        trainer, datamodule = self.trainer, self.trainer.datamodule
        size, per_chunk = int(datamodule.batch_size), int(datamodule.steps_per_execution)
        images = trainer.train_dataloader.items_per_epoch
        return min(int(trainer.num_training_batches) * per_chunk, math.ceil(images / size))

    @property
    def total_train_batches(self) -> int | float:
        return self._steps_in_epoch()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: GenerativeModule, outputs: Any, batch: Any, i: int
    ) -> None:
        super().on_train_batch_end(trainer, module, outputs, batch, i)
        self._update(self.train_progress_bar_id, module.minibatches_done)

    def _get_train_description(self, current_epoch: int) -> str:
        total = f"/{self.trainer.max_epochs}" if self.trainer.max_epochs is not None else ""
        return f"Epoch {current_epoch + 1}{total}"

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics
