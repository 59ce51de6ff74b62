"""The run report: one self-contained HTML page for the whole pipeline (images inlined as data URIs, so
the same file works from disk, as an MLflow artifact, or mailed around).

Per (model, dataset): the headline metrics, training curves, samples, reconstructions, latent map and
interpolation strip. A small script marks images that fail to load (the browser test reads it).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from aegan.io import atomic_write_text
from aegan.reports.summary import COLUMNS, classifiers, collect

PICTURES = [
    ("samples.png", "samples"),
    ("reconstructions.png", "reconstructions (rows: originals, then reconstructions)"),
    ("translations.png", "translations (rows: inputs, outputs, targets)"),
    ("latent_map.png", "latent map"),
    ("interpolation_linear.png", "interpolation strips"),
    ("interpolation_linear.gif", "interpolation (animated)"),
]

CHECK_IMAGES = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !(img.complete && img.naturalWidth > 0));
  broken.forEach((img) => img.classList.add("broken"));
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesBroken = broken.length;
});
</script>
"""

STYLE = """
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
figure { display: inline-block; vertical-align: top; margin: 0.5em 1em 0.5em 0; }
figcaption { font-size: 0.8em; color: #555; }
img { image-rendering: pixelated; max-width: 640px; }
img.broken { outline: 3px solid red; }
</style>
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def curves_png(history: Path) -> bytes | None:
    """Training curves from history.csv: losses per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(history)
    columns = [c for c in frame.columns if c.endswith("loss")]  # train/val loss, or d_loss/g_loss for GANs
    if frame.empty or not columns:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    for column in columns:
        ax.plot(frame["epoch"], frame[column], marker="o", label=column)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def figure(uri: str, caption: str) -> str:
    text = html.escape(caption)
    return f'<figure><img src="{uri}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def number(value: float) -> str:
    """Counts as integers (10000, not 1e+04), other values to 4 significant digits."""
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4g}"


def metrics_table(row: pd.Series) -> str:
    """The headline metrics of one (model, dataset) row of the summary frame."""
    rows = [(COLUMNS[key], row[key]) for key in COLUMNS if key in row and pd.notna(row[key])]
    cells = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{number(value)}</td></tr>"
        if isinstance(value, float)
        else f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def model_section(model: str, data: str, row: pd.Series | None, models_dir: Path, reports_dir: Path) -> str:
    parts = [f'<section id="{model}-{data}"><h2>{html.escape(model)} on {html.escape(data)}</h2>']
    if row is not None:
        parts.append(metrics_table(row))
    history = models_dir / model / data / "history.csv"
    if history.exists() and (png := curves_png(history)):
        parts.append(figure(data_uri(png, "image/png"), "training curves"))
    for name, caption in PICTURES:
        path = reports_dir / model / data / name
        if path.exists():
            mime = "image/gif" if name.endswith(".gif") else "image/png"
            parts.append(figure(data_uri(path.read_bytes(), mime), caption))
    parts.append("</section>")
    return "\n".join(parts)


def write_report(runs: list[tuple[str, str]], metrics_dir: Path, models_dir: Path, reports_dir: Path) -> Path:
    """The page for the pipeline's (model, dataset) runs, in the order given."""
    frame = collect(metrics_dir)
    table = ""
    rows: dict[tuple[str, str], pd.Series] = {}
    if not frame.empty:
        keep = ["model", "dataset", *[c for c in COLUMNS if c in frame.columns]]
        rows = {(r["model"], r["dataset"]): r for _, r in frame[keep].iterrows()}
        table = frame[keep].rename(columns=COLUMNS).to_html(index=False, float_format=number, na_rep="")
    classifier_rows = [
        f"<tr><td>{r['dataset']}</td><td>{r['task']}</td><td>{r['accuracy']:.4f}</td><td>{r['epochs']}</td></tr>"
        for r in classifiers(metrics_dir)
    ]
    sections = [model_section(m, d, rows.get((m, d)), models_dir, reports_dir) for m, d in runs]
    toc = " · ".join(f'<a href="#{m}-{d}">{m}/{d}</a>' for m, d in runs)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>aegan report</title>{STYLE}</head>
<body>
<h1>aegan report</h1>
<p>{toc}</p>
<h2>Domain classifiers (FID backbone, mode coverage)</h2>
<table><tr><th>dataset</th><th>predicts</th><th>test accuracy</th><th>epochs</th></tr>{"".join(classifier_rows)}</table>
<h2>Summary</h2>
<div style="overflow-x: auto">{table}</div>
{"".join(sections)}
{CHECK_IMAGES}
</body></html>
"""
    path = reports_dir / "index.html"
    atomic_write_text(path, page)
    return path
