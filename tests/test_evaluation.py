"""The evaluation metrics on real Fashion-MNIST: each must rank good, degraded and broken image sets
in the right order, and match a reference implementation where one exists."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from conftest import run_cfg

from aegan.errors import ConfigError
from aegan.metrics.distribution import distribution_metrics, fid, mode_coverage, precision_recall
from aegan.metrics.domain_classifier import load_classifier, train_classifier
from aegan.metrics.evaluate import EvaluationInputs, generated_metrics
from aegan.metrics.features import (
    DomainBackbone,
    InceptionBackbone,
    default_inception_path,
    extract_features,
    tf_bilinear_resize,
)

FASHION = ("prepared", "fashion_mnist")


def split(base, name):
    data = torch.load(base.joinpath(*FASHION, f"{name}.pt"), weights_only=True)
    return data["images"].float(), data["labels"]


def blur(images: torch.Tensor) -> torch.Tensor:
    """A 5x5 box blur: recognisably the same images, with the detail gone."""
    return F.avg_pool2d(images, 5, stride=1, padding=2, count_include_pad=False)


@pytest.fixture(scope="module")
def domain(root, fashion_prepared, tmp_path_factory, params):
    tmp = tmp_path_factory.mktemp("classifier")
    cfg = run_cfg(root, fashion_prepared, tmp)
    clf_cfg = {**dict(params.evaluation.domain_classifier), "epochs": 3}
    scores = train_classifier(
        clf_cfg, fashion_prepared.joinpath(*FASHION), tmp / "clf.pt", 0, cfg.trainer, cfg.logger, None
    )
    return load_classifier(tmp / "clf.pt"), scores


@pytest.fixture(scope="module")
def image_sets(fashion_prepared):
    """real: the test split; the rest are compared against it."""
    train, _ = split(fashion_prepared, "train")
    test, _ = split(fashion_prepared, "test")
    n = len(test)
    generator = torch.Generator().manual_seed(0)
    return {
        "real": test,
        "train": train[:n],
        "blurred": blur(train[:n]),
        "noise": torch.rand(n, *test.shape[1:], generator=generator) * 2 - 1,
    }


def scores_for(backbone, sets, evaluation):
    real = extract_features(backbone, sets["real"], 250)
    return {
        name: distribution_metrics(backbone, real, extract_features(backbone, images, 250), evaluation)
        for name, images in sets.items()
        if name != "real"
    }


def test_domain_classifier_learns_fashion_mnist(domain):
    _, scores = domain
    print("domain classifier on 3,000 images, 3 epochs:", scores)
    assert scores["test_accuracy"] > 0.75  # chance is 0.1; the full training split reaches > 0.9


def test_domain_fid_kid_precision_recall_rank_real_blurred_noise(domain, image_sets, params):
    classifier, _ = domain
    scores = scores_for(DomainBackbone(classifier), image_sets, params.evaluation)
    print({name: {k: round(v, 4) for k, v in s.items()} for name, s in scores.items()})
    train, blurred, noise = scores["train"], scores["blurred"], scores["noise"]
    assert train["fid"] < blurred["fid"] < noise["fid"]
    assert train["fid"] < 0.1 * noise["fid"]
    assert train["kid"] < blurred["kid"] < noise["kid"]
    assert abs(train["kid"]) < 0.01 * noise["kid"]  # unbiased: ~0 for two real samples
    assert train["precision"] > 0.6 and train["recall"] > 0.6 and train["coverage"] > 0.6
    assert 0.6 < train["density"] < 1.5
    assert blurred["recall"] < 0.1 and noise["recall"] < 0.05
    # Noise collapses to one spot in feature space: precision can be fooled, density and coverage are not.
    assert noise["coverage"] < 0.05 and noise["density"] < 0.5 * train["density"]


@pytest.mark.slow
def test_inception_fid_kid_rank_real_blurred_noise(image_sets, params):
    """The standard Inception network, offline, on few images (CPU: ~7 images/s): the same ordering."""
    n = 48
    sets = {name: images[:n] for name, images in image_sets.items()}
    backbone = InceptionBackbone(sha1=params.evaluation.inception.sha1)
    evaluation = params.evaluation
    scores = scores_for(backbone, sets, evaluation)
    print({name: {k: round(v, 4) for k, v in s.items()} for name, s in scores.items()})
    assert scores["train"]["fid"] < scores["blurred"]["fid"] < scores["noise"]["fid"]
    assert scores["train"]["kid"] < scores["blurred"]["kid"] < scores["noise"]["kid"]
    assert scores["noise"]["precision"] == 0.0


def test_fid_matches_the_scipy_reference():
    """torchmetrics' FID on precomputed features == the original numpy/scipy formula."""
    gen = np.random.default_rng(0)
    a = gen.normal(size=(600, 16))
    b = gen.normal(loc=0.3, scale=1.2, size=(500, 16)) @ gen.normal(size=(16, 16)) * 0.5
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

    class Identity(torch.nn.Module):
        num_features = 16

        def forward(self, x):
            return x

    got = fid(Identity(), torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert got == pytest.approx(expected, rel=1e-3)


def test_precision_recall_on_known_geometry():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=gen)
    same = precision_recall(real, real.clone(), k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx((3 + 1) / 3, rel=0.05)  # its own ball + about k others
    far = precision_recall(real, real + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    collapsed = precision_recall(real, real[:1].repeat(500, 1) + 1e-3 * torch.randn(500, 8, generator=gen), k=3)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05  # good-looking, no diversity
    assert collapsed["coverage"] < 0.05


def test_mode_coverage_counts_classes_and_measures_collapse():
    balanced = torch.eye(10).repeat(100, 1)
    assert mode_coverage(balanced) == {
        "classes_covered": 10,
        "n_classes": 10,
        "kl_uniform": pytest.approx(0.0, abs=1e-9),
        "class_histogram": [100] * 10,
    }
    collapsed = torch.eye(10)[torch.zeros(1000, dtype=torch.long)]
    result = mode_coverage(collapsed)
    assert result["classes_covered"] == 1 and result["kl_uniform"] == pytest.approx(np.log(10))
    few = torch.eye(10)[torch.tensor([0] * 990 + list(range(10)))]
    assert mode_coverage(few, min_share=0.1)["classes_covered"] == 1  # one stray sample is not coverage


def test_mode_coverage_from_the_domain_features_is_the_classifiers_own(domain, image_sets, params):
    """generated_metrics reads the classes off the domain features it already has (one conv pass, not
    two): the histogram must be the one the classifier itself gives, with or without that backbone."""
    classifier, _ = domain
    images = image_sets["blurred"][:1500]  # some images of every class, some misclassified
    backbone = DomainBackbone(classifier)
    inputs = EvaluationInputs(
        train=None,
        test=(image_sets["real"], None),
        backbones={"domain": backbone},
        real_features={"domain": extract_features(backbone, image_sets["real"][:1500], 500)},
        classifier=classifier,
        device=torch.device("cpu"),
    )
    with torch.no_grad():
        expected = mode_coverage(classifier(images))
    assert generated_metrics(images, inputs, params.evaluation, "test")["mode_coverage"] == expected
    without_domain = EvaluationInputs(**{**vars(inputs), "backbones": {}, "real_features": {}})
    assert generated_metrics(images, without_domain, params.evaluation, "test")["mode_coverage"] == expected


def tf1_resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """TF1's resize_bilinear(align_corners=False) written out: source index = target index * in/out."""

    def taps(n_in):
        src = np.arange(size) * n_in / size
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    (y0, y1, fy), (x0, x1, fx) = taps(x.shape[2]), taps(x.shape[3])
    a = x.numpy().astype(np.float64)
    top = a[:, :, y0][:, :, :, x0] * (1 - fx) + a[:, :, y0][:, :, :, x1] * fx
    bottom = a[:, :, y1][:, :, :, x0] * (1 - fx) + a[:, :, y1][:, :, :, x1] * fx
    return torch.from_numpy(top * (1 - fy)[:, None] + bottom * fy[:, None]).float()


def test_tf_bilinear_resize_matches_tf1_resize_bilinear():
    x = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    ours = tf_bilinear_resize(x, 299)
    assert ours.shape == (2, 3, 299, 299)
    assert torch.allclose(ours, tf1_resize_bilinear(x, 299), atol=1e-5)
    half_pixel = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert (ours - half_pixel).abs().max() > 0.1  # the common PyTorch resize is not the reference one


def test_eager_inception_features_equal_the_torchscript_reference(params):
    backbone = InceptionBackbone(sha1=params.evaluation.inception.sha1)
    scripted = torch.jit.load(str(default_inception_path()), map_location="cpu").eval()
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = tf_bilinear_resize(((images + 1) * 127.5).round().clamp(0, 255).expand(-1, 3, -1, -1), 299)
    with torch.no_grad():
        reference = scripted((x - 128) / 128).flatten(1)  # the TorchScript on contiguous NCHW, as FID code runs
        ours = backbone.embed(images)
    assert reference.abs().max() > 1  # features of real magnitude, not zeros
    assert torch.allclose(ours, reference, atol=1e-4, rtol=0)
    assert not any(isinstance(m, torch.jit.ScriptModule) for m in backbone.modules())  # the eager network runs


def test_inception_weights_are_checked(tmp_path, params):
    with pytest.raises(ConfigError, match="sha1"):
        InceptionBackbone(sha1="0" * 40)
    with pytest.raises(ConfigError, match="do not exist"):
        InceptionBackbone(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a network")
    with pytest.raises(ConfigError, match="TorchScript"):
        InceptionBackbone(garbage)
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2))), other)
    with pytest.raises(ConfigError, match="not the FID Inception"):
        InceptionBackbone(other)


def test_an_unlabelled_image_folder_gets_a_rotation_classifier_for_domain_fid(
    root, fashion_prepared, image_sets, params, tmp_path
):
    """Real Fashion-MNIST images as a folder of PNGs with no labels: the classifier learns which way each
    was turned, its features still rank real < blurred < noise, and no class-based score is made up."""
    from omegaconf import OmegaConf
    from PIL import Image

    from aegan.data.prepare import prepare_dataset, read_split

    folder = tmp_path / "raw" / "mine"
    folder.mkdir(parents=True)
    for i, image in enumerate(image_sets["train"][:1500]):
        Image.fromarray(((image[0].numpy() + 1) * 127.5).round().astype("uint8")).save(folder / f"img_{i:05d}.png")
    cfg = OmegaConf.merge(
        params.datasets.lego, {"name": "mine", "image_size": 28, "source": {"labels": None, "kaggle": None}}
    )
    prepared = prepare_dataset(cfg, tmp_path / "raw", tmp_path / "prepared", {}, 0)
    assert "labels" not in read_split(prepared, "train") and "attributes" not in read_split(prepared, "train")

    run = run_cfg(root, fashion_prepared, tmp_path)
    clf_cfg = {**dict(params.evaluation.domain_classifier), "epochs": 2}
    scores = train_classifier(clf_cfg, prepared, tmp_path / "clf.pt", 0, run.trainer, run.logger, None)
    print("rotation classifier on 1,200 unlabelled images, 2 epochs:", scores)
    assert scores["task"] == "rotation" and scores["test_accuracy"] > 0.6, scores  # chance: 0.25
    classifier = load_classifier(tmp_path / "clf.pt")
    assert not classifier.judges_classes

    backbone = DomainBackbone(classifier)
    sets = {name: image_sets[name] for name in ("real", "train", "blurred", "noise")}
    ranked = scores_for(backbone, sets, params.evaluation)
    assert ranked["train"]["fid"] < ranked["blurred"]["fid"] < ranked["noise"]["fid"]
    inputs = EvaluationInputs(
        train=None,
        test=(image_sets["real"], None),
        backbones={"domain": backbone},
        real_features={"domain": extract_features(backbone, image_sets["real"], 500)},
        classifier=classifier,
        device=torch.device("cpu"),
    )
    metrics = generated_metrics(image_sets["blurred"], inputs, params.evaluation, "test")
    assert metrics["samples"]["domain"]["fid"] > 0 and "mode_coverage" not in metrics  # four turns are not classes
    with pytest.raises(ConfigError, match=r"data\.source\.labels must be one of"):
        prepare_dataset(
            OmegaConf.merge(cfg, {"source": {"labels": "folder"}}), tmp_path / "raw", tmp_path / "p2", {}, 0
        )
