"""MIT-Adobe FiveK (Bychkovsky et al., CVPR 2011) in the layouts the enhancement literature uses.

:class:`FiveK` - the "480p" release of Zeng et al. (Image-Adaptive 3D LUT, TPAMI 2020), also used by
AdaInt and SepLUT::

    <root>/input/JPG/480p/<id>.jpg          inputs (e.g. a0001.jpg)
    <root>/expertC/JPG/480p/<id>.jpg        retouch of expert C (expertA ... expertE likewise)
    <root>/train_input.txt                  ids, one per line
    <root>/train_label.txt                  ids, one per line
    <root>/test.txt                         ids, one per line (500 test images)

The two train lists are disjoint halves that Zeng et al. use as input set and label set for
*unpaired* training; their *paired* training (``combined=True`` in their ``datasets.py``) uses the
union of both lists, every id paired with its expert retouch (4500 pairs). ``split="train"`` does
the same; ``split="train_input"`` / ``"train_label"`` give one list each.

:class:`FiveKExposureSplit` - the 2000 / 2000 / 1000 split of Hu et al. (Exposure / White-Box photo
post-processing, SIGGRAPH 2018; list files ``data/folds/FiveK_train_first2k.txt``,
``FiveK_train_second2k.txt``, ``FiveK_test.txt`` in github.com/yuanming-hu/exposure): part A holds
the input photos, part B the retouched photos of a *different* 2000 images (unpaired target
distribution), and 1000 test photos.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from .folders import (
    MISSING_CHOICES,
    DatasetLayoutError,
    ImageFileDataset,
    Sample,
    _preview,
    check_choice,
    find_images,
    read_id_list,
    require_dir,
)

__all__ = ["FiveK", "FiveKExposureSplit", "EXPERTS", "fivek_expert_dir"]

EXPERTS = ("A", "B", "C", "D", "E")

_LAYOUT_480P = (
    "<root>/input/JPG/{res}/<id>.jpg, <root>/expert{e}/JPG/{res}/<id>.jpg and list files "
    "train_input.txt, train_label.txt, test.txt (one id per line) in <root>"
)


def fivek_expert_dir(expert: str) -> str:
    """Folder name of an expert: ``"C"``, ``"c"`` or ``"expertC"`` -> ``"expertC"``."""
    e = str(expert).strip()
    if e.lower().startswith("expert"):
        e = e[len("expert") :]
    e = e.upper()
    if e not in EXPERTS:
        raise ValueError(f"expert must be one of {', '.join(EXPERTS)} (FiveK experts), got {expert!r}")
    return f"expert{e}"


class _FileIndex:
    """Image files of one FiveK folder, looked up by id (``a0001`` matches ``a0001.jpg`` or, in
    full-size exports, ``a0001-jmac_DSC1459.tif``)."""

    def __init__(self, folder: Path, what: str, expected: str) -> None:
        self.folder = folder
        self.exact: dict[str, list[Path]] = {}
        self.prefix: dict[str, list[Path]] = {}
        for p in find_images(folder, what, expected):
            key = p.relative_to(folder).with_suffix("").as_posix()
            self.exact.setdefault(key, []).append(p)
            self.prefix.setdefault(key.split("-", 1)[0], []).append(p)

    def get(self, ident: str) -> Path | None:
        """The one file of ``ident``; ``None`` when it has none, or several (``a0005.jpg`` and ``a0005.png``:
        which is meant is not known)."""
        cands = self.exact.get(ident) or self.prefix.get(ident, [])
        return cands[0] if len(cands) == 1 else None

    def why(self, ident: str) -> str:
        """Why :meth:`get` gives no file for ``ident``."""
        cands = self.exact.get(ident) or self.prefix.get(ident, [])
        if len(cands) > 1:
            return f"several files in {self.folder}, so it is ambiguous: {' / '.join(p.name for p in cands)}"
        return f"no file in {self.folder}"


def _normalise_id(token: str) -> str:
    """List-file token -> FiveK id: ``"17"`` (1-based, Exposure folds) -> ``"a0017"``."""
    t = token.split()[0]
    t = re.sub(r"\.(jpe?g|png|tiff?|dng)$", "", t, flags=re.IGNORECASE)
    if t.isdigit():
        return f"a{int(t):04d}"
    return t


def _resolve(
    ids: list[str],
    folders: dict[str, _FileIndex],
    missing: str,
    list_name: str,
) -> tuple[list[Sample], dict[str, str]]:
    """The samples of ``ids`` found in every one of ``folders``, and the others, each with why it is not."""
    samples, lost = [], {}
    for ident in ids:
        paths = {key: idx.get(ident) for key, idx in folders.items()}
        if absent := [folders[k].why(ident) for k, p in paths.items() if p is None]:
            lost[ident] = "; ".join(absent)  # one entry per id, however many of its files lack
            continue
        samples.append(Sample(ident, paths))
    named = [f"{ident} ({why})" for ident, why in lost.items()]
    if lost and missing == "error":
        raise DatasetLayoutError(
            f"{len(lost)} id(s) from {list_name} have no image: {_preview(named, 4)}. "
            "Pass missing='skip' to leave them out."
        )
    if not samples:
        raise DatasetLayoutError(f"none of the ids in {list_name} has its image(s): {_preview(named, 4)}")
    return samples, lost


def _unique(ids: list[str]) -> list[str]:
    return sorted(dict.fromkeys(ids))


class FiveK(ImageFileDataset):
    """FiveK 480p pairs (Zeng et al. layout): ``{"input", "target", "name": id}``.

    Args:
        root: dataset root (holds ``input/``, ``expert<X>/`` and the list files).
        split: ``"train"`` (train_input.txt + train_label.txt, Zeng et al.'s paired training set),
            ``"train_input"``, ``"train_label"`` or ``"test"`` (test.txt).
        expert: ``"A"`` ... ``"E"`` (default C, the usual target).
        resolution: sub-folder under ``JPG/`` (``"480p"``; ``"original"`` for full size).
        missing: ids whose input or expert image is absent raise (``"error"``) or are left out
            (``"skip"``, listed in ``self.skipped``, each with why in ``self.reasons``).
        **options: crop_size, flip, resize, seed, max_pixels (see :class:`ImageFileDataset`).
    """

    SPLITS = {
        "train": ("train_input.txt", "train_label.txt"),
        "train_input": ("train_input.txt",),
        "train_label": ("train_label.txt",),
        "test": ("test.txt",),
    }

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        expert: str = "C",
        resolution: str = "480p",
        *,
        missing: Literal["error", "skip"] = "error",
        **options: Any,
    ) -> None:
        check_choice(split, tuple(self.SPLITS), "split")
        check_choice(missing, MISSING_CHOICES, "missing")
        exp_dir = fivek_expert_dir(expert)
        expected = _LAYOUT_480P.format(res=resolution, e=exp_dir[-1])
        self.root = require_dir(root, "FiveK root", expected)
        self.split, self.expert, self.resolution = split, exp_dir[-1], resolution
        ids: list[str] = []
        self.notes: list[str] = []
        for fn in self.SPLITS[split]:
            listed = [_normalise_id(t) for t in read_id_list(self.root / fn, f"FiveK list file '{fn}'", expected)]
            if twice := len(listed) - len(set(listed)):
                self.notes.append(f"the FiveK list file {fn} names {twice} id(s) more than once: each is used once")
            ids += listed
        ids = _unique(ids)
        folders = {
            "input": _FileIndex(
                self.root / "input" / "JPG" / resolution, f"FiveK input folder 'input/JPG/{resolution}'", expected
            ),
            "target": _FileIndex(
                self.root / exp_dir / "JPG" / resolution,
                f"FiveK expert folder '{exp_dir}/JPG/{resolution}'",
                expected,
            ),
        }
        samples, self.reasons = _resolve(ids, folders, missing, " + ".join(self.SPLITS[split]))
        self.skipped = list(self.reasons)
        super().__init__(samples, **options)


class FiveKExposureSplit(ImageFileDataset):
    """The Exposure (Hu et al. 2018) FiveK split: part ``"A"`` / ``"B"`` / ``"test"``.

    Images are read from the same folders as :class:`FiveK` (``input/JPG/<resolution>`` and
    ``expert<X>/JPG/<resolution>``). List files hold 1-based FiveK indices (``17`` -> ``a0017``) or
    ids, ``#`` lines are comments. Default list files, looked up in ``root`` unless ``list_file``
    names another (relative paths are taken from ``root``): see :attr:`LIST_FILES`.

    ``images`` chooses what an item holds: ``"input"`` / ``"target"`` -> ``{"image", "name"}``;
    ``"pair"`` -> ``{"input", "target", "name"}``. Default: part A -> ``"input"`` (photos to edit),
    part B -> ``"target"`` (expert retouches, the unpaired "good photo" set), test -> ``"pair"``.
    """

    LIST_FILES = {
        "A": "FiveK_train_first2k.txt",
        "B": "FiveK_train_second2k.txt",
        "test": "FiveK_test.txt",
    }
    DEFAULT_IMAGES = {"A": "input", "B": "target", "test": "pair"}

    def __init__(
        self,
        root: str | os.PathLike,
        part: str = "A",
        *,
        list_file: str | os.PathLike | None = None,
        expert: str = "C",
        resolution: str = "480p",
        images: Literal["input", "target", "pair"] | None = None,
        missing: Literal["error", "skip"] = "error",
        **options: Any,
    ) -> None:
        given = part
        part = next((p for p in self.LIST_FILES if p.lower() == str(part).strip().lower()), part)  # a, B, TEST
        if part not in self.LIST_FILES:
            raise ValueError(f"part (--split) must be one of {', '.join(self.LIST_FILES)}, got {given!r}")
        images = images or self.DEFAULT_IMAGES[part]
        if images not in ("input", "target", "pair"):
            raise ValueError(f"images must be 'input', 'target' or 'pair', got {images!r}")
        check_choice(missing, MISSING_CHOICES, "missing")
        exp_dir = fivek_expert_dir(expert)
        lf = Path(list_file) if list_file is not None else Path(self.LIST_FILES[part])
        expected = (
            f"<root>/input/JPG/{resolution}/<id>.jpg, <root>/{exp_dir}/JPG/{resolution}/<id>.jpg "
            f"and the part-{part} list file ({lf})"
        )
        self.root = require_dir(root, "FiveK root", expected)
        lf = lf if lf.is_absolute() else self.root / lf
        self.part, self.images, self.list_file = part, images, lf
        ids = _unique([_normalise_id(t) for t in read_id_list(lf, f"part-{part} list file", expected)])
        folders: dict[str, _FileIndex] = {}
        if images in ("input", "pair"):
            folders["input"] = _FileIndex(
                self.root / "input" / "JPG" / resolution, f"FiveK input folder 'input/JPG/{resolution}'", expected
            )
        if images in ("target", "pair"):
            folders["target"] = _FileIndex(
                self.root / exp_dir / "JPG" / resolution,
                f"FiveK expert folder '{exp_dir}/JPG/{resolution}'",
                expected,
            )
        samples, self.reasons = _resolve(ids, folders, missing, str(lf))
        self.skipped = list(self.reasons)
        if images != "pair":
            samples = [Sample(s.name, {"image": s.paths[images]}) for s in samples]
        super().__init__(samples, **options)
