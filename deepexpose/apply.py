"""Apply an edit chosen on a low-resolution view to the photo at any resolution.

An edit is what an episode's ``describe()`` returns: ``{"local_exposure": {"ev": [...]}, <filter>: {...}}``.
The sub-image masks are computed on the view exactly as in the episode, then brought to the photo's size by
guided upsampling (:func:`deepexpose.fusion.guided_upsample`), so their edges follow the photo's edges; the
local exposures are blended with them and the global filters applied with the same filter code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline
from .filters.base import check_image
from .filters.local_exposure import adjust_local_exposure
from .fusion import guided_upsample, refine_masks
from .segment import segment


def to_view(image: Tensor, size: int) -> Tensor:
    """The square ``size x size`` view a policy sees of a ``B x 3 x H x W`` batch (antialiased, aspect squashed);
    the training pools make their views with it too."""
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def apply_edit(photo: Tensor, edit: dict, *, view: int = 64, segmentation: str = "luminosity",
               refine_radius: int = 0, filters: Sequence[str] = DEFAULT_GLOBAL_FILTERS) -> Tensor:
    """Apply ``edit`` to a ``1 x 3 x H x W`` photo in [0, 1]; masks come from its ``view x view`` view.

    ``segmentation`` and ``refine_radius`` must match the episodes the edit was chosen in. At the view's own
    size the result equals the episode's final image.
    """
    check_image(photo)
    if photo.shape[0] != 1:
        raise ValueError("apply_edit takes one photo (1 x 3 x H x W)")
    ev = torch.tensor([edit.get("local_exposure", {}).get("ev", [])], dtype=photo.dtype, device=photo.device)
    if ev.shape[1] == 0:
        raise ValueError("the edit has no local exposures ('local_exposure': {'ev': [...]})")
    small = to_view(photo, view)
    masks = segment(small, ev.shape[1], segmentation)
    if refine_radius > 0:
        masks = refine_masks(masks, small, radius=refine_radius)
    if photo.shape[-2:] != small.shape[-2:]:
        masks = guided_upsample(masks, small, photo)
    local = adjust_local_exposure(photo, masks, ev)
    pipeline = FilterPipeline(filters)
    global_edit = {k: v for k, v in edit.items() if k != "local_exposure"}
    return pipeline(local, pipeline.action_from_description(global_edit).to(photo))
