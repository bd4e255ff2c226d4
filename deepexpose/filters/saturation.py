"""Saturation: scale each pixel's distance from its grey (Rec. 709 luma) by a factor."""

from __future__ import annotations

from torch import Tensor

from .base import Columns, Filter, ParamSpec, check_image, luminance, per_sample


def adjust_saturation(image: Tensor, factor: Tensor | float) -> Tensor:
    """``out = Y + factor * (x - Y)`` with ``Y`` the pixel's luma, clipped to [0, 1] (0: grey, 1: unchanged)."""
    check_image(image)
    f = per_sample(factor, image, "factor")
    y = luminance(image)
    return (image + (f - 1.0) * (image - y)).clamp(0.0, 1.0)  # = y + f (x - y), exactly x at f = 1


SATURATION = Filter(
    name="saturation",
    params=(ParamSpec("factor", 0.0, 1.0, 2.0, doc="0 is grey, 1 unchanged, 2 doubles the chroma"),),
    apply=Columns(adjust_saturation),
    doc=adjust_saturation.__doc__,
)
