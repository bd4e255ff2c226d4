"""White balance: luminance-preserving per-channel gains in linear light, set by temperature and tint.

``temperature`` is the red/blue gain ratio in stops (``gR = 2**(t/2)``, ``gB = 2**(-t/2)``; positive is
warmer), ``tint`` the green gain in stops (``gG = 2**(-m/2)``; positive is more magenta). The three gains are
then divided by their Rec. 709 luminance so that a neutral grey keeps its luminance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LUMA_709, Filter, ParamSpec, check_image, apply_linear_gain, per_sample


def white_balance_gains(image: Tensor, temperature: Tensor | float, tint: Tensor | float) -> Tensor:
    """The ``B x 3 x 1 x 1`` linear-light gains for the given temperature and tint (in stops)."""
    t = per_sample(temperature, image, "temperature")
    m = per_sample(tint, image, "tint")
    gains = torch.cat([2.0 ** (t / 2), 2.0 ** (-m / 2), 2.0 ** (-t / 2)], dim=1)
    w = torch.tensor(LUMA_709, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return gains / (gains * w).sum(dim=1, keepdim=True)


def adjust_white_balance(image: Tensor, temperature: Tensor | float, tint: Tensor | float) -> Tensor:
    """Multiply linear-light RGB by luminance-normalised temperature/tint gains, re-encode, clip to [0, 1]."""
    check_image(image)
    gains = white_balance_gains(image, temperature, tint)
    return apply_linear_gain(image, gains)


WHITE_BALANCE = Filter(
    name="white_balance",
    params=(
        ParamSpec("temperature", -1.5, 0.0, 1.5, unit="stops", doc="red/blue gain ratio; + is warmer"),
        ParamSpec("tint", -1.5, 0.0, 1.5, unit="stops", doc="green attenuation; + is more magenta"),
    ),
    apply=lambda image, values: adjust_white_balance(image, values[:, 0], values[:, 1]),
    doc=adjust_white_balance.__doc__,
)
