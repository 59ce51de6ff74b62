"""The adversarial loss pieces and WGAN-GP's gradient penalty against values computed by hand."""

import math

import pytest
import torch
from torch import nn

from aegan.errors import ConfigError
from aegan.models.adversarial import (
    LOSSES,
    Hinge,
    LeastSquares,
    NonSaturating,
    Wasserstein,
    build_adversarial,
    gradient_penalty,
)


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


def test_each_loss_has_its_closed_form_at_known_scores():
    zero = torch.zeros(4, 1)
    critic, _ = NonSaturating().critic(zero, zero)  # D = 1/2 everywhere: 2 log 2, and log 2 for G
    assert critic.item() == pytest.approx(2 * math.log(2)) and NonSaturating().generator(zero).item() == pytest.approx(
        math.log(2)
    )
    ones = torch.ones(4, 1)
    assert LeastSquares().critic(ones, zero)[0].item() == 0 and LeastSquares().generator(zero).item() == 1
    assert Hinge().critic(ones, -ones)[0].item() == 0 and Hinge().critic(zero, zero)[0].item() == 2
    loss, logs = Wasserstein().critic(3 * ones, ones)
    assert loss.item() == -2 and logs["wasserstein"].item() == 2 and Wasserstein().generator(ones).item() == -1


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_rewards_a_critic_that_tells_real_from_fake(name):
    loss = LOSSES[name]()
    high, low = torch.full((8, 1), 2.0), torch.full((8, 1), -2.0)
    assert loss.critic(high, low)[0] < loss.critic(low, high)[0]  # the critic prefers real high, fake low
    assert loss.generator(high) < loss.generator(low)  # the generator prefers its images scored as real


def test_presets_and_constraints_are_built_from_the_model_config():
    critic = nn.Linear(3, 1)
    clip = build_adversarial({"loss": "wasserstein", "clip_value": 0.01})
    with torch.no_grad():
        critic.weight.fill_(5.0)
    clip.constrain(critic)
    assert critic.weight.abs().max().item() == pytest.approx(0.01) and not clip.differentiates_twice
    gp = build_adversarial({"loss": "wasserstein_gp", "gp_lambda": 10})
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    with_gp, logs = gp.critic_loss(critic, real, fake)
    plain, _ = Wasserstein().critic(critic(real), critic(fake))
    assert gp.differentiates_twice and with_gp.item() == pytest.approx(plain.item() + 10 * logs["gp"].item())
    assert isinstance(build_adversarial({"loss": "hinge"}).loss, Hinge)
    assert build_adversarial({"loss": "lsgan", "constraint": "gradient_penalty", "gp_lambda": 1}).gp_lambda == 1
    with pytest.raises(ConfigError, match=r"model\.loss must be one of"):
        build_adversarial({"loss": "minimax"})
    with pytest.raises(ConfigError, match=r"model\.constraint"):
        build_adversarial({"loss": "hinge", "constraint": "spectral"})
