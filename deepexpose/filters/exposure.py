"""Exposure: a gain of ``2**ev`` applied in linear light, as a camera's exposure compensation would."""

from __future__ import annotations

from torch import Tensor

from .base import Filter, ParamSpec, check_image, apply_linear_gain, per_sample


def adjust_exposure(image: Tensor, ev: Tensor | float) -> Tensor:
    """Scale linear-light RGB by ``2**ev`` (one value per image), re-encode to sRGB and clip to [0, 1]."""
    check_image(image)
    gain = 2.0 ** per_sample(ev, image, "ev")
    return apply_linear_gain(image, gain)


EXPOSURE = Filter(
    name="exposure",
    params=(ParamSpec("ev", -3.0, 0.0, 3.0, unit="EV", doc="exposure change in stops"),),
    apply=lambda image, values: adjust_exposure(image, values[:, 0]),
    doc=adjust_exposure.__doc__,
    per_channel=True,
)
