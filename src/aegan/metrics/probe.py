"""Representation quality: a linear classifier (logistic regression) on the codes of the training split,
scored on the test split, next to the same probe on PCA with the code's dimension and on raw pixels."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aegan.models.inference import encode

PIXEL_PROBE = "pixel_probe.json"  # the probe on raw pixels, in the reference directory of a labelled dataset


def probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, max_iter: int
) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings():
        # A capped max_iter is a budget, not an error: the accuracy is what is reported.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, train_y)
    return float(model.score(test_x, test_y))


def _probe_split(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], max_train: int
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    (train_images, train_y), (test_images, test_y) = train, test
    return train_images[:max_train], train_y[:max_train].numpy(), test_images, test_y.numpy()


def _pixels(images: torch.Tensor) -> np.ndarray:
    return images.float().flatten(1).numpy()


def single_label(labels: torch.Tensor | None) -> bool:
    """One class index per image."""
    return labels is not None and labels.dim() == 1


def probe_applies(
    train: tuple[torch.Tensor, torch.Tensor | None], test: tuple[torch.Tensor, torch.Tensor | None]
) -> bool:
    """Whether a linear probe applies: one class index per image in both splits."""
    return single_label(train[1]) and single_label(test[1])


def pixel_probe(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], max_train: int, max_iter: int
) -> float:
    """Accuracy of the probe on raw pixels: one number per dataset (the reference stage computes it once)."""
    train_images, train_y, test_images, test_y = _probe_split(train, test, max_train)
    return probe_accuracy(_pixels(train_images), train_y, _pixels(test_images), test_y, max_iter)


def linear_probe(
    module: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    max_train: int,
    max_iter: int,
) -> dict[str, float]:
    """Accuracy of the probe on the model's codes and on PCA(code dim) of the pixels."""
    train_images, train_y, test_images, test_y = _probe_split(train, test, max_train)
    codes_train, codes_test = encode(module, train_images).numpy(), encode(module, test_images).numpy()
    pixels_train, pixels_test = _pixels(train_images), _pixels(test_images)
    dim = min(codes_train.shape[1], *pixels_train.shape)
    pca = PCA(n_components=dim, random_state=0).fit(pixels_train)
    return {
        "codes": probe_accuracy(codes_train, train_y, codes_test, test_y, max_iter),
        "pca": probe_accuracy(pca.transform(pixels_train), train_y, pca.transform(pixels_test), test_y, max_iter),
        "code_dim": codes_train.shape[1],
        "n_train": len(train_y),
    }
