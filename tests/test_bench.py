"""`aegan bench` end to end on the fixture data: both paths train, under each precision asked for
(mlp_gan: a GAN that samples from a weight average, which its training must not)."""

import json

import pandas as pd
from conftest import FIXTURE_OVERRIDES

from aegan.bench import run_bench


def fixture_overrides(fashion_prepared, tmp_path):
    """The fixture's prepared data; anything prepared anew (a translation task) under tmp_path."""
    return [f"paths.prepared_dir={fashion_prepared / 'prepared'}", f"paths.runs_dir={tmp_path}", *FIXTURE_OVERRIDES]


def test_bench_times_both_paths_per_precision_and_writes_its_tables(root, fashion_prepared, tmp_path):
    frame = run_bench(
        root,
        ["dense_ae", "mlp_gan"],
        [16],
        warmup=1,
        steps=2,
        data="fashion_mnist",
        out_dir=tmp_path / "bench",
        inception_images=0,
        steps_per_execution=[1],
        repeats=1,
        precisions=["32-true", "bf16-mixed"],
        overrides=fixture_overrides(fashion_prepared, tmp_path),
    )
    assert list(zip(frame["model"], frame["precision"], strict=True)) == [
        ("dense_ae", "32-true"),
        ("dense_ae", "bf16-mixed"),
        ("mlp_gan", "32-true"),
        ("mlp_gan", "bf16-mixed"),
    ]
    assert (frame[["aegan_img_s", "bare_img_s", "ratio", "vs_first"]] > 0).all().all()
    assert (frame["vs_first"][frame["precision"] == "32-true"] == 1.0).all()
    assert not (tmp_path / "prepared").exists()  # the fixture's prepared data were used, not made again
    assert pd.read_csv(tmp_path / "bench" / "train_throughput.csv").equals(frame)
    written = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert len(written["train"]) == 4 and written["features"][0]["backbone"] == "domain"


def test_a_family_without_a_reference_loop_gets_its_own_throughput(root, fashion_prepared, tmp_path, capsys):
    frame = run_bench(
        root,
        ["pix2pix"],
        [8],
        warmup=1,
        steps=2,
        data="edges2fashion",
        out_dir=tmp_path / "bench",
        inception_images=0,
        steps_per_execution=[1],
        repeats=2,
        overrides=fixture_overrides(fashion_prepared, tmp_path),
    )
    assert frame["aegan_img_s"].iloc[0] > 0 and frame["bare_img_s"].isna().all() and frame["ratio"].isna().all()
    assert capsys.readouterr().out.count("no reference loop for the pix2pix family") == 1
