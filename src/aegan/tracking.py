"""MLflow: where runs go (SQLite file at the project root by default, a server when asked)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def tracking_uri(logger_cfg: DictConfig | dict, root: Path) -> str:
    """MLFLOW_TRACKING_URI wins; a relative sqlite path is anchored at the project root.

    Lightning's MLFlowLogger would otherwise fall back to the deprecated ./mlruns file store, and a
    relative sqlite path would follow the current directory (DVC runs queued experiments elsewhere).
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or logger_cfg["tracking_uri"]
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}, for MLflow params."""
    if OmegaConf.is_config(cfg):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)
