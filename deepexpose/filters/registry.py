"""The filter registry: adding a filter is one new file plus one line here."""

from __future__ import annotations

from .base import Filter
from .contrast import CONTRAST
from .exposure import EXPOSURE
from .gamma import GAMMA
from .levels import LEVELS
from .local_exposure import LOCAL_EXPOSURE
from .saturation import SATURATION
from .tone_curve import TONE_CURVE
from .white_balance import WHITE_BALANCE

FILTERS: dict[str, Filter] = {
    f.name: f
    for f in (
        EXPOSURE,
        WHITE_BALANCE,
        GAMMA,
        CONTRAST,
        SATURATION,
        TONE_CURVE,
        LEVELS,
        LOCAL_EXPOSURE,
    )
}


def get_filter(name: str) -> Filter:
    """The registered filter called ``name`` (clear error listing the names otherwise); an entry that is not a
    :class:`Filter` registered under its own name is refused (``ValueError``), as the pipelines describe edits by
    the filters' names."""
    try:
        f = FILTERS[name]
    except KeyError:
        raise KeyError(f"unknown filter {name!r}; registered: {', '.join(sorted(FILTERS))}") from None
    if not isinstance(f, Filter) or f.name != name or not callable(f.apply):
        raise ValueError(f"FILTERS[{name!r}] must be a Filter named {name!r} with an apply function, got {f!r}")
    return f
