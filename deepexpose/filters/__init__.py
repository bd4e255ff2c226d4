"""Differentiable, batched photo filters (kornia-style pure tensor functions) and their registry.

Every filter takes ``B x 3 x H x W`` sRGB images in [0, 1] with one parameter vector per image, works on any
device and floating dtype, has finite gradients everywhere, and is the identity at action 0.
"""

from .base import Filter, ParamSpec, linear_to_srgb, luminance, srgb_to_linear
from .contrast import adjust_contrast
from .exposure import adjust_exposure
from .gamma import adjust_gamma
from .levels import adjust_levels
from .local_exposure import adjust_local_exposure, exposure_gain_map
from .pipeline import DEFAULT_GLOBAL_FILTERS, FilterPipeline
from .registry import FILTERS, get_filter
from .saturation import adjust_saturation
from .tone_curve import tone_curve
from .white_balance import adjust_white_balance, white_balance_gains

__all__ = [
    "DEFAULT_GLOBAL_FILTERS", "FILTERS", "Filter", "FilterPipeline", "ParamSpec",
    "adjust_contrast", "adjust_exposure", "adjust_gamma", "adjust_levels", "adjust_local_exposure",
    "adjust_saturation", "adjust_white_balance", "exposure_gain_map", "get_filter", "linear_to_srgb",
    "luminance", "srgb_to_linear", "tone_curve", "white_balance_gains",
]
