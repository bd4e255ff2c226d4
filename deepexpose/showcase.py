"""The filter showcase on the bundled photos: what the filters, sub-images and exposure blending do.

For each demo photo (photos that ship inside installed packages, see :mod:`deepexpose.data.demo`) it shows the
original, its luminosity sub-images, a local edit chosen on a 64 x 64 view and applied at full size (shadows
+1 EV, highlights -0.5 EV, through guided upsampling of the masks), and three synthetic detunings (seed 001's
"too dark" and "too orange" classes and a seed 002 mixed edit). Writes a contact sheet, each output image and a
JSON file of every parameter used.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from .data.demo import demo_photo_paths
from .data.folders import shrink_short_side
from .data.detune import detune_single, random_edit
from .fusion import blend_exposures, guided_upsample, refine_masks
from .io import atomic_write_bytes, from_tensor, output_folder, read_image, to_tensor, write_image
from .segment import luminosity_masks
from .sheet import contact_sheet

VIEW = 64
BAND_COLOURS = torch.tensor([[0.15, 0.2, 0.6], [0.2, 0.7, 0.3], [0.95, 0.8, 0.2], [0.9, 0.3, 0.2], [0.8, 0.4, 0.9]])
COLUMNS = ("original", "sub-images (K=3)", "shadows +1 EV, highlights -0.5 EV", "detuned: too dark 100%",
           "detuned: too orange 66%", "detuned: mixed edit")


def show_masks(masks: torch.Tensor) -> torch.Tensor:
    """Colour-code ``1 x K x H x W`` masks (band k in colour k) as a ``1 x 3 x H x W`` image."""
    colours = BAND_COLOURS[: masks.shape[1]].to(masks)
    return torch.einsum("bkhw,kc->bchw", masks, colours)


def edit_photo(image: torch.Tensor, seed: int) -> tuple[list[torch.Tensor], dict]:
    """All showcase columns for one ``1 x 3 x H x W`` photo, and the parameters used."""
    view = F.interpolate(image, size=(VIEW, VIEW), mode="area")
    masks_view = refine_masks(luminosity_masks(view, 3), view, radius=2)
    masks = guided_upsample(masks_view, view, image)
    ev = torch.tensor([[1.0, 0.0, -0.5]])
    local = blend_exposures(image, masks, ev, refine=False)
    dark, rec_dark = detune_single(image, "too_dark_100")
    orange, rec_orange = detune_single(image, "too_orange_66")
    mixed, rec_mixed = random_edit(image, torch.Generator().manual_seed(seed), noise=0.0)
    params = {"local_exposure": {"k": 3, "ev": ev[0].tolist(), "masks_from": f"{VIEW}x{VIEW} view"},
              "too_dark": rec_dark, "too_orange": rec_orange, "mixed": rec_mixed}
    return [image, show_masks(masks), local, dark, orange, mixed], params


MIN_SIZE = 16
"""the smallest short side the showcase draws (a 0 or negative one used to fail inside Kornia)"""


def run_showcase(out_dir: str | Path, *, size: int = 384, overwrite: bool = False) -> Path:
    """Write the showcase of every bundled demo photo into ``out_dir``; returns the contact sheet's path."""
    if size < MIN_SIZE:
        raise ValueError(f"--size must be at least {MIN_SIZE} (the short side of the images shown), got {size}")
    out = output_folder(out_dir, "-o")
    paths = demo_photo_paths()
    if not paths:
        raise RuntimeError("no bundled demo photos found (is scikit-image installed?)")
    rows, record = [], {}
    for i, path in enumerate(paths):
        photo = shrink_short_side(to_tensor(read_image(path))[0], size).unsqueeze(0)
        columns, params = edit_photo(photo, seed=i)
        rows.append(columns)
        record[path.stem] = {"source": str(path), **params}
        for name, img in zip(("local", "too_dark", "too_orange", "mixed"), columns[2:], strict=True):
            write_image(out / f"{path.stem}_{name}.png", from_tensor(img), overwrite=overwrite)
    sheet = out / "showcase.jpg"
    write_image(sheet, contact_sheet(rows, COLUMNS).astype("float32") / 255, quality=90, overwrite=overwrite)
    atomic_write_bytes(out / "showcase.json", json.dumps(record, indent=2).encode(), overwrite=overwrite)
    return sheet
