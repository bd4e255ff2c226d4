"""Tests for deepexpose.data.synthetic: benchmark pairs made from good photos with known errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deepexpose
from conftest import cached_package
from deepexpose.data.registry import make_dataset
from deepexpose.data.synthetic import (BUNDLED_LIBRARY, CASES, SyntheticPairs, apply_case, case_seed, photo_of,
                                       held_out_photos)


def _photos(root, n=3, h=30, w=40):
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.uniform(0.2, 0.8, (1, 1, 3))
        ramp = np.linspace(0, 0.3, w)[None, :, None]
        px = np.clip(base + ramp + rng.normal(0, 0.03, (h, w, 3)), 0, 1)
        Image.fromarray((px * 255).round().astype(np.uint8)).save(root / f"p{i}.png")
    return root


def test_cases_names_and_untouched(tmp_path):
    ds = SyntheticPairs(_photos(tmp_path), cases="basic,untouched", seed=3)
    assert len(ds) == 6
    assert ds.names[:2] == ["p0@basic", "p0@untouched"]
    basic, untouched = ds[0], ds[1]
    assert basic["case"] == "basic" and untouched["case"] == "untouched"
    assert torch.equal(untouched["input"], untouched["target"])
    assert not torch.equal(basic["input"], basic["target"])
    assert torch.equal(basic["target"], untouched["target"])      # both from the same photo
    assert basic["input"].shape == (3, 30, 40)
    # 8-bit values, as a file holds them
    assert torch.equal(torch.round(basic["input"] * 255) / 255, basic["input"])
    assert basic["params"]["scheme"] == "basic" and basic["params"]["edits"]


def test_single_case_names_are_photo_names(tmp_path):
    ds = SyntheticPairs(_photos(tmp_path), cases=("crosstalk",))
    assert ds.names == ["p0", "p1", "p2"]
    assert ds[2]["params"]["error"] == "crosstalk"


def test_photos_named_alike_but_the_extension_keep_it(tmp_path):
    """IMG_1.JPG beside IMG_1.png (a camera's RAW+JPEG habit): each keeps its own name, draw and saved output."""
    _photos(tmp_path, n=2)
    (tmp_path / "p1.png").rename(tmp_path / "P0.tif")
    ds = SyntheticPairs(tmp_path, cases="basic", seed=1)
    assert ds.names == ["P0.tif", "p0.png"]
    assert ds[0]["params"] != ds[1]["params"]
    assert [photo_of(n) for n in ds.names] == ["P0.tif", "p0.png"]


def test_draws_depend_only_on_seed_photo_and_case(tmp_path):
    root = _photos(tmp_path)
    a = SyntheticPairs(root, cases="basic,falloff", seed=1)
    b = SyntheticPairs(root, cases="falloff", seed=1, limit=1)
    assert b.notes == ["--limit 1: the first 1 of the 3 photos"] and a.notes == []  # said, as for other datasets
    assert torch.equal(a[1]["input"], b[0]["input"])            # p0 / falloff, other cases and limit aside
    c = SyntheticPairs(root, cases="falloff", seed=2, limit=1)
    assert not torch.equal(b[0]["input"], c[0]["input"])
    assert case_seed(1, "p0", "falloff") != case_seed(1, "p0", "basic")
    assert case_seed(1, "caf\udce9", "basic") != case_seed(1, "caf\udcea", "basic")  # names that are not UTF-8


def test_more_draws_add_errors_of_their_own_and_keep_the_first(tmp_path):
    root = _photos(tmp_path)
    one = SyntheticPairs(root, cases="basic,untouched", seed=1)
    three = SyntheticPairs(root, cases="basic,untouched", seed=1, draws=3)
    assert len(three) == 3 * (3 + 1)  # untouched is drawn once
    assert three.names[:4] == ["p0@basic", "p0@basic#1", "p0@basic#2", "p0@untouched"]
    assert torch.equal(three[0]["input"], one[0]["input"]) and three[0]["name"] == one[0]["name"]
    inputs = [three[i]["input"] for i in range(3)]
    assert not torch.equal(inputs[0], inputs[1]) and not torch.equal(inputs[1], inputs[2])
    assert all(torch.equal(three[i]["target"], one[0]["target"]) for i in range(3)) and three[1]["case"] == "basic"
    assert SyntheticPairs(root, cases="crosstalk", draws=2).names[:2] == ["p0", "p0@crosstalk#1"]
    assert "draws=3" in repr(three) and "draws" not in repr(one)
    assert {photo_of(n) for n in three.names} == {"p0", "p1", "p2"} == {photo_of(n) for n in
                                                                       SyntheticPairs(root, draws=2).names}
    with pytest.raises(ValueError, match="draws must be at least 1"):
        SyntheticPairs(root, draws=0)


def test_size_shrinks_the_short_side(tmp_path):
    item = SyntheticPairs(_photos(tmp_path), size=15)[0]
    assert item["input"].shape == item["target"].shape == (3, 15, 20)


def test_bad_arguments(tmp_path):
    root = _photos(tmp_path)
    with pytest.raises(ValueError, match="unknown case"):
        SyntheticPairs(root, cases="basic,sunburn")
    with pytest.raises(ValueError, match="no cases"):
        SyntheticPairs(root, cases=" , ")
    with pytest.raises(ValueError, match="listed twice: basic"):
        SyntheticPairs(root, cases="basic,untouched,basic")
    with pytest.raises(ValueError, match="size"):
        SyntheticPairs(root, size=-1)
    with pytest.raises(IndexError):
        SyntheticPairs(root)[3]
    with pytest.raises(ValueError, match="unknown case"):
        apply_case(torch.rand(1, 3, 8, 8), "nope", torch.Generator())
    assert set(CASES) >= {"basic", "untouched", "crosstalk", "highlight_rolloff", "falloff"}


def test_default_photos_are_the_held_out_demo_photos(tmp_path):
    photos, notes = held_out_photos(cache=tmp_path / "empty")
    names = [n for n, _ in photos]
    assert "demo/coffee" in names and "demo/chelsea" in names
    assert not any(n.endswith(("astronaut", "rocket")) for n in names)  # the demo photos the models trained on
    assert notes and "scripts/get_photos.py" in notes[0]
    ds = make_dataset("synthetic", library=None, limit=1, size=24)
    assert ds.names == [names[0]] and min(ds[0]["input"].shape[1:]) == 24


def test_held_out_library_photos_are_those_of_the_bundled_models_packages(tmp_path):
    for package in BUNDLED_LIBRARY:
        cached_package(tmp_path, package, 6)
    before, notes = held_out_photos(cache=tmp_path)
    assert not notes
    library = [n for n, _ in before if not n.startswith("demo/")]
    assert library and all(n.split("/")[0] in BUNDLED_LIBRARY for n in library)
    for extra in ("endless-sky-data", "kphotoalbum"):  # a package fetched later, and one left out entirely
        cached_package(tmp_path, extra, 40)
    after, _ = held_out_photos(cache=tmp_path)
    assert [n for n, _ in after] == [n for n, _ in before]  # the split is the bundled models' split
    shutil.rmtree(tmp_path / BUNDLED_LIBRARY[0])
    _, notes = held_out_photos(cache=tmp_path)
    assert len(notes) == 1 and BUNDLED_LIBRARY[0] in notes[0] and "differs" in notes[0]


def test_bundled_library_is_what_the_bundled_models_trained_on():
    models = Path(deepexpose.__file__).parent / "models"
    for config in sorted(models.glob("*.json")):
        meta = json.loads(config.read_text())
        found = set()

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("library_packages"), str):
                    found.add(node["library_packages"])
                for value in node.values():
                    walk(value)
        walk(meta)
        assert found == {",".join(BUNDLED_LIBRARY)}, config.name
