"""Pictures of the latent space: interpolation strips and GIFs, attribute vectors, t-SNE maps, 2-D grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aegan.errors import ConfigError
from aegan.io import atomic_path
from aegan.reports.grids import make_grid, save_grid

MODES = ("linear", "spherical")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016): stays on the shell where Gaussian codes live; linear when a ~ b."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    linear = (1 - t) * a + t * b
    safe = so.abs() > 1e-6
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.where(safe, so, torch.ones_like(so))
    return torch.where(safe, spherical, linear)


def interpolation_path(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """(steps, D) codes from z0 to z1 inclusive."""
    if mode not in MODES:
        raise ConfigError(f"interpolation mode must be one of {list(MODES)}, got {mode!r}")
    if steps < 2:
        raise ConfigError(f"an interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    a, b = z0.reshape(1, -1), z1.reshape(1, -1)
    return (1 - t) * a + t * b if mode == "linear" else slerp(a, b, t)


def attribute_vector(codes: torch.Tensor, has_attribute: torch.Tensor) -> torch.Tensor:
    """Mean code of the images with the attribute minus the mean code of those without."""
    has_attribute = has_attribute.bool()
    if has_attribute.all() or not has_attribute.any():
        raise ConfigError("an attribute vector needs images both with and without the attribute")
    return codes[has_attribute].mean(0) - codes[~has_attribute].mean(0)


def save_gif(frames: torch.Tensor, path: Path | str, duration_ms: int = 120, scale: int = 4) -> Path:
    """Frames (N, C, H, W) in [-1, 1] -> a looping GIF that plays forward and back."""
    images = []
    for frame in frames:
        img = Image.fromarray(make_grid(frame.unsqueeze(0), nrow=1, pad=0))
        images.append(img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST))
    sequence = images + images[-2:0:-1]
    with atomic_path(path) as tmp:
        sequence[0].save(tmp, format="GIF", save_all=True, append_images=sequence[1:], duration=duration_ms, loop=0)
    return Path(path)


def save_strips(strips: torch.Tensor, path: Path | str) -> Path:
    """(rows, steps, C, H, W) -> one PNG with a strip per row."""
    rows, steps = strips.shape[:2]
    return save_grid(strips.reshape(rows * steps, *strips.shape[2:]), path, nrow=steps)


def embed_2d(codes: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D codes as they are; higher-dimensional ones through t-SNE (scikit-learn)."""
    if codes.shape[1] == 2:
        return codes
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (len(codes) - 1) / 3))
    return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(codes)


def save_latent_map(
    points: np.ndarray, labels: np.ndarray | None, names: list[str] | None, path: Path | str, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.7)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.8)
        handles, _ = scatter.legend_elements()
        legend = [names[int(i)] if names else str(int(i)) for i in np.unique(labels)]
        ax.legend(handles, legend, fontsize=7, markerscale=0.8, loc="best")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def latent_grid(decode, n: int = 15, span: float = 2.5) -> torch.Tensor:
    """Decoded images of an n x n grid over [-span, span]^2: the map of a 2-D latent space."""
    axis = torch.linspace(-span, span, n)
    zs = torch.stack(torch.meshgrid(axis, -axis, indexing="xy"), dim=-1).reshape(-1, 2)
    return decode(zs)
