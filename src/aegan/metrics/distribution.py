"""How close a set of images is to the real distribution, in a backbone's feature space.

FID and KID are torchmetrics' (`feature=` the backbone; features arrive precomputed, see features.py),
with float64 covariances. KID is unbiased, so it is meaningful at small sample counts where FID is
biased upwards. Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020)
from k-nearest-neighbour balls on the same features.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from aegan.metrics.features import Backbone

log = logging.getLogger(__name__)


def fid(backbone: Backbone, real: torch.Tensor, fake: torch.Tensor) -> float:
    metric = FrechetInceptionDistance(feature=backbone)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kid(
    backbone: Backbone, real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int
) -> tuple[float, float]:
    metric = KernelInceptionDistance(feature=backbone, subsets=subsets, subset_size=subset_size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def _kth_neighbour_radius(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    radii = []
    for start in range(0, len(features), chunk):
        dist = torch.cdist(features[start : start + chunk], features)
        # +1: the point itself at distance 0; topk is several times faster than kthvalue on CPU
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def _ball_hits(manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor, chunk: int = 2048):
    """Per query: how many balls (manifold point, its k-NN radius) contain it; per ball: whether any query does."""
    per_query, per_ball = [], torch.zeros(len(manifold), dtype=torch.bool)
    for start in range(0, len(queries), chunk):
        inside = torch.cdist(queries[start : start + chunk], manifold) <= radii.unsqueeze(0)
        per_query.append(inside.sum(dim=1))
        per_ball |= inside.any(dim=0)
    return torch.cat(per_query), per_ball


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Fidelity and diversity of fakes against reals, from k-NN balls in feature space.

    precision (Kynkäänniemi et al. 2019): share of fakes inside some real ball (quality);
    recall: share of reals inside some fake ball (diversity). A collapsed fake set that lands in one
    large ball of a real outlier scores a high precision; density and coverage (Naeem et al. 2020) are
    robust to that: density = mean number of real balls holding a fake / k (~1 for a matching
    distribution), coverage = share of real balls holding at least one fake.
    """
    real, fake = real.double(), fake.double()
    real_hits, real_covered = _ball_hits(real, _kth_neighbour_radius(real, k), fake)
    fake_hits, _ = _ball_hits(fake, _kth_neighbour_radius(fake, k), real)
    return {
        "precision": float((real_hits > 0).double().mean()),
        "recall": float((fake_hits > 0).double().mean()),
        "density": float(real_hits.double().mean() / k),
        "coverage": float(real_covered.double().mean()),
    }


def distribution_metrics(
    backbone: Backbone, real: torch.Tensor, fake: torch.Tensor, evaluation: Any
) -> dict[str, float]:
    """FID, KID (mean, std over subsets), precision, recall, and the sample counts they used."""
    n = min(len(real), len(fake))
    if n <= backbone.num_features:
        log.warning(
            "%s FID with %d samples <= %d features: the covariance is rank-deficient and FID is strongly "
            "biased upwards; compare it only with FIDs at the same N (KID is unbiased)",
            backbone.name,
            n,
            backbone.num_features,
        )
    subset_size = min(int(evaluation.kid.subset_size), n)
    kid_mean, kid_std = kid(backbone, real, fake, int(evaluation.kid.subsets), subset_size)
    return {
        "fid": fid(backbone, real, fake),
        "kid": kid_mean,
        "kid_std": kid_std,
        **precision_recall(real, fake, int(evaluation.precision_recall.k)),
        "n_real": len(real),
        "n_fake": len(fake),
        "kid_subset_size": subset_size,
    }


def mode_coverage(logits: torch.Tensor, min_share: float = 0.1) -> dict[str, Any]:
    """Classes the domain classifier sees in the samples, and KL(predicted class histogram || uniform).

    A class is covered when it receives at least min_share of its uniform share (n / K) of the samples.
    KL is 0 for a perfectly balanced generator and log K (2.30 for 10 classes) for total collapse.
    """
    n_classes = logits.shape[1]
    counts = torch.bincount(logits.argmax(1), minlength=n_classes).double()
    hist = counts / counts.sum()
    nonzero = hist > 0
    kl = float((hist[nonzero] * (hist[nonzero] * n_classes).log()).sum())
    threshold = min_share * counts.sum() / n_classes
    return {
        "classes_covered": int((counts >= threshold).sum()),
        "n_classes": n_classes,
        "kl_uniform": kl,
        "class_histogram": [int(c) for c in counts.tolist()],
    }
