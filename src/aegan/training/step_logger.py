"""The MLflow logger of training runs: metrics on the optimiser-step axis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger


class StepLogger(MLFlowLogger):
    """MLFlowLogger whose step axis is the optimiser steps of `step_module` (its `steps_total`), not
    Lightning's batches, each of which holds trainer.steps_per_execution optimiser steps. A reference, not
    a closure: DDP's spawned processes receive the logger pickled."""

    step_module: Any = None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, self.step_module.steps_total if self.step_module is not None else step)
