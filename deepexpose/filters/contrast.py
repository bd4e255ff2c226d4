"""Contrast: blend each channel toward (or away from) the S-curve ``s(x) = (1 - cos(pi x)) / 2``.

``out = x + amount * (s(x) - x)`` (after the contrast filter of Hu et al., "Exposure: A White-Box Photo
Post-Processing Framework", 2018, applied per channel). For amount in [-1, 1] the curve is monotone and maps
[0, 1] onto [0, 1]: positive amounts add contrast around mid-grey, negative amounts flatten it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Columns, Filter, ParamSpec, _in_place, check_image, per_sample


def adjust_contrast(image: Tensor, amount: Tensor | float) -> Tensor:
    """Blend toward the S-curve by ``amount`` per image (0: unchanged, 1: full S-curve, -1: flattened)."""
    check_image(image)
    a = per_sample(amount, image, "amount")
    x = image.clamp(0.0, 1.0)
    if _in_place(image, a):  # the same operations on one temporary
        s = torch.mul(x, math.pi).cos_().mul_(-0.5).add_(0.5)
        return s.sub_(x).mul_(a).add_(x).clamp_(0.0, 1.0)
    s = 0.5 - 0.5 * torch.cos(math.pi * x)
    return (x + a * (s - x)).clamp(0.0, 1.0)


CONTRAST = Filter(
    name="contrast",
    params=(ParamSpec("amount", -1.0, 0.0, 1.0, doc="blend toward the S-curve; negative flattens"),),
    apply=Columns(adjust_contrast),
    doc=adjust_contrast.__doc__,
    per_channel=True,
)
