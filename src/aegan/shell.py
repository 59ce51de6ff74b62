"""What `aegan train --help` says before Hydra's help, and shell completion for `aegan train` overrides.

Hydra's completion script calls the program's first word with `-sc query=bash` and the line typed so
far in COMP_LINE; for `aegan train ...` the word `train` is aegan's, not an override, so it is taken
out here before Hydra completes the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

COMMANDS = ("train", "params", "stage", "options", "summary", "generate", "reconstruct", "interpolate", "arithmetic",
            "latent-map", "bench")  # fmt: skip


def train_help(root: Path) -> str:
    from aegan.config import options

    groups = "\n".join(f"  {group:<15} {', '.join(options(root, group))}" for group in ("data", "model", "trainer",
                                                                                          "experiment"))  # fmt: skip
    return f"""usage: aegan train [-m] [GROUP=OPTION ...] [KEY=VALUE ...]

One training run of a model on a dataset (Hydra: every setting of conf/config.yaml can be overridden),
or with -m a sweep over comma-separated values. Each run writes runs/<model>/<data>/<time>/ and one
MLflow run; the console ends with where it is and its final numbers.

config groups (conf/<group>/<option>.yaml):
{groups}
  hparams_search  {", ".join(options(root, "hparams_search"))}  (an Optuna search)

often used:
  trainer.max_epochs=N          epochs (default: the model's short schedule)
  trainer.schedule=full         the model's long schedule
  model.batch_size=N  model.latent_dim=N  model.optimizer.lr=X
  ckpt_path=last                resume the latest run of this model and dataset
  logger.register_as=NAME       also register the model in MLflow's registry (models:/NAME/<version>)
  -m model=dcgan,wgan_gp        a sweep: one MLflow parent run, a child run per member

examples:
  aegan train model=vae data=fashion_mnist trainer.max_epochs=5
  aegan train -m model.latent_dim=2,10,20
  aegan train hparams_search=vae_optuna hydra.sweeper.storage=sqlite:///runs/optuna.db

more: aegan train --hydra-help (Hydra's flags), aegan train --cfg job (the composed config),
      eval "$(aegan -sc install=bash)" (shell completion of overrides)"""


def completion_argv(argv: list[str]) -> list[str] | None:
    """For a completion query of `aegan train ...`: Hydra's arguments, with COMP_LINE made Hydra's.
    None when the line completes aegan's subcommand (printed here) or another subcommand (nothing)."""
    if not any(arg.startswith("query=") for arg in argv):
        return argv  # install/uninstall: Hydra prints the script for `aegan`
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        typed = words[1] if len(words) == 2 else ""
        print(" ".join(c for c in COMMANDS if c.startswith(typed)))
        return None
    if words[1] != "train":
        return None
    os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]]) + (" " if line.endswith(" ") else "")
    return argv
