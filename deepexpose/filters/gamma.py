"""Gamma: ``x ** (1 / gamma)`` per channel; gamma > 1 lifts mid-tones, gamma < 1 darkens them."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Columns, Filter, ParamSpec, _in_place, check_image, per_sample

# Below this value the power curve is continued by a straight line, so the slope stays finite at black.
_EPS = 1e-4


def adjust_gamma(image: Tensor, gamma: Tensor | float) -> Tensor:
    """Apply ``x ** (1 / gamma)`` (one gamma per image), linear below 1e-4 so gradients stay finite at 0."""
    check_image(image)
    g = per_sample(gamma, image, "gamma")
    if not (g > 0).all():
        raise ValueError(f"adjust_gamma: gamma must be > 0, got {g.flatten().tolist()}")
    p = 1.0 / g
    x = image.clamp(0.0, 1.0)
    if _in_place(image, p):  # the same values, the power as exp(p log x), on two temporaries
        curve = x.clamp(min=_EPS).log_().mul_(p).exp_()
        above = x > _EPS
        out = torch.where(above, curve, x.mul_(_EPS ** (p - 1.0)), out=curve)
        return torch.where(p == 1, x, out, out=out)  # x ** 1 is x exactly (x is unchanged where p is 1)
    safe = x.clamp(min=_EPS)
    return torch.where(x > _EPS, safe ** p, x * _EPS ** (p - 1.0))


GAMMA = Filter(
    name="gamma",
    params=(ParamSpec("gamma", 0.5, 1.0, 2.0, doc="output = input ** (1 / gamma)"),),
    apply=Columns(adjust_gamma),
    doc=adjust_gamma.__doc__,
    per_channel=True,
)
