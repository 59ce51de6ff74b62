"""Anomaly detection with an autoencoder: trained without one class, it reconstructs that class worse.

The score of a test image is its reconstruction MSE; ROC AUC measures how well the score separates the
held-out class (positives) from the classes the model saw (negatives). 0.5 = no better than chance.
"""

from __future__ import annotations

import torch
from sklearn.metrics import roc_auc_score

from aegan.models.inference import reconstruct


def reconstruction_errors(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Per-image MSE on [0, 1] pixels."""
    return ((reconstruct(module, images, batch_size) - images.float()) / 2).pow(2).flatten(1).mean(1)


def anomaly_auc(module: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, held_out: int) -> dict[str, float]:
    scores = reconstruction_errors(module, images)
    positive = (labels == held_out).numpy()
    return {
        "auc": float(roc_auc_score(positive, scores.numpy())),
        "held_out_class": held_out,
        "n_anomalies": int(positive.sum()),
        "n_normal": int((~positive).sum()),
        "mse_anomalies": float(scores[positive].mean()),
        "mse_normal": float(scores[~positive].mean()),
    }
