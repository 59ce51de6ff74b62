"""Seconds per DVC stage of a finished `dvc repro`, from its outputs' modification times (outside the test suite).

    date +%s > /tmp/start; make run; python benchmarks/stage_times.py --start "$(cat /tmp/start)"

`dvc repro` runs the stages one after another, so a stage took the time between the newest file of its outs
(as `dvc.lock` lists them) and the newest file of the stage before it; the first stage's time counts from
--start (the venv and pip install of `make run` included).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def newest_mtime(path: Path) -> float:
    if path.is_dir():
        return max((f.stat().st_mtime for f in path.rglob("*") if f.is_file()), default=0.0)
    return path.stat().st_mtime if path.exists() else 0.0


def stage_finish_times(project: Path) -> list[tuple[float, str]]:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    finished = [
        (max((newest_mtime(project / out["path"]) for out in stage.get("outs", [])), default=0.0), name)
        for name, stage in lock["stages"].items()
    ]
    return sorted(finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--start", type=float, required=True, help="the run's start, seconds since the epoch")
    args = parser.parse_args()
    previous = args.start
    for finished, name in stage_finish_times(args.project):
        print(f"{name:48s} {finished - previous:7.1f} s  (at {finished - args.start:6.0f} s)")
        previous = finished


if __name__ == "__main__":
    main()
