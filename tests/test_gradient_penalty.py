"""WGAN-GP's gradient penalty against values computed by hand."""

import math

import pytest
import torch
from torch import nn

from aegan.models.gan import gradient_penalty


class Linear2(nn.Module):
    """f(x) = w . x: its gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


class Square(nn.Module):
    """f(x) = sum(x^2): gradient 2 x."""

    def forward(self, x):
        return x.flatten(1).pow(2).sum(1, keepdim=True)


def test_linear_critic():
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert gradient_penalty(Linear2([3.0, 4.0]), real, fake).item() == pytest.approx(16.0)  # (5 - 1)^2


def test_quadratic_critic_with_given_alpha():
    real = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    fake = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    alpha = torch.tensor([[0.25], [0.5]])
    # x_hat = [0.5, 1.5] -> grad [1, 3] -> (sqrt(10) - 1)^2 ; x_hat = [0.5, 0] -> grad [1, 0] -> 0
    expected = ((math.sqrt(10) - 1) ** 2 + 0.0) / 2
    assert gradient_penalty(Square(), real, fake, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)


def test_alpha_is_uniform_per_sample_not_per_pixel():
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x_hat"] = x.detach().clone()
            return x.flatten(1).sum(1, keepdim=True)

    torch.manual_seed(0)
    gradient_penalty(Spy(), torch.ones(64, 1, 4, 4), torch.zeros(64, 1, 4, 4))
    x_hat = seen["x_hat"]
    per_sample = x_hat.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))  # one alpha per image
    alphas = per_sample[:, 0]
    assert alphas.min() >= 0 and alphas.max() <= 1 and alphas.std() > 0.2  # U(0,1) has std 0.29


def test_zero_gradient_gives_a_finite_penalty_and_finite_gradients():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        critic[1].weight.zero_()
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx(1.0, abs=1e-5)  # (sqrt(0 + eps) - 1)^2
    gp.backward()
    assert torch.isfinite(critic[1].weight.grad).all()
