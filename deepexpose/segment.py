"""Luminosity sub-images: K soft masks that split a photo by brightness and sum to 1 at every pixel.

DeepExposure (Yu et al., NeurIPS 2018) segments the input "according to raw low-level features" into
sub-images, like the luminosity masks photographers use. Here band k is centred on the image's own luminance
quantile ``(k + 1/2) / K`` and the masks are the piecewise-linear "hat" functions through those centres (a
partition of unity: each pixel is shared between at most two neighbouring bands). The spatially coherent
variant first replaces each pixel's luminance by the mean of its superpixel (SLIC or Felzenszwalb, from
scikit-image), so whole regions move together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .filters.base import check_image, luminance

# Neighbouring band centres are kept at least this far apart, so flat images still get K valid masks.
MIN_CENTRE_GAP = 1e-3


def band_centres(lum: Tensor, k: int) -> Tensor:
    """Strictly increasing ``B x K`` band centres at the luminance quantiles ``(j + 1/2) / K``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    q = torch.tensor([(j + 0.5) / k for j in range(k)], dtype=lum.dtype, device=lum.device)
    centres = torch.quantile(lum.flatten(1), q, dim=1).T.contiguous()
    gaps = torch.arange(k, dtype=lum.dtype, device=lum.device) * MIN_CENTRE_GAP
    # cummax of (c_j - j * gap) plus j * gap enforces c_j >= c_{j-1} + gap.
    return torch.cummax(centres - gaps, dim=1).values + gaps


def hat_masks(lum: Tensor, centres: Tensor) -> Tensor:
    """Piecewise-linear partition of unity over ``centres`` (``B x K``) evaluated at ``lum`` (``B x 1 x H x W``)."""
    b, k = centres.shape
    if k == 1:
        return torch.ones_like(lum)
    c = [centres[:, j].view(b, 1, 1, 1) for j in range(k)]
    masks = []
    for j in range(k):
        rise = (lum - c[j - 1]) / (c[j] - c[j - 1]) if j > 0 else torch.ones_like(lum)
        fall = (c[j + 1] - lum) / (c[j + 1] - c[j]) if j < k - 1 else torch.ones_like(lum)
        masks.append(torch.minimum(rise, fall).clamp(0.0, 1.0))
    return torch.cat(masks, dim=1)


def luminosity_masks(image: Tensor, k: int, lum: Tensor | None = None) -> Tensor:
    """``B x K x H x W`` luminosity masks of ``image`` (bands at its own luminance quantiles), summing to 1.

    ``lum`` (``B x 1 x H x W``) replaces the image's own luminance, both for the band centres and for the masks.
    """
    check_image(image)
    lum = luminance(image.clamp(0.0, 1.0)) if lum is None else lum
    return hat_masks(lum, band_centres(lum, k))


def superpixel_masks(image: Tensor, k: int, method: str = "slic", n_segments: int = 64) -> Tensor:
    """Spatially coherent luminosity masks: luminance averaged over superpixels, then :func:`luminosity_masks`.

    ``method`` is ``"slic"`` (Achanta et al. 2012) or ``"felzenszwalb"`` (Felzenszwalb & Huttenlocher 2004).
    Superpixels are computed on the CPU with scikit-image; the result is on the image's device and dtype.
    """
    check_image(image)
    own = luminance(image.clamp(0.0, 1.0))
    region_lum = torch.empty_like(own)
    for i, img in enumerate(image.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().double().numpy()):
        labels = _superpixels(img, method, n_segments)
        lum = own[i, 0].detach().cpu().double().numpy()
        sums = np.bincount(labels.ravel(), weights=lum.ravel())
        counts = np.bincount(labels.ravel())
        region_lum[i, 0] = torch.from_numpy((sums / np.maximum(counts, 1))[labels]).to(own)
    return luminosity_masks(image, k, lum=region_lum)


def _superpixels(img: np.ndarray, method: str, n_segments: int) -> np.ndarray:
    from skimage.segmentation import felzenszwalb, slic  # here: importing it takes most of a second

    h, w = img.shape[:2]
    if method == "slic":
        return slic(img, n_segments=n_segments, compactness=10.0, start_label=0, channel_axis=-1)
    if method == "felzenszwalb":
        # scale grows with the image so the number of regions stays roughly n_segments
        return felzenszwalb(img, scale=float(h * w) / n_segments, sigma=0.8, min_size=max(4, h * w // (8 * n_segments)),
                            channel_axis=-1)
    raise ValueError(f"unknown superpixel method {method!r}; use 'slic' or 'felzenszwalb'")


SEGMENTERS: dict[str, Callable[[Tensor, int], Tensor]] = {
    "luminosity": luminosity_masks,
    "slic": lambda image, k: superpixel_masks(image, k, "slic"),
    "felzenszwalb": lambda image, k: superpixel_masks(image, k, "felzenszwalb"),
}


def segment(image: Tensor, k: int, method: str = "luminosity") -> Tensor:
    """Sub-image masks by a registered method (:data:`SEGMENTERS`)."""
    try:
        fn = SEGMENTERS[method]
    except KeyError:
        raise ValueError(f"unknown segmentation {method!r}; choose from {', '.join(SEGMENTERS)}") from None
    return fn(image, k)
