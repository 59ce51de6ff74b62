"""The GAN family: DCGAN (non-saturating loss), WGAN (weight clipping), WGAN-GP and the MLP GAN (its
networks fully connected; WGAN-GP's objective by default, the seed's non-saturating one a config line away).

One module; the adversarial loss and the critic's constraint are pieces (models/adversarial.py) named
by `model.loss`: nonsaturating, lsgan, hinge, wasserstein (weights clipped to [-c, c] after each step)
or wasserstein_gp (Gulrajani et al.: the critic's gradient norm pulled to 1 on random interpolates).
The critic takes `n_critic` steps (each on a fresh real batch) per generator step. Lightning manual
optimisation: the Lightning 2 way for two optimisers (no optimizer_idx).

`model.ema_decay` keeps an exponential moving average of the generator's weights (Yazici et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training"; as StyleGAN and BigGAN sample): training
uses the live generator, everything that samples (previews, evaluation, exported models) the average.

`model.mode_seeking` adds MSGAN's term (Mao et al. 2019) to the generator's loss: it pays for pairs of
codes that give nearly the same image (compared at `model.mode_seeking_pool` x pool average pooling),
against the tight clumps a fully connected generator makes; `model.mode_seeking_pairs` says over which
pairs (MSGAN's two halves of the batch, or every pair, each near-copy charged on its own).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from aegan.errors import ConfigError
from aegan.models.adversarial import build_adversarial
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_decoder, build_encoder, build_optimizer


class GANModule(GenerativeModule):
    family = "gan"
    capabilities = Capabilities(sample=True)
    objective = "val/fid"  # adversarial losses do not measure quality (training/objective.py)
    monitor = None  # adversarial losses do not measure quality: keep the last checkpoint
    prog_bar = ("train/d_loss", "train/g_loss")

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        self.adversarial = build_adversarial(model)
        self.latent_dim = int(model["latent_dim"])
        self.n_critic = int(model.get("n_critic", 1))
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic must be >= 1, got {self.n_critic}")
        self.mode_seeking = float(model.get("mode_seeking", 0.0))
        self.mode_seeking_pool = int(model.get("mode_seeking_pool", 1))
        self.mode_seeking_pairs = str(model.get("mode_seeking_pairs", "halves"))
        if self.mode_seeking_pairs not in ("halves", "all"):
            raise ConfigError(f"model.mode_seeking_pairs must be 'halves' or 'all', got {self.mode_seeking_pairs!r}")
        if self.mode_seeking_pool < 1:
            raise ConfigError(f"model.mode_seeking_pool must be >= 1, got {self.mode_seeking_pool}")
        if self.mode_seeking < 0:
            raise ConfigError(f"model.mode_seeking must be >= 0, got {self.mode_seeking}")
        self.generator = build_decoder(model["generator"], self.latent_dim, image_shape)
        self.critic = build_encoder(model["critic"], image_shape, 1)
        self.ema_decay = model.get("ema_decay")
        if self.ema_decay is not None and not 0.0 < float(self.ema_decay) < 1.0:
            raise ConfigError(f"model.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        self.generator_average = None
        if self.ema_decay is not None:
            self.generator_average = copy.deepcopy(self.generator).requires_grad_(False)
            self.register_buffer("average_updates", torch.zeros((), dtype=torch.long))
        self.example_input_array = torch.zeros(1, self.latent_dim)  # the summary: the generator's sizes, FLOPs
        # A fixed latent batch, so sample grids of successive epochs show the same points.
        self.register_buffer("fixed_z", torch.randn(64, self.latent_dim, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes -> images in [-1, 1] (tanh output), by the averaged generator when there is one."""
        generator = self.generator if self.generator_average is None else self.generator_average
        return torch.tanh(generator(z))

    def fake(self, n: int) -> torch.Tensor:
        """n images of the generator being trained."""
        return torch.tanh(self.generator(self.noise(n)))

    @torch.no_grad()
    def update_average(self) -> None:
        """One EMA step; the decay ramps up as (1 + t) / (10 + t) so early weights fade within a short run."""
        self.average_updates += 1
        t = float(self.average_updates)
        decay = min(float(self.ema_decay), (1 + t) / (10 + t))
        average, live = list(self.generator_average.parameters()), list(self.generator.parameters())
        torch._foreach_lerp_(average, live, 1.0 - decay)
        # Batch-norm statistics averaged like the weights they normalise (timm's ModelEma does the same): the
        # live generator's statistics belong to the live weights, not to their average.
        for mine, theirs in zip(self.generator_average.buffers(), self.generator.buffers(), strict=True):
            if mine.is_floating_point():
                mine.lerp_(theirs, 1.0 - decay)
            else:
                mine.copy_(theirs)  # num_batches_tracked

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self(z)

    def sample(self, n: int) -> torch.Tensor:
        """n fresh draws from the prior."""
        return self(torch.randn(n, self.latent_dim, device=self.device))

    def preview_samples(self, n: int) -> torch.Tensor:
        """The same codes every epoch (up to 64, fresh beyond), so successive grids are comparable."""
        if n <= len(self.fixed_z):
            return self(self.fixed_z[:n])
        return self.sample(n)

    @torch.no_grad()
    def dry_run(self) -> torch.Tensor:
        images = super().dry_run()
        self.critic(images)
        return images

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.adversarial.critic_loss(self.critic, real, fake)

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return self.adversarial.loss.generator(self.critic(fake))

    def generator_step_loss(self, n: int) -> torch.Tensor:
        """The generator's objective on n fresh images of the live generator, with the mode-seeking term."""
        z = self.noise(n)
        fake = torch.tanh(self.generator(z))
        loss = self.generator_loss(fake)
        if self.mode_seeking:
            loss = loss + self.mode_seeking * mode_seeking_penalty(
                z, fake, self.mode_seeking_pool, self.mode_seeking_pairs
            )
        return loss

    def clip_critic(self) -> None:
        self.adversarial.constrain(self.critic)

    def compile_networks(self) -> None:
        """The WGAN-GP critic stays eager: its penalty differentiates twice, which compiled graphs do not support."""
        self.generator.compile()
        if not self.adversarial.differentiates_twice:
            self.critic.compile()

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def reference_step(self, optimizers: list[torch.optim.Optimizer], x: torch.Tensor, index: int) -> None:
        opt_g, opt_d = optimizers
        with torch.no_grad():
            fake = self.fake(len(x))  # the live generator (self(z) samples from the weight average)
        d_loss, _ = self.critic_loss(x, fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        self.clip_critic()
        if (index + 1) % self.n_critic == 0:
            self.critic.requires_grad_(False)  # as a careful hand-written loop does: no critic weight grads here
            g_loss = self.generator_step_loss(len(x))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            self.critic.requires_grad_(True)
            if self.generator_average is not None:
                self.update_average()

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """A critic step on this batch; every n_critic-th batch also a generator step."""
        real = batch["image"]
        opt_g, opt_d = self.optimizers()
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.fake(len(real))
        d_loss, logs = self.critic_loss(real, fake)
        self.optimize(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)
        self.clip_critic()
        logs = {"train/d_loss": d_loss, **{f"train/{k}": v for k, v in logs.items()}}

        if (index + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            g_loss = self.generator_step_loss(len(real))
            self.optimize(opt_g, g_loss)
            self.untoggle_optimizer(opt_g)
            if self.generator_average is not None:
                self.update_average()
            logs["train/g_loss"] = g_loss
        return logs

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        real = batch["image"]
        fake = self.fake(len(real))
        with torch.set_grad_enabled(self.adversarial.differentiates_twice):  # the penalty needs input gradients
            d_loss, logs = self.critic_loss(real, fake)
        logs = {f"val/{k}": v for k, v in logs.items()}
        self.log_validation({"val/d_loss": d_loss, "val/g_loss": self.generator_loss(fake), **logs})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        gen = build_optimizer(self.cfg["generator_optimizer"], self.generator.parameters())
        critic = build_optimizer(self.cfg["critic_optimizer"], self.critic.parameters())
        return [gen, critic]


def mode_seeking_penalty(
    z: torch.Tensor, images: torch.Tensor, pool: int = 1, pairs: str = "halves", eps: float = 1e-5
) -> torch.Tensor:
    """Mao et al. 2019 (MSGAN): 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|) over the two halves of a batch, so
    that distinct codes give distinct images rather than a few tight clumps. The images are compared after
    `pool` x `pool` average pooling: in pixels, independent per-pixel noise is the cheapest way to differ.

    pairs="all": the mean over every pair i != j of |z_i - z_j| / |G(z_i) - G(z_j)| (mean absolute
    differences): a ratio per pair rather than one of batch means, so each near-copy in the batch costs on
    its own, wherever it is, instead of being averaged away by the pairs that are apart."""
    if pool > 1:
        images = F.avg_pool2d(images, pool)
    if pairs == "all":
        x, codes = images.flatten(1).float(), z.flatten(1).float()
        dx = torch.cdist(x, x, p=1) / x.shape[1]
        dz = torch.cdist(codes, codes, p=1) / codes.shape[1]
        off_diagonal = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
        return (dz[off_diagonal] / (dx[off_diagonal] + eps)).mean()
    (z1, z2), (x1, x2) = z.chunk(2), images.chunk(2)
    n = min(len(z1), len(z2))
    ratio = (x1[:n] - x2[:n]).abs().float().mean() / (z1[:n] - z2[:n]).abs().mean()
    return 1.0 / (ratio + eps)
