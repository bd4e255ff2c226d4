"""Rewards: a score per image; the reward of a step is the improvement of the score (DeepExposure, seed 003).

A :class:`Reward` scores a batch of images, ``score(image, reference, critic) -> B`` (higher is better), where
``reference = prepare(target)`` is computed once per episode (the target's CIELAB for colour fidelity).
``paired`` (colour fidelity, minus the mean CIE76 difference) and ``psnr`` need targets, ``adversarial`` a
critic (the discriminator: its output is how "good-photo-like" the image looks), ``mixed`` both. Adding a
reward is one function plus one line in :data:`REWARDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from deepexpose.filters.base import linear_to_lab, rgb_to_lab

# PSNR is capped here so that a perfect edit gives a finite reward.
MAX_PSNR = 50.0


def _need(reference: Tensor | None) -> Tensor:
    if reference is None:
        raise ValueError("the paired reward needs targets (a paired pool)")
    return reference


def lab(image: Tensor) -> Tensor:
    """CIELAB (D65) of sRGB images in [0, 1]."""
    return rgb_to_lab(image.clamp(0, 1))


def psnr_score(image: Tensor, target: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """PSNR in dB against the target, over the whole RGB image, capped at 50 dB."""
    mse = (image - _need(target)).pow(2).flatten(1).mean(1)
    return (-10.0 * torch.log10(mse + 10 ** (-MAX_PSNR / 10))).clamp(max=MAX_PSNR)


def delta_e_score(image: Tensor, target_lab: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """Minus the mean CIE76 colour difference to the target, given the target in CIELAB.

    Well conditioned everywhere, unlike PSNR whose gradient grows without bound as the error vanishes:
    ``sqrt(|dLab|^2 + 1e-4)`` keeps the slope at most 1 per pixel even at a perfect match.
    """
    return _delta_e(lab(image), target_lab)


def delta_e_linear_score(linear: Tensor, target_lab: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """:func:`delta_e_score` of the image whose linear-light RGB in [0, 1] is ``linear`` (no sRGB decoding)."""
    return _delta_e(linear_to_lab(linear), target_lab)


def _delta_e(d: Tensor, target_lab: Tensor | None) -> Tensor:
    d = d.sub_(_need(target_lab)).pow_(2) if not d.requires_grad else (d - _need(target_lab)).pow(2)
    return -(d.sum(1) + 1e-4).sqrt().flatten(1).mean(1)


def critic_score(image: Tensor, reference: Tensor | None = None, critic: nn.Module | None = None) -> Tensor:
    """The discriminator's score of the image (WGAN critic: larger means more like the good photos)."""
    if critic is None:
        raise ValueError("the adversarial reward needs a critic (discriminator)")
    return critic(image).view(-1)


def mixed_score(image: Tensor, target_lab: Tensor | None, critic: nn.Module | None = None) -> Tensor:
    """Half colour fidelity (in units of 10 ΔE), half critic score."""
    return 0.5 * delta_e_score(image, target_lab) / 10.0 + 0.5 * critic_score(image, None, critic)


@dataclass(frozen=True)
class Reward:
    """A scorer, the scale applied to score differences, and what to precompute from the targets.

    ``score_linear``, when given, is ``score`` of an image given its linear-light RGB in [0, 1] instead;
    ``needs_target``: whether it scores against the target (a pool without targets is refused for it).
    """

    score: Callable[[Tensor, "Tensor | None", "nn.Module | None"], Tensor]
    scale: float = 1.0
    prepare: Callable[[Tensor], Tensor] | None = None
    score_linear: Callable[[Tensor, "Tensor | None", "nn.Module | None"], Tensor] | None = None
    needs_target: bool = True

    def reference(self, target: Tensor | None) -> Tensor | None:
        if target is None or self.prepare is None:
            return target
        return self.prepare(target)


REWARDS: dict[str, Reward] = {
    "paired": Reward(delta_e_score, 0.1, lab, delta_e_linear_score),
    "psnr": Reward(psnr_score, 0.1),
    "adversarial": Reward(critic_score, 1.0, needs_target=False),
    "mixed": Reward(mixed_score, 1.0, lab),
}


def get_reward(name: str) -> Reward:
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; choose from {', '.join(REWARDS)}") from None
