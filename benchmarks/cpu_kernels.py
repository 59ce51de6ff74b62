"""Two CPU kernels aegan replaces, each against what it replaces, in one process (not part of the tests).

    python benchmarks/cpu_kernels.py [--repeats 3] [--steps 60] [--inception-images 50]

dropout    the DCGAN's training step (its `reference_step`, batch 32, random images) with aegan's dropout
           (models/blocks.py: masks from bulk 64-bit draws) and with torch's F.dropout (one bernoulli draw
           per element), alternating, images/s per pass.
inception  the FID Inception's pool features: the TorchScript file (NCHW input, as the original FID code
           runs it, and channels-last) against aegan's eager rebuild (metrics/inception_eager.py), images/s
           per pass, and the largest feature difference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from aegan.config import compose
from aegan.metrics.features import default_inception_path
from aegan.metrics.inception_eager import EagerInception
from aegan.models import blocks
from aegan.models.registry import build_module

ROOT = Path(__file__).resolve().parents[1]


def dcgan_images_per_second(torch_dropout: bool, steps: int) -> float:
    aegan_forward = blocks.Dropout.forward
    if torch_dropout:
        blocks.Dropout.forward = lambda self, x: F.dropout(x, self.p, self.training)
    try:
        cfg = compose(ROOT, "config", ["model=dcgan", "data=fashion_mnist", "trainer=cpu"])
        torch.manual_seed(0)
        module = build_module(OmegaConf.to_container(cfg.model, resolve=True), (1, 28, 28)).train()
        optimizers = module.configure_optimizers()
        x = torch.rand(32, 1, 28, 28) * 2 - 1
        for i in range(8):
            module.reference_step(optimizers, x, i)
        start = time.perf_counter()
        for i in range(steps):
            module.reference_step(optimizers, x, i)
        return steps * len(x) / (time.perf_counter() - start)
    finally:
        blocks.Dropout.forward = aegan_forward


@torch.no_grad()
def inception(n: int, repeats: int) -> None:
    scripted = torch.jit.load(str(default_inception_path()), map_location="cpu").eval()
    eager = EagerInception(scripted).eval()
    x = (torch.rand(n, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255).round() / 128 - 1
    channels_last = x.contiguous(memory_format=torch.channels_last)
    print(f"inception: largest feature difference {(eager(x[:4]) - scripted(x[:4])).abs().max().item():.2e}")
    for _ in range(repeats):
        rates = {}
        for name, run in (
            ("torchscript NCHW", lambda: scripted(x)),
            ("torchscript channels-last", lambda: scripted(channels_last)),
            ("eager", lambda: eager(x)),
        ):
            start = time.perf_counter()
            run()
            rates[name] = n / (time.perf_counter() - start)
        print("inception images/s: " + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--inception-images", type=int, default=50)
    args = parser.parse_args()
    for _ in range(args.repeats):
        torch_rate = dcgan_images_per_second(True, args.steps)
        aegan_rate = dcgan_images_per_second(False, args.steps)
        print(f"dcgan step images/s: F.dropout {torch_rate:.0f}, aegan dropout {aegan_rate:.0f}", flush=True)
    if args.inception_images:
        inception(args.inception_images, min(args.repeats, 2))


if __name__ == "__main__":
    main()
