"""The sample photos of ``deepexpose demo``: bundled photos the default model never saw, with known errors.

Each sample is a demo photo held out of the default model's training (coffee, chelsea, the motorcycle pair;
see ``scripts/train_default_model.py``) with a white-box error of the kinds the agent corrects: exposure,
white balance, contrast, saturation, and one it was not trained on (light falling off across the frame). The
demo writes the samples, enhances them with ``deepexpose enhance`` and lays out a before/after sheet with the
untouched photo beside them and each image's PSNR and CIEDE2000 against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .data.demo import DEMO_PHOTOS
from .data.folders import shrink_short_side
from .filters import FilterPipeline
from .io import atomic_write_bytes, from_tensor, output_folder, read_image, to_tensor, write_image

# (sample name, demo photo, error as a filter edit or "vignette", what a person would say)
SAMPLES: tuple[tuple[str, str, dict | str, str], ...] = (
    ("coffee_dark", "coffee", {"exposure": {"ev": -1.2}}, "underexposed by 1.2 EV"),
    ("coffee_warm_flat", "coffee", {"white_balance": {"temperature": 0.8}, "contrast": {"amount": -0.5}},
     "too warm, flat"),
    ("chelsea_blue", "chelsea", {"white_balance": {"temperature": -0.9, "tint": 0.3}}, "too blue"),
    ("chelsea_bright_vivid", "chelsea", {"exposure": {"ev": 0.8}, "saturation": {"factor": 1.5}},
     "overexposed, oversaturated"),
    ("motorcycle_dull", "motorcycle_left", {"exposure": {"ev": -0.6}, "saturation": {"factor": 0.55},
                                            "contrast": {"amount": -0.3}}, "dull: dark, grey, flat"),
    ("motorcycle_vignette", "motorcycle_right", "vignette", "light falling off toward the corners"),
)
SAMPLE_SHORT_SIDE = 384


def _vignette(image: torch.Tensor) -> torch.Tensor:
    """Light falling off with the distance from the centre, up to -1.5 EV in the corners (linear light)."""
    from .filters.base import apply_linear_gain

    _, _, h, w = image.shape
    y = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    x = torch.linspace(-1, 1, w).view(1, 1, 1, w)
    return apply_linear_gain(image, 2.0 ** (-1.5 * (x ** 2 + y ** 2) / 2))


def make_sample(photo: torch.Tensor, error: dict | str) -> torch.Tensor:
    """The ``1 x 3 x H x W`` photo with ``error`` (a filter edit, or ``"vignette"``) applied."""
    if error == "vignette":
        return _vignette(photo)
    if not error:
        return photo.clone()
    pipe = FilterPipeline(list(error))
    return pipe(photo, pipe.action_from_description(error))


def write_samples(folder: str | Path, *, overwrite: bool = False) -> tuple[list[Path], dict[str, np.ndarray]]:
    """Write the samples as PNG into ``folder`` (plus ``samples.json``); returns them and the originals."""
    folder = Path(folder)
    by_name = {p.name: p for p in DEMO_PHOTOS}
    paths, originals, record = [], {}, {}
    for name, photo_name, error, words in SAMPLES:
        source = by_name[photo_name].path
        if source is None:
            raise RuntimeError(f"the demo photo {photo_name} is missing (is scikit-image installed?)")
        photo = shrink_short_side(to_tensor(read_image(source))[0], SAMPLE_SHORT_SIDE).unsqueeze(0)
        path = write_image(folder / f"{name}.png", from_tensor(make_sample(photo, error)), overwrite=overwrite)
        paths.append(path)
        originals[name] = from_tensor(photo)
        record[name] = {"photo": photo_name, "error": error, "description": words}
    atomic_write_bytes(folder / "samples.json", json.dumps(record, indent=2).encode(), overwrite=overwrite)
    return paths, originals


def run_demo(out_dir: str | Path, *, method: str = "agent", model: str = "", overwrite: bool = False,
             progress: bool = True) -> tuple[Path, list[dict]]:
    """Samples -> ``out_dir/samples``, enhanced -> ``out_dir/enhanced``, sheet -> ``out_dir/before_after.jpg``.

    Returns the sheet's path and, per sample, the PSNR / CIEDE2000 of the sample and of the result against
    the untouched photo.
    """
    from .enhance import EnhanceConfig, enhance_paths
    from .metrics import delta_e2000, psnr
    from .sheet import contact_sheet

    out = output_folder(out_dir, "-o")
    mine = [out / n for n in ("samples", "enhanced", "before_after.jpg", "scores.json")]
    if not overwrite and any(p.exists() for p in mine):
        raise FileExistsError(f"{out} holds a demo's files already (pass --overwrite to replace them)")
    paths, originals = write_samples(out / "samples", overwrite=overwrite)
    cfg = EnhanceConfig(out=str(out / "enhanced"), method=method, model=model, sidecar=True, overwrite=overwrite,
                        progress=progress)
    summary = enhance_paths(paths, cfg)
    if summary.failed:
        raise RuntimeError(f"enhancing the samples failed:\n{summary}")
    rows, scores = [], []
    for (name, _, _, words), path in zip(SAMPLES, paths, strict=True):
        before = read_image(path).pixels
        after = read_image(out / "enhanced" / path.name).pixels
        good = originals[name]
        t = {k: torch.from_numpy(v).permute(2, 0, 1) for k, v in (("b", before), ("a", after), ("g", good))}
        scores.append({"sample": name, "error": words,
                       "before_psnr": psnr(t["b"], t["g"]), "before_delta_e2000": delta_e2000(t["b"], t["g"]),
                       "after_psnr": psnr(t["a"], t["g"]), "after_delta_e2000": delta_e2000(t["a"], t["g"])})
        rows.append([before, after, good])
    sheet_pixels = contact_sheet(rows, ["sample (error added)", f"enhanced ({method})", "original"], cell=200)
    sheet = write_image(out / "before_after.jpg", sheet_pixels.astype(np.float32) / 255, quality=90,
                        overwrite=overwrite)
    atomic_write_bytes(out / "scores.json", json.dumps(scores, indent=2).encode(), overwrite=overwrite)
    return sheet, scores
