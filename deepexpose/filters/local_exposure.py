"""Local exposure through per-pixel masks: the DeepExposure fusion of K locally exposed versions.

With soft sub-image masks ``m_k`` summing to 1 per pixel (see :mod:`deepexpose.segment`) and one exposure
``ev_k`` per sub-image, the K exposed versions ``lin * 2**ev_k`` are blended in linear light,
``out = srgb(clip(lin * sum_k m_k 2**ev_k))``: one gain map, so memory does not grow with K.
"""

from __future__ import annotations

from torch import Tensor

import torch

from .base import Filter, ParamSpec, _in_place, apply_linear_gain, check_image, stops_to_gain


def exposure_gain_map(masks: Tensor, ev: Tensor) -> Tensor:
    """Per-pixel linear gain ``sum_k m_k * 2**ev_k`` (``B x 1 x H x W``) from ``B x K x H x W`` masks.

    Computed as ``1 + sum_k m_k (2**ev_k - 1)``, equal for masks summing to 1 and exactly 1 when all ev are 0.
    """
    if masks.ndim != 4 or ev.ndim != 2 or ev.shape != masks.shape[:2]:
        raise ValueError(f"masks must be B x K x H x W and ev B x K, got {tuple(masks.shape)} and "
                         f"{tuple(ev.shape)}")
    weights = stops_to_gain(ev.to(masks)) - 1.0
    if _in_place(masks, weights):  # the same sum as one batched matrix product, without the B x K x H x W product
        b, k, h, w = masks.shape
        return torch.bmm(weights.view(b, 1, k), masks.reshape(b, k, h * w)).add_(1.0).view(b, 1, h, w)
    return 1.0 + (masks * weights.view(*ev.shape, 1, 1)).sum(dim=1, keepdim=True)


def adjust_local_exposure(image: Tensor, masks: Tensor, ev: Tensor, linear: Tensor | None = None) -> Tensor:
    """Expose sub-image k by ``ev[:, k]`` stops and blend the versions with ``masks`` in linear light.

    ``linear`` may pass a cached ``srgb_to_linear(image)`` (episodes re-expose the same input K times).
    """
    check_image(image)
    if masks.shape[0] != image.shape[0] or masks.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match the image {tuple(image.shape)}")
    gain = exposure_gain_map(masks.to(image), ev)
    return apply_linear_gain(image, gain, linear)


def _apply(image: Tensor, values: Tensor, masks: Tensor | None = None) -> Tensor:
    if masks is None:
        raise ValueError("local_exposure needs masks= (B x K x H x W sub-image masks)")
    return adjust_local_exposure(image, masks, values)


LOCAL_EXPOSURE = Filter(
    name="local_exposure",
    params=(ParamSpec("ev", -3.0, 0.0, 3.0, unit="EV", doc="exposure change of one sub-image in stops"),),
    apply=_apply,
    doc=adjust_local_exposure.__doc__,
    per_mask=True,
)
