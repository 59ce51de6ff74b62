"""The trained model as an MLflow model (PyTorch flavour, usable through `mlflow.pyfunc` and `mlflow models serve`).

Families that sample (GANs, VAEs) are logged as a generator: latent codes (n, latent_dim) -> images
(n, C, H, W) in [-1, 1]; those that translate (Pix2Pix) as a translator: input images -> output images;
the others (autoencoders) as a reconstructor: images -> images. The network is
pickled with its aegan classes, so loading needs aegan installed (the project's venv); the checkpoint
(`checkpoints/model.ckpt`) stays beside it for resuming and the latent tools.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from aegan.errors import ConfigError, TrackingError, first_line

ARTIFACT = "model"
REQUIREMENTS = ("torch", "lightning", "omegaconf", "numpy")


class Generator(torch.nn.Module):
    """Latent codes -> images in [-1, 1]."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module.decode(z.float())


class Translator(torch.nn.Module):
    """Input images in [-1, 1] (edge maps, low-resolution or masked images) -> translated images."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.translate(x.float())


class Reconstructor(torch.nn.Module):
    """Images in [-1, 1] -> their reconstructions."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.float())


def servable(module: torch.nn.Module, image_shape: tuple[int, int, int]) -> tuple[torch.nn.Module, np.ndarray, tuple]:
    """The network to log, an input example, and the output shape, from what the family declares it can do."""
    rng = np.random.default_rng(0)
    if module.capabilities.sample:
        example = rng.standard_normal((2, module.latent_dim)).astype(np.float32)
        return Generator(module).eval(), example, (-1, *image_shape)
    example = rng.uniform(-1, 1, (2, *image_shape)).astype(np.float32)
    if module.capabilities.translate:
        return Translator(module).eval(), example, (-1, *image_shape)
    if module.capabilities.encode:
        return Reconstructor(module).eval(), example, (-1, *image_shape)
    raise ConfigError(f"a {module.family} model neither samples, translates nor reconstructs: nothing to serve")


def signature(example: np.ndarray, output_shape: tuple):
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    float32 = np.dtype(np.float32)
    return ModelSignature(
        inputs=Schema([TensorSpec(float32, (-1, *example.shape[1:]))]),
        outputs=Schema([TensorSpec(float32, output_shape)]),
    )


@contextlib.contextmanager
def active_run(uri: str, run_id: str) -> Iterator[None]:
    """MLflow's fluent API on an existing run (log_model has no client form)."""
    import mlflow

    from aegan.tracking import tracking_env_kept

    with tracking_env_kept():
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=run_id):
            yield


def log_model(
    checkpoint: Path, image_shape: tuple[int, int, int], uri: str, run_id: str, register_as: str | None = None
) -> str:
    """Log the weights of `checkpoint` as the run's MLflow model; returns its models:/ or runs:/ URI."""
    import mlflow.pytorch

    from aegan.models.registry import load_module

    network, example, output_shape = servable(load_module(checkpoint), image_shape)
    with active_run(uri, run_id):
        info = mlflow.pytorch.log_model(
            network,
            name=ARTIFACT,
            signature=signature(example, output_shape),
            input_example=example,
            # Pinned to this environment: MLflow would otherwise infer them by loading the model in a subprocess.
            pip_requirements=[f"{name}=={version(name)}" for name in REQUIREMENTS],
            registered_model_name=register_as,
            await_registration_for=0,
        )
    if register_as:
        return f"models:/{register_as}/{info.registered_model_version}"
    return f"runs:/{run_id}/{ARTIFACT}"


def run_of_model_uri(model_uri: str, uri: str) -> str:
    """The MLflow run that logged a registered model: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME."""
    from aegan.tracking import client

    reference = model_uri.removeprefix("models:/").strip("/")
    mlflow = client(uri)
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            found = mlflow.get_model_version_by_alias(name, alias)
        elif "/" in reference:
            name, number = reference.split("/", 1)
            found = mlflow.get_model_version(name, number)
        else:
            versions = mlflow.search_model_versions(f"name = '{reference}'")
            if not versions:
                raise ConfigError(f"registered model {reference!r} has no versions at {uri}")
            found = max(versions, key=lambda v: int(v.version))
    except ConfigError:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise TrackingError(f"{model_uri} not found at {uri} ({first}); the MLflow UI lists them under Models") from exc
    if not found.run_id:
        raise ConfigError(f"{model_uri} was not logged by an aegan run (no run id)")
    return found.run_id
