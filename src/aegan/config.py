"""Configuration: composing conf/ with Hydra, writing params.yaml, and checking names before work starts.

Two roots share the groups in conf/: `config.yaml` (one training run; what `aegan train` composes) and
`pipeline.yaml` (every variant side by side; composed into params.yaml for DVC). A DVC stage rebuilds
the one-run config from params.yaml with `run_config`, so both paths train from the same structure.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from aegan.errors import ConfigError, OutputError
from aegan.io import atomic_write_json

PARAMS_HEADER = (
    "# Generated from conf/pipeline.yaml by `aegan params` (or `dvc exp run -S ...`). Do not edit by hand:\n"
    "# change conf/ and run `aegan params`; a test fails when this file is stale.\n"
)
RUN_KEYS = ("paths", "trainer", "logger", "limits", "evaluation", "seed")


def project_root(start: Path | str | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd or $AEGAN_ROOT) holding conf/pipeline.yaml."""
    here = Path(start or os.environ.get("AEGAN_ROOT") or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "conf" / "pipeline.yaml").is_file():
            return candidate
    raise ConfigError(f"no aegan project found at or above {here} (looked for conf/pipeline.yaml)")


def options(root: Path, group: str) -> list[str]:
    """The choices of a config group, e.g. options(root, 'model') -> ['dense_ae', ...]."""
    return sorted(p.stem for p in (root / "conf" / group).glob("*.yaml"))


def compose(root: Path, config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(root / "conf"), version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"invalid configuration: {' '.join(str(exc).split())}") from exc


def check_overrides(root: Path, overrides: Sequence[str]) -> DictConfig:
    """Compose and validate `aegan train`'s config for every value of every sweep override; returns the first.

    Hydra's own overrides (hydra.*, e.g. an Optuna search space) are left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(f"invalid override: {exc}") from exc
    choices: list[list[str]] = []
    for override in parsed:
        if override.get_key_element().startswith("hydra."):
            continue
        if override.is_sweep_override():
            if override.is_discrete_sweep():
                values = list(override.sweep_string_iterator())
            else:  # a range or interval (Optuna): its first value stands for it here
                values = [str(override.sweep_iterator().__next__())] if override.is_range_sweep() else []
            if not values:
                continue
            choices.append([f"{override.get_key_element()}={v}" for v in values])
        else:
            choices.append([override.input_line])
    first = [options[0] for options in choices]
    combos = [first] + [[*first[:i], value, *first[i + 1 :]] for i, opts in enumerate(choices) for value in opts[1:]]
    composed = []
    for combo in combos:
        cfg = compose(root, "config", combo)
        validate(cfg)
        composed.append(cfg)
    return composed[0]


def latest_run_dir(root: Path, cfg: DictConfig) -> Path:
    """The newest run of cfg.model on cfg.data that can be resumed (`aegan train ckpt_path=last`)."""
    base = resolve_path(root, cfg.paths.runs_dir) / cfg.model.name / cfg.data.name
    runs = sorted(p.parent.parent for p in base.glob("*/checkpoints/last.ckpt"))
    if not runs:
        raise ConfigError(f"ckpt_path=last: no run of {cfg.model.name} on {cfg.data.name} to resume under {base}")
    return runs[-1]


def render_params(root: Path, overrides: Sequence[str] = ()) -> dict:
    cfg = compose(root, "pipeline", overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def write_params(root: Path, overrides: Sequence[str] = ()) -> Path:
    from aegan.io import atomic_write_text

    params = render_params(root, overrides)
    path = root / "params.yaml"
    atomic_write_text(path, PARAMS_HEADER + yaml.safe_dump(params, sort_keys=False))
    return path


def params_are_current(root: Path, overrides: Sequence[str] = ()) -> bool:
    return load_params(root, as_dict=True) == render_params(root, overrides)


def load_params(root: Path, as_dict: bool = False) -> DictConfig | dict:
    """params.yaml, refused when it is not YAML or holds a key conf/ does not define (a misspelt key would
    otherwise be ignored and the default used)."""
    path = root / "params.yaml"
    if not path.exists():
        raise ConfigError(f"{path} does not exist: run `aegan params` to compose it from conf/")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(exc).split())}): run `aegan params`") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no mapping of parameters: run `aegan params` to compose it from conf/")
    free = ("pipeline.derived.", "pipeline.translations.")  # the user's own entries: checked by check_pipeline
    unknown = sorted(k for k in _key_paths(data) - _known_keys(root, _conf_stamp(root)) if not k.startswith(free))
    if unknown and all(key.startswith("trainer.") for key in unknown):  # Lightning arguments added with `+`
        from aegan.training.trainer_args import lightning_trainer_keys

        unknown = [key for key in unknown if key.removeprefix("trainer.") not in lightning_trainer_keys()]
    if unknown:
        raise ConfigError(
            f"{path} has key(s) conf/ does not define: {', '.join(unknown[:5])}; check the spelling "
            "(`aegan params` recomposes the file from conf/, where new keys belong)"
        )
    check_pipeline(data, path)
    return data if as_dict else OmegaConf.create(data)


def check_pipeline(params: dict, path: Path) -> None:
    """The translation entries of `pipeline` agree with each other and with the datasets (dvc.yaml builds
    its stages from them: a wrong base would wire a stage to another dataset's outputs)."""
    pipeline = params.get("pipeline") or {}
    datasets, derived = params.get("datasets") or {}, pipeline.get("derived") or {}
    for name, base in derived.items():
        declared = ((datasets.get(name) or {}).get("base") or {}).get("name")
        if declared is None:
            raise ConfigError(f"{path}: pipeline.derived.{name}: {name} is not a translation dataset under datasets")
        if base != declared or base not in (pipeline.get("datasets") or []):
            raise ConfigError(
                f"{path}: pipeline.derived.{name} is {base!r}, but {name} is made from {declared!r}, which must "
                "also be in pipeline.datasets"
            )
    extra = sorted(set(pipeline.get("anomaly_models") or []) - set(pipeline.get("models") or []))
    if extra:
        raise ConfigError(f"{path}: pipeline.anomaly_models has {extra}, which pipeline.models does not")
    for name, entry in (pipeline.get("translations") or {}).items():
        if not isinstance(entry, dict) or not {"model", "data", "base"} <= set(entry):
            raise ConfigError(f"{path}: pipeline.translations.{name} needs model, data and base, got {entry!r}")
        if entry["data"] not in derived or derived[entry["data"]] != entry["base"]:
            raise ConfigError(
                f"{path}: pipeline.translations.{name}: data {entry['data']!r} with base {entry['base']!r} is not "
                f"in pipeline.derived ({derived})"
            )
        if entry["model"] not in (params.get("models") or {}):
            raise ConfigError(f"{path}: pipeline.translations.{name}: unknown model {entry['model']!r}")


def _key_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            paths |= _key_paths(value, path + ".")
    return paths


def _conf_stamp(root: Path) -> tuple:
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in (root / "conf").rglob("*.yaml")))


@functools.lru_cache(maxsize=4)
def _known_keys(root: Path, stamp: tuple) -> frozenset[str]:
    """Every key the pipeline composes, and those an experiment profile (conf/experiment/, global package) adds.

    Composing conf/ takes about a second, in every stage process: the key set is kept in the user's cache
    directory under a digest of conf/'s paths and modification times."""
    digest = hashlib.sha256(repr((str(root.resolve()), stamp)).encode()).hexdigest()[:24]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aegan" / f"conf-keys-{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        return frozenset(json.loads(cache.read_text()))
    keys = _key_paths(render_params(root))
    for profile in (root / "conf" / "experiment").glob("*.yaml"):
        content = yaml.safe_load(profile.read_text()) or {}
        keys |= _key_paths({k: v for k, v in content.items() if k != "defaults"})
    with contextlib.suppress(OSError, OutputError):  # a read-only home only costs the second next time
        atomic_write_json(cache, sorted(keys))
    return frozenset(keys)


def _pick(table: DictConfig, name: str, what: str) -> DictConfig:
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; valid: {sorted(table.keys())}")
    return table[name]


def run_config(params: DictConfig, model: str | None, data: str, trains: bool = True) -> DictConfig:
    """The one-run config (same keys as conf/config.yaml) for (model, data) out of params.yaml; `trains`:
    whether the caller trains (the trainer is checked, which needs Lightning), not so for download/prepare."""
    cfg = {key: params[key] for key in RUN_KEYS}
    cfg["data"] = _pick(params.datasets, data, "dataset")
    if model is not None:
        cfg["model"] = _pick(params.models, model, "model")
    cfg["ckpt_path"] = None
    run = OmegaConf.create(OmegaConf.to_container(OmegaConf.create(cfg), resolve=True))
    validate(run, trains)
    return run


def validate(cfg: DictConfig, trains: bool = True) -> None:
    """Catch config mistakes before any work starts, naming the key and what is allowed."""

    def positive(key: str, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")

    if "model" in cfg:
        from aegan.models.registry import FAMILIES

        family = cfg.model.get("family")
        if family not in FAMILIES:
            raise ConfigError(f"model.family {family!r} is unknown; valid: {sorted(FAMILIES)}")
        positive("model.batch_size", cfg.model.batch_size)
        if "latent_dim" in cfg.model:
            positive("model.latent_dim", cfg.model.latent_dim)
    data = cfg.data
    if data.kind not in ("idx", "image_folder", "translation"):
        raise ConfigError(f"data.kind must be 'idx', 'image_folder' or 'translation', got {data.kind!r}")
    positive("data.image_size", data.image_size)
    if data.channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {data.channels!r}")
    for split, limit in (cfg.get("limits") or {}).items():
        if limit is not None:
            positive(f"limits.{split}", limit)
    if cfg.trainer.get("max_epochs") is not None:
        positive("trainer.max_epochs", cfg.trainer.max_epochs)
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool) or cfg.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {cfg.get('seed')!r}")
    if not trains:
        return
    from aegan.training.trainer_args import trainer_kwargs

    trainer_kwargs(cfg.trainer)  # unknown trainer keys are refused with the valid list
    positive("trainer.steps_per_execution", cfg.trainer.get("steps_per_execution"))
    if cfg.trainer.get("schedule") not in ("short", "full"):
        raise ConfigError(f"trainer.schedule must be 'short' or 'full', got {cfg.trainer.get('schedule')!r}")
    if "model" in cfg:
        for schedule, epochs in (cfg.model.get("epochs") or {}).items():
            positive(f"model.epochs.{schedule}", epochs)
        for key in [k for k in cfg.model if str(k).endswith("optimizer")]:
            check_optimizer(f"model.{key}", OmegaConf.to_container(cfg.model[key], resolve=True))
        check_model_fits_data(cfg)


def check_optimizer(key: str, options: object) -> None:
    """Build the optimizer on one dummy parameter: a learning rate of the wrong type or sign, an unknown
    optimizer or option fails here with the key, not at the first training step."""
    import torch

    from aegan.models.blocks import build_optimizer

    if not isinstance(options, dict):
        raise ConfigError(f"{key} must be a mapping like {{name: adam, lr: 0.001}}, got {options!r}")
    lr = options.get("lr", 0.001)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or lr <= 0:
        raise ConfigError(f"{key}.lr must be a positive number, got {lr!r}")
    try:
        build_optimizer(options, [torch.zeros(1, requires_grad=True)])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} {options}: {exc}") from exc


def check_model_fits_data(cfg: DictConfig) -> None:
    """Build the model for the data's image shape and push two images (or codes) through it, so that a
    latent size, channel list or image size that do not fit fail now, not minutes into training."""
    import torch

    from aegan.models.registry import FAMILIES, build_module

    shape = (int(cfg.data.channels), int(cfg.data.image_size), int(cfg.data.image_size))
    family = FAMILIES[cfg.model.family]
    if family.capabilities.translate != (cfg.data.kind == "translation"):
        raise ConfigError(
            f"model {cfg.model.name} translates images and needs a translation dataset (data.kind: translation, "
            f"e.g. data=edges2fashion); {cfg.data.name} is not one"
            if family.capabilities.translate
            else f"model {cfg.model.name} does not translate images; {cfg.data.name} is a translation task "
            "dataset, for the translation models (e.g. model=pix2pix)"
        )
    if family.capabilities.translate:
        from aegan.data.tasks import pairing

        if pairing(cfg.data) != family.pairing:
            raise ConfigError(
                f"model {cfg.model.name} learns from {family.pairing} images; {cfg.data.name} is a task of "
                f"{pairing(cfg.data)} images (pix2pix: paired tasks such as edges2fashion; cyclegan: unpaired "
                "ones such as sneaker2boot)"
            )
    try:
        module = build_module(OmegaConf.to_container(cfg.model, resolve=True), shape).eval()
        with torch.no_grad():
            out = module.dry_run()
    except (ConfigError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"model {cfg.model.name} does not fit {cfg.data.name} images {shape}: {exc}") from exc
    if tuple(out.shape[1:]) != shape:
        raise ConfigError(
            f"model {cfg.model.name} makes images of shape {tuple(out.shape[1:])} for {cfg.data.name} images {shape}: "
            "check the decoder/generator channels for this image size"
        )


def resolve_path(root: Path, path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else root / path
