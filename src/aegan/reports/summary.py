"""The summary table printed at the end of `dvc repro`: one row per (model, dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from aegan.io import atomic_path, atomic_write_text

# Column -> header. FID etc. use the domain backbone (the default pipeline's); inception columns appear
# when that backbone ran. "fid" is the sample FID for generators, the reconstruction FID for plain AEs.
COLUMNS = {
    "test.mse": "test MSE",
    "baseline.mean_image_mse": "mean-image MSE",
    "test.psnr": "PSNR",
    "test.ssim": "SSIM",
    "test.l1": "test L1",
    "baseline.l1": "naive L1",
    "semantic.outputs": "label kept",
    "test.success": "translated",
    "test.cycle_l1": "cycle L1",
    "a_to_b.samples.domain.fid": "FID A->B",
    "fid.domain": "FID (domain)",
    "kid.domain": "KID (domain)",
    "precision.domain": "precision",
    "recall.domain": "recall",
    "fid.inception": "FID (inception)",
    "mode_coverage.classes_covered": "classes covered",
    "samplers.gmm.samples.domain.fid": "FID GMM codes",
    "samplers.two_stage.samples.domain.fid": "FID 2-stage codes",
    "mode_coverage.kl_uniform": "KL to uniform",
    "probe.codes": "probe: codes",
    "probe.pixels": "probe: pixels",
    "probe.pca": "probe: PCA",
    "anomaly.auc": "anomaly AUC",
    "denoising.psnr_gain": "denoising PSNR gain",
    "vae.log_likelihood": "log p(x)",
    "n_fake": "n (FID)",
    "train.epochs": "epochs",
}
# The numbers DVC compares across experiments (scores/<model>/<data>.json): quality, not bookkeeping.
SCORES = (
    "test.mse",
    "test.l1",
    "semantic.outputs",
    "test.success",
    "test.cycle_l1",
    "a_to_b.samples.domain.fid",
    "test.psnr",
    "test.ssim",
    "fid.domain",
    "precision.domain",
    "recall.domain",
    "fid.inception",
    "mode_coverage.classes_covered",
    "samplers.gmm.samples.domain.fid",
    "samplers.two_stage.samples.domain.fid",
    "probe.codes",
    "anomaly.auc",
    "denoising.psnr_gain",
    "vae.log_likelihood",
)
CLASSIFIERS = "domain_classifier"  # metrics/domain_classifier/<data>.json: the per-dataset classifiers


def _headline(flat: dict) -> dict:
    """One FID/KID/precision/recall per backbone: of the samples when the model generates, else of reconstructions."""
    out = {}
    for backbone in ("domain", "inception"):
        for source in ("samples", "reconstruction"):
            if f"{source}.{backbone}.fid" in flat:
                for metric in ("fid", "kid", "precision", "recall"):
                    out[f"{metric}.{backbone}"] = flat[f"{source}.{backbone}.{metric}"]
                out.setdefault("n_fake", flat[f"{source}.{backbone}.n_fake"])
                break
    return out


def headline_scores(metrics: dict) -> dict[str, float]:
    """The headline numbers of one model: what DVC compares (`dvc exp show`, `dvc metrics diff`)."""
    flat = pd.json_normalize(metrics).iloc[0].to_dict()
    row = {**flat, **_headline(flat)}
    return {key: float(row[key]) for key in SCORES if key in row and row[key] == row[key]}


ANOMALY = "anomaly"  # metrics/anomaly/<model>/<data>.json: the anomaly stage's, merged into the model's row


def collect(metrics_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(metrics_dir.glob("*/*.json")):
        if path.parent.name in (CLASSIFIERS, ANOMALY):
            continue
        metrics = json.loads(path.read_text())
        extra = metrics_dir / ANOMALY / path.parent.name / path.name
        if extra.exists():
            metrics = {**metrics, **json.loads(extra.read_text())}
        flat = pd.json_normalize(metrics).iloc[0].to_dict()
        rows.append({"model": path.parent.name, "dataset": path.stem, **flat, **_headline(flat)})
    return pd.DataFrame(rows)


def classifiers(metrics_dir: Path) -> list[dict]:
    """The per-dataset domain classifiers: dataset, what it predicts (task), test accuracy, epochs."""
    rows = []
    for path in sorted((metrics_dir / CLASSIFIERS).glob("*.json")):
        scores = json.loads(path.read_text())
        rows.append(
            {
                "dataset": path.stem,
                "task": scores.get("task", "classes"),
                "accuracy": scores["test_accuracy"],
                "epochs": scores["epochs"],
            }
        )
    return rows


def classifier_table(metrics_dir: Path) -> str:
    rows = classifiers(metrics_dir)
    if not rows:
        return ""
    lines = ["| dataset | domain classifier predicts | test accuracy | epochs |", "|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['task']} | {r['accuracy']:.4f} | {r['epochs']} |" for r in rows]
    return "\n".join(lines) + "\n"


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


def console_table(frame: pd.DataFrame, width: int = 120) -> str:
    """The table for a terminal: pandas wraps the columns into blocks no wider than `width`."""
    cols = [c for c in COLUMNS if c in frame.columns]
    table = frame.set_index(["model", "dataset"])[cols].rename(columns=COLUMNS)
    return table.to_string(line_width=width, float_format=lambda v: f"{v:.4g}", na_rep="") + "\n"


def console_summary(metrics_dir: Path) -> str:
    """What `aegan summary` prints: the console table of the metrics as they are, nothing written."""
    frame = collect(metrics_dir)
    if frame.empty:
        return "no metrics yet: run `dvc repro`\n"
    classifiers = classifier_table(metrics_dir)
    return console_table(frame) + ("\n" + classifiers if classifiers else "")


def write_summary(metrics_dir: Path, reports_dir: Path) -> str:
    """reports/summary.md (Markdown, every column in one table) and summary.csv; returns the console version."""
    frame = collect(metrics_dir)
    if frame.empty:
        text = console = "no metrics yet: run `dvc repro`\n"
    else:
        text, console = markdown(frame), console_table(frame)
        classifiers = classifier_table(metrics_dir)
        if classifiers:
            text += "\n" + classifiers
            console += "\n" + classifiers
        with atomic_path(reports_dir / "summary.csv") as tmp:
            frame.to_csv(tmp, index=False)
    atomic_write_text(reports_dir / "summary.md", "# aegan summary\n\n" + text)
    return console
