"""Batched inference shared by evaluation, the latent tools and the report: encode, decode, sample,
reconstruct. Inputs may live on the CPU; batches go to the module's device, results come back."""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, module: torch.nn.Module, batch_size: int
) -> torch.Tensor:
    module.eval()
    device = next(module.parameters()).device
    return torch.cat(
        [fn(inputs[i : i + batch_size].float().to(device)).cpu() for i in range(0, len(inputs), batch_size)]
    )


def encode(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return batched(module.encode, images, module, batch_size)


def decode(module: torch.nn.Module, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Codes -> images in [-1, 1]: the decoder of an autoencoder/VAE, the generator of a GAN."""
    return batched(module.decode, z, module, batch_size)


def reconstruct(module: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return batched(module, images, module, batch_size)


def sample(module: torch.nn.Module, n: int, batch_size: int = 500) -> torch.Tensor:
    """n fresh samples from the prior N(0, I) (not a GAN's fixed preview batch), on the CPU."""
    return decode(module, torch.randn(n, module.latent_dim), batch_size)
