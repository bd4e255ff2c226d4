"""Tests for deepexpose.data.folders (shared machinery, UnpairedFolder, PairedFolder) and the registry."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from deepexpose.data.folders import DatasetLayoutError, PairedFolder, UnpairedFolder, find_images
from deepexpose.data.registry import DATASETS, make_dataset


def write(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)
    return path


def solid(v, h=12, w=16):
    return np.full((h, w, 3), v, np.uint8)


def noise(seed, h=12, w=16):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


# ---------------------------------------------------------------- UnpairedFolder


def test_unpaired_folder_finds_images_recursively_sorted(tmp_path):
    write(tmp_path / "b.png", solid(10))
    write(tmp_path / "a.png", solid(200))
    write(tmp_path / "sub" / "c.jpg", solid(90))
    write(tmp_path / ".hidden.png", solid(0))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = UnpairedFolder(tmp_path)
    assert len(ds) == 3
    assert ds.names == ["a", "b", "sub/c"]
    item = ds[0]
    assert set(item) == {"image", "name"} and item["name"] == "a"
    img = item["image"]
    assert img.shape == (3, 12, 16) and img.dtype == torch.float32
    assert torch.allclose(img, torch.full_like(img, 200 / 255), atol=1e-6)
    jpg = ds[2]["image"]
    assert 0 <= float(jpg.min()) and float(jpg.max()) <= 1
    assert abs(float(jpg.mean()) - 90 / 255) < 3 / 255


def test_unpaired_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist.*nowhere"):
        UnpairedFolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no image files.*empty"):
        UnpairedFolder(tmp_path / "empty")
    (tmp_path / "textonly").mkdir()
    (tmp_path / "textonly" / "x.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="no image files"):
        UnpairedFolder(tmp_path / "textonly")
    assert issubclass(DatasetLayoutError, ValueError)


# ---------------------------------------------------------------- PairedFolder


def make_pairs(root: Path, names=("a", "sub/b", "c")):
    """Inputs are noise images; each target is the negative of its input (255 - x)."""
    for i, n in enumerate(names):
        x = noise(i, 20, 24)
        write(root / "input" / f"{n}.png", x)
        write(root / "target" / f"{n}.{'tif' if i == 1 else 'png'}", 255 - x)
    return root


def test_paired_folder_matches_by_relative_path_ignoring_extension(tmp_path):
    make_pairs(tmp_path)
    ds = PairedFolder(tmp_path)
    assert len(ds) == 3 and ds.names == ["a", "c", "sub/b"]
    for i in range(len(ds)):
        s = ds[i]
        assert set(s) == {"input", "target", "name"}
        assert s["input"].shape == s["target"].shape == (3, 20, 24)
        assert torch.allclose(s["target"], 1 - s["input"], atol=1e-6), s["name"]
    # the pairing really follows the names: input of "a" is noise(0)
    assert torch.allclose(ds[0]["input"], torch.from_numpy(noise(0, 20, 24)).permute(2, 0, 1) / 255, atol=1e-6)


def test_paired_folder_custom_dirs_and_missing_dirs(tmp_path):
    write(tmp_path / "low" / "x.png", solid(1))
    write(tmp_path / "high" / "x.png", solid(2))
    assert len(PairedFolder(tmp_path, input_dir="low", target_dir="high")) == 1
    with pytest.raises(DatasetLayoutError, match="input folder 'input'"):
        PairedFolder(tmp_path)
    with pytest.raises(DatasetLayoutError, match="target folder 'target'"):
        PairedFolder(tmp_path, input_dir="low")
    (tmp_path / "void").mkdir()
    with pytest.raises(DatasetLayoutError, match="target folder 'void'.*no image files"):
        PairedFolder(tmp_path, input_dir="low", target_dir="void")
    with pytest.raises(DatasetLayoutError, match="dataset root"):
        PairedFolder(tmp_path / "missing")


def test_paired_folder_unmatched_inputs_error_or_skip(tmp_path):
    make_pairs(tmp_path)
    write(tmp_path / "input" / "lonely.png", solid(5))
    write(tmp_path / "input" / "deep" / "alone.jpg", solid(5))
    write(tmp_path / "target" / "orphan_target.png", solid(5))  # targets without inputs are fine
    with pytest.raises(DatasetLayoutError, match="2 of 5 inputs") as e:
        PairedFolder(tmp_path)
    assert "lonely" in str(e.value) and "deep/alone" in str(e.value)
    ds = PairedFolder(tmp_path, missing="skip")
    assert len(ds) == 3 and sorted(ds.skipped) == ["deep/alone", "lonely"]
    assert ds.without_input == ["orphan_target"]  # listed, for a benchmark to report
    with pytest.raises(ValueError):
        PairedFolder(tmp_path, missing="ignore")


def test_paired_folder_ambiguous_extensions(tmp_path):
    """A name that two files of one folder share is left out with why, as FiveK leaves out such an id (the whole
    folder was refused)."""
    make_pairs(tmp_path)
    write(tmp_path / "target" / "a.jpg", solid(3))  # a.png and a.jpg
    write(tmp_path / "input" / "c.jpg", solid(3))  # c.png and c.jpg
    write(tmp_path / "target" / "t.png", solid(3))
    write(tmp_path / "target" / "t.jpg", solid(3))  # a target without an input, ambiguous too
    with pytest.raises(DatasetLayoutError, match=r"2 name\(s\) match several files.*ambiguous") as e:
        PairedFolder(tmp_path)
    assert f"a (several files in {tmp_path / 'target'}, so it is ambiguous: a.jpg / a.png)" in str(e.value)
    ds = PairedFolder(tmp_path, missing="skip")
    assert ds.names == ["sub/b"] and sorted(ds.skipped) == ["a", "c"] and ds.without_input == ["t"]
    assert ds.reasons == {"a": f"several files in {tmp_path / 'target'}, so it is ambiguous: a.jpg / a.png",
                          "c": f"several files in {tmp_path / 'input'}, so it is ambiguous: c.jpg / c.png"}
    write(tmp_path / "input" / "lonely.png", solid(5))
    assert PairedFolder(tmp_path, missing="skip").reasons["lonely"] == f"no target in {tmp_path / 'target'}"
    for name in ("sub/b.png", "sub/b.tif"):
        (tmp_path / ("input" if name.endswith("png") else "target") / name).unlink()
    with pytest.raises(DatasetLayoutError, match=r"no input .* matching target .*; 2 ambiguous: a \(several"):
        PairedFolder(tmp_path, missing="skip")


def test_paired_folder_nothing_matches(tmp_path):
    write(tmp_path / "input" / "x.png", solid(1))
    write(tmp_path / "target" / "y.png", solid(1))
    with pytest.raises(DatasetLayoutError, match="no input.*matching target"):
        PairedFolder(tmp_path, missing="skip")


# ---------------------------------------------------------------- augmentation


def test_pair_crop_and_flip_are_identical(tmp_path):
    make_pairs(tmp_path)
    ds = PairedFolder(tmp_path, crop_size=8, flip=True, seed=3)
    seen_flip = seen_noflip = False
    crops = set()
    full = PairedFolder(tmp_path)
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            assert s["input"].shape == s["target"].shape == (3, 8, 8)
            assert torch.allclose(s["target"], 1 - s["input"], atol=1e-6)
            # locate the crop in the full input: plain or mirrored
            x = full[i]["input"]
            found = None
            for flipped, src in ((False, x), (True, x.flip(-1))):
                for t in range(20 - 8 + 1):
                    for l in range(24 - 8 + 1):
                        if torch.equal(src[:, t : t + 8, l : l + 8], s["input"]):
                            found = (flipped, t, l)
            assert found is not None
            seen_flip |= found[0]
            seen_noflip |= not found[0]
            crops.add((i, found[1], found[2]))
    assert seen_flip and seen_noflip
    assert len(crops) > 6  # crops move around


def test_seed_makes_samples_reproducible(tmp_path):
    make_pairs(tmp_path)
    a = PairedFolder(tmp_path, crop_size=(6, 9), flip=True, seed=11)
    b = PairedFolder(tmp_path, crop_size=(6, 9), flip=True, seed=11)
    c = PairedFolder(tmp_path, crop_size=(6, 9), flip=True, seed=12)
    order = [2, 0, 1, 0]  # access order must not matter
    for i in order:
        assert torch.equal(a[i]["input"], b[i]["input"])
    assert a[0]["input"].shape == (3, 6, 9)
    assert any(not torch.equal(a[i]["input"], c[i]["input"]) for i in range(3))
    before = [a[i]["input"] for i in range(3)]
    a.set_epoch(1)
    assert any(not torch.equal(before[i], a[i]["input"]) for i in range(3))
    a.set_epoch(0)
    assert all(torch.equal(before[i], a[i]["input"]) for i in range(3))


def test_resize_short_side_square_and_antialias(tmp_path):
    write(tmp_path / "input" / "wide.png", noise(1, 40, 64))
    write(tmp_path / "target" / "wide.png", noise(2, 40, 64))
    assert PairedFolder(tmp_path, resize=20)[0]["input"].shape == (3, 20, 32)
    s = PairedFolder(tmp_path, resize=(16, 16))[0]
    assert s["input"].shape == s["target"].shape == (3, 16, 16)
    # a 1-pixel checkerboard shrunk 4x must average to grey (antialiasing), not alias
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    write(tmp_path / "checker" / "c.png", np.stack([checker] * 3, -1))
    small = UnpairedFolder(tmp_path / "checker", resize=16)[0]["image"]
    assert small.shape == (3, 16, 16)
    assert float((small - 0.5).abs().max()) < 0.05


def test_crop_larger_than_image_enlarges_first(tmp_path):
    write(tmp_path / "p.png", noise(0, 12, 16))
    img = UnpairedFolder(tmp_path, crop_size=20, seed=0)[0]["image"]
    assert img.shape == (3, 20, 20)


def test_bad_options(tmp_path):
    write(tmp_path / "p.png", solid(1))
    for bad in (0, -3, (4,), "x"):
        with pytest.raises(ValueError):
            UnpairedFolder(tmp_path, crop_size=bad)
    with pytest.raises(ValueError):
        UnpairedFolder(tmp_path, resize=0)


def test_dataloader_batches(tmp_path):
    make_pairs(tmp_path)
    loader = DataLoader(PairedFolder(tmp_path, crop_size=8, flip=True, seed=0), batch_size=3)
    batch = next(iter(loader))
    assert batch["input"].shape == (3, 3, 8, 8) and batch["name"] == ["a", "c", "sub/b"]


# ---------------------------------------------------------------- registry


def test_registry_names_and_errors(tmp_path):
    assert set(DATASETS) >= {"folder", "pairs", "fivek", "exposure-split", "afifi", "demo"}
    make_pairs(tmp_path)
    ds = make_dataset("pairs", root=tmp_path, crop_size=8)
    assert isinstance(ds, PairedFolder) and len(ds) == 3
    assert isinstance(make_dataset("Folder", root=tmp_path / "target"), UnpairedFolder)
    with pytest.raises(DatasetLayoutError, match="l.txt"):  # "exposure_split" -> "exposure-split"
        make_dataset("exposure_split", root=tmp_path, part="A", list_file="l.txt")
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*afifi.*demo.*exposure-split.*fivek.*folder.*pairs"):
        make_dataset("nope")


def test_a_layout_registered_with_capitals_or_underscores_is_found(tmp_path, monkeypatch):
    """Only the name asked for was normalised: "my_layout" was registered, listed as valid, and refused."""
    monkeypatch.setitem(DATASETS, "my_Layout", lambda **kw: ("made", kw))
    assert make_dataset("my_layout", root=1) == ("made", {"root": 1})
    assert make_dataset("MY-LAYOUT") == ("made", {})
    monkeypatch.setitem(DATASETS, "my-layout", lambda **kw: None)
    with pytest.raises(ValueError, match="'my_layout' is ambiguous: my_Layout, my-layout"):
        make_dataset("my_layout")


def test_pair_size_mismatch_is_reported(tmp_path):
    write(tmp_path / "input" / "x.png", solid(1, 12, 16))
    write(tmp_path / "target" / "x.png", solid(1, 10, 16))
    with pytest.raises(ValueError, match=r"'x'.*differ in size \(input 16x12, target 16x10; width x height\)"):
        PairedFolder(tmp_path)[0]


def test_shrink_short_side_never_enlarges():
    from deepexpose.data.folders import shrink_short_side

    x = torch.rand(3, 40, 60)
    assert shrink_short_side(x, 20).shape == (3, 20, 30)
    assert shrink_short_side(x, 100) is x


def test_check_choice_names_the_option_and_the_choices():
    from deepexpose.data.folders import check_choice

    check_choice("skip", ("error", "skip"), "missing")
    with pytest.raises(ValueError, match="missing must be one of error, skip, got 'ignore'"):
        check_choice("ignore", ("error", "skip"), "missing")


def test_find_images_follows_links_to_folders_once_and_lists_broken_image_links(tmp_path):
    """A linked subfolder was skipped without a word; a link loop must not make it walk for ever."""
    write(tmp_path / "a" / "x.png", solid(1, 8, 8))
    write(tmp_path / "other" / "y.png", solid(1, 8, 8))
    (tmp_path / "a" / "more").symlink_to(tmp_path / "other", target_is_directory=True)
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "nothing.png")
    (tmp_path / "a" / "gone.txt").symlink_to(tmp_path / "nothing.txt")  # not named as an image: not listed
    found = [p.relative_to(tmp_path / "a").as_posix() for p in find_images(tmp_path / "a")]
    assert found == ["gone.png", "more/y.png", "x.png"]
