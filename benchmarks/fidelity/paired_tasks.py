"""Pix2Pix on each paired task of Fashion-MNIST against the task's naive answer, after a short training on
the test suite's subset (3,000 training images). Not part of the tests.

    python benchmarks/fidelity/paired_tasks.py edges2fashion superres_fashion inpaint_fashion [--epochs 1]

Prints one JSON line per task: train seconds, and for the outputs and the naive answer (the mean image,
bicubic upsampling, the mean-filled hole) the test L1, MSE, PSNR and SSIM of `evaluate`'s paired protocol
(metrics/reconstruction.py, [0, 1] pixels), for inpainting also the L1 inside and outside the hole.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from aegan.config import compose
from aegan.data.prepare import read_split
from aegan.data.tasks import hole_mask, naive_baseline
from aegan.metrics.reconstruction import mean_quality
from aegan.models.registry import load_module
from aegan.training.fit import fit
from aegan.training.run import ensure_prepared

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ["limits.train=3000", "limits.val=500", "limits.test=1000", "seed=0"]


def measure(task: str, epochs: int, work: Path) -> dict[str, float | str]:
    cfg = compose(
        ROOT,
        "config",
        [
            "model=pix2pix",
            f"data={task}",
            f"trainer.max_epochs={epochs}",
            f"paths.runs_dir={work}",
            f"logger.tracking_uri=sqlite:///{work / 'mlflow.db'}",
            "logger.progress_bar=false",
            "logger.log_model=false",
            *SUBSET,
        ],
    )
    cfg.paths.prepared_dir = str(ensure_prepared(cfg, ROOT))  # the subset, prepared under the work directory
    prepared = Path(cfg.paths.prepared_dir) / cfg.data.name
    start = time.perf_counter()
    fit(cfg, work / task, ROOT)
    seconds = time.perf_counter() - start
    module = load_module(work / task / "model.ckpt")
    test, train = read_split(prepared, "test"), read_split(prepared, "train")
    with torch.no_grad():
        output = module.translate(test["inputs"])
    target, naive = test["images"], naive_baseline(cfg.data, train["images"])(test["inputs"])
    row: dict[str, float | str | bool] = {"task": task, "epochs": epochs, "train_s": round(seconds, 1)}
    row["known_pixels_kept"] = bool(module.known.any())  # the input's pixels pasted into the output
    row["input_refined"] = bool(module.refine)  # G outputs a correction of the input
    for name, images in (("pix2pix", output), ("naive", naive)):
        row.update({f"{name}_{key}": round(value, 4) for key, value in mean_quality([(images, target)]).items()})
        if cfg.data.task == "inpaint":
            error = (images - target).abs() / 2  # [0, 1] pixels, as mean_quality's L1
            hole = hole_mask(target.shape, float(cfg.data.hole)).expand_as(target)
            row[f"{name}_hole_l1"] = round(error[hole].mean().item(), 4)
            row[f"{name}_outside_l1"] = round(error[~hole].mean().item(), 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aegan-paired-") as work:
        for task in args.tasks:
            print(json.dumps(measure(task, args.epochs, Path(work))), flush=True)


if __name__ == "__main__":
    main()
