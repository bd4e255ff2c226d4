"""White balance: luminance-preserving per-channel gains in linear light, set by temperature and tint.

``temperature`` is the red/blue gain ratio in stops (``gR = 2**(t/2)``, ``gB = 2**(-t/2)``; positive is
warmer), ``tint`` the green gain in stops (``gG = 2**(-m/2)``; positive is more magenta). The three gains are
then divided by their Rec. 709 luminance so that a neutral grey keeps its luminance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LUMA_709, Columns, Filter, ParamSpec, apply_linear_gain, check_image, per_sample


def white_balance_gains(image: Tensor, temperature: Tensor | float, tint: Tensor | float) -> Tensor:
    """The ``B x 3 x 1 x 1`` linear-light gains for the given temperature and tint (in stops)."""
    t = per_sample(temperature, image, "temperature")
    m = per_sample(tint, image, "tint")
    r, g, b = 2.0 ** (t / 2), 2.0 ** (-m / 2), 2.0 ** (-t / 2)
    # weights summed in this order are exactly 1 in floating point, so zero temperature and tint give gains of
    # exactly 1 (and the filter returns its input bit for bit)
    w_r, w_g = LUMA_709[0], LUMA_709[1]
    w_b = 1.0 - (torch.tensor(w_r, dtype=image.dtype) + torch.tensor(w_g, dtype=image.dtype))
    norm = (w_r * r + w_g * g) + w_b.to(image.device) * b
    return torch.cat([r, g, b], dim=1) / norm


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
    apply=Columns(adjust_white_balance),
    doc=adjust_white_balance.__doc__,
    per_channel=True,
    gain=Columns(white_balance_gains),
)
