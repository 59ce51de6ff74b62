"""The `prepare` stage: raw files -> [-1, 1] tensors per split + a manifest.

Output (data/prepared/<name>/): train.pt, val.pt, test.pt, each a dict with `images` (N, C, H, W) in
[-1, 1] and, where the dataset has them, `labels` (N,) or `attributes` (N, A); and manifest.json
(counts, shapes, dtype, value range, input checksums, skipped files, the config used).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from aegan.data.idx import read_idx
from aegan.data.images import label_from_filename, load_image
from aegan.errors import ConfigError, DataFormatError, first_line
from aegan.io import atomic_dir, atomic_write_json, md5_file

SPLITS = ("train", "val", "test")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_MAX_LISTED_SKIPS = 50


def to_unit_range(images: np.ndarray | torch.Tensor, dtype: str) -> torch.Tensor:
    """uint8 [0, 255] -> [-1, 1] in the configured floating dtype."""
    if dtype not in _DTYPES:
        raise DataFormatError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    tensor = torch.as_tensor(images)
    return (tensor.to(torch.float32) / 127.5 - 1.0).to(_DTYPES[dtype])


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _split_indices(n: int, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """A seeded random partition of range(n) into the named parts (the rest is 'train')."""
    order = np.random.default_rng(seed).permutation(n)
    parts, start = {}, 0
    for name, fraction in fractions.items():
        count = round(n * fraction)
        parts[name] = np.sort(order[start : start + count])
        start += count
    parts["train"] = np.sort(order[start:])
    return parts


def _idx_splits(cfg: Any, raw: Path, seed: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    files = cfg.source.files
    arrays = {key: read_idx(raw / spec.name) for key, spec in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataFormatError(f"{cfg.name}: {split} images {images.shape} and labels {labels.shape} do not match")
    images = _resize(torch.from_numpy(arrays["train_images"]).unsqueeze(1), cfg.image_size)
    test_images = _resize(torch.from_numpy(arrays["test_images"]).unsqueeze(1), cfg.image_size)
    parts = _split_indices(len(images), {"val": cfg.split.val_fraction}, seed)
    train_labels = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    splits = {name: {"images": images[idx], "labels": train_labels[idx]} for name, idx in parts.items()}
    splits["test"] = {
        "images": test_images,
        "labels": torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    }
    inputs = {spec.name: md5_file(raw / spec.name) for spec in files.values()}
    return splits, {"inputs": inputs, "skipped": {"count": 0, "files": []}}


_LABEL_SOURCES = ("filename", None)  # source.labels: LEGO's '<part> <name> <view>.png', or no labels


def _image_folder_splits(cfg: Any, raw: Path, seed: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    label_source = cfg.source.get("labels")
    if label_source not in _LABEL_SOURCES:
        raise ConfigError(f"data.source.labels must be one of {list(_LABEL_SOURCES)}, got {label_source!r}")
    files = sorted(p for p in raw.glob(cfg.source.image_glob) if p.is_file() and not p.name.startswith("."))
    if cfg.get("max_images"):
        keep = np.sort(np.random.default_rng(seed).permutation(len(files))[: cfg.max_images])
        files = [files[i] for i in keep]
    if not files:
        raise DataFormatError(f"{cfg.name}: no files match {cfg.source.image_glob!r} under {raw}")

    attributes = None
    if cfg.source.get("attributes_csv"):
        csv_paths = list(raw.rglob(cfg.source.attributes_csv))
        if not csv_paths:
            raise DataFormatError(f"{cfg.name}: attributes file {cfg.source.attributes_csv} not found under {raw}")
        try:
            attributes = pd.read_csv(csv_paths[0]).set_index("image_id")
        except (ValueError, KeyError, pd.errors.ParserError) as exc:
            raise DataFormatError(f"{csv_paths[0]}: unreadable attribute table ({exc})") from exc

    images, names, skipped = [], [], []
    for path in tqdm(files, desc=f"decode {cfg.name}", unit="img", mininterval=1.0):
        if attributes is not None and path.name not in attributes.index:
            skipped.append({"file": str(path.relative_to(raw)), "reason": "no row in the attribute table"})
            continue
        try:
            images.append(load_image(path, cfg.image_size, cfg.channels, cfg.resize))
        except DataFormatError as exc:
            skipped.append({"file": str(path.relative_to(raw)), "reason": str(exc).split(": ", 1)[-1]})
            continue
        names.append(path)
    if not images:
        raise DataFormatError(f"{cfg.name}: none of the {len(files)} files under {raw} could be decoded")

    data: dict[str, Any] = {"images": torch.from_numpy(np.stack(images))}
    extra: dict[str, Any] = {}
    if attributes is not None:
        table = attributes.loc[[p.name for p in names]]
        data["attributes"] = torch.from_numpy(table.to_numpy(dtype=np.int8))
        extra["attribute_names"] = list(table.columns)
    elif label_source == "filename":
        labels = [label_from_filename(p) for p in names]
        classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(classes)}
        data["labels"] = torch.tensor([index[c] for c in labels], dtype=torch.int64)
        extra["classes"] = classes

    parts = _split_indices(len(names), {"test": cfg.split.test_fraction, "val": cfg.split.val_fraction}, seed)
    splits = {name: {k: v[torch.from_numpy(idx)] for k, v in data.items()} for name, idx in parts.items()}
    digest = hashlib.md5(usedforsecurity=False)
    for path in files:
        digest.update(f"{path.relative_to(raw)}:{md5_file(path)}\n".encode())
    info = {
        "inputs": {"files": len(files), "md5_of_file_md5s": digest.hexdigest()},
        "skipped": {"count": len(skipped), "files": skipped[:_MAX_LISTED_SKIPS]},
        **extra,
    }
    return splits, info


def _limit(split: dict[str, torch.Tensor], limit: int | None, seed: int) -> dict[str, torch.Tensor]:
    n = len(split["images"])
    if limit is None or limit >= n:
        return split
    keep = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(n)[:limit]))
    return {k: v[keep] for k, v in split.items()}


def prepare_dataset(cfg: Any, raw_root: Path, prepared_root: Path, limits: Any, seed: int) -> Path:
    """Run the prepare stage for dataset config `cfg`; returns data/prepared/<name>."""
    raw = raw_root / cfg.name
    if not raw.is_dir():
        raise DataFormatError(f"{raw} does not exist: run the download stage first (`dvc repro download@{cfg.name}`)")
    reader = _idx_splits if cfg.kind == "idx" else _image_folder_splits
    splits, info = reader(cfg, raw, seed)
    for name in SPLITS:
        if len(splits[name]["images"]) == 0:  # a model would train, then validate or score on nothing
            raise DataFormatError(
                f"{cfg.name}: the {name} split is empty ({sum(len(s['images']) for s in splits.values())} images "
                "in all): add images or change data.split.val_fraction / test_fraction"
            )
    final = {}
    for i, name in enumerate(SPLITS):
        split = _limit(splits[name], (limits or {}).get(name), seed + i)
        final[name] = {**split, "images": to_unit_range(split["images"], cfg.dtype)}
    return write_prepared(prepared_root / cfg.name, final, _manifest_head(cfg, limits, seed, info))


def prepare_translation(cfg: Any, base_prepared: Path, prepared_root: Path, seed: int) -> Path:
    """A translation task (data/tasks.py) from the prepared base dataset `cfg.base`."""
    from aegan.data.tasks import derive_split, pairing

    base = read_manifest(base_prepared)
    wanted = OmegaConf.to_container(cfg.base, resolve=True) if OmegaConf.is_config(cfg.base) else cfg.base
    if base.get("config") != wanted:
        raise DataFormatError(
            f"{base_prepared} was prepared with another config than {cfg.name}'s base: "
            f"prepare {cfg.base.name} first (`dvc repro prepare@{cfg.base.name}`)"
        )
    splits = {name: derive_split(cfg, read_split(base_prepared, name), seed + i) for i, name in enumerate(SPLITS)}
    info = {
        "base": {"dir": str(base_prepared), "md5": {n: base["splits"][n]["md5"] for n in SPLITS}},
        "pairing": pairing(cfg),
    }
    for key in ("classes", "attribute_names"):
        if key in base:
            info[key] = base[key]
    return write_prepared(prepared_root / cfg.name, splits, _manifest_head(cfg, base.get("limits"), seed, info))


def _manifest_head(cfg: Any, limits: Any, seed: int, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": cfg.name,
        "seed": seed,
        "dtype": cfg.dtype,
        "config": OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg,
        "limits": OmegaConf.to_container(limits) if OmegaConf.is_config(limits) else limits,
        "splits": {},
        **info,
    }


def write_prepared(dest: Path, splits: dict[str, dict[str, torch.Tensor]], manifest: dict[str, Any]) -> Path:
    """Every split as <split>.pt and manifest.json (counts, shapes, ranges, md5s), swapped in as a whole."""
    with atomic_dir(dest) as tmp:
        for name in SPLITS:
            split = splits[name]
            torch.save(split, tmp / f"{name}.pt")
            images = split["images"]
            manifest["splits"][name] = {
                "count": len(images),
                "shape": list(images.shape),
                "min": float(images.min()) if len(images) else None,
                "max": float(images.max()) if len(images) else None,
                "md5": md5_file(tmp / f"{name}.pt"),
            }
            if "inputs" in split:
                manifest["splits"][name]["input_shape"] = list(split["inputs"].shape)
            if "labels" in split:
                manifest["splits"][name]["class_counts"] = torch.bincount(split["labels"]).tolist()
        atomic_write_json(tmp / "manifest.json", manifest)
    return dest


def read_manifest(prepared: Path) -> dict[str, Any]:
    """manifest.json of a prepared dataset, refused unless it is one (a JSON object with every split)."""
    path = prepared / "manifest.json"
    if not path.exists():
        raise DataFormatError(f"{path} does not exist: run the prepare stage first (`dvc repro prepare`)")
    redo = f"prepare it again (`dvc repro -f prepare@{prepared.name}`)"
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path} is not a JSON manifest ({exc}): {redo}") from exc
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict) or any(not isinstance(splits.get(name), dict) for name in SPLITS):
        raise DataFormatError(f"{path} lacks the {', '.join(SPLITS)} splits of a prepared dataset: {redo}")
    return manifest


def read_split(prepared: Path, name: str) -> dict[str, torch.Tensor]:
    """One prepared split (`images`, and `labels` or `attributes`, and a translation task's `inputs`),
    refused unless it is one."""
    path = prepared / f"{name}.pt"
    redo = f"prepare it again (`dvc repro -f prepare@{prepared.name}`)"
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist: {redo}")
    try:
        data = torch.load(path, weights_only=True)
    except Exception as exc:  # torch.load raises many kinds on foreign or truncated bytes
        first = first_line(exc)
        raise DataFormatError(f"{path} is not a prepared split ({first}): {redo}") from exc
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise DataFormatError(f"{path} holds no (N, C, H, W) float tensor `images`: {redo}")
    for key in ("labels", "attributes"):
        if key in data and (not isinstance(data[key], torch.Tensor) or len(data[key]) != len(images)):
            raise DataFormatError(f"{path}: `{key}` does not match its {len(images)} images: {redo}")
    inputs = data.get("inputs")
    if inputs is not None and (not isinstance(inputs, torch.Tensor) or inputs.shape != images.shape):
        raise DataFormatError(f"{path}: the translation `inputs` do not match its images {tuple(images.shape)}: {redo}")
    return data
