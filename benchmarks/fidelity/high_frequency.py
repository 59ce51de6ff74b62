"""Fine detail of generated samples next to the real test images: mean |x - its 3x3 box blur| (outside the test suite).

    python benchmarks/fidelity/high_frequency.py models/mlp_gan/fashion_mnist/model.ckpt [more checkpoints]

It cannot tell pixel speckle from texture; it says whether samples carry less, as much or more fine detail
than the real images (docs/fidelity.md, the MLP GAN's mode-seeking term).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from aegan.models.inference import sample
from aegan.models.registry import load_module


def high_frequency_energy(images: torch.Tensor) -> float:
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    return float((images - blurred).abs().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--test", type=Path, default=Path("data/prepared/fashion_mnist/test.pt"))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    test = torch.load(args.test, weights_only=True)["images"][: args.n].float()
    print(f"real test images  {high_frequency_energy(test):.4f}")
    for checkpoint in args.checkpoints:
        torch.manual_seed(0)
        print(f"{checkpoint}  {high_frequency_energy(sample(load_module(checkpoint).eval(), args.n, 500)):.4f}")


if __name__ == "__main__":
    main()
