"""The `aegan` command.

aegan train [hydra overrides]         one training run (Hydra; -m for a multirun sweep)
aegan params [overrides] [--check]    compose conf/pipeline.yaml into params.yaml (or check it is current)
aegan stage <name> [args]             a DVC stage: download/prepare/classifier/reference <data>,
                                      train/evaluate <model> <data>, summary
aegan options                         the datasets and models conf/ offers
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aegan.errors import AeganError


def _train_with_hydra(argv: Sequence[str]) -> None:
    import hydra
    from omegaconf import DictConfig

    from aegan.config import project_root

    root = project_root()

    def task(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from aegan.config import validate
        from aegan.training.run import train_one

        validate(cfg)
        hydra_cfg = HydraConfig.get()
        # Sweep members share a tag, so the MLflow UI can filter and compare them side by side.
        sweep = None
        if hydra_cfg.mode.name == "MULTIRUN":
            sweep = {"sweep": str(hydra_cfg.sweep.dir), "sweep_job": str(hydra_cfg.job.num)}
        return train_one(cfg, root, hydra_cfg.runtime.output_dir, sweep)

    sys.argv = [f"{sys.argv[0]} train", *argv]
    hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(task)()


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

    names = {"download": 1, "prepare": 1, "classifier": 1, "reference": 1, "train": 2, "evaluate": 2, "summary": 0}
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aegan", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="one training run or a sweep (Hydra overrides follow)", add_help=False)
    p = sub.add_parser("params", help="compose conf/ into params.yaml")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--check", action="store_true", help="exit 1 when params.yaml differs from conf/")
    p.set_defaults(func=_params)
    s = sub.add_parser("stage", help="run one DVC stage")
    s.add_argument("name", choices=["download", "prepare", "classifier", "reference", "train", "evaluate", "summary"])
    s.add_argument("args", nargs="*")
    s.set_defaults(func=_stage)
    o = sub.add_parser("options", help="list datasets, models, trainers, experiments")
    o.set_defaults(func=_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("aegan").addHandler(handler)
    logging.getLogger("aegan").setLevel(logging.INFO)
    try:
        if argv and argv[0] == "train":
            _train_with_hydra(argv[1:])
            return 0
        args = build_parser().parse_args(argv)
        return args.func(args)
    except AeganError as exc:
        print(f"aegan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
