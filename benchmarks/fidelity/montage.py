"""The README's picture of samples: 64 fresh samples of each trained model, titled, side by side.

    python benchmarks/fidelity/montage.py --out docs/images/samples.png \
        "dcgan (FID 176)=models/dcgan/fashion_mnist/model.ckpt" "wgan_gp (FID 208)=/tmp/fx/.../model.ckpt"

A title=source pair per panel: a checkpoint (64 fresh samples of `sample`: a GAN's prior) or a PNG grid the
evaluate stage wrote (e.g. reports/vae/fashion_mnist/samples_gmm.png, samples from the codes' GMM);
`--keep-top 0.25` keeps the top quarter of each PNG (the first strips of a translations.png).
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


def panel(title: str, source: str, seed: int, keep_top: float = 1.0) -> Image.Image:
    if source.endswith(".png"):
        image = Image.open(source).convert("RGB")
        image = image.crop((0, 0, image.width, round(image.height * keep_top)))
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
    parser.add_argument("--keep-top", type=float, default=1.0, help="the share of each PNG panel kept, from the top")
    args = parser.parse_args()
    panels = [panel(*spec.rsplit("=", 1), args.seed, args.keep_top) for spec in args.panels]
    columns = min(args.columns, len(panels))
    rows = [panels[i : i + columns] for i in range(0, len(panels), columns)]
    width = max(p.width for p in panels)
    tops = np.cumsum([0] + [max(p.height for p in row) + 10 for row in rows])  # each row as tall as its tallest
    sheet = Image.new("RGB", (columns * (width + 10), int(tops[-1])), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(image, (c * (width + 10), int(tops[r])))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"montage: {args.out} ({len(panels)} panels, {np.prod(sheet.size)} pixels)")


if __name__ == "__main__":
    main()
