"""Rewards: a score per image; the reward of a step is the improvement of the score (DeepExposure, seed 003).

A scorer is ``score(image, target, critic) -> B`` scores (higher is better). ``paired`` needs targets,
``adversarial`` a critic (the discriminator: its output is how "good-photo-like" the image looks), ``mixed``
both. Adding a reward is one function plus one line in :data:`REWARDS`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

# PSNR is capped here so that a perfect edit gives a finite reward.
MAX_PSNR = 50.0


def psnr_score(image: Tensor, target: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """PSNR in dB against the target, over the whole RGB image, capped at 50 dB."""
    if target is None:
        raise ValueError("the paired reward needs targets (a paired pool)")
    mse = (image - target).pow(2).flatten(1).mean(1)
    return (-10.0 * torch.log10(mse + 10 ** (-MAX_PSNR / 10))).clamp(max=MAX_PSNR)


def critic_score(image: Tensor, target: Tensor | None = None, critic: nn.Module | None = None) -> Tensor:
    """The discriminator's score of the image (WGAN critic: larger means more like the good photos)."""
    if critic is None:
        raise ValueError("the adversarial reward needs a critic (discriminator)")
    return critic(image).view(-1)


def mixed_score(image: Tensor, target: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """Half PSNR (in units of 10 dB), half critic score."""
    return 0.5 * psnr_score(image, target) / 10.0 + 0.5 * critic_score(image, target, critic)


Scorer = Callable[[Tensor, "Tensor | None", "nn.Module | None"], Tensor]

REWARDS: dict[str, tuple[Scorer, float]] = {
    # name: (scorer, scale applied to the score difference)
    "paired": (psnr_score, 0.1),
    "adversarial": (critic_score, 1.0),
    "mixed": (mixed_score, 1.0),
}


def get_reward(name: str) -> tuple[Scorer, float]:
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; choose from {', '.join(REWARDS)}") from None
