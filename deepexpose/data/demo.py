"""A small demo set built only from natural colour photographs that ship inside installed packages.

Nothing is downloaded: the photos are the ones bundled in scikit-image's ``skimage/data`` folder
(no pooch fetch). Credits and licences below are quoted from scikit-image's documentation of the
matching ``skimage.data`` functions (the folder's ``README.txt`` only explains the folder; it
carries no per-image licence).

Chosen: astronaut, chelsea, coffee, rocket, motorcycle_left, motorcycle_right - ordinary camera
photographs of real scenes, the kind exposure/colour correction is meant for. Left out (see
:data:`EXCLUDED`): grayscale images, textures, synthetic images and diagrams, microscopy and
medical images, and the Hubble deep field (an astronomical false-colour composite).

``motorcycle_left`` and ``motorcycle_right`` are the two views of one stereo scene, nearly the same
picture, so they form one group ("motorcycle") and a split always keeps them on the same side.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .folders import DatasetLayoutError, ImageFileDataset, Sample

__all__ = ["DemoPhoto", "DEMO_PHOTOS", "EXCLUDED", "DEFAULT_HOLDOUT", "demo_photo_paths", "DemoSet"]


@dataclass(frozen=True)
class DemoPhoto:
    """A bundled photo: where it lives, what it shows, who made it and under which terms."""

    name: str
    filename: str
    package: str  # distribution that ships the file
    module: str  # import name of the package folder holding ``filename``
    description: str
    source: str
    credit: str
    licence: str
    group: str  # near-duplicates share a group; splits never separate a group

    @property
    def path(self) -> Path | None:
        """Location of the file, or ``None`` if the package or the file is not installed."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or spec.origin is None:
            return None
        p = Path(spec.origin).parent / self.filename
        return p if p.is_file() else None


_SKIMAGE = dict(package="scikit-image", module="skimage.data")
_MIDDLEBURY = (
    "Middlebury 2014 stereo datasets (D. Scharstein, H. Hirschmueller, Y. Kitajima, G. Krathwohl, "
    "N. Nesic, X. Wang, P. Westling, 'High-resolution stereo datasets with subpixel-accurate ground "
    "truth', GCPR 2014), http://vision.middlebury.edu/stereo/data/scenes2014/; downsampled 4x by "
    "scikit-image"
)
_MIDDLEBURY_LICENCE = (
    "Not stated in scikit-image's documentation; the file is distributed inside the scikit-image "
    "package (BSD-3-Clause). Check the Middlebury terms before redistributing it on its own."
)

DEMO_PHOTOS: list[DemoPhoto] = [
    DemoPhoto(
        name="astronaut",
        filename="astronaut.png",
        description="Portrait of astronaut Eileen Collins (skimage.data.astronaut)",
        source="NASA Great Images database, https://flic.kr/p/r9qvLn",
        credit="NASA",
        licence="No known copyright restrictions, released into the public domain.",
        group="astronaut",
        **_SKIMAGE,
    ),
    DemoPhoto(
        name="chelsea",
        filename="chelsea.png",
        description="Chelsea the cat (skimage.data.chelsea)",
        source="scikit-image sample data",
        credit="Stefan van der Walt (photographer)",
        licence="No copyright restrictions. CC0 by the photographer (Stefan van der Walt).",
        group="chelsea",
        **_SKIMAGE,
    ),
    DemoPhoto(
        name="coffee",
        filename="coffee.png",
        description="Coffee cup on a wooden table (skimage.data.coffee)",
        source="Courtesy of Pikolo Espresso Bar; scikit-image sample data",
        credit="Rachel Michetti (photographer)",
        licence="No copyright restrictions. CC0 by the photographer (Rachel Michetti).",
        group="coffee",
        **_SKIMAGE,
    ),
    DemoPhoto(
        name="rocket",
        filename="rocket.jpg",
        description="Launch of DSCOVR on a Falcon 9 at Cape Canaveral (skimage.data.rocket)",
        source="SpaceX Photos, https://www.flickr.com/photos/spacexphotos/16511594820/",
        credit="SpaceX",
        licence="Captured by SpaceX and released in the public domain.",
        group="rocket",
        **_SKIMAGE,
    ),
    DemoPhoto(
        name="motorcycle_left",
        filename="motorcycle_left.png",
        description="Motorcycle in a lab, left stereo view (skimage.data.stereo_motorcycle)",
        source=_MIDDLEBURY,
        credit="N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein (Middlebury College)",
        licence=_MIDDLEBURY_LICENCE,
        group="motorcycle",
        **_SKIMAGE,
    ),
    DemoPhoto(
        name="motorcycle_right",
        filename="motorcycle_right.png",
        description="Motorcycle in a lab, right stereo view (skimage.data.stereo_motorcycle)",
        source=_MIDDLEBURY,
        credit="N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein (Middlebury College)",
        licence=_MIDDLEBURY_LICENCE,
        group="motorcycle",
        **_SKIMAGE,
    ),
]

#: Image files of ``skimage/data`` deliberately not used, with the reason.
EXCLUDED: dict[str, str] = {
    "hubble_deep_field.jpg": "astronomical composite of long exposures with assigned colours, mostly black sky",
    "retina.jpg": "medical fundus photograph",
    "ihc.png": "microscopy (immunohistochemistry stain)",
    "cell.png": "microscopy, grayscale",
    "camera.png": "grayscale",
    "moon.png": "grayscale",
    "coins.png": "grayscale",
    "page.png": "grayscale scan of text",
    "text.png": "grayscale text",
    "clock_motion.png": "grayscale, synthetic motion blur",
    "brick.png": "grayscale texture",
    "grass.png": "grayscale texture",
    "gravel.png": "grayscale texture",
    "horse.png": "binary silhouette drawing",
    "phantom.png": "synthetic phantom",
    "microaneurysms.png": "medical image, grayscale",
    "chessboard_GRAY.png": "synthetic pattern",
    "chessboard_RGB.png": "synthetic pattern",
    "color.png": "synthetic colour chart",
    "logo.png": "logo drawing",
    "no_time_for_that_tiny.gif": "animation",
    "multipage.tif": "test file",
    "multipage_rgb.tif": "test file",
}

DEFAULT_HOLDOUT: tuple[str, ...] = ("coffee",)

_BY_NAME = {p.name: p for p in DEMO_PHOTOS}
_GROUPS = {p.group for p in DEMO_PHOTOS}


def demo_photo_paths() -> list[Path]:
    """Paths of the :data:`DEMO_PHOTOS` that are installed (in :data:`DEMO_PHOTOS` order)."""
    return [p.path for p in DEMO_PHOTOS if p.path is not None]


def _holdout_groups(holdout: tuple[str, ...] | list[str] | str) -> set[str]:
    names = (holdout,) if isinstance(holdout, str) else tuple(holdout)
    groups = set()
    for n in names:
        if n in _BY_NAME:
            groups.add(_BY_NAME[n].group)
        elif n in _GROUPS:
            groups.add(n)
        else:
            valid = sorted(set(_BY_NAME) | _GROUPS)
            raise ValueError(f"unknown demo photo or group {n!r}; valid: {', '.join(valid)}")
    return groups


class DemoSet(ImageFileDataset):
    """The bundled demo photos: ``{"image": 3xHxW, "name": photo name}``.

    Args:
        split: ``"all"``, ``"train"`` (everything outside the hold-out groups) or ``"holdout"``.
        holdout: photo or group names kept out of training; a photo brings its whole group
            (``"motorcycle_left"`` holds out both motorcycle views).
        **options: crop_size, flip, resize, seed, max_pixels (see :class:`ImageFileDataset`).
    """

    def __init__(
        self,
        split: Literal["all", "train", "holdout"] = "all",
        holdout: tuple[str, ...] | list[str] | str = DEFAULT_HOLDOUT,
        **options: Any,
    ) -> None:
        if split not in ("all", "train", "holdout"):
            raise ValueError(f"split must be 'all', 'train' or 'holdout', got {split!r}")
        groups = _holdout_groups(holdout)
        available = [(p, p.path) for p in DEMO_PHOTOS]
        available = [(p, path) for p, path in available if path is not None]
        if not available:
            raise DatasetLayoutError(
                "none of the demo photos is installed (expected "
                f"{', '.join(p.filename for p in DEMO_PHOTOS)} in the folder of skimage.data)"
            )
        if split == "train":
            chosen = [(p, path) for p, path in available if p.group not in groups]
        elif split == "holdout":
            chosen = [(p, path) for p, path in available if p.group in groups]
        else:
            chosen = available
        if not chosen:
            raise DatasetLayoutError(
                f"demo split {split!r} is empty (holdout groups: {sorted(groups) or 'none'}, "
                f"installed photos: {', '.join(p.name for p, _ in available)})"
            )
        self.split, self.holdout_groups = split, groups
        self.photos = [p for p, _ in chosen]
        super().__init__([Sample(p.name, {"image": path}) for p, path in chosen], **options)
