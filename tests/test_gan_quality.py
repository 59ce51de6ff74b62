"""GAN quality floors on the domain yardstick, against references that are not aegan: the real data
(the floor FID of training images vs test images) and a naive generator (independent Gaussian pixels
with the training set's per-pixel mean and std). Before the DCGAN was written as its seed writes it,
the old default failed every floor here (3 epochs on the fixture: FID 1096, recall 0, 2 classes)."""

from __future__ import annotations

import pytest
import torch
from conftest import FIXTURE_OVERRIDES, run_cfg
from omegaconf import OmegaConf

from aegan.metrics.distribution import distribution_metrics, mode_coverage
from aegan.metrics.domain_classifier import load_classifier, train_classifier
from aegan.metrics.features import DomainBackbone, extract_features
from aegan.models.inference import batched, sample
from aegan.models.registry import load_module
from aegan.training.fit import fit

pytestmark = pytest.mark.slow
FASHION = ("prepared", "fashion_mnist")


@pytest.fixture(scope="module")
def yardstick(root, fashion_prepared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("yardstick")
    cfg = run_cfg(root, fashion_prepared, tmp)
    clf_cfg = {**OmegaConf.to_container(cfg.evaluation.domain_classifier), "epochs": 3}
    train_classifier(clf_cfg, fashion_prepared.joinpath(*FASHION), tmp / "clf.pt", 0, cfg.trainer, cfg.logger, None)
    classifier = load_classifier(tmp / "clf.pt")
    backbone = DomainBackbone(classifier)
    split = {
        name: torch.load(fashion_prepared.joinpath(*FASHION, f"{name}.pt"), weights_only=True)
        for name in ("train", "test")
    }
    test, train = split["test"]["images"].float(), split["train"]["images"].float()
    real = extract_features(backbone, test, 250)

    def score(images: torch.Tensor) -> dict:
        scores = distribution_metrics(backbone, real, extract_features(backbone, images, 250), cfg.evaluation)
        return {**scores, **mode_coverage(batched(classifier, images, classifier, 250), 0.1)}

    noise = torch.randn(len(test), *train.shape[1:], generator=torch.Generator().manual_seed(0))
    references = {
        "real": score(train[: len(test)]),
        "naive": score((train.mean(0) + train.std(0) * noise).clamp(-1, 1)),
    }
    return score, references, cfg


def test_dcgan_beats_the_naive_generator_and_covers_the_classes_after_three_epochs(
    root, fashion_prepared, tmp_path, yardstick
):
    score, references, _ = yardstick
    cfg = run_cfg(root, fashion_prepared, tmp_path, "model=dcgan", "trainer.max_epochs=3", *FIXTURE_OVERRIDES)
    fit(cfg, tmp_path / "run", root)  # 3 x 94 steps at the seed's batch 32
    torch.manual_seed(0)
    scores = score(sample(load_module(tmp_path / "run" / "model.ckpt"), 1000))
    real, naive = references["real"], references["naive"]
    assert real["fid"] < 10 and naive["fid"] > 300 and naive["classes_covered"] <= 2  # the yardstick separates them
    assert scores["fid"] < naive["fid"] / 3, (scores, naive)
    assert scores["recall"] >= 0.2 and scores["coverage"] > 10 * naive["coverage"], scores
    assert scores["classes_covered"] >= 9, scores
