"""Image-quality metrics, measured the way the photo-enhancement literature reports them.

Protocol followed: the MIT-Adobe FiveK "480p" evaluation of Zeng et al. (3D-LUT, TPAMI 2020),
reused by AdaInt (CVPR 2022) and SepLUT (ECCV 2022):

* prediction and target are quantised to 8 bits first: ``round(clip(x, 0, 1) * 255)``, rounding to
  nearest with ties to even (what ``torch.round`` / ``numpy.round`` do in the reference code);
  ``uint8`` inputs are already quantised and are used as they are;
* every metric is computed per image over the whole RGB image, then averaged over images
  (:func:`mean_metrics`), i.e. the mean of per-image PSNRs, not the PSNR of the mean MSE;
* PSNR: peak 255 on 8-bit data, MSE over all pixels and channels;
* SSIM: Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  population covariances, data range 255, per channel and averaged over channels; border pixels
  closer than 5 to the edge are left out. Equal to ``skimage.metrics.structural_similarity(a, b,
  channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``;
* colour differences: images are read as sRGB (D65) and converted to CIELAB (2 degree observer) with
  ``skimage.color.rgb2lab``; CIE76 (Euclidean Lab distance) and CIEDE2000 (Sharma et al. 2005,
  ``skimage.color.deltaE_ciede2000``) are averaged over pixels.

Accepted inputs: numpy ``HxWx3`` arrays (float in [0, 1] or ``uint8``) and torch tensors
``3xHxW`` or ``1x3xHxW`` (float in [0, 1] or ``uint8``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "PSNR_CAP",
    "to_uint8_scale",
    "psnr",
    "capped_psnr",
    "ssim",
    "delta_e76",
    "delta_e2000",
    "capped_pair",
    "evaluate_pair",
    "mean_metrics",
]

METRIC_NAMES: tuple[str, ...] = ("psnr", "ssim", "delta_e76", "delta_e2000")

_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # 11-tap window for sigma 1.5, as Wang et al. and skimage use
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _to_hwc(img: Any, name: str) -> np.ndarray:
    """Return ``img`` as a numpy ``HxWx3`` array (dtype kept)."""
    try:  # torch is optional for callers that only use numpy
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the project
        torch = None
    if torch is not None and isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(
                    f"{name}: expected a tensor 3xHxW or 1x3xHxW, got batch of {t.shape[0]} "
                    f"(shape {tuple(t.shape)}); score images one at a time"
                )
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(
                f"{name}: expected a tensor 3xHxW or 1x3xHxW with 3 colour channels, "
                f"got shape {tuple(t.shape)}"
            )
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            t = t.float()  # bfloat16 and half have no numpy dtype (bfloat16) or lose precision in the metrics
        return t.permute(1, 2, 0).numpy()
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected a numpy array HxWx3 (RGB, channels last), got shape {arr.shape}"
        )
    return arr


FLOAT_RANGE = (-1.0, 2.0)
"""Float images with values outside this span are refused as being on another scale (e.g. 0..255): an output
slightly outside [0, 1] is clipped, one on the 0..255 scale would silently score as white."""


def to_uint8_scale(img: Any, *, quantize: bool = True, name: str = "image") -> np.ndarray:
    """Return ``img`` as float64 ``HxWx3`` on the 0..255 scale.

    ``uint8`` data is used as is. Float data in [0, 1] is multiplied by 255; with ``quantize``
    (the protocol) it is clipped to [0, 1] first and rounded to the nearest integer (ties to even). Non-finite
    floats and floats outside :data:`FLOAT_RANGE` are refused.
    """
    arr = _to_hwc(img, name)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name}: integer images must be uint8 (0..255); got dtype {arr.dtype}. "
            "Pass floats in [0, 1] for other bit depths."
        )
    x = arr.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: the image has NaN or infinite values")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)  # an empty image is _pair's error
    if hi > FLOAT_RANGE[1] or lo < FLOAT_RANGE[0]:
        raise ValueError(f"{name}: float images are scored on [0, 1], but its values span {lo:g}..{hi:g}: on the "
                         "0..255 scale pass uint8, or divide by 255")
    if quantize:
        return np.round(np.clip(x, 0.0, 1.0) * 255.0)
    return x * 255.0


def _pair(pred: Any, target: Any, quantize: bool) -> tuple[np.ndarray, np.ndarray]:
    a = to_uint8_scale(pred, quantize=quantize, name="pred")
    b = to_uint8_scale(target, quantize=quantize, name="target")
    if a.shape != b.shape:
        raise ValueError(f"pred and target differ in shape: {a.shape} (HxWx3) vs {b.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"empty image of shape {a.shape}")
    return a, b


PSNR_CAP = 100.0
"""PSNR of an exact match in reports and means (instead of infinity), in dB."""

DO_NO_HARM_PSNR = 38.0
"""A good photo must come back within this PSNR (dB) of itself ("do no harm", the agent issue's threshold)."""


def do_no_harm(psnrs: Iterable[float]) -> dict[str, float]:
    """How good photos came back, from the PSNR of each output to its input (capped, :func:`capped_psnr`):
    ``good_psnr``, their mean; ``good_shortfall``, the mean of ``max(0, 38 - PSNR)`` over the photos, so that
    each photo below :data:`DO_NO_HARM_PSNR` counts by how far it fell, however high the others stay (a mean
    PSNR hides a ruined photo behind bit-for-bit copies at 100 dB); ``good_within``, the share within 38 dB."""
    values = [float(p) for p in psnrs]
    if not values:
        raise ValueError("do_no_harm needs at least one PSNR")
    if any(math.isnan(p) or p == math.inf for p in values):
        raise ValueError("do_no_harm takes finite PSNRs (capped_psnr caps an exact match)")
    return {"good_psnr": sum(values) / len(values),
            "good_shortfall": sum(max(0.0, DO_NO_HARM_PSNR - p) for p in values) / len(values),
            "good_within": sum(p >= DO_NO_HARM_PSNR for p in values) / len(values)}


def psnr(pred: Any, target: Any, *, quantize: bool = True) -> float:
    """Peak signal-to-noise ratio in dB, peak 255 on 8-bit data (peak 1 on [0, 1]).

    ``10 * log10(255**2 / MSE)`` with the MSE over all pixels and channels; identical images give
    ``math.inf``.
    """
    a, b = _pair(pred, target, quantize)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def capped_psnr(pred: Any, target: Any, *, quantize: bool = True) -> float:
    """:func:`psnr`, but :data:`PSNR_CAP` for identical images: what every mean in this project averages."""
    return min(psnr(pred, target, quantize=quantize), PSNR_CAP)


def _gaussian_kernel(sigma: float = _SSIM_SIGMA, truncate: float = _SSIM_TRUNCATE) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


SSIM_MIN_SIDE = 11
"""the smallest side SSIM's Gaussian window fits in (and so the smallest image any metric here scores)"""


def ssim(pred: Any, target: Any, *, quantize: bool = True) -> float:
    """Mean SSIM (Wang et al. 2004): Gaussian window 11 / sigma 1.5, K1 0.01, K2 0.03, range 255.

    Computed per channel and averaged over the three channels; the 5-pixel border that the window
    does not fully cover is excluded, as in skimage and the MATLAB reference. Images must be at
    least 11x11.
    """
    from scipy.ndimage import correlate1d

    a, b = _pair(pred, target, quantize)
    kernel = _gaussian_kernel()
    win = kernel.size  # SSIM_MIN_SIDE
    pad = (win - 1) // 2
    if a.shape[0] < win or a.shape[1] < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win} pixels, got {a.shape[:2]}")

    def filt(x: np.ndarray) -> np.ndarray:
        y = correlate1d(x, kernel, axis=0, mode="reflect")
        return correlate1d(y, kernel, axis=1, mode="reflect")

    ux, uy = filt(a), filt(b)
    vx = filt(a * a) - ux * ux
    vy = filt(b * b) - uy * uy
    vxy = filt(a * b) - ux * uy
    c1 = (_SSIM_K1 * 255.0) ** 2
    c2 = (_SSIM_K2 * 255.0) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    s = s[pad:-pad, pad:-pad, :]
    per_channel = s.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    return float(per_channel.mean())


def _lab_pair(pred: Any, target: Any, quantize: bool) -> tuple[np.ndarray, np.ndarray]:
    from skimage.color import rgb2lab

    a, b = _pair(pred, target, quantize)
    return rgb2lab(a / 255.0), rgb2lab(b / 255.0)


def delta_e76(pred: Any, target: Any, *, quantize: bool = True) -> float:
    """Mean CIE76 colour difference (Euclidean distance in CIELAB, sRGB D65 input)."""
    la, lb = _lab_pair(pred, target, quantize)
    return float(np.sqrt(np.sum((la - lb) ** 2, axis=-1)).mean(dtype=np.float64))


def delta_e2000(pred: Any, target: Any, *, quantize: bool = True) -> float:
    """Mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``, sRGB D65 input)."""
    from skimage.color import deltaE_ciede2000

    la, lb = _lab_pair(pred, target, quantize)
    return float(np.mean(deltaE_ciede2000(la, lb), dtype=np.float64))


def evaluate_pair(pred: Any, target: Any, *, quantize: bool = True) -> dict[str, float]:
    """All metrics for one image pair: ``{"psnr", "ssim", "delta_e76", "delta_e2000"}``."""
    return {
        "psnr": psnr(pred, target, quantize=quantize),
        "ssim": ssim(pred, target, quantize=quantize),
        "delta_e76": delta_e76(pred, target, quantize=quantize),
        "delta_e2000": delta_e2000(pred, target, quantize=quantize),
    }


def capped_pair(pred: Any, target: Any, *, quantize: bool = True) -> dict[str, float]:
    """:func:`evaluate_pair` with its PSNR capped as :func:`capped_psnr` caps it: the scores every mean here
    averages (``deepexpose evaluate`` and ``deepexpose score``)."""
    scores = evaluate_pair(pred, target, quantize=quantize)
    return {**scores, "psnr": min(scores["psnr"], PSNR_CAP)}


def mean_metrics(results: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average per-image metric dicts key by key (the per-image mean the literature reports).

    All dicts must have the same keys. A PSNR of ``inf`` (an exact match) makes the mean ``inf``.
    """
    rows = list(results)
    if not rows:
        raise ValueError("mean_metrics needs at least one result")
    keys = list(rows[0].keys())
    for i, r in enumerate(rows):
        if set(r.keys()) != set(keys):
            raise ValueError(
                f"result {i} has keys {sorted(r.keys())}, expected {sorted(keys)} as in result 0"
            )
    return {k: float(np.mean([float(r[k]) for r in rows])) for k in keys}
