"""The latent-space commands (`aegan generate|reconstruct|interpolate|arithmetic|latent-map`) on any checkpoint.

A model is named by a checkpoint path, an MLflow run id or an MLflow model URI (models:/NAME/VERSION); the
dataset comes from the run's record (run.json beside the checkpoint, or the run's `dataset` tag) unless --data
says otherwise. Each command writes PNG/GIF files and returns their paths.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from aegan.config import load_params, project_root, resolve_path
from aegan.data.prepare import read_manifest, read_split
from aegan.errors import ConfigError, first_line
from aegan.models.inference import batched, decode, encode
from aegan.models.inference import reconstruct as reconstruct_images
from aegan.models.registry import load_module
from aegan.models.samplers import PriorSampler, build_sampler
from aegan.reports import latent
from aegan.reports.grids import reconstruction_grid, save_grid, strips_grid


@dataclass
class Loaded:
    module: torch.nn.Module
    model: str
    data: str
    prepared: Path

    def split(self, name: str = "test") -> dict[str, torch.Tensor]:
        path = self.prepared / f"{name}.pt"
        if not path.exists():
            raise ConfigError(f"{path} does not exist: prepare {self.data} first (`dvc repro prepare@{self.data}`)")
        return read_split(self.prepared, name)

    @property
    def manifest(self) -> dict:
        return read_manifest(self.prepared)


def _checkpoint_from_run(run_id: str, uri: str, target: Path) -> tuple[Path, dict[str, str]]:
    from aegan.tracking import client

    mlflow = client(uri)
    try:
        run = mlflow.get_run(run_id)
    except Exception as exc:
        raise ConfigError(f"MLflow run {run_id} not found at {uri}: {first_line(exc)}") from exc
    try:
        path = mlflow.download_artifacts(run_id, "checkpoints/model.ckpt", str(target))
    except Exception as exc:
        raise ConfigError(f"MLflow run {run_id} has no checkpoints/model.ckpt artifact: {first_line(exc)}") from exc
    return Path(path), dict(run.data.tags)


def _models_that(capability: str, root: Path) -> list[str]:
    from aegan.models.registry import FAMILIES

    params = load_params(root)
    return sorted(
        name
        for name, cfg in params.models.items()
        if cfg.family in FAMILIES and getattr(FAMILIES[cfg.family].capabilities, capability)
    )


def require(loaded: Loaded, capability: str, command: str, why: str) -> None:
    """Refuse a tool the model's family does not declare (`capabilities.<capability>`), naming the models that do."""
    if not getattr(loaded.module.capabilities, capability):
        supported = ", ".join(_models_that(capability, project_root()))
        raise ConfigError(
            f"`aegan {command}` {why}; {loaded.model} is a {loaded.module.family} model. "
            f"Models that support it: {supported}"
        )


def _run_of_uri(model_uri: str, uri: str) -> str:
    """runs:/ID/model -> ID; models:/NAME[/VERSION|@ALIAS] -> the run that logged that version."""
    from aegan.serving import run_of_model_uri

    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/", 1)[0]
    if model_uri.startswith("models:/"):
        return run_of_model_uri(model_uri, uri)
    raise ConfigError(f"--model-uri {model_uri!r}: expected models:/NAME/VERSION, models:/NAME@ALIAS or runs:/ID/model")


def load(
    ckpt: str | None, run_id: str | None, data: str | None, root: Path | None = None, model_uri: str | None = None
) -> Loaded:
    root = root or project_root()
    if sum(map(bool, (ckpt, run_id, model_uri))) != 1:
        raise ConfigError("name the model with exactly one of --ckpt PATH, --run-id ID or --model-uri URI")
    with contextlib.ExitStack() as stack:
        if model_uri or run_id:
            from aegan.tracking import check_tracking, tracking_uri

            uri = tracking_uri(load_params(root).logger, root)
            check_tracking(uri)  # an unreachable server: a clear error within seconds, not minutes of retries
            download = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aegan-run-")))
            path, tags = _checkpoint_from_run(run_id or _run_of_uri(model_uri, uri), uri, download)
            model, dataset = tags.get("model", "model"), tags.get("dataset")
        else:
            path = Path(ckpt)
            if not path.is_file():
                raise ConfigError(f"checkpoint {path} does not exist")
            record = path.parent / "run.json"
            info = json.loads(record.read_text()) if record.exists() else {}
            model, dataset = info.get("model", path.parent.parent.name), info.get("dataset")
        dataset = data or dataset
        if not dataset:
            raise ConfigError(f"which dataset does {path} belong to? pass --data NAME")
        module = load_module(path)
    params = load_params(root)
    loaded = Loaded(module, model, dataset, resolve_path(root, params.paths.prepared_dir) / dataset)
    if (loaded.prepared / "manifest.json").exists():
        images = tuple(loaded.manifest["splits"]["test"]["shape"][1:])
        trained = tuple(module.hparams["image_shape"])
        if images != trained:
            raise ConfigError(
                f"{model} was trained on images of shape {trained}, {dataset} has {images}: "
                "pass --data with the dataset it was trained on"
            )
    return loaded


def default_out(loaded: Loaded, root: Path | None = None) -> Path:
    return (root or project_root()) / "reports" / "tools" / f"{loaded.model}-{loaded.data}"


def generate(loaded: Loaded, out: Path, n: int = 64, seed: int = 0, sampler: str = "prior") -> list[Path]:
    """A grid of n samples: codes from the prior, or from a density fitted to the training codes (gmm, two_stage)."""
    if sampler == "prior":
        require(
            loaded,
            "sample",
            "generate",
            "samples from the prior, which plain autoencoders do not have (use --sampler gmm or two_stage)",
        )
        codes = PriorSampler(loaded.module.latent_dim)
    else:
        require(loaded, "encode", "generate", f"--sampler {sampler} fits the codes of an encoder")
        options = load_params(project_root()).evaluation.samplers.get(sampler)
        codes = build_sampler(sampler, options).fit(encode(loaded.module, loaded.split("train")["images"]), seed)
    name = "samples.png" if sampler == "prior" else f"samples_{sampler}.png"
    return [save_grid(decode(loaded.module, codes.sample(n, seed)), out / name)]


def reconstruct(loaded: Loaded, out: Path, n: int = 32) -> list[Path]:
    require(loaded, "encode", "reconstruct", "needs an encoder")
    images = loaded.split()["images"][:n].float()
    return [reconstruction_grid(images, reconstruct_images(loaded.module, images), out / "reconstructions.png")]


def interpolate(
    loaded: Loaded,
    out: Path,
    pairs: list[tuple[int, int]] | None = None,
    steps: int = 10,
    mode: str = "linear",
    seed: int = 0,
) -> list[Path]:
    """Between pairs of test images (models with an encoder) or random latent points (GANs)."""
    module = loaded.module
    if loaded.module.capabilities.encode:
        images = loaded.split()["images"]
        pairs = pairs or [(i, i + 1) for i in range(0, 16, 2)]
        for a, b in pairs:
            if not (0 <= a < len(images) and 0 <= b < len(images)):
                raise ConfigError(f"image index out of range: ({a}, {b}); the test split has {len(images)} images")
        codes = encode(module, images[[i for pair in pairs for i in pair]])
        ends = codes.view(len(pairs), 2, -1)
    else:
        if pairs:
            raise ConfigError(
                f"{loaded.model} has no encoder: it interpolates between random latent points, not images"
            )
        generator = torch.Generator().manual_seed(seed)
        ends = torch.randn(8, 2, module.latent_dim, generator=generator)
    paths_ = torch.stack([latent.interpolation_path(z0, z1, steps, mode) for z0, z1 in ends])
    frames = decode(module, paths_.flatten(0, 1))
    frames = frames.view(len(ends), steps, *frames.shape[1:])
    return [
        latent.save_strips(frames, out / f"interpolation_{mode}.png"),
        latent.save_gif(frames[0], out / f"interpolation_{mode}.gif"),
    ]


def _attribute_mask(loaded: Loaded, split: dict[str, torch.Tensor], attribute: str) -> torch.Tensor:
    manifest = loaded.manifest
    if "attributes" in split:
        names = manifest.get("attribute_names") or []
        if attribute not in names:
            raise ConfigError(f"unknown attribute {attribute!r}; {loaded.data} has: {', '.join(names)}")
        return split["attributes"][:, names.index(attribute)] > 0
    classes = [str(c) for c in (manifest.get("config", {}).get("classes") or manifest.get("classes") or [])]
    if attribute in classes:
        return split["labels"] == classes.index(attribute)
    if attribute.isdigit() and int(attribute) < int(split["labels"].max()) + 1:
        return split["labels"] == int(attribute)
    raise ConfigError(f"unknown class {attribute!r}; {loaded.data} has: {', '.join(classes)} (or their indices)")


def arithmetic(
    loaded: Loaded, out: Path, attribute: str, n: int = 8, scales: tuple[float, ...] = (-2, -1, 0, 1, 2, 3)
) -> list[Path]:
    """decode(z + s * v) for images without the attribute, v = mean code with it - mean code without."""
    require(loaded, "encode", "arithmetic", "needs an encoder to find the codes of images with an attribute")
    split = loaded.split("train")
    mask = _attribute_mask(loaded, split, attribute)
    images = split["images"][:10_000].float()
    mask = mask[: len(images)]
    codes = encode(loaded.module, images)
    vector = latent.attribute_vector(codes, mask)
    base = codes[~mask][:n]
    grid = torch.stack([decode(loaded.module, base + s * vector) for s in scales], dim=1)  # (n, scales, C, H, W)
    return [latent.save_strips(grid, out / f"arithmetic_{attribute.replace('/', '_')}.png")]


def latent_map(loaded: Loaded, out: Path, n: int = 2000, seed: int = 0) -> list[Path]:
    require(loaded, "encode", "latent-map", "needs an encoder to place test images in the latent space")
    split = loaded.split()
    images = split["images"][:n].float()
    codes = encode(loaded.module, images).numpy()
    labels = split["labels"][:n].numpy() if "labels" in split else None
    classes = loaded.manifest.get("config", {}).get("classes") or loaded.manifest.get("classes")
    method = "latent space" if codes.shape[1] == 2 else f"t-SNE of {codes.shape[1]}-d codes"
    points = latent.embed_2d(codes, seed)
    paths = [
        latent.save_latent_map(
            points, labels, classes, out / "latent_map.png", f"{loaded.model} on {loaded.data}: {method}"
        )
    ]
    if codes.shape[1] == 2:
        paths.append(
            save_grid(latent.latent_grid(lambda z: decode(loaded.module, z)), out / "latent_grid.png", nrow=15)
        )
    return paths


def translate(loaded: Loaded, out: Path, n: int = 32, inputs: list[Path] | None = None) -> list[Path]:
    """The family's translation rows for test inputs (Pix2Pix: input, output, target; CycleGAN: both directions
    and their round trips); or the given image files and their translations."""
    require(loaded, "translate", "translate", "needs a translation model (e.g. pix2pix)")
    module = loaded.module
    if not inputs:
        test = loaded.split()
        if "inputs" not in test:
            raise ConfigError(f"{loaded.data} is not a translation dataset: pass --data with the model's task")
        batch = {"input": test["inputs"][:n].float(), "image": test["images"][:n].float()}
        with torch.no_grad():
            rows = module.eval().translation_rows(batch)
        return [strips_grid(rows, out / "translations.png")]
    from aegan.data.images import load_image

    channels, size = (int(v) for v in module.hparams["image_shape"][:2])
    images = torch.stack([torch.from_numpy(load_image(p, size, channels, "stretch")) for p in inputs])
    x = images.float() / 127.5 - 1
    outputs = batched(module.translate, x, module, 500)
    return [strips_grid([x, outputs], out / "translated.png", per_row=min(16, len(x)))]  # inputs, then outputs
