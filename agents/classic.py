"""A classic, non-learned correction as a policy: grey-world white balance and mean-luminance auto exposure.

The floor every learned method must beat. At the final step of an episode it sets the white balance so the
image's mean linear R, G and B become equal (the grey-world assumption, Buchsbaum 1980) and the exposure so
the mean linear luminance becomes 18 % (middle grey); local steps change nothing. Written as an
:data:`~deepexpose.agents.train.Act`, so it runs in the same environment and evaluation as the agents.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deepexpose.envs.core import EditCore
from deepexpose.filters.base import LUMA_709, srgb_to_linear

MIDDLE_GREY = 0.18


def classic_parameters(image: Tensor) -> list[dict[str, dict[str, float]]]:
    """Grey-world temperature/tint and auto-exposure EV (physical units) for ``B x 3 x H x W`` sRGB images."""
    means = srgb_to_linear(image.clamp(0, 1)).mean(dim=(2, 3)).clamp(min=1e-4)   # B x 3 linear channel means
    out = []
    for r, g, b in means.tolist():
        # the filter's gains are proportional to (2^(t/2), 2^(-m/2), 2^(-t/2)); equal channel means need
        # gR / gB = b / r and gR / gG = g / r
        t = math.log2(b / r)
        m = 2 * math.log2(g / r) - t
        gains = (2 ** (t / 2), 2 ** (-m / 2), 2 ** (-t / 2))
        norm = sum(w * k for w, k in zip(LUMA_709, gains, strict=True))
        y = sum(w * c * k / norm for w, c, k in zip(LUMA_709, (r, g, b), gains, strict=True))
        out.append({"white_balance": {"temperature": t, "tint": m}, "exposure": {"ev": math.log2(MIDDLE_GREY / y)}})
    return out


def classic_act(core: EditCore):
    """The classic correction as a policy for ``core``'s episodes (parameters clamped to the filter ranges)."""

    def act(obs: dict[str, Tensor]) -> Tensor:
        b = obs["image"].shape[0]
        if not bool(obs["step"][0, -1]):  # local steps: change nothing
            return torch.zeros(b, core.action_dim)
        image = obs["image"].float() / 255
        return torch.cat([core.pipeline.action_from_description(p) for p in classic_parameters(image)])

    return act
