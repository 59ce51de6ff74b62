"""CycleGAN (Zhu et al. 2017): unpaired translation between two domains A and B.

Generators G: A -> B and F: B -> A (ResNet generators), critics D_B and D_A (PatchGAN), LSGAN loss;
  G, F: adversarial + lambda_cycle * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
        + lambda_identity * lambda_cycle * (|G(b) - b|_1 + |F(a) - a|_1)
  D_A, D_B: adversarial on real images and on a history of generated ones (a pool of `pool_size`), halved.
As junyanz/pytorch-CycleGAN-and-pix2pix: lambda 10, identity 0.5, pool 50, one optimiser for both generators
and one for both critics. Batches are {"input": a, "image": b} (data/tasks.py, task `classes`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aegan.models.adversarial import build_adversarial
from aegan.models.base import Capabilities, GenerativeModule
from aegan.models.blocks import build_optimizer
from aegan.models.translation_blocks import PatchCritic, ResnetGenerator


class ImagePool:
    """Shrivastava et al.'s history of generated images: the critic sees older fakes too, which damps the
    oscillation of the two players. Until full, images pass through and are kept; then each is, with
    probability 1/2, swapped for a random kept one."""

    def __init__(self, size: int) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(len(self.images), ()))
                out.append(self.images[index].to(image.device))  # a restored pool may sit elsewhere
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> torch.Tensor | None:
        return torch.stack(self.images).cpu() if self.images else None

    def restore(self, images: torch.Tensor | None) -> None:
        self.images = [] if images is None else list(images.unbind())


class CycleGANModule(GenerativeModule):
    family = "cyclegan"
    capabilities = Capabilities(translate=True)
    pairing = "unpaired"
    objective = "val/cycle"  # how much of the input survives a round trip; the adversarial losses do not measure
    monitor = "val/cycle"
    prog_bar = ("train/d_loss", "train/cycle")

    def __init__(self, model: dict[str, Any], image_shape: tuple[int, int, int]) -> None:
        super().__init__(model)
        self.save_hyperparameters()
        channels, size = int(image_shape[0]), int(image_shape[-1])
        g, d = model["generator"], model["critic"]

        def generator() -> ResnetGenerator:
            return ResnetGenerator(channels, channels, size, int(g["filters"]), int(g["blocks"]), g["norm"])

        def critic() -> PatchCritic:
            return PatchCritic(channels, size, int(d["filters"]), int(d["layers"]), d["norm"])

        self.generator_ab, self.generator_ba = generator(), generator()
        self.critic_a, self.critic_b = critic(), critic()
        self.adversarial = build_adversarial(model)
        self.lambda_cycle, self.lambda_identity = float(model["lambda_cycle"]), float(model["lambda_identity"])
        self.pools = {"a": ImagePool(int(model["pool_size"])), "b": ImagePool(int(model["pool_size"]))}
        self.example_input_array = torch.zeros(1, *image_shape)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The pools are training state too: a resumed run's critics see the history they would have seen."""
        checkpoint["image_pools"] = {name: pool.state() for name, pool in self.pools.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, images in checkpoint.get("image_pools", {}).items():
            self.pools[name].restore(images)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Domain A images -> domain B images in [-1, 1]."""
        return torch.tanh(self.generator_ab(a))

    def translate(self, a: torch.Tensor) -> torch.Tensor:
        return self(a)

    def translate_back(self, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.generator_ba(b))

    def translation_rows(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """a, G(a), F(G(a)), then b, F(b), G(F(b)): both directions and their round trips."""
        a, b = batch["input"], batch["image"]
        fake_b, fake_a = self.translate(a), self.translate_back(b)
        return [a, fake_b, self.translate_back(fake_b), b, fake_a, self.translate(fake_a)]

    @torch.no_grad()
    def dry_run(self) -> torch.Tensor:
        images = super().dry_run()
        self.critic_a(self.translate_back(images))
        self.critic_b(images)
        return images

    def generator_losses(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        fake_b, fake_a = self.translate(a), self.translate_back(b)
        generator = self.adversarial.loss.generator
        adversarial = generator(self.critic_b(fake_b)) + generator(self.critic_a(fake_a))
        cycle = F.l1_loss(self.translate_back(fake_b), a) + F.l1_loss(self.translate(fake_a), b)
        loss = adversarial + self.lambda_cycle * cycle
        logs = {"g_adv": adversarial, "cycle": cycle}
        if self.lambda_identity:
            identity = F.l1_loss(self.translate(b), b) + F.l1_loss(self.translate_back(a), a)
            loss = loss + self.lambda_identity * self.lambda_cycle * identity
            logs["identity"] = identity
        return loss, {**logs, "fake_a": fake_a.detach(), "fake_b": fake_b.detach()}

    def train_minibatch(self, batch: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        a, b = batch["input"], batch["image"]
        opt_g, opt_d = self.optimizers()
        self.toggle_optimizer(opt_g)
        g_loss, logs = self.generator_losses(a, b)
        self.optimize(opt_g, g_loss)
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        loss_b, _ = self.adversarial.critic_loss(self.critic_b, b, self.pools["b"].query(logs.pop("fake_b")))
        loss_a, _ = self.adversarial.critic_loss(self.critic_a, a, self.pools["a"].query(logs.pop("fake_a")))
        d_loss = 0.5 * (loss_a + loss_b)
        self.optimize(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)
        for critic in (self.critic_a, self.critic_b):
            self.adversarial.constrain(critic)
        return {"train/d_loss": d_loss, "train/g_loss": g_loss, **{f"train/{k}": v for k, v in logs.items()}}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        a, b = batch["input"], batch["image"]
        cycle = F.l1_loss(self.translate_back(self.translate(a)), a) + F.l1_loss(
            self.translate(self.translate_back(b)), b
        )
        self.log_validation({"val/cycle": cycle})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        critics = [*self.critic_a.parameters(), *self.critic_b.parameters()]
        return [
            build_optimizer(self.cfg["generator_optimizer"], generators),
            build_optimizer(self.cfg["critic_optimizer"], critics),
        ]
