"""A Hydra or Optuna sweep as one MLflow parent run, its members as named child runs under it.

Hydra calls the callback in the launching process (conf/config.yaml, hydra.callbacks); members, which
may run in other processes (joblib launcher), find the parent's id in the sweep directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PARENT_RECORD = "mlflow_parent.json"


def parent_record(sweep_dir: Path | str) -> dict[str, str]:
    path = Path(sweep_dir) / PARENT_RECORD
    return json.loads(path.read_text()) if path.exists() else {}


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a sweep varies: command-line sweeps (model=a,b; x=range(...)) and the Optuna sweeper's params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [override.key_or_group for override in parsed if override.is_sweep_override()]
    return keys + [str(key) for key in (config.hydra.sweeper.get("params") or {}) if key not in keys]


def member_tags_and_name(
    cfg: DictConfig, sweep_dir: str, job_num: int, task_overrides: list[str]
) -> tuple[dict[str, str], str]:
    """The child run's tags (its parent, the sweep, the values it was given) and its name, <model>-<data> #<n>."""
    record = parent_record(sweep_dir)
    swept = set(record.get("swept", []))
    given = [o for o in task_overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    tags = {"sweep": sweep_dir, "sweep_job": str(job_num), "sweep_overrides": ",".join(given)}
    if record.get("run_id"):
        tags["mlflow.parentRunId"] = record["run_id"]
    return tags, f"{cfg.model.name}-{cfg.data.name} #{job_num}"


class MLflowSweepRun(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from aegan.config import project_root
        from aegan.tracking import client, ensure_experiment, git_tags, tracking_uri

        root = project_root()
        uri = tracking_uri(config.logger, root)
        sweep_dir = Path(config.hydra.sweep.dir)
        run = client(uri).create_run(
            ensure_experiment(uri, config.logger.experiment_name),
            run_name=f"sweep {config.model.name}-{config.data.name} {sweep_dir.name}",
            tags={
                "sweep": str(sweep_dir),
                "swept": ", ".join(swept_keys(config)),
                "model": config.model.name,
                "dataset": config.data.name,
                **git_tags(root),
            },
        )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record = {"run_id": run.info.run_id, "tracking_uri": uri, "swept": swept_keys(config)}
        (sweep_dir / PARENT_RECORD).write_text(json.dumps(record))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The parent gets the best member's objective (best/<metric>, tag best_run) and is closed."""
        from aegan.tracking import client
        from aegan.training.run import objective_name

        record = parent_record(config.hydra.sweep.dir)
        if not record:
            return
        mlflow, parent = client(record["tracking_uri"]), record["run_id"]
        experiment = mlflow.get_run(parent).info.experiment_id
        members = mlflow.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
        metric = objective_name(config)
        scored = [run for run in members if metric in run.data.metrics]
        if scored:
            best = min(scored, key=lambda run: run.data.metrics[metric])
            mlflow.log_metric(parent, f"best/{metric}", best.data.metrics[metric])
            mlflow.set_tag(parent, "best_run", best.info.run_name)
        failed = any(run.info.status == "FAILED" for run in members)
        mlflow.set_terminated(parent, "FAILED" if failed or not members else "FINISHED")
