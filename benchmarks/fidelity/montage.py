"""The README's picture of samples: 64 fresh samples of each trained model, titled, side by side.

    python benchmarks/fidelity/montage.py --out docs/images/samples.png \
        "dcgan (FID 176)=models/dcgan/fashion_mnist/model.ckpt" "wgan_gp (FID 208)=/tmp/fx/.../model.ckpt"

A title=source pair per panel: a checkpoint (64 fresh samples of `sample`: a GAN's prior) or a PNG grid the
evaluate stage wrote (e.g. reports/vae/fashion_mnist/samples_gmm.png, samples from the codes' GMM).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from aegan.models.inference import sample
from aegan.models.registry import load_module
from aegan.reports.grids import make_grid


def panel(title: str, source: str, seed: int) -> Image.Image:
    if source.endswith(".png"):
        image = Image.open(source).convert("RGB")
    else:
        module = load_module(source).eval()
        torch.manual_seed(seed)
        grid = make_grid(sample(module, 64), nrow=8)
        image = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).convert("RGB")
    canvas = Image.new("RGB", (image.width, image.height + 22), "white")
    canvas.paste(image, (0, 22))
    ImageDraw.Draw(canvas).text((4, 4), title, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("panels", nargs="+", help="title=checkpoint or title=grid.png")
    parser.add_argument("--out", required=True)
    parser.add_argument("--columns", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    panels = [panel(*spec.rsplit("=", 1), args.seed) for spec in args.panels]
    width, height = max(p.width for p in panels), max(p.height for p in panels)
    columns = min(args.columns, len(panels))
    rows = -(-len(panels) // columns)
    sheet = Image.new("RGB", (columns * (width + 10), rows * (height + 10)), "white")
    for i, image in enumerate(panels):
        sheet.paste(image, ((i % columns) * (width + 10), (i // columns) * (height + 10)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"montage: {args.out} ({len(panels)} panels, {np.prod(sheet.size)} pixels)")


if __name__ == "__main__":
    main()
