"""Tests for deepexpose.data.demo (photos bundled with scikit-image)."""

import os

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from deepexpose.data.demo import DEFAULT_HOLDOUT, DEMO_PHOTOS, EXCLUDED, DemoSet, demo_photo_paths
from deepexpose.data.folders import DatasetLayoutError

SKIMAGE_DATA = os.path.dirname(skimage.data.__file__)


def test_photos_are_installed_natural_colour_files():
    names = [p.name for p in DEMO_PHOTOS]
    assert len(names) == len(set(names)) >= 5
    paths = demo_photo_paths()
    assert len(paths) == len(DEMO_PHOTOS)
    for photo, path in zip(DEMO_PHOTOS, paths):
        assert path.is_file() and os.path.samefile(path.parent, SKIMAGE_DATA), photo.name
        assert photo.filename not in EXCLUDED
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.int16)
        assert min(arr.shape[:2]) >= 256
        assert np.abs(arr[..., 0] - arr[..., 1]).mean() > 2  # really colour, not grey in RGB


def test_every_photo_has_source_credit_and_licence():
    for p in DEMO_PHOTOS:
        assert p.package == "scikit-image"
        for field in (p.description, p.source, p.credit, p.licence):
            assert isinstance(field, str) and len(field.strip()) >= 4, p.name
    lic = {p.name: p.licence for p in DEMO_PHOTOS}
    assert "CC0" in lic["chelsea"] and "CC0" in lic["coffee"]
    assert "public domain" in lic["astronaut"] and "public domain" in lic["rocket"]
    assert "Not stated" in lic["motorcycle_left"]  # no licence invented where skimage states none


def test_excluded_files_cover_the_rest_of_skimage_data():
    images = {f for f in os.listdir(SKIMAGE_DATA) if f.lower().endswith((".png", ".jpg", ".gif", ".tif"))}
    chosen = {p.filename for p in DEMO_PHOTOS}
    assert chosen <= images
    assert images - chosen <= set(EXCLUDED)
    assert {"retina.jpg", "ihc.png", "chessboard_RGB.png", "logo.png", "color.png"} <= set(EXCLUDED)


def test_holdout_split_is_disjoint_and_groups_stay_together():
    all_names = set(DemoSet("all").names)
    assert all_names == {p.name for p in DEMO_PHOTOS}
    groups = {p.name: p.group for p in DEMO_PHOTOS}
    assert groups["motorcycle_left"] == groups["motorcycle_right"]
    for holdout in [DEFAULT_HOLDOUT, ("motorcycle_left",), ("motorcycle_right", "rocket"), ("motorcycle",)]:
        train = set(DemoSet("train", holdout=holdout).names)
        held = set(DemoSet("holdout", holdout=holdout).names)
        assert not train & held and train | held == all_names
        for side in (train, held):
            present = {groups[n] for n in side}
            assert all(groups[n] not in present or n in side for n in all_names)
    assert set(DemoSet("holdout").names) == {"coffee"}
    assert set(DemoSet("holdout", holdout="motorcycle_right").names) == {"motorcycle_left", "motorcycle_right"}


def test_demo_items_with_options():
    ds = DemoSet("holdout", holdout=("chelsea", "rocket"), resize=64, crop_size=32, flip=True, seed=0)
    assert ds.names == ["chelsea", "rocket"]
    s = ds[1]
    assert s["name"] == "rocket" and s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert 0 <= float(s["image"].min()) and float(s["image"].max()) <= 1
    again = DemoSet("holdout", holdout=("chelsea", "rocket"), resize=64, crop_size=32, flip=True, seed=0)
    assert torch.equal(again[1]["image"], s["image"])
    full = DemoSet("holdout", holdout="chelsea")[0]["image"]
    assert full.shape == (3, 300, 451)


def test_demo_errors():
    with pytest.raises(ValueError, match="unknown demo photo.*coffee"):
        DemoSet(holdout=("lena",))
    with pytest.raises(ValueError, match="split"):
        DemoSet("test")
    every_group = tuple({p.group for p in DEMO_PHOTOS})
    with pytest.raises(DatasetLayoutError, match="empty"):
        DemoSet("train", holdout=every_group)
    with pytest.raises(DatasetLayoutError, match="empty"):
        DemoSet("holdout", holdout=())
