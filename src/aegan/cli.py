"""The `aegan` command.

aegan train [hydra overrides]         one training run (Hydra; -m for a multirun sweep)
aegan params [overrides] [--check]    compose conf/pipeline.yaml into params.yaml (or check it is current)
aegan stage <name> [args]             a DVC stage: download/prepare/classifier/reference <data>,
                                      train/evaluate/anomaly <model> <data>, summary, report
aegan options                         the datasets and models conf/ offers
aegan summary                         the results table of metrics/
aegan generate|reconstruct|interpolate|arithmetic|latent-map|translate (--ckpt PATH | --run-id ID | --model-uri URI)
                                      pictures of a trained model's latent space (PNG/GIF)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from aegan.errors import AeganError


def _train_with_hydra(argv: Sequence[str]) -> None:
    import hydra
    from omegaconf import DictConfig

    from aegan.config import check_overrides, latest_run_dir, project_root

    root = project_root()
    multirun = bool({"-m", "--multirun"} & set(argv))
    # Hydra's parser wants its flags before the overrides: `aegan train model=vae -m ...` works too.
    argv = [*(["-m"] if multirun else []), *(arg for arg in argv if arg not in ("-m", "--multirun"))]
    overrides = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    if overrides or not ({"--hydra-help", "--cfg", "-c", "--info"} & set(argv)):
        cfg = check_overrides(root, overrides)  # every config error before Hydra starts: `aegan: error:`, exit 2
        explicit_dir = any(arg.startswith("hydra.run.dir=") for arg in overrides)
        if cfg.get("ckpt_path") == "last" and not multirun and not explicit_dir:
            argv.append(f"hydra.run.dir={latest_run_dir(root, cfg)}")

    def task(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from aegan.config import validate
        from aegan.training.run import train_one
        from aegan.training.sweep import member_tags_and_name

        hydra_cfg = HydraConfig.get()
        # Sweep members are child runs of the sweep's parent run (training/sweep.py), named by their number.
        tags, run_name = None, None
        if hydra_cfg.mode.name == "MULTIRUN":
            given = list(hydra_cfg.overrides.task)
            tags, run_name = member_tags_and_name(cfg, str(hydra_cfg.sweep.dir), hydra_cfg.job.num, given)
        try:
            validate(cfg)
            return train_one(cfg, root, hydra_cfg.runtime.output_dir, tags, run_name)
        except AeganError as exc:  # Hydra would print a traceback and exit 1
            print(f"aegan: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    sys.argv = [f"{sys.argv[0]} train", *argv]
    hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(task)()


def _complete(argv: list[str]) -> int:
    """`aegan -sc install=bash`, and the queries of the script it installs (Hydra's, for train overrides)."""
    import hydra

    from aegan.config import project_root
    from aegan.shell import completion_argv

    hydra_argv = completion_argv(argv)
    if hydra_argv is not None:
        root = project_root()
        sys.argv = [sys.argv[0], *hydra_argv]
        hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(lambda cfg: None)()
    return 0


def _params(args: argparse.Namespace) -> int:
    from aegan.config import params_are_current, project_root, write_params

    root = project_root()
    if args.check:
        if params_are_current(root, args.overrides):
            print("params.yaml is current")
            return 0
        print("params.yaml is stale: run `aegan params` and commit it", file=sys.stderr)
        return 1
    print(f"wrote {write_params(root, args.overrides)}")
    return 0


def _stage(args: argparse.Namespace) -> int:
    from aegan import stages

    names = {
        "download": 1,
        "prepare": 1,
        "classifier": 1,
        "reference": 1,
        "train": 2,
        "evaluate": 2,
        "anomaly": 2,
        "summary": 0,
        "report": 0,
    }
    if len(args.args) != names[args.name]:
        raise AeganError(f"stage {args.name} takes {names[args.name]} argument(s), got {args.args}")
    getattr(stages, args.name)(*args.args)
    return 0


def _options(_: argparse.Namespace) -> int:
    from aegan.config import options, project_root

    root = project_root()
    for group in ("data", "model", "trainer", "experiment"):
        print(f"{group}: {', '.join(options(root, group))}")
    return 0


def _summary(_: argparse.Namespace) -> int:
    from aegan.config import load_params, project_root, resolve_path
    from aegan.reports.summary import console_summary

    root = project_root()
    print(console_summary(resolve_path(root, load_params(root).paths.metrics_dir)), end="")
    return 0


def _latent_tool(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aegan.reports import tools

    loaded = tools.load(args.ckpt, args.run_id, args.data, model_uri=args.model_uri)
    out = Path(args.out) if args.out else tools.default_out(loaded)
    if args.command == "generate":
        paths = tools.generate(loaded, out, n=args.n, seed=args.seed, sampler=args.sampler)
    elif args.command == "reconstruct":
        paths = tools.reconstruct(loaded, out, n=args.n)
    elif args.command == "interpolate":
        paths = tools.interpolate(loaded, out, args.pairs or None, steps=args.steps, mode=args.mode, seed=args.seed)
    elif args.command == "arithmetic":
        paths = tools.arithmetic(loaded, out, args.attribute, n=args.n)
    elif args.command == "translate":
        paths = tools.translate(loaded, out, n=args.n, inputs=[Path(p) for p in args.input or []])
    else:
        paths = tools.latent_map(loaded, out, n=args.n, seed=args.seed)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aegan.bench import run_bench, run_scaling, run_tuning
    from aegan.config import project_root

    root = project_root()
    for group, names in (("model", args.models), ("data", [args.data])):
        known = sorted(p.stem for p in (root / "conf" / group).glob("*.yaml"))
        unknown = [name for name in names if name not in known]
        if unknown:  # before any model is timed, not after the first
            raise AeganError(f"unknown {group} {', '.join(map(repr, unknown))}; valid: {', '.join(known)}")
    out = Path(args.out) if args.out else root / "reports" / "bench"
    if args.scaling:
        frame = run_scaling(root, args.models, args.sizes, args.image_sizes, out)
        print(frame.to_string(index=False))
        print(f"wrote {out / 'scaling.csv'}")
        return 0
    if args.tuning:
        frame = run_tuning(root, args.models, args.batch_sizes, args.warmup, args.steps, args.data, args.repeats, out)
        print(frame.to_string(index=False))
        print(f"wrote {out / 'tuning.csv'}")
        return 0
    frame = run_bench(
        root,
        args.models,
        args.batch_sizes,
        args.warmup,
        args.steps,
        args.data,
        out,
        args.inception_images,
        args.steps_per_execution,
        args.repeats,
        args.precisions,
    )
    print(frame.to_string(index=False))
    print(f"wrote {out / 'bench.json'} and {out / 'train_throughput.csv'}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage mistakes end like every other aegan error: one `aegan: error: ...` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"aegan: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _count(limit: int, least: int = 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not least <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {least} to {limit}")
        return value

    return parse


def _pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a pair of test-image indices like 0,1")
    return int(parts[0]), int(parts[1])


def _add_latent_tools(sub: argparse._SubParsersAction) -> None:
    helps = {  # what it draws, the default and largest --n
        "generate": ("sample grid: the prior (VAE, GANs) or codes fitted by --sampler gmm|two_stage", 64, 10_000),
        "reconstruct": ("test images next to their reconstructions", 32, 1_000),
        "interpolate": ("morph between test images (or random latent points): strip + GIF", 0, 0),
        "arithmetic": ("add an attribute vector (CelebA attribute or class) to codes", 8, 100),
        "latent-map": ("t-SNE of test-split codes coloured by label (2-D latents: also a grid)", 2000, 60_000),
        "translate": ("translation models: test inputs / outputs / targets, or --input images", 32, 1_000),
    }
    for name, (text, n, most) in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--ckpt", help="a checkpoint, e.g. models/vae/fashion_mnist/model.ckpt")
        p.add_argument("--run-id", help="an MLflow run id (its checkpoints/model.ckpt artifact)")
        p.add_argument("--model-uri", help="an MLflow model: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/model")
        p.add_argument("--data", help="dataset (default: the run's)")
        p.add_argument("--out", help="output directory (default: reports/tools/<model>-<data>/)")
        p.add_argument("--seed", type=int, default=0)
        if n:
            helped = f"how many images/rows (default {n}, at most {most})"
            p.add_argument("--n", type=_count(most), default=n, help=helped)
        if name == "generate":
            p.add_argument("--sampler", choices=["prior", "gmm", "two_stage"], default="prior")
        if name == "interpolate":
            p.add_argument("--pairs", nargs="*", type=_pair, help="test-image index pairs, e.g. 0,1 5,9")
            p.add_argument("--steps", type=_count(200), default=10)
            p.add_argument("--mode", choices=["linear", "spherical"], default="linear")
        if name == "arithmetic":
            p.add_argument("--attribute", required=True, help="CelebA attribute (e.g. Smiling) or class name/index")
        if name == "translate":
            p.add_argument("--input", nargs="+", help="image files to translate instead (e.g. an edge drawing)")
        p.set_defaults(func=_latent_tool)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aegan", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="one training run or a sweep (Hydra overrides follow)", add_help=False)
    p = sub.add_parser("params", help="compose conf/ into params.yaml")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--check", action="store_true", help="exit 1 when params.yaml differs from conf/")
    p.set_defaults(func=_params)
    s = sub.add_parser("stage", help="run one DVC stage")
    s.add_argument(
        "name",
        choices=["download", "prepare", "classifier", "reference", "train", "evaluate", "anomaly", "summary", "report"],
    )
    s.add_argument("args", nargs="*")
    s.set_defaults(func=_stage)
    o = sub.add_parser("options", help="list datasets, models, trainers, experiments")
    o.set_defaults(func=_options)
    t = sub.add_parser("summary", help="print the results table of metrics/ (120 columns; writes nothing)")
    t.set_defaults(func=_summary)
    _add_latent_tools(sub)
    b = sub.add_parser("bench", help="training throughput: aegan vs a bare PyTorch loop; FID feature throughput")
    b.add_argument("--models", nargs="+", default=["dense_ae", "vae", "dcgan"])
    b.add_argument("--batch-sizes", nargs="+", type=_count(65_536), default=[128, 32])
    b.add_argument("--warmup", type=_count(100_000, least=0), default=32, help="optimiser steps before timing")
    b.add_argument("--steps", type=_count(1_000_000), default=320, help="optimiser steps timed")
    b.add_argument("--repeats", type=_count(100), default=3, help="paired bare/aegan repeats; medians are reported")
    b.add_argument(
        "--steps-per-execution",
        nargs="+",
        type=_count(1_024),
        help="values to compare (default: the trainer config's)",
    )
    b.add_argument(
        "--precisions",
        nargs="+",
        choices=["32-true", "bf16-mixed"],
        help="values to compare, e.g. 32-true bf16-mixed (default: the trainer config's, `auto` resolved)",
    )
    b.add_argument("--data", default="fashion_mnist")
    b.add_argument("--inception-images", type=_count(50_000, least=0), default=32, help="0 skips the Inception timing")
    b.add_argument("--out", help="default reports/bench/")
    b.add_argument("--scaling", action="store_true", help="instead: epoch time vs dataset size and image size")
    b.add_argument("--tuning", action="store_true", help="instead: what each CPU setting gives the bare loop")
    b.add_argument(
        "--sizes", nargs="+", type=_count(1_000_000), default=[256, 512, 1024], help="--scaling: training images"
    )
    b.add_argument("--image-sizes", nargs="+", type=_count(1_024), default=[28, 64], help="--scaling: image sizes")
    b.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("aegan").addHandler(handler)
    logging.getLogger("aegan").setLevel(logging.INFO)
    try:
        if argv and argv[0] in ("-sc", "--shell-completion"):
            return _complete(argv)
        if argv and argv[0] == "train":
            if {"-h", "--help"} & set(argv[1:]):
                from aegan.config import project_root
                from aegan.shell import train_help

                print(train_help(project_root()))
                return 0
            _train_with_hydra(argv[1:])
            return 0
        args = build_parser().parse_args(argv)
        return args.func(args)
    except AeganError as exc:
        print(f"aegan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
