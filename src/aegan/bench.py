"""`aegan bench`: training throughput through the real aegan path vs the same networks in a bare loop.

aegan: the family's LightningModule, PreparedDataModule and the Trainer settings of `fit` (no logger or
checkpoints: they are per-epoch costs, not per-step); bare: the same module's loss in a plain PyTorch
loop over random-batch gathers from the same in-memory tensors, same optimiser. Both time `steps`
steps after `warmup` steps. The ratio aegan/bare is what Lightning and aegan's per-step work cost.
Also: FID feature extraction throughput per backbone. Not part of the test suite.
"""

from __future__ import annotations

import platform
import resource
import time
from pathlib import Path
from statistics import median
from typing import Any

import lightning as L
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from aegan.data.datamodule import PreparedDataModule
from aegan.data.prepare import read_split
from aegan.io import atomic_path, atomic_write_json
from aegan.models.registry import build_module
from aegan.training.fit import lightning_log_every
from aegan.training.trainer_args import model_precision


class StepTimer(L.Callback):
    """Wall time of training steps warmup+1 .. warmup+steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.count = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.end, self.count = time.perf_counter(), batch_idx - self.warmup + 1


def _fit_timed(
    cfg: DictConfig,
    datamodule: L.LightningDataModule,
    batch_size: int,
    timer: L.Callback,
    max_epochs: int,
    limit_train_batches: int | None = None,
) -> None:
    """Train cfg.model as `fit` would (module options, Trainer settings), without logger or checkpoints."""
    L.seed_everything(cfg.seed, verbose=False)
    model_cfg = {**OmegaConf.to_container(cfg.model, resolve=True), "batch_size": batch_size}
    module = build_module(model_cfg, datamodule.image_shape)
    module.configure_training(cfg.trainer)
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=model_precision(cfg.trainer, cfg.model),
        max_epochs=max_epochs,
        limit_train_batches=limit_train_batches,
        limit_val_batches=0,
        deterministic=cfg.trainer.deterministic,
        log_every_n_steps=lightning_log_every(cfg.logger.log_every_n_steps, datamodule.steps_per_execution),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)


def aegan_throughput(
    cfg: DictConfig,
    prepared: Path,
    batch_size: int,
    warmup: int,
    steps: int,
    steps_per_execution: int = 1,
    timer_class: type[StepTimer] = StepTimer,
) -> float:
    """Images/s through Lightning; warmup and steps count optimiser steps (rounded up to whole chunks).
    timer_class: a StepTimer subclass, e.g. one that hooks the optimiser step (benchmarks/optimizer_wrapper.py)."""
    k = steps_per_execution
    datamodule = PreparedDataModule(prepared, batch_size=batch_size, seed=cfg.seed, steps_per_execution=k)
    warmup, steps = -(-warmup // k), -(-steps // k)
    timer = timer_class(warmup)
    _fit_timed(cfg, datamodule, batch_size, timer, max_epochs=1, limit_train_batches=warmup + steps)
    return timer.count * k * batch_size / (timer.end - timer.start)


def bare_throughput(
    cfg: DictConfig,
    prepared: Path,
    batch_size: int,
    warmup: int,
    steps: int,
    optimizer: dict[str, Any] | None = None,
    channels_last: bool | None = None,
) -> float:
    """The reference loop; optimizer: extra keys for every optimiser config (e.g. {"foreach": False});
    channels_last: None -> trainer.channels_last, as the aegan path uses it."""
    L.seed_everything(cfg.seed, verbose=False)
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))  # what the Trainer sets for aegan
    images = read_split(prepared, "train")["images"]
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("optimizer", "generator_optimizer", "critic_optimizer"):
        if key in model_cfg:
            model_cfg[key] = {**model_cfg[key], **(optimizer or {})}
    module = build_module(model_cfg, tuple(images.shape[1:])).train()
    if channels_last is None:
        channels_last = bool(cfg.trainer.get("channels_last", False))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    module.to(memory_format=layout)
    configured = module.configure_optimizers()  # the family's own optimisers: [generator, critic] for GANs
    optimizers = configured if isinstance(configured, list) else [configured]
    # bf16-mixed as Lightning's CPU plugin runs it: float32 weights, the forward passes under autocast
    bf16 = model_precision(cfg.trainer, cfg.model, "cpu") == "bf16-mixed"
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        x = images[torch.randint(len(images), (batch_size,))].float().contiguous(memory_format=layout)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            module.reference_step(optimizers, x, step)
    return steps * batch_size / (time.perf_counter() - start)


def _cases(root: Path, models: list[str], data: str, batch_sizes: list[int], overrides: list[str]):
    """(model, cfg, prepared dataset dir, batch size) for every combination, data prepared once per model."""
    from aegan.config import compose
    from aegan.training.run import ensure_prepared

    for model in models:
        cfg = compose(root, "config", [f"model={model}", f"data={data}", "trainer=cpu", *overrides])
        prepared = ensure_prepared(cfg, root) / cfg.data.name
        for batch_size in batch_sizes:
            yield model, cfg, prepared, batch_size


def _add_row(rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
    rows.append(row)
    print(" | ".join(f"{k} {v}" for k, v in row.items()), flush=True)


def _write_csv(rows: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


# What each CPU setting gives, measured on the bare loop (so Lightning's share does not blur it).
TUNING_VARIANTS: dict[str, dict[str, Any]] = {
    "pytorch default (for-loop optimiser, NCHW)": {"optimizer": {"foreach": False}, "channels_last": False},
    "foreach optimiser": {"optimizer": {"foreach": True}, "channels_last": False},
    "aegan optimiser (fused where available)": {"optimizer": {}, "channels_last": False},
    "aegan optimiser + channels_last": {"optimizer": {}, "channels_last": True},
}


def run_tuning(
    root: Path,
    models: list[str],
    batch_sizes: list[int],
    warmup: int,
    steps: int,
    data: str,
    repeats: int,
    out_dir: Path,
) -> pd.DataFrame:
    """Images/s of the bare loop per setting; ratio: paired median against PyTorch's defaults."""
    rows: list[dict[str, Any]] = []
    for model, cfg, prepared, batch_size in _cases(root, models, data, batch_sizes, []):
        runs: dict[str, list[float]] = {name: [] for name in TUNING_VARIANTS}
        for _ in range(repeats):
            for name, variant in TUNING_VARIANTS.items():
                runs[name].append(bare_throughput(cfg, prepared, batch_size, warmup, steps, **variant))
        baseline = runs[next(iter(TUNING_VARIANTS))]
        for name, values in runs.items():
            ratio = median(v / b for v, b in zip(values, baseline, strict=True))
            row = {"model": model, "batch_size": batch_size, "setting": name}
            _add_row(rows, {**row, "img_s": round(median(values), 1), "ratio": round(ratio, 3)})
    return _write_csv(rows, out_dir / "tuning.csv")


class SyntheticData(PreparedDataModule):
    """In-memory random images of a chosen shape: epoch cost without a dataset of that size on disk."""

    def __init__(self, n: int, shape: tuple[int, int, int], batch_size: int, steps_per_execution: int) -> None:
        L.LightningDataModule.__init__(self)
        self.batch_size, self.seed, self.to_device, self.exclude_class = batch_size, 0, True, None
        self.steps_per_execution, self.shape = steps_per_execution, shape
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(n, *shape, generator=generator) * 2 - 1
        self.splits = {"train": {"image": images}, "val": {"image": images[:8]}}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.times.append(time.perf_counter() - self.start)


def epoch_seconds(cfg: DictConfig, n: int, image_size: int, channels: int = 1) -> float:
    """Seconds of the second (steady-state) training epoch of cfg.model on n synthetic images."""
    batch_size = int(cfg.model.batch_size)
    datamodule = SyntheticData(n, (channels, image_size, image_size), batch_size, int(cfg.trainer.steps_per_execution))
    timer = EpochTimer()
    _fit_timed(cfg, datamodule, batch_size, timer, max_epochs=2)
    return timer.times[-1]


def run_scaling(root: Path, models: list[str], sizes: list[int], image_sizes: list[int], out_dir: Path) -> pd.DataFrame:
    """Epoch time vs dataset size and vs image size (the models' 28x28 and 64x64 architectures)."""
    from aegan.config import compose

    rows: list[dict[str, Any]] = []
    for model in models:
        cfg = compose(root, "config", [f"model={model}", "trainer=cpu"])
        for image_size in image_sizes:
            for n in sizes:
                seconds = epoch_seconds(cfg, n, image_size)
                row = {"model": model, "image_size": image_size, "images": n, "epoch_s": round(seconds, 2)}
                _add_row(rows, {**row, "ms_per_image": round(1000 * seconds / n, 3)})
    return _write_csv(rows, out_dir / "scaling.csv")


def feature_throughput(backbone: torch.nn.Module, image_shape: tuple[int, ...], n: int, batch_size: int) -> float:
    from aegan.metrics.features import extract_features

    images = torch.rand(n, *image_shape) * 2 - 1
    extract_features(backbone, images[:batch_size], batch_size)  # warm-up
    start = time.perf_counter()
    extract_features(backbone, images, batch_size)
    return n / (time.perf_counter() - start)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def paired_throughput(
    cfg: DictConfig, prepared: Path, batch_size: int, warmup: int, steps: int, k: int, repeats: int
) -> dict[str, float]:
    """Median images/s of both paths and the median of their per-repeat ratios.

    bare and aegan run back to back in each repeat, so a repeat's ratio sees the same machine load; on a
    shared 2-core machine single timings vary by +-30%, medians of paired ratios by a few percent.
    A family without a reference loop (its `reference_step`) gets aegan's images/s alone.
    """
    bare: list[float] = []
    ours: list[float] = []
    reference = True
    for _ in range(repeats):
        if reference:
            try:
                bare.append(bare_throughput(cfg, prepared, batch_size, warmup, steps))
            except NotImplementedError as exc:
                print(f"{cfg.model.name}: {exc}", flush=True)
                reference = False
        ours.append(aegan_throughput(cfg, prepared, batch_size, warmup, steps, k))
    if not reference:
        return {"aegan_img_s": median(ours), "bare_img_s": None, "ratio": None}
    ratios = [o / b for o, b in zip(ours, bare, strict=True)]
    return {"aegan_img_s": median(ours), "bare_img_s": median(bare), "ratio": median(ratios)}


def run_bench(
    root: Path,
    models: list[str],
    batch_sizes: list[int],
    warmup: int,
    steps: int,
    data: str,
    out_dir: Path,
    inception_images: int = 32,
    steps_per_execution: list[int] | None = None,
    repeats: int = 3,
    precisions: list[str] | None = None,
    overrides: list[str] | None = None,
) -> pd.DataFrame:
    """steps_per_execution, precisions: the values to compare; None -> the trainer config's (precision resolved).
    overrides: Hydra overrides of every case's config.

    With more than one precision, every row also gets `vs_first`: its aegan images/s over the first
    precision's, measured in the same run.
    """
    rows: list[dict[str, Any]] = []
    for model, cfg, prepared, batch_size in _cases(root, models, data, batch_sizes, overrides or []):
        for k in steps_per_execution or [int(cfg.trainer.steps_per_execution)]:
            first = None
            for precision in precisions or [model_precision(cfg.trainer, cfg.model, "cpu")]:
                run_cfg = OmegaConf.merge(cfg, {"trainer": {"precision": precision}})
                result = paired_throughput(run_cfg, prepared, batch_size, warmup, steps, k, repeats)
                row = {"model": model, "family": cfg.model.family, "batch_size": batch_size}
                row.update({"steps_per_execution": k, "precision": precision})
                row.update(
                    {key: None if v is None else round(v, 3 if key == "ratio" else 1) for key, v in result.items()}
                )
                first = first or result["aegan_img_s"]
                if len(precisions or []) > 1:
                    row["vs_first"] = round(result["aegan_img_s"] / first, 3)
                _add_row(rows, {**row, "peak_rss_mib": round(peak_rss_mib())})
    frame = _write_csv(rows, out_dir / "train_throughput.csv")
    features = feature_rows(cfg, inception_images)
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "repeats": repeats,
        "steps": steps,
        "warmup": warmup,
    }
    atomic_write_json(out_dir / "bench.json", {"info": info, "train": rows, "features": features})
    return frame


def feature_rows(cfg: DictConfig, inception_images: int) -> list[dict[str, Any]]:
    """FID feature extraction images/s: the domain classifier (random weights: same cost) and Inception."""
    from aegan.metrics.domain_classifier import DomainClassifier
    from aegan.metrics.features import DomainBackbone, InceptionBackbone

    shape = (int(cfg.data.channels), int(cfg.data.image_size), int(cfg.data.image_size))
    domain = DomainBackbone(
        DomainClassifier(OmegaConf.to_container(cfg.evaluation.domain_classifier), shape, 10, False)
    )
    rows = [{"backbone": "domain", "img_s": round(feature_throughput(domain, shape, 5000, 500), 1)}]
    if inception_images:
        inception = InceptionBackbone(cfg.evaluation.inception.weights, cfg.evaluation.inception.sha1)
        rows.append(
            {"backbone": "inception", "img_s": round(feature_throughput(inception, shape, inception_images, 16), 2)}
        )
    for row in rows:
        print(f"features {row['backbone']}: {row['img_s']} images/s", flush=True)
    return rows
