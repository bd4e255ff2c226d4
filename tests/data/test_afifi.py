"""Tests for deepexpose.data.afifi (Afifi et al. CVPR 2021 multi-exposure layout)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from deepexpose.data.afifi import AfifiExposure, parse_ev, target_stem
from deepexpose.data.folders import DatasetLayoutError

SCENES = {"a0001-jmac_DSC1459": 40, "a0002-dgw_005": 160}
SUFFIXES = {"N1.5": -1.5, "N1": -1.0, "0": 0.0, "P1": 1.0, "P1.5": 1.5}


def write(path: Path, value: int, h=12, w=16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path, format="JPEG", quality=95)


def make_split(root: Path, split="training", gt_dirs=("GT_IMAGES",), suffixes=("N1.5", "0", "P1")):
    for scene, v in SCENES.items():
        for k, suf in enumerate(suffixes):
            write(root / split / "INPUT_IMAGES" / f"{scene}_{suf}.JPG", v + 10 * k)
        for j, gt in enumerate(gt_dirs):
            write(root / split / gt / f"{scene}.jpg", v + 5 + 20 * j)
    return root


def level(t: torch.Tensor) -> float:
    return float(t.mean()) * 255


def test_name_parsing():
    assert target_stem("a0001-jmac_DSC1459_N1.5") == "a0001-jmac_DSC1459"
    assert target_stem("noseparator") is None
    for suf, ev in SUFFIXES.items():
        assert parse_ev(f"a0001-jmac_DSC1459_{suf}") == ev
    assert math.isnan(parse_ev("a0001-jmac_DSC1459_P3"))


def test_training_pairs_and_ev(tmp_path):
    make_split(tmp_path, suffixes=tuple(SUFFIXES))
    ds = AfifiExposure(tmp_path, "training")
    assert len(ds) == 2 * 5
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        assert set(s) == {"input", "target", "name", "scene", "ev"}
        assert s["input"].shape == s["target"].shape == (3, 12, 16) and s["input"].dtype == torch.float32
        assert s["name"] == f"{s['scene']}_{[k for k, v in SUFFIXES.items() if v == s['ev']][0]}"
        assert isinstance(s["ev"], float)
        assert abs(level(s["target"]) - (SCENES[s["scene"]] + 5)) < 3
        assert abs(level(s["input"]) - (SCENES[s["scene"]] + 10 * list(SUFFIXES.values()).index(s["ev"]))) < 3
        seen.add((s["scene"], s["ev"]))
    assert len(seen) == 10


def test_validation_split_and_unknown_suffix(tmp_path):
    make_split(tmp_path, "validation", suffixes=("0", "X2"))
    ds = AfifiExposure(tmp_path, "validation")
    evs = sorted((s["name"], s["ev"]) for s in (ds[i] for i in range(len(ds))))
    assert [n for n, _ in evs] == ["a0001-jmac_DSC1459_0", "a0001-jmac_DSC1459_X2", "a0002-dgw_005_0",
                                   "a0002-dgw_005_X2"]
    assert evs[0][1] == 0.0 and math.isnan(evs[1][1])


def test_testing_split_selects_expert_folder(tmp_path):
    gts = tuple(f"expert_{e}_testing_set" for e in "abcde")
    make_split(tmp_path, "testing", gt_dirs=gts)
    for j, e in enumerate("abcde"):
        s = AfifiExposure(tmp_path, "testing", expert=e.upper() if j % 2 else e)[0]
        assert abs(level(s["target"]) - (SCENES[s["scene"]] + 5 + 20 * j)) < 3
    (tmp_path / "testing" / "expert_b_testing_set").rename(tmp_path / "testing" / "elsewhere")
    with pytest.raises(DatasetLayoutError, match="testing/expert_b_testing_set"):
        AfifiExposure(tmp_path, "testing", expert="b")


def test_crop_flip_identical_and_batching(tmp_path):
    make_split(tmp_path)
    ds = AfifiExposure(tmp_path, "training", crop_size=8, flip=True, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["input"].shape == (4, 3, 8, 8) and batch["ev"].dtype == torch.float64
    assert len(batch["scene"]) == 4


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="root does not exist"):
        AfifiExposure(tmp_path / "none")
    make_split(tmp_path)
    with pytest.raises(DatasetLayoutError, match="split folder 'validation'"):
        AfifiExposure(tmp_path, "validation")
    (tmp_path / "validation" / "GT_IMAGES").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="validation/INPUT_IMAGES"):
        AfifiExposure(tmp_path, "validation")
    (tmp_path / "validation" / "INPUT_IMAGES").mkdir()
    with pytest.raises(DatasetLayoutError, match="validation/INPUT_IMAGES.*no image files"):
        AfifiExposure(tmp_path, "validation")
    write(tmp_path / "validation" / "INPUT_IMAGES" / "a0009-x_0.JPG", 9)
    with pytest.raises(DatasetLayoutError, match="validation/GT_IMAGES.*no image files"):
        AfifiExposure(tmp_path, "validation")
    with pytest.raises(ValueError, match="expert C"):
        AfifiExposure(tmp_path, "training", expert="a")
    with pytest.raises(ValueError, match="split"):
        AfifiExposure(tmp_path, "train")


def test_input_without_target_error_or_skip(tmp_path):
    make_split(tmp_path)
    write(tmp_path / "training" / "INPUT_IMAGES" / "a0003-new_IMG_P1.JPG", 7)
    write(tmp_path / "training" / "INPUT_IMAGES" / "nosuffix.jpg", 7)
    with pytest.raises(DatasetLayoutError, match="2 of 8 inputs") as e:
        AfifiExposure(tmp_path)
    assert "a0003-new_IMG_P1.JPG" in str(e.value) and "nosuffix.jpg" in str(e.value)
    ds = AfifiExposure(tmp_path, missing="skip")
    assert len(ds) == 6 and sorted(ds.skipped) == ["a0003-new_IMG_P1.JPG", "nosuffix.jpg"]
    assert ds.reasons["a0003-new_IMG_P1.JPG"].startswith("no target a0003-new_IMG.<ext> in ")
    assert ds.reasons["nosuffix.jpg"] == "its name has no '_<suffix>' (the target is named as the input without it)"
    with pytest.raises(ValueError, match="expert .--expert. must be one of a, b, c, d, e, got 'Z'"):
        AfifiExposure(tmp_path, "testing", expert="Z")  # as given, not lowered
    assert AfifiExposure(tmp_path, missing="skip", expert="expertC").expert == "c"
