"""Exposure blending: fuse K locally exposed versions with edge-aware masks, at any resolution.

Soft luminosity masks can still cut across an object whose brightness varies; blending exposures with them
directly leaves halos. The masks are therefore refined with the guided filter of He et al. ("Guided Image
Filtering", ECCV 2010 / TPAMI 2013) guided by the image's luminance, so their edges follow the photo's edges.
Masks computed on a low-resolution view are brought to full resolution by guided upsampling (the fast guided
filter, He & Sun 2015): the filter's local linear coefficients are fitted at low resolution, upsampled
bilinearly and applied to the full-resolution guide, so mask edges stay sharp where the photo's are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import box_blur, guided_blur
from torch import Tensor

from .filters.base import check_image, luminance
from .filters.local_exposure import adjust_local_exposure


def _normalise(masks: Tensor) -> Tensor:
    """Clip to >= 0 and rescale so the K masks sum to 1 at every pixel."""
    masks = masks.clamp(min=0.0)
    return masks / masks.sum(dim=1, keepdim=True).clamp(min=1e-6)


def refine_masks(masks: Tensor, image: Tensor, radius: int = 4, eps: float = 1e-3) -> Tensor:
    """Guided-filter each mask with the image's luminance as guide (kornia ``guided_blur``); still sums to 1."""
    check_image(image)
    if masks.shape[0] != image.shape[0] or masks.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match the image {tuple(image.shape)}")
    radius = min(radius, (min(image.shape[-2:]) - 1) // 2)
    if radius < 1:
        return masks
    guide = luminance(image.clamp(0.0, 1.0))
    return _normalise(guided_blur(guide, masks.to(image), 2 * radius + 1, eps))


def guided_coefficients(masks: Tensor, guide_low: Tensor, radius: int = 2, eps: float = 1e-3
                        ) -> tuple[Tensor, Tensor]:
    """The low-resolution coefficients ``a, b`` (box-averaged, ``B x K x h x w``) of the fast guided filter
    (He & Sun 2015): ``q = a * I + b`` fitted per window of the luminance ``I`` of ``guide_low``. A view too
    small for a window gives ``a = 0, b = masks`` (plain bilinear upsampling)."""
    radius = min(radius, (min(masks.shape[-2:]) - 1) // 2)
    if radius < 1:
        return torch.zeros_like(masks), masks
    k = 2 * radius + 1
    i_low = luminance(guide_low.clamp(0.0, 1.0))
    p = masks.to(i_low)
    mean_i, mean_p = box_blur(i_low, k), box_blur(p, k)
    cov_ip = box_blur(i_low * p, k) - mean_i * mean_p
    var_i = box_blur(i_low * i_low, k) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_blur(a, k), box_blur(b, k)


def guided_upsample(masks: Tensor, guide_low: Tensor, guide_high: Tensor, radius: int = 2,
                    eps: float = 1e-3) -> Tensor:
    """Upsample ``B x K x h x w`` masks to the size of ``guide_high`` following its edges (fast guided filter).

    ``guide_low`` and ``guide_high`` are the same photo at the masks' resolution and at the target resolution
    (``B x 3 x h x w`` and ``B x 3 x H x W``). The coefficients of :func:`guided_coefficients` are upsampled
    bilinearly and applied to the full-resolution luminance.
    """
    check_image(guide_low)
    check_image(guide_high)
    if masks.shape[-2:] != guide_low.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match guide_low {tuple(guide_low.shape)}")
    size = guide_high.shape[-2:]
    a, b = guided_coefficients(masks, guide_low, radius, eps)
    a_up = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    b_up = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return _normalise(a_up * luminance(guide_high.clamp(0.0, 1.0)) + b_up)


def blend_exposures(image: Tensor, masks: Tensor, ev: Tensor, *, refine: bool = True, radius: int = 4,
                    eps: float = 1e-3) -> Tensor:
    """Expose sub-image k of ``image`` by ``ev[:, k]`` stops and fuse the versions with (refined) masks.

    With all ``ev`` equal to 0 the result is the input, bit for bit.
    """
    if refine:
        masks = refine_masks(masks, image, radius=radius, eps=eps)
    return adjust_local_exposure(image, masks, ev)


__all__ = ["blend_exposures", "guided_coefficients", "guided_upsample", "refine_masks"]
