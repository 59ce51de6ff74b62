"""The ex-post code samplers on codes with a known distribution."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from aegan.errors import ConfigError
from aegan.models.samplers import GaussianMixtureSampler, PriorSampler, TwoStageVAESampler, build_sampler


def two_clusters(n: int = 4000) -> torch.Tensor:
    """Codes a single N(0, I) fits badly: two tight clusters at -3 and +3 (a quarter and three quarters)."""
    g = torch.Generator().manual_seed(0)
    centre = torch.where(torch.rand(n, 1, generator=g) < 0.25, -3.0, 3.0)
    return centre + 0.3 * torch.randn(n, 4, generator=g)


def share_near(samples: torch.Tensor, centre: float) -> float:
    return float(((samples - centre).norm(dim=1) < 1.5).float().mean())


def test_gaussian_mixture_finds_both_clusters_and_their_weights():
    samples = GaussianMixtureSampler(components=2).fit(two_clusters(), seed=0).sample(2000, seed=1)
    assert samples.shape == (2000, 4)
    assert share_near(samples, -3) == pytest.approx(0.25, abs=0.04)
    assert share_near(samples, 3) == pytest.approx(0.75, abs=0.04)
    assert share_near(samples[:200], 3) == pytest.approx(0.75, abs=0.1)  # shuffled: any prefix is a fair draw


def test_gaussian_mixture_on_high_dimensional_codes_samples_without_a_covariance_warning():
    """Fitted in float32 (the speed), sampled from float64 covariances: numpy's PSD check passes."""
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(3000, 64, generator=g) @ torch.randn(64, 64, generator=g) + 5 * torch.randn(64, generator=g)
    sampler = GaussianMixtureSampler(components=4).fit(codes, seed=0)
    assert sampler.mixture.covariances_.dtype == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "covariance is not symmetric positive-semidefinite" would raise
        samples = sampler.sample(1000, seed=1)
    assert samples.shape == (1000, 64) and torch.isfinite(samples).all()
    assert (samples.mean(0) - codes.mean(0)).abs().max() < 0.5 * codes.std(0).max()


def test_two_stage_vae_moves_samples_onto_the_clusters():
    codes = two_clusters()
    samples = TwoStageVAESampler(hidden=[256, 256], epochs=50).fit(codes, seed=0).sample(2000, seed=1)
    prior = PriorSampler(4).sample(2000, seed=1)
    on_clusters = share_near(samples, -3) + share_near(samples, 3)
    assert on_clusters > 0.75 and on_clusters > 10 * (share_near(prior, -3) + share_near(prior, 3))
    assert 0.05 < share_near(samples, -3) < 0.4  # both clusters (the small one under-weighted, as VAEs do)
    assert torch.allclose(samples.mean(0), codes.mean(0), atol=0.5)


def test_samplers_are_repeatable_by_seed():
    codes = two_clusters(500)
    for sampler in (GaussianMixtureSampler(components=2), TwoStageVAESampler(hidden=[16], epochs=2)):
        fitted = sampler.fit(codes, seed=0)
        assert torch.equal(fitted.sample(50, seed=3), fitted.sample(50, seed=3))
        assert not torch.equal(fitted.sample(50, seed=3), fitted.sample(50, seed=4))


def test_unknown_sampler_or_option_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown sampler 'flow'"):
        build_sampler("flow")
    with pytest.raises(ConfigError, match=r"evaluation\.samplers\.gmm"):
        build_sampler("gmm", {"componentz": 3})
