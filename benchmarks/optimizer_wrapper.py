"""What Lightning's optimiser wrapper costs per step, in one process (not part of the tests).

    python benchmarks/optimizer_wrapper.py [--models stacked_ae:32 denoising_ae:32] [--repeats 6] [--steps 480]

For each model at its batch: the bare PyTorch loop (`bench.bare_throughput`), aegan's path as it runs
(`models/base.py optimize` steps the optimiser itself when nothing hooks the step), and aegan's path with
a callback that overrides `on_before_optimizer_step` (a no-op), which puts Lightning's wrapper back.
Alternating passes, images/s per pass, and the medians of the paired ratios. Needs the prepared
Fashion-MNIST (`make run` or `aegan stage prepare fashion_mnist`).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from aegan.bench import StepTimer, _cases, aegan_throughput, bare_throughput

ROOT = Path(__file__).resolve().parents[1]


class HookedStepTimer(StepTimer):
    """A callback that hooks the optimiser step: aegan then goes through Lightning's wrapper."""

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["stacked_ae:32", "denoising_ae:32"])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--steps", type=int, default=480)
    args = parser.parse_args()
    for spec in args.models:
        model, batch = spec.split(":")
        for _, cfg, prepared, batch_size in _cases(ROOT, [model], "fashion_mnist", [int(batch)], []):
            passes: dict[str, list[float]] = {"bare": [], "wrapped": [], "direct": []}
            for _ in range(args.repeats):
                passes["bare"].append(bare_throughput(cfg, prepared, batch_size, 32, args.steps))
                for name, timer in (("wrapped", HookedStepTimer), ("direct", StepTimer)):
                    passes[name].append(aegan_throughput(cfg, prepared, batch_size, 32, args.steps, 16, timer))
            print(f"{model} batch {batch_size}")
            for name, values in passes.items():
                cells = " ".join(f"{v:8.0f}" for v in values)
                print(f"  {name:8s} {cells}   median {statistics.median(values):.0f}")
            for a, b in (("wrapped", "bare"), ("direct", "bare"), ("direct", "wrapped")):
                ratios = [x / y for x, y in zip(passes[a], passes[b], strict=True)]
                print(f"  {a}/{b}: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
