"""Black and white levels: ``(x - black) / (white - black)``, clipped to [0, 1].

A positive black level crushes shadows, a negative one lifts (fades) them; a white level below 1 clips
highlights, above 1 dims them.
"""

from __future__ import annotations

from torch import Tensor

from .base import Columns, Filter, ParamSpec, check_image, per_sample


def adjust_levels(image: Tensor, black: Tensor | float, white: Tensor | float) -> Tensor:
    """Map ``black`` to 0 and ``white`` to 1 linearly (one pair per image); ``white - black`` must be > 0."""
    check_image(image)
    b = per_sample(black, image, "black")
    w = per_sample(white, image, "white")
    if bool(((w - b) <= 0).any()):
        raise ValueError("adjust_levels: white must be greater than black")
    return ((image - b) / (w - b)).clamp(0.0, 1.0)


LEVELS = Filter(
    name="levels",
    params=(
        ParamSpec("black", -0.25, 0.0, 0.25, doc="input value mapped to 0 (negative lifts shadows)"),
        ParamSpec("white", 0.75, 1.0, 1.25, doc="input value mapped to 1 (above 1 dims highlights)"),
    ),
    apply=Columns(adjust_levels),
    doc=adjust_levels.__doc__,
    per_channel=True,
)
