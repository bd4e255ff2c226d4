"""Tone curve: a monotone piecewise-linear curve of N equal-width segments, applied per channel.

After the curve of Hu et al. ("Exposure: A White-Box Photo Post-Processing Framework", 2018, eq. 4): segment
i gets slope proportional to ``2**p_i``, normalised so the curve maps 0 to 0 and 1 to 1,
``f(x) = sum_i clamp(N x - i, 0, 1) * 2**p_i / sum_j 2**p_j``. All ``p_i = 0`` is the identity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Filter, ParamSpec, _in_place, check_image, check_params

SEGMENTS = 8


def tone_curve(image: Tensor, log_slopes: Tensor) -> Tensor:
    """Apply the curve with per-image log2 segment slopes ``log_slopes`` (``B x N``)."""
    check_image(image)
    if log_slopes.ndim != 2 or log_slopes.shape[0] != image.shape[0]:
        raise ValueError(f"tone_curve: log_slopes must be B x N with B = {image.shape[0]}, "
                         f"got {tuple(log_slopes.shape)}")
    n = log_slopes.shape[1]
    if n < 1:
        raise ValueError("tone_curve: log_slopes needs at least one segment, got B x 0")
    w = torch.softmax(log_slopes.to(image) * math.log(2.0), dim=1)            # B x N rise of each segment
    start = torch.cumsum(w, dim=1) - w                                         # B x N curve value at each knot
    if _in_place(image, w):  # the same operations on two temporaries
        x = image.clamp(0.0, 1.0).mul_(n)
        seg = x.floor().nan_to_num_(0.0).clamp_(max=n - 1)  # a NaN value (segment 0) stays NaN, as in other filters
        flat = seg.long().flatten(1)
        w_px = torch.gather(w, 1, flat).view_as(x)
        start_px = torch.gather(start, 1, flat).view_as(x)
        return x.sub_(seg).mul_(w_px).add_(start_px)
    x = image.clamp(0.0, 1.0) * n
    seg = x.detach().floor().nan_to_num(0.0).clamp(max=n - 1).long()          # segment of each value
    flat = seg.flatten(1)
    w_px = torch.gather(w, 1, flat).view_as(x)
    start_px = torch.gather(start, 1, flat).view_as(x)
    return start_px + (x - seg) * w_px


def _apply(image: Tensor, values: Tensor) -> Tensor:
    check_params(values, SEGMENTS, "tone_curve")
    return tone_curve(image, values)


TONE_CURVE = Filter(
    name="tone_curve",
    params=tuple(ParamSpec(f"slope{i}", -1.5, 0.0, 1.5, unit="stops",
                           doc=f"log2 relative slope of segment {i} of {SEGMENTS}") for i in range(SEGMENTS)),
    apply=_apply,
    doc=tone_curve.__doc__,
    per_channel=True,
)
