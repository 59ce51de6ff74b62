"""`hydra/sweeper=aegan_optuna`: an Optuna (>= 4) search launched through Hydra's launcher.

hydra-optuna-sweeper pins optuna < 3, whose SQLite storage fails under SQLAlchemy 2, so a search could
neither be resumed nor opened in optuna-dashboard. This one takes the same `params` grammar
(`choice(2, 10)`, `interval(0.0001, 0.01)`, `tag(log, interval(...))`, `range(1, 8)`), and with
`storage: sqlite:///...` it resumes a study: `n_trials` is the study's total of finished trials, and a
trial left running by a killed search is marked failed and tried again.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class AeganOptunaSweeperConf:
    _target_: str = "hydra_plugins.aegan_optuna_sweeper.sweeper.AeganOptunaSweeper"
    study_name: str | None = None
    # null: in memory; sqlite:///path.db (relative to the project root) to resume a search and share it.
    storage: str | None = None
    direction: str = "minimize"
    n_trials: int = 10
    n_jobs: int = 1  # trials launched together (a parallel launcher runs them at once)
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="aegan_optuna", node=AeganOptunaSweeperConf, provider="aegan")


def distribution(override: Override) -> Any:
    """An Optuna distribution from a Hydra sweep override; fixed values stay plain overrides."""
    import optuna.distributions as dist

    value = override.value()
    log_scale = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        return dist.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        if all(isinstance(x, int) for x in (value.start, value.stop, value.step)):
            return dist.IntDistribution(value.start, value.stop - 1, step=value.step, log=log_scale)
        return dist.FloatDistribution(value.start, value.stop, step=value.step, log=log_scale)
    if isinstance(value, IntervalSweep):
        if isinstance(value.start, int) and isinstance(value.end, int):
            return dist.IntDistribution(value.start, value.end, log=log_scale)
        return dist.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise HydraException(f"aegan_optuna: {override.input_line!r} is not choice(...), range(...) or interval(...)")


def anchored(storage: str | None) -> str | None:
    """A relative sqlite:/// path is taken from the project root, like logger.tracking_uri."""
    from aegan.config import project_root
    from aegan.tracking import anchored_sqlite, sqlite_path

    if not storage:
        return storage
    storage = anchored_sqlite(storage, project_root())
    if (path := sqlite_path(storage)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return storage


class AeganOptunaSweeper(Sweeper):
    def __init__(
        self,
        study_name: str | None,
        storage: str | None,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: Any,
        params: dict[str, str] | None,
    ) -> None:
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.sampler_cfg, self.params = sampler, dict(params or {})

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _search_space(self, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        space, fixed = {}, []
        for override in parser.parse_overrides(lines):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution(override)
            else:
                fixed.append(override.input_line)
        if not space:
            raise HydraException("aegan_optuna: nothing to search; give hydra.sweeper.params or sweep overrides")
        return space, fixed

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        logging.getLogger("alembic").setLevel(logging.WARNING)  # the storage's schema migrations, line by line
        space, fixed = self._search_space(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = optuna.create_study(
            study_name=self.study_name,
            storage=anchored(self.storage),
            sampler=self._sampler(),
            direction=self.direction,
            load_if_exists=True,
        )
        for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            log.warning("trial %d was left running by a killed search: marked failed", stale.number)
            study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        job = len(study.trials)
        while (done := self._finished(study)) < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [fixed + [f"{key}={trial.params[key]}" for key in space] for trial in trials]
            self.validate_batch_is_legal(batch)
            returns = self.launcher.launch(batch, initial_job_idx=job)
            job += len(batch)
            for trial, result in zip(trials, returns, strict=True):
                if result.status == JobStatus.COMPLETED and result.return_value is not None:
                    study.tell(trial, float(result.return_value))
                else:  # Optuna's convention: the trial fails, the search goes on
                    log.warning("trial %d failed: %s", trial.number, result._return_value)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
        best = study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value, "study": study.study_name}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info("best of %d trials: %s = %s", self.n_trials, best.params, best.value)

    def _sampler(self) -> Any:
        """Hydra instantiates the sweeper's nested `_target_` configs itself; a plain config is built here."""
        if isinstance(self.sampler_cfg, dict | DictConfig):
            return instantiate(self.sampler_cfg)
        return self.sampler_cfg

    @staticmethod
    def _finished(study: Any) -> int:
        import optuna

        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
