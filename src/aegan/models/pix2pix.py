"""Pix2Pix (Isola et al. 2017): paired image-to-image translation.

A U-Net generator G maps an input image x (edges, a low-resolution or a masked image) to the target y;
a PatchGAN critic D judges (x, image) pairs, so it learns what a plausible y *for this x* looks like.
  D: adversarial loss on D(x, y) (real) and D(x, G(x)) (fake), halved
  G: adversarial loss on D(x, G(x)) + lambda_l1 * |G(x) - y|_1   (lambda 100, the paper's)
Batches are {"input": x, "image": y} (data/tasks.py). val/l1 is the monitored metric: the adversarial
losses do not measure quality, the distance to the target does.
Where the task's input already holds part of the target (inpainting: all but the hole), G(x) is pasted
into x there (the `known` buffer, set by `keep_known_pixels`, saved with the weights), so the losses, the
critic and every output see only what G painted, in its context (Pathak et al. 2016, Iizuka et al. 2017).
Where the input is already an estimate of the target (super-resolution: the bicubic upsampling), G outputs
a correction of it, added before the tanh (the `refine` buffer, set by `refine_input`): G starts from the
naive answer instead of having to learn the identity first (residual learning, VDSR: Kim et al. 2016).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from aegan.models.adversarial import build_adversarial
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_optimizer
from aegan.models.translation_blocks import PatchCritic, UNetGenerator

_EDGE = 0.995  # atanh(0.995) = 3.0: the logit of a saturated pixel, from which G still moves it


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, on [0, 1] pixels (images arrive in [-1, 1])."""
    mse = ((output - target) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


class Pix2PixModule(GenerativeModule):
    family = "pix2pix"
    capabilities = Capabilities(translate=True)
    pairing = "paired"
    objective = "val/l1"
    monitor = "val/l1"
    prog_bar = ("train/d_loss", "train/l1")

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        channels, size = int(image_shape[0]), int(image_shape[-1])
        g, d = model["generator"], model["critic"]
        self.generator = UNetGenerator(
            channels, channels, size, int(g["filters"]), int(g["depth"]), g["norm"], float(g["dropout"])
        )
        self.critic = PatchCritic(2 * channels, size, int(d["filters"]), int(d["layers"]), d["norm"])
        self.adversarial = build_adversarial(model)
        self.lambda_l1 = float(model["lambda_l1"])
        self.example_input_array = torch.zeros(1, *image_shape)
        self.register_buffer("known", torch.zeros(1, 1, *image_shape[1:], dtype=torch.bool))
        self.register_buffer("refine", torch.zeros((), dtype=torch.bool))

    def keep_known_pixels(self, known: torch.Tensor) -> None:
        self.known.copy_(known.view_as(self.known))

    def refine_input(self) -> None:
        self.refine.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input images -> translated images in [-1, 1] (the input's known pixels kept as they are)."""
        logits = self.generator(x)
        # atanh(x) is the logit that reproduces x; clamped, as pixels at exactly -1/1 have none
        logits = logits + torch.where(self.refine, torch.atanh(x.clamp(-_EDGE, _EDGE)), 0.0)
        return torch.where(self.known, x, torch.tanh(logits))

    def translate(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    def translation_rows(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """input, output, target."""
        return [batch["input"], self.translate(batch["input"]), batch["image"]]

    @torch.no_grad()
    def dry_run(self) -> torch.Tensor:
        images = super().dry_run()
        self.judge(torch.zeros_like(images))(images)
        return images

    def judge(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The critic conditioned on the input x: a function of the candidate output."""
        return lambda candidate: self.critic(torch.cat([x, candidate], dim=1))

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        x, y = batch["input"], batch["image"]
        opt_g, opt_d = self.optimizers()
        fake = self(x)

        self.toggle_optimizer(opt_d)
        d_loss, logs = self.adversarial.critic_loss(self.judge(x), y, fake.detach())
        self.optimize(opt_d, 0.5 * d_loss)  # halved, as in the paper: D learns at half G's rate
        self.untoggle_optimizer(opt_d)
        self.adversarial.constrain(self.critic)

        self.toggle_optimizer(opt_g)
        adversarial = self.adversarial.loss.generator(self.judge(x)(fake))
        l1 = F.l1_loss(fake, y)
        self.optimize(opt_g, adversarial + self.lambda_l1 * l1)
        self.untoggle_optimizer(opt_g)
        return {
            "train/d_loss": d_loss,
            "train/g_adv": adversarial,
            "train/l1": l1,
            **{f"train/{k}": v for k, v in logs.items()},
        }

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x, y = batch["input"], batch["image"]
        fake = self(x)
        self.log_validation({"val/l1": F.l1_loss(fake, y), "val/psnr": psnr(fake, y).mean()})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        gen = build_optimizer(self.cfg["generator_optimizer"], self.generator.parameters())
        critic = build_optimizer(self.cfg["critic_optimizer"], self.critic.parameters())
        return [gen, critic]
