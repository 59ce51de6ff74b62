"""What every model family shares: a training step that runs several optimiser steps, buffered metrics.

A training batch from the datamodule may hold several mini-batches of `model.batch_size` images
(`trainer.steps_per_execution`, the Keras option of that name). Each mini-batch is one optimiser
step, taken in the same order as with one mini-batch per Lightning batch, so the numbers do not
change; Lightning's per-batch work (loop, hooks, logging: about 1.5 ms on a 2-core CPU, as long as a
whole step of the dense autoencoder) is paid once per chunk. Optimisation is manual for that reason;
families write `train_minibatch` and call `optimize` for each of their optimisers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy

from aegan.errors import ConfigError
from aegan.models.train_metrics import TrainMetrics


@dataclass(frozen=True)
class Capabilities:
    """What a family can do; consumers (evaluation, previews, latent tools) ask this, not the family name."""

    encode: bool = False  # images -> codes -> images (reconstructions, latent maps, probes)
    sample: bool = False  # codes from the prior -> images (sample grids, sample FID)
    likelihood: bool = False  # an ELBO and an importance-sampled log-likelihood of test images
    translate: bool = False  # images of one domain -> images of another (translation strips and metrics)
    denoise: bool = False  # corrupted images -> clean ones (the denoising protocol)


class GenerativeModule(L.LightningModule):
    family: str
    capabilities: Capabilities
    pairing: str | None = None  # translation families: "paired" (Pix2Pix) or "unpaired" (CycleGAN) data
    # The metric a sweep minimises by default (training/objective.py computes those training does not log).
    objective: str = "val/loss"
    monitor: str | None = "val/loss"
    prog_bar: tuple[str, ...] = ("train/loss",)

    def __init__(self, model: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = model
        self.automatic_optimization = False
        self.train_metrics = TrainMetrics(self.prog_bar)
        # configure_training sets these from the trainer config (Lightning clips only under automatic
        # optimisation; NHWC convolutions: no-op for MLPs).
        self.gradient_clip_val: float | None = None
        self.channels_last = False
        self._minibatch = 0
        self._steps_total = 0  # optimiser steps (mini-batches) since the run began, resumed with the checkpoint
        self._direct: bool | None = None

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """One optimiser step (or the family's group of steps) on one mini-batch (a dict of named tensors,
        data/datamodule.py); returns what to log."""
        raise NotImplementedError

    def reference_step(self, optimizers: list[torch.optim.Optimizer], x: torch.Tensor, index: int) -> None:
        """The family's step written as a plain PyTorch loop would (no Lightning, no logging): what
        `aegan bench` times train_minibatch against. None here: bench reports the family as unmeasured."""
        raise NotImplementedError(f"aegan bench has no reference loop for the {self.family} family yet")

    @staticmethod
    def plain_loss_step(optimizers: list[torch.optim.Optimizer], loss: torch.Tensor) -> None:
        (optimizer,) = optimizers
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def keep_known_pixels(self, known: torch.Tensor) -> None:
        """Paste the input's pixels where `known` (1, 1, H, W) is True into every output (data/tasks.py
        `known_pixels`): paired translators only."""
        raise ConfigError(f"the {self.family} family cannot keep an input's known pixels; use a paired translator")

    def refine_input(self) -> None:
        """Output a correction of the input instead of an image from scratch (data/tasks.py `refines_input`):
        paired translators only."""
        raise ConfigError(f"the {self.family} family cannot refine its input; use a paired translator")

    @torch.no_grad()
    def dry_run(self) -> torch.Tensor:
        """Two dummy inputs through every network (config.check_model_fits_data): the images made."""
        return self(torch.zeros(2, *self.example_input_array.shape[1:]))

    def preview_samples(self, n: int) -> torch.Tensor:
        """The sample grid of the epoch previews (families with `capabilities.sample`)."""
        return self.sample(n)

    def configure_training(self, trainer_cfg: Mapping[str, Any]) -> None:
        """The trainer options the module carries out itself (conf/trainer/default.yaml)."""
        self.gradient_clip_val = trainer_cfg.get("gradient_clip_val")
        self.channels_last = bool(trainer_cfg.get("channels_last", False))
        if trainer_cfg.get("compile"):
            self.compile_networks()

    def compile_networks(self) -> None:
        """torch.compile each network in place (nn.Module.compile: state_dict keys stay as they are)."""
        for network in self.children():
            network.compile()

    def on_train_epoch_start(self) -> None:
        self._minibatch = 0

    @property
    def minibatches_done(self) -> int:
        """Optimiser steps (mini-batches) taken so far in this epoch: what the progress bar counts."""
        return self._minibatch

    @property
    def steps_total(self) -> int:
        """Optimiser steps (mini-batches) since the run began: the step axis of the logged metrics."""
        return self._steps_total

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aegan_steps_total"] = self._steps_total

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._steps_total = int(checkpoint.get("aegan_steps_total", 0))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        size = int(self.cfg["batch_size"])
        for minibatch in _minibatches(batch, size, self.channels_last):
            logs = self.train_minibatch(minibatch, self._minibatch)
            self.train_metrics.add(self._minibatch, len(next(iter(minibatch.values()))), logs)
            self._minibatch += 1
            self._steps_total += 1
        self.train_metrics.maybe_flush(self, batch_idx)

    def log_validation(self, values: dict[str, torch.Tensor]) -> None:
        """Epoch means of validation metrics; under DDP averaged over the ranks' shards at the epoch's end."""
        for key, value in values.items():
            self.log(key, value.detach(), on_epoch=True, prog_bar=key == "val/loss", sync_dist=True)

    def optimize(self, optimizer: Any, loss: torch.Tensor) -> None:
        """zero_grad, backward, clip, step for one of this module's (Lightning-wrapped) optimisers."""
        optimizer.zero_grad(set_to_none=True)
        direct = self._direct_steps()
        if direct:
            loss.backward()
        else:
            self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradient_norm(optimizer)
        if direct:
            optimizer.optimizer.step()
            self._count_optimizer_step()
        else:
            optimizer.step()

    def _count_optimizer_step(self) -> None:
        """What Lightning's optimiser wrapper records around a step it takes: trainer.global_step counts it."""
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.increment_ready()
        progress.increment_completed()

    def clip_gradient_norm(self, optimizer: Any) -> None:
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:  # float16: Lightning unscales first
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
            return
        # Unscaled gradients (float32, bf16-mixed) are clipped as they are: Lightning's mixed-precision plugin
        # refuses any fused optimiser here, bf16 included, though bf16 has no scaler to undo.
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.gradient_clip_val)  # it skips parameters without gradients

    def on_fit_start(self) -> None:
        self._direct = None
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def _direct_steps(self) -> bool:
        """Whether backward and the optimiser step may skip Lightning's wrappers (about 0.2 ms per step on a
        2-core CPU: 7-10 % of a dense autoencoder's step at batch 32).

        The wrappers are needed for DDP (gradient reducer), a gradient scaler (fp16), a profiler and
        callbacks or modules that use the backward and optimiser-step hooks; aegan's use none of them.
        32-bit and bf16 on one device go direct.
        """
        if self._direct is None:
            trainer = self.trainer
            self._direct = (
                isinstance(trainer.strategy, SingleDeviceStrategy)
                and getattr(trainer.precision_plugin, "scaler", None) is None
                and isinstance(trainer.profiler, PassThroughProfiler)
                and not any(_uses_step_hooks(hooked) for hooked in [*trainer.callbacks, self])
            )
        return self._direct


def _minibatches(batch: dict[str, torch.Tensor], size: int, channels_last: bool) -> Iterator[dict[str, torch.Tensor]]:
    """The chunk's mini-batches of `size`, every named tensor cut alike."""
    chunk = len(next(iter(batch.values())))
    pieces = {key: t.split(size) for key, t in batch.items()}
    for i in range(len(next(iter(pieces.values())))):
        minibatch = {}
        for key, parts in pieces.items():
            t = parts[i]
            if t.dim() == 4 and (chunk > size or channels_last):
                # A compact copy of the mini-batch, as a gather per step would give: 4-8% more images/s
                # than a view into the chunk for the MLPs at batch 128 (aegan bench, paired runs).
                t = t.clone(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            minibatch[key] = t
        yield minibatch


def _uses_step_hooks(hooked: L.Callback | L.LightningModule) -> bool:
    base = L.Callback if isinstance(hooked, L.Callback) else L.LightningModule
    hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
    return any(getattr(type(hooked), hook) is not getattr(base, hook) for hook in hooks)
