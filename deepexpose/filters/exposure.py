"""Exposure: a gain of ``2**ev`` applied in linear light, as a camera's exposure compensation would."""

from __future__ import annotations

from torch import Tensor

from .base import Columns, Filter, ParamSpec, apply_linear_gain, check_image, per_sample, stops_to_gain


def adjust_exposure(image: Tensor, ev: Tensor | float) -> Tensor:
    """Scale linear-light RGB by ``2**ev`` (one value per image), re-encode to sRGB and clip to [0, 1]."""
    check_image(image)
    return apply_linear_gain(image, exposure_gain(image, ev))


def exposure_gain(image: Tensor, ev: Tensor | float) -> Tensor:
    """The ``B x 1 x 1 x 1`` linear-light gain ``2**ev`` (:func:`~deepexpose.filters.base.stops_to_gain`)."""
    return stops_to_gain(per_sample(ev, image, "ev"))


EXPOSURE = Filter(
    name="exposure",
    params=(ParamSpec("ev", -3.0, 0.0, 3.0, unit="EV", doc="exposure change in stops"),),
    apply=Columns(adjust_exposure),
    doc=adjust_exposure.__doc__,
    per_channel=True,
    gain=Columns(exposure_gain),
)
