"""Representation quality: a linear classifier (logistic regression) on the codes of the training split,
scored on the test split, next to the same probe on raw pixels and on PCA with the code's dimension."""

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


def probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, max_iter: int
) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings():
        # A capped max_iter is a budget, not an error: the accuracy is what is reported.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, train_y)
    return float(model.score(test_x, test_y))


def linear_probe(
    module: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    max_train: int,
    max_iter: int,
) -> dict[str, float]:
    """Accuracy of the probe on codes, raw pixels and PCA(code dim) of the pixels."""
    (train_images, train_y), (test_images, test_y) = train, test
    train_images, train_y = train_images[:max_train], train_y[:max_train].numpy()
    test_y = test_y.numpy()
    codes_train, codes_test = encode(module, train_images).numpy(), encode(module, test_images).numpy()
    pixels_train = train_images.float().flatten(1).numpy()
    pixels_test = test_images.float().flatten(1).numpy()
    dim = min(codes_train.shape[1], *pixels_train.shape)
    pca = PCA(n_components=dim, random_state=0).fit(pixels_train)
    return {
        "codes": probe_accuracy(codes_train, train_y, codes_test, test_y, max_iter),
        "pixels": probe_accuracy(pixels_train, train_y, pixels_test, test_y, max_iter),
        "pca": probe_accuracy(pca.transform(pixels_train), train_y, pca.transform(pixels_test), test_y, max_iter),
        "code_dim": codes_train.shape[1],
        "n_train": len(train_y),
    }
