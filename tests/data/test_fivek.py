"""Tests for deepexpose.data.fivek: the Zeng et al. 480p layout and the Exposure (Hu et al.) split."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepexpose.data.fivek import FiveK, FiveKExposureSplit
from deepexpose.data.folders import DatasetLayoutError

IDS = [f"a{i:04d}" for i in range(1, 7)]


def write(path: Path, value: int, h=12, w=16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path, quality=95)


def colour(ident: str, folder: str) -> int:
    """Distinct grey level per (id, folder), far apart so JPEG error cannot confuse them."""
    return 10 + 30 * (int(ident[1:]) - 1) + {"input": 0, "expertC": 10, "expertA": 20}[folder]


def make_fivek(root: Path, ids=IDS, experts=("expertC", "expertA")) -> Path:
    for ident in ids:
        for folder in ("input", *experts):
            write(root / folder / "JPG" / "480p" / f"{ident}.jpg", colour(ident, folder))
    (root / "train_input.txt").write_text("a0002\na0001\n\n")
    (root / "train_label.txt").write_text("a0003\na0004\n")
    (root / "test.txt").write_text("  a0005\n\na0006  \n")
    return root


def level(t: torch.Tensor) -> float:
    return float(t.mean()) * 255


def test_fivek_splits_and_pairing(tmp_path):
    make_fivek(tmp_path)
    train = FiveK(tmp_path, "train")
    assert train.names == ["a0001", "a0002", "a0003", "a0004"]  # train_input + train_label
    assert FiveK(tmp_path, "train_input").names == ["a0001", "a0002"]
    assert FiveK(tmp_path, "train_label").names == ["a0003", "a0004"]
    test = FiveK(tmp_path, "test")
    assert len(test) == 2 and test.names == ["a0005", "a0006"]
    for ds in (train, test):
        for i in range(len(ds)):
            s = ds[i]
            assert set(s) == {"input", "target", "name"}
            assert s["input"].shape == s["target"].shape == (3, 12, 16)
            assert s["input"].dtype == torch.float32
            assert 0 <= float(s["input"].min()) and float(s["target"].max()) <= 1
            assert abs(level(s["input"]) - colour(s["name"], "input")) < 3
            assert abs(level(s["target"]) - colour(s["name"], "expertC")) < 3


def test_fivek_other_expert(tmp_path):
    make_fivek(tmp_path)
    for e in ("A", "a", "expertA"):
        s = FiveK(tmp_path, "test", expert=e)[0]
        assert abs(level(s["target"]) - colour("a0005", "expertA")) < 3
    with pytest.raises(DatasetLayoutError, match="expertB/JPG/480p"):
        FiveK(tmp_path, "test", expert="B")
    with pytest.raises(ValueError, match="expert"):
        FiveK(tmp_path, "test", expert="F")


def test_fivek_crop_flip_seed(tmp_path):
    make_fivek(tmp_path)
    a = FiveK(tmp_path, "train", crop_size=8, flip=True, seed=1)
    b = FiveK(tmp_path, "train", crop_size=8, flip=True, seed=1)
    assert a[1]["input"].shape == (3, 8, 8)
    assert all(torch.equal(a[i]["target"], b[i]["target"]) for i in range(len(a)))


@pytest.mark.parametrize("name", ["train_input.txt", "train_label.txt", "test.txt"])
def test_fivek_missing_list_file(tmp_path, name):
    make_fivek(tmp_path)
    (tmp_path / name).unlink()
    split = "test" if name == "test.txt" else "train"
    with pytest.raises(DatasetLayoutError, match=f"list file '{name}' not found"):
        FiveK(tmp_path, split)


def test_fivek_missing_or_empty_folders(tmp_path):
    make_fivek(tmp_path)
    with pytest.raises(DatasetLayoutError, match="FiveK root does not exist"):
        FiveK(tmp_path / "nope")
    for p in (tmp_path / "input" / "JPG" / "480p").iterdir():
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="input/JPG/480p.*no image files"):
        FiveK(tmp_path)
    with pytest.raises(DatasetLayoutError, match="input/JPG/original"):
        FiveK(tmp_path, resolution="original")


def test_fivek_empty_list(tmp_path):
    make_fivek(tmp_path)
    (tmp_path / "test.txt").write_text("\n\n")
    with pytest.raises(DatasetLayoutError, match="lists no ids"):
        FiveK(tmp_path, "test")


def test_fivek_id_without_image_error_or_skip(tmp_path):
    make_fivek(tmp_path)
    (tmp_path / "expertC" / "JPG" / "480p" / "a0002.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"a0002 \(no file in .*expertC"):
        FiveK(tmp_path, "train")
    ds = FiveK(tmp_path, "train", missing="skip")
    assert ds.names == ["a0001", "a0003", "a0004"] and len(ds.skipped) == 1


def test_fivek_an_id_lacking_several_files_or_with_twins_is_left_out_once_saying_why(tmp_path):
    """Found by an audit: an id missing from both folders was counted twice, and of a0005.jpg and a0005.png one
    was taken silently."""
    make_fivek(tmp_path)
    for folder in ("input", "expertC"):
        (tmp_path / folder / "JPG" / "480p" / "a0006.jpg").unlink()
    write(tmp_path / "expertC" / "JPG" / "480p" / "a0005.png", colour("a0005", "input"))
    with pytest.raises(DatasetLayoutError, match="none of the ids"):
        FiveK(tmp_path, "test", missing="skip")
    (tmp_path / "test.txt").write_text("a0001\na0005\na0006\n")
    ds = FiveK(tmp_path, "test", missing="skip")
    assert ds.names == ["a0001"] and ds.skipped == ["a0005", "a0006"]
    assert ds.reasons["a0005"] == (f"several files in {tmp_path / 'expertC' / 'JPG' / '480p'}, so it is ambiguous: "
                                   "a0005.jpg / a0005.png")
    assert ds.reasons["a0006"] == (f"no file in {tmp_path / 'input' / 'JPG' / '480p'}; "
                                   f"no file in {tmp_path / 'expertC' / 'JPG' / '480p'}")


# ---------------------------------------------------------------- Exposure split


def make_exposure(root: Path) -> Path:
    make_fivek(root)
    (root / "FiveK_train_first2k.txt").write_text("# Note: this list is 1-based\n2\n1\n")
    (root / "FiveK_train_second2k.txt").write_text("3\n4\n")
    (root / "FiveK_test.txt").write_text("5\n6\n")
    return root


def test_exposure_split_parts(tmp_path):
    make_exposure(tmp_path)
    a = FiveKExposureSplit(tmp_path, "A")
    assert a.names == ["a0001", "a0002"]
    s = a[0]
    assert set(s) == {"image", "name"} and abs(level(s["image"]) - colour("a0001", "input")) < 3
    b = FiveKExposureSplit(tmp_path, "B")
    assert b.names == ["a0003", "a0004"]
    assert abs(level(b[1]["image"]) - colour("a0004", "expertC")) < 3
    t = FiveKExposureSplit(tmp_path, "test")
    s = t[1]
    assert set(s) == {"input", "target", "name"} and s["name"] == "a0006"
    assert abs(level(s["target"]) - colour("a0006", "expertC")) < 3
    assert FiveKExposureSplit(tmp_path, "A", images="pair")[0]["target"].shape == (3, 12, 16)
    assert not set(a.names) & set(b.names)


def test_exposure_split_list_file_override_and_errors(tmp_path):
    make_exposure(tmp_path)
    (tmp_path / "partition_A.txt").write_text("a0003\n6\n")
    assert FiveKExposureSplit(tmp_path, "A", list_file="partition_A.txt").names == ["a0003", "a0006"]
    absolute = tmp_path / "lists" / "p.txt"
    absolute.parent.mkdir()
    absolute.write_text("1\n")
    assert FiveKExposureSplit(tmp_path, "B", list_file=absolute).names == ["a0001"]
    with pytest.raises(DatasetLayoutError, match="part-A list file not found: .*partition_X.txt"):
        FiveKExposureSplit(tmp_path, "A", list_file="partition_X.txt")
    (tmp_path / "FiveK_test.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="FiveK_test.txt"):
        FiveKExposureSplit(tmp_path, "test")
    (tmp_path / "FiveK_train_first2k.txt").write_text("1\n99\n")
    with pytest.raises(DatasetLayoutError, match="a0099"):
        FiveKExposureSplit(tmp_path, "A")
    assert FiveKExposureSplit(tmp_path, "A", missing="skip").names == ["a0001"]
    with pytest.raises(ValueError, match=r"part \(--split\) must be one of A, B, test, got 'C'"):
        FiveKExposureSplit(tmp_path, "C")
    assert FiveKExposureSplit(tmp_path, "a", missing="skip").names == ["a0001"]  # --split a, as --expert c


def test_exposure_split_full_fivek_names(tmp_path):
    """Full-size FiveK exports are named a0001-<camera id>; list ids still find them."""
    write(tmp_path / "input" / "JPG" / "original" / "a0001-jmac_DSC1459.jpg", 50)
    write(tmp_path / "input" / "JPG" / "original" / "a0002-dgw_005.jpg", 90)
    (tmp_path / "FiveK_train_first2k.txt").write_text("2\n")
    ds = FiveKExposureSplit(tmp_path, "A", resolution="original")
    assert ds.names == ["a0002"] and abs(level(ds[0]["image"]) - 90) < 3


def test_fivek_list_not_utf8_or_naming_an_id_twice(tmp_path):
    make_fivek(tmp_path)
    (tmp_path / "test.txt").write_text("a0005\na0005\na0006\n")
    assert FiveK(tmp_path, "test").notes == ["the FiveK list file test.txt names 1 id(s) more than once: each is used "
                                             "once"]
    (tmp_path / "test.txt").write_bytes(b"a0005\n\xff\xfe\n")
    with pytest.raises(DatasetLayoutError, match=r"FiveK list file 'test.txt' .*test.txt is not UTF-8 text"):
        FiveK(tmp_path, "test")
