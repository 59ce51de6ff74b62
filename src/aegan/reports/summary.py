"""The summary table printed at the end of `dvc repro`: one row per (model, dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from aegan.io import atomic_path, atomic_write_text

COLUMNS = {
    "test.mse": "test MSE",
    "test.bce": "test BCE",
    "baseline.mean_image_mse": "mean-image MSE",
    "test.n": "n test",
    "samples.diversity": "sample diversity",
    "samples.mean_image_mse": "sample mean-image MSE",
    "train.epochs": "epochs",
}


def collect(metrics_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(metrics_dir.glob("*/*.json")):
        flat = pd.json_normalize(json.loads(path.read_text())).iloc[0].to_dict()
        rows.append({"model": path.parent.name, "dataset": path.stem, **flat})
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (no tabulate dependency)."""
    cols = ["model", "dataset", *[c for c in COLUMNS if c in frame.columns]]
    header = ["model", "dataset", *[COLUMNS[c] for c in cols[2:]]]

    def fmt(value: object) -> str:
        if isinstance(value, float) and value != value:  # NaN: the metric does not apply to this family
            return ""
        if isinstance(value, float):
            return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(row[c]) for c in cols) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def write_summary(metrics_dir: Path, reports_dir: Path) -> str:
    frame = collect(metrics_dir)
    if frame.empty:
        text = "no metrics yet: run `dvc repro`\n"
    else:
        text = markdown(frame)
        with atomic_path(reports_dir / "summary.csv") as tmp:
            frame.to_csv(tmp, index=False)
    atomic_write_text(reports_dir / "summary.md", "# aegan summary\n\n" + text)
    return text
