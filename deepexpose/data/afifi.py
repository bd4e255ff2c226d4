"""Multi-exposure FiveK renders of Afifi et al., "Learning Multi-Scale Photo Exposure Correction"
(CVPR 2021)::

    <root>/training/INPUT_IMAGES/<name>_<ev>.JPG     e.g. a0001-jmac_DSC1459_N1.5.JPG
    <root>/training/GT_IMAGES/<name>.jpg             expert C retouch
    <root>/validation/INPUT_IMAGES, GT_IMAGES        likewise
    <root>/testing/INPUT_IMAGES/<name>_<ev>.JPG
    <root>/testing/expert_a_testing_set/<name>.jpg   ... expert_e_testing_set

Each photo is rendered at relative exposures -1.5, -1, 0, +1, +1.5 EV (suffixes ``N1.5``, ``N1``,
``0``, ``P1``, ``P1.5``); all renders share the target named by the input name minus its last
``_<suffix>``. Extensions are matched case-insensitively.
"""

from __future__ import annotations

import math
import os
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
    require_dir,
)

__all__ = ["AfifiExposure", "EV_SUFFIXES", "parse_ev", "target_stem"]

EV_SUFFIXES: dict[str, float] = {"N1.5": -1.5, "N1": -1.0, "0": 0.0, "P1": 1.0, "P1.5": 1.5}

_LAYOUT = (
    "<root>/<split>/INPUT_IMAGES/<name>_<ev>.JPG with targets in <root>/<split>/GT_IMAGES/<name>.jpg "
    "(training, validation) or <root>/testing/expert_<a..e>_testing_set/<name>.jpg (testing)"
)


def target_stem(input_stem: str) -> str | None:
    """``"a0001-jmac_DSC1459_N1.5"`` -> ``"a0001-jmac_DSC1459"`` (``None`` without ``_<suffix>``)."""
    head, sep, _ = input_stem.rpartition("_")
    return head if sep and head else None


def parse_ev(input_stem: str) -> float:
    """Exposure offset in EV from the name's last ``_<suffix>``; NaN if not a known suffix."""
    return EV_SUFFIXES.get(input_stem.rpartition("_")[2], math.nan)


class AfifiExposure(ImageFileDataset):
    """Afifi et al. multi-exposure pairs: ``{"input", "target", "name", "scene", "ev"}``.

    ``name`` is the input's stem, ``scene`` the target's stem, ``ev`` the input's exposure offset
    (float, NaN for an unknown suffix).

    Args:
        root: dataset root holding ``training/``, ``validation/``, ``testing/``.
        split: ``"training"``, ``"validation"`` or ``"testing"``.
        expert: ``"a"`` ... ``"e"``; only the test set has all five (``expert_<x>_testing_set``),
            training and validation ground truth (``GT_IMAGES``) is expert C.
        missing: inputs without target raise (``"error"``) or are left out (``"skip"``).
        **options: crop_size, flip, resize, seed, max_pixels (see :class:`ImageFileDataset`).
    """

    SPLITS = ("training", "validation", "testing")

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "training",
        expert: str = "c",
        *,
        missing: Literal["error", "skip"] = "error",
        **options: Any,
    ) -> None:
        check_choice(split, tuple(self.SPLITS), "split")
        check_choice(missing, MISSING_CHOICES, "missing")
        e = str(expert).strip().lower().removeprefix("expert")
        if e not in ("a", "b", "c", "d", "e"):
            raise ValueError(f"expert (--expert) must be one of a, b, c, d, e, got {expert!r}")
        if split != "testing" and e != "c":
            raise ValueError(
                f"the {split} set of Afifi et al. has expert C ground truth only (GT_IMAGES); "
                f"expert={expert!r} exists for split='testing'"
            )
        self.root = require_dir(root, "Afifi et al. dataset root", _LAYOUT)
        split_dir = require_dir(self.root / split, f"split folder '{split}'", _LAYOUT)
        gt_name = "GT_IMAGES" if split != "testing" else f"expert_{e}_testing_set"
        in_dir, gt_dir = split_dir / "INPUT_IMAGES", split_dir / gt_name
        inputs = find_images(in_dir, f"input folder '{split}/INPUT_IMAGES'", _LAYOUT)
        targets: dict[str, Path] = {}
        for p in find_images(gt_dir, f"ground-truth folder '{split}/{gt_name}'", _LAYOUT):
            targets.setdefault(p.relative_to(gt_dir).with_suffix("").as_posix(), p)

        samples, lost = [], []
        self.reasons: dict[str, str] = {}
        for p in inputs:
            stem = p.relative_to(in_dir).with_suffix("").as_posix()
            scene = target_stem(stem)
            tgt = targets.get(scene) if scene is not None else None
            if tgt is None:
                lost.append(p.name)
                self.reasons[p.name] = (f"no target {scene}.<ext> in {gt_dir}" if scene is not None else
                                        "its name has no '_<suffix>' (the target is named as the input without it)")
                continue
            samples.append(
                Sample(stem, {"input": p, "target": tgt}, {"scene": scene, "ev": parse_ev(stem)})
            )
        if lost and missing == "error":
            raise DatasetLayoutError(
                f"{len(lost)} of {len(inputs)} inputs in {in_dir} have no target <name>.<ext> in "
                f"{gt_dir} (target name = input name minus its last '_<suffix>'): {_preview(lost)}. "
                "Pass missing='skip' to leave them out."
            )
        if not samples:
            raise DatasetLayoutError(f"no input in {in_dir} has a target in {gt_dir}: {_preview(lost)}")
        self.split, self.expert, self.skipped = split, e, lost
        super().__init__(samples, **options)
