"""Fidelity harness: each seed's own Keras model next to the matching aegan model, same data, same epochs,
scored on one yardstick (aegan's evaluation protocol, domain backbone). Not part of the test suite.

    make fidelity MODELS="dcgan mlp_gan" EPOCHS=1      # builds .venv-keras (tensorflow-cpu) on first use
    python benchmarks/fidelity/run.py --models dcgan --epochs 1 [--keras-python .venv-keras/bin/python]

Needs the pipeline's prepared data and domain classifier (`dvc repro classifier@fashion_mnist`, which
runs download and prepare first). Writes reports/fidelity/{fidelity.csv,fidelity.md} and prints the table:
per model and side, the metrics, training seconds, images/s, and the ratio aegan / seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GENERATORS = ("dcgan", "mlp_gan")
ENCODERS = ("dense_ae", "stacked_ae", "conv_ae", "denoising_ae", "vae", "conv_vae")
# Foster's 64x64 GANs (seed 004; LEGO bricks and CelebA, neither offline): trained on Fashion-MNIST stretched to
# 64x64 (`--train-limit N`: N training images, drawn as `limits.train` draws them, both sides; an epoch at 64x64
# takes minutes per thousand images on 2 cores), scored after antialiased resizing back to 28x28 against the test
# images taken the same way round. The aegan side: its networks at 64 with the seed's settings (the configs'
# comments name them).
# (Hydra merges a dict into a dict: the optimiser is replaced by deleting it first.)
ADAM_FOSTER = [
    f"{prefix}model.{key}_optimizer{value}"
    for key in ("generator", "critic")
    for prefix, value in (("~", ""), ("+", "={name: adam, lr: 2.0e-4, betas: [0.5, 0.999], eps: 1.0e-07}"))
]
AT_64 = {
    "dcgan_64": [
        "model=dcgan",
        "model.latent_dim=100",
        "model.batch_size=128",
        *ADAM_FOSTER,
    ],
    "wgan_gp_64": [
        "model=wgan_gp",
        "model.latent_dim=128",
        "model.batch_size=512",
        "model.n_critic=3",
        *ADAM_FOSTER,
    ],
}
CRITIC_PASSES = {"wgan_gp_64": 3}


def export(prepared: Path, out: Path) -> Path:
    """train.npy / test.npy (NHWC float32 in [-1, 1]) for the Keras side, once."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        if not (out / f"{split}.npy").exists():
            images = torch.load(prepared / f"{split}.pt", weights_only=True)["images"].float()
            np.save(out / f"{split}.npy", images.permute(0, 2, 3, 1).numpy())
    return out


def run_seed(
    keras_python: str, model: str, data: Path, epochs: int, out: Path, samples: int, seed: int
) -> tuple[dict, dict]:
    cmd = [keras_python, str(HERE / "seeds.py"), model, "--data", str(data), "--epochs", str(epochs)]
    cmd += ["--out", str(out), "--samples", str(samples), "--seed", str(seed)]
    subprocess.run(cmd, check=True)
    arrays = np.load(out / f"{model}.npz")
    tensors = {k: torch.from_numpy(arrays[k]).permute(0, 3, 1, 2).contiguous() for k in arrays.files}
    return tensors, json.loads((out / f"{model}.json").read_text())


def at_64(out: Path, train_limit: int | None) -> list[str]:
    """Fashion-MNIST prepared at 64x64 under out (`train_limit` training images, drawn as `limits.train` draws
    them), once; the overrides that train on it."""
    from aegan.config import compose
    from aegan.data.prepare import prepare_dataset

    overrides = [f"paths.prepared_dir={out}", "data.image_size=64", f"limits.train={train_limit or 'null'}"]
    cfg = compose(ROOT, "config", overrides)
    if not (out / cfg.data.name / "manifest.json").exists():
        prepare_dataset(cfg.data, ROOT / cfg.paths.raw_dir, out, cfg.limits, cfg.seed)
    return overrides


def to_28(images: torch.Tensor) -> torch.Tensor:
    """64x64 images back to the domain classifier's 28x28 (antialiased, as `prepare` resizes)."""
    return torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", antialias=True).clamp(-1, 1)


def run_aegan(model: str, epochs: int, out: Path, samples: int, seed: int, overrides: list[str]) -> tuple[dict, dict]:
    from aegan.config import compose
    from aegan.models.inference import reconstruct, sample
    from aegan.models.registry import load_module
    from aegan.tracking import check_tracking
    from aegan.training.fit import fit

    tracking = f"sqlite:///{out / 'mlflow.db'}"
    choice = AT_64.get(model, [f"model={model}"])
    # Foster's WGAN-GP steps the critic 3 times on each batch, aegan's on 3 fresh batches: 3 aegan epochs hold
    # the critic and generator steps of one of Foster's.
    passes = epochs * CRITIC_PASSES.get(model, 1)
    base = [*choice, f"trainer.max_epochs={passes}", f"seed={seed}", "logger.progress_bar=false"]
    cfg = compose(ROOT, "config", [*base, f"logger.tracking_uri={tracking}", *overrides])
    shutil.rmtree(out / model, ignore_errors=True)  # a fresh run, never a resumed or "complete" one
    # The tracking database exists before the clock starts, as in a project after its first run (creating
    # one, MLflow's schema migrations, takes about 4 s once).
    check_tracking(tracking)
    start = time.perf_counter()
    record = fit(cfg, out / model, ROOT, tags={"source": "fidelity"})
    seconds = time.perf_counter() - start
    module = load_module(out / model / "model.ckpt")
    prepared = ROOT / cfg.paths.prepared_dir / cfg.data.name
    n_train = json.loads((prepared / "manifest.json").read_text())["splits"]["train"]["count"]
    torch.manual_seed(0)
    tensors = {}
    if module.capabilities.sample:
        tensors["samples"] = sample(module, samples)
    if module.capabilities.encode:
        tensors["reconstructions"] = reconstruct(module, torch.load(prepared / "test.pt", weights_only=True)["images"])
    timing = {
        "train_seconds": seconds,
        "images_per_second": epochs * n_train / seconds,
        "batch_size": cfg.model.batch_size,
    }
    return tensors, {**timing, "epochs": record["epochs"], "precision": record["precision"]}


def score(tensors: dict, test: torch.Tensor, labels: torch.Tensor, classifier_path: Path) -> dict:
    from omegaconf import OmegaConf

    from aegan.metrics.distribution import distribution_metrics, fid, mode_coverage
    from aegan.metrics.domain_classifier import load_classifier
    from aegan.metrics.features import DomainBackbone, extract_features
    from aegan.models.inference import batched

    evaluation = OmegaConf.load(ROOT / "conf" / "evaluation" / "default.yaml")
    classifier = load_classifier(classifier_path)
    backbone = DomainBackbone(classifier)
    real = extract_features(backbone, test, 500)
    row: dict = {}
    if "samples" in tensors:
        fake = extract_features(backbone, tensors["samples"], 500)
        scores = distribution_metrics(backbone, real, fake, evaluation)
        row.update({k: scores[k] for k in ("fid", "precision", "recall", "density", "coverage")})
        coverage = mode_coverage(batched(classifier, tensors["samples"], classifier, 500), 0.1)
        row["classes_covered"] = coverage["classes_covered"]
    if "reconstructions" in tensors:
        recon = tensors["reconstructions"]
        row["mse"] = float(((recon - test) / 2).pow(2).mean())  # on [0, 1] pixels
        row["recon_fid"] = fid(backbone, real, extract_features(backbone, recon, 500))
        predicted = batched(classifier, recon, classifier, 500).argmax(1)
        row["recon_accuracy"] = float((predicted == labels).float().mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[*GENERATORS, *ENCODERS])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=42, help="both sides' random seed (repeats: another seed)")
    parser.add_argument("--keras-python", default=str(ROOT / ".venv-keras" / "bin" / "python"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "fidelity"))
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seed results already in --out")
    parser.add_argument("--aegan-only", action="store_true", help="train and score the aegan side only")
    parser.add_argument("--label", default="aegan", help="the aegan side's name in the table (for variants)")
    parser.add_argument(
        "--train-limit", type=int, help="the 64x64 models train on this many training images (both sides)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the aegan side, e.g. model.n_critic=1")
    args = parser.parse_args()
    out = Path(args.out)
    prepared = ROOT / "data" / "prepared" / "fashion_mnist"
    classifier = ROOT / "models" / "domain_classifier" / "fashion_mnist" / "classifier.pt"
    for path in (prepared / "test.pt", classifier):
        if not path.exists():
            sys.exit(f"fidelity: {path} is missing: run `dvc repro classifier@fashion_mnist` first")
    rows = []
    for model in args.models:
        overrides, model_prepared, data_dir = args.overrides, prepared, out / "data"
        if model in AT_64:
            at = f"64_{args.train_limit or 'all'}"
            overrides = [*at_64(out / f"prepared_{at}", args.train_limit), *args.overrides]
            model_prepared, data_dir = out / f"prepared_{at}" / "fashion_mnist", out / f"data_{at}"
        data = export(model_prepared, data_dir)
        test = torch.load(model_prepared / "test.pt", weights_only=True)
        if model in AT_64:
            test["images"] = to_28(test["images"])
        sides = []
        if args.aegan_only:
            pass  # the aegan side below only
        elif args.skip_seed and (out / "seed" / f"{model}.npz").exists():
            arrays = np.load(out / "seed" / f"{model}.npz")
            seed = {k: torch.from_numpy(arrays[k]).permute(0, 3, 1, 2).contiguous() for k in arrays.files}
            seed_time = json.loads((out / "seed" / f"{model}.json").read_text())
            sides.append(("seed (Keras)", seed, seed_time))
        else:
            seed_run = run_seed(args.keras_python, model, data, args.epochs, out / "seed", args.samples, args.seed)
            sides.append(("seed (Keras)", *seed_run))
        aegan_run = run_aegan(model, args.epochs, out / "aegan", args.samples, args.seed, overrides)
        sides.append((args.label, *aegan_run))
        for side, tensors, timing in sides:
            if model in AT_64:
                tensors = {key: to_28(images) for key, images in tensors.items()}
            row = {
                "model": model,
                "side": side,
                "epochs": args.epochs,
                "seed": args.seed,
                **score(tensors, test["images"], test["labels"], classifier),
            }
            row.update({k: timing[k] for k in ("batch_size", "train_seconds", "images_per_second")})
            row["numerics"] = timing.get("precision", "float32 (Keras)")
            rows.append(row)
            print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "fidelity.csv", index=False)
    (out / "fidelity.md").write_text(frame.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
