"""The summary table: Markdown with every column in the file, a console version that fits 120 columns."""

from __future__ import annotations

import json

from aegan.reports.summary import COLUMNS, write_summary


def test_the_console_summary_fits_120_columns_and_keeps_every_row_and_metric(tmp_path):
    metrics = tmp_path / "metrics"
    models = ["dense_ae", "conv_vae", "wgan_gp"]
    nested = {}
    for i, key in enumerate(COLUMNS):  # every column the table knows, with a distinct value
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = 1000.0 + i + 0.123456
    for model in models:
        (metrics / model).mkdir(parents=True)
        (metrics / model / "fashion_mnist.json").write_text(json.dumps(nested))
    console = write_summary(metrics, tmp_path / "reports")
    assert max(len(line) for line in console.splitlines()) <= 120, console
    for model in models:
        assert console.count(model) >= 2  # one row per model in each block of columns
    assert all(header in console for header in COLUMNS.values())
    markdown = (tmp_path / "reports" / "summary.md").read_text()
    assert all(f"| {model} | fashion_mnist |" in markdown for model in models)
    assert max(len(line) for line in markdown.splitlines()) > 120  # the file keeps one wide table


def test_aegan_summary_prints_the_console_table_and_writes_nothing(root, tmp_path, monkeypatch, capsys):
    import shutil

    from aegan.cli import main

    shutil.copytree(root / "conf", tmp_path / "conf")
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "metrics" / "vae").mkdir(parents=True)
    (tmp_path / "metrics" / "vae" / "fashion_mnist.json").write_text(json.dumps({"test": {"mse": 0.0421}}))
    before = sorted(p for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "vae" in out and "0.0421" in out and "test MSE" in out
    assert sorted(p for p in tmp_path.rglob("*")) == before
