"""Contact sheets: a grid of labelled images (before/after rows) as one RGB array."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw

LABEL_HEIGHT = 16
CAPTION_HEIGHT = 14
GAP = 4


def _to_uint8(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """``3 x H x W`` / ``1 x 3 x H x W`` tensor or ``H x W x 3`` float array in [0, 1] -> ``H x W x 3`` uint8."""
    if isinstance(img, torch.Tensor):
        t = img.detach().float().cpu()
        if t.ndim == 4:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a 3 x H x W tensor, got {tuple(img.shape)}")
        img = t.permute(1, 2, 0).numpy()
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 array, got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)
    return arr


def _caption(thumb: np.ndarray, text: str) -> np.ndarray:
    """``text`` in white on a dark strip along the bottom of ``thumb``."""
    im = PILImage.fromarray(thumb)
    draw = ImageDraw.Draw(im)
    h = min(CAPTION_HEIGHT, im.height)
    strip = np.asarray(im.crop((0, im.height - h, im.width, im.height)), dtype=np.float32) * 0.35
    im.paste(PILImage.fromarray(strip.astype(np.uint8)), (0, im.height - h))
    draw.text((3, im.height - h + 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def contact_sheet(rows: Sequence[Sequence[torch.Tensor | np.ndarray]], labels: Sequence[str] | None = None,
                  cell: int = 192, captions: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """Lay ``rows`` of images out as a grid of ``cell``-pixel-high thumbnails with column ``labels`` on top.

    Each image keeps its aspect ratio; a column is as wide as its widest thumbnail. ``captions[r][c]`` (when
    given and not empty) is written along the bottom of that thumbnail. Returns ``H x W x 3`` uint8.
    """
    if not rows or not all(rows):
        raise ValueError("contact_sheet needs at least one non-empty row")
    ncols = max(len(r) for r in rows)
    if labels is not None and len(labels) != ncols:
        raise ValueError(f"{len(labels)} labels for {ncols} columns")
    if captions is not None and (len(captions) != len(rows)
                                 or any(len(c) != len(r) for c, r in zip(captions, rows, strict=True))):
        raise ValueError("captions must have one entry per image, row by row")
    thumbs = []
    for r, row in enumerate(rows):
        out = []
        for c, img in enumerate(row):
            arr = _to_uint8(img)
            w = max(1, round(arr.shape[1] * cell / arr.shape[0]))
            thumb = np.asarray(PILImage.fromarray(arr).resize((w, cell), PILImage.Resampling.LANCZOS))
            out.append(_caption(thumb, captions[r][c]) if captions is not None and captions[r][c] else thumb)
        thumbs.append(out)
    widths = [max(r[c].shape[1] for r in thumbs if c < len(r)) for c in range(ncols)]
    top = LABEL_HEIGHT if labels else 0
    sheet = PILImage.new("RGB", (sum(widths) + GAP * (ncols + 1), top + len(rows) * (cell + GAP) + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for c, w in enumerate(widths):
        if labels:
            draw.text((x + 2, 2), labels[c], fill=(0, 0, 0))
        for r, row in enumerate(thumbs):
            if c < len(row):
                sheet.paste(PILImage.fromarray(row[c]), (x, top + GAP + r * (cell + GAP)))
        x += w + GAP
    return np.asarray(sheet)
