"""detune_folder: a folder of good photos as a paired layout (16-bit and ICC kept, identity share, refusals)."""

import json

import numpy as np
import pytest
from PIL import ImageCms

from deepexpose.data.folders import DatasetLayoutError
from deepexpose.data.make_pairs import detune_folder, pair_seed
from deepexpose.io import ImageIOError, read_image, write_image

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo16(seed):
    rng = np.random.default_rng(seed)
    return (rng.random((12, 16, 3)) * 65535).astype(np.uint16)


def test_sixteen_bits_and_the_icc_profile_are_kept(tmp_path):
    write_image(tmp_path / "in" / "a.png", photo16(0), bit_depth=16, icc_profile=ICC)
    write_image(tmp_path / "in" / "b.jpg", (photo16(1) // 257).astype(np.uint8))
    summary = detune_folder(tmp_path / "in", tmp_path / "out", scheme="basic", copies=2, seed=3)
    assert (summary.photos, summary.pairs, summary.failed) == (2, 4, [])
    for folder in ("input", "target"):
        a = read_image(tmp_path / "out" / folder / "a_1.png", dtype="native")
        assert a.bit_depth == 16 and a.pixels.dtype == np.uint16 and a.icc_profile == ICC
        b = read_image(tmp_path / "out" / folder / "b_0.png", dtype="native")
        assert b.bit_depth == 8 and b.icc_profile is None
    target = read_image(tmp_path / "out" / "target" / "a_0.png", dtype="native").pixels
    np.testing.assert_array_equal(target, photo16(0))  # the target is the photo itself, bit for bit
    records = [json.loads(line) for line in (tmp_path / "out" / "detuning.jsonl").read_text().splitlines()]
    assert [(r["name"], r["source"], r["seed"]) for r in records] == [
        ("a_0.png", "a.png", 3), ("a_1.png", "a.png", 3), ("b_0.png", "b.jpg", 3), ("b_1.png", "b.jpg", 3)]


def test_a_photos_pairs_do_not_depend_on_the_other_photos(tmp_path):
    write_image(tmp_path / "in" / "m.png", photo16(4), bit_depth=16)
    detune_folder(tmp_path / "in", tmp_path / "alone", copies=2, seed=5)
    write_image(tmp_path / "in" / "a.png", photo16(5), bit_depth=16)  # sorted before m: m is now the second photo
    detune_folder(tmp_path / "in", tmp_path / "both", copies=2, seed=5)
    for c in range(2):
        assert (tmp_path / "alone" / "input" / f"m_{c}.png").read_bytes() == \
            (tmp_path / "both" / "input" / f"m_{c}.png").read_bytes()
    copies = [(tmp_path / "both" / "input" / f"m_{c}.png").read_bytes() for c in range(2)]
    assert copies[0] != copies[1]
    assert pair_seed(5, "m.png", 0) == pair_seed(5, "m.png", 0) != pair_seed(6, "m.png", 0) != pair_seed(5, "a.png", 0)


def test_identity_fraction_one_leaves_every_input_untouched(tmp_path):
    write_image(tmp_path / "in" / "a.png", photo16(2), bit_depth=16)
    detune_folder(tmp_path / "in", tmp_path / "out", copies=3, identity_fraction=1.0)
    for c in range(3):
        x = read_image(tmp_path / "out" / "input" / f"a_{c}.png", dtype="native").pixels
        np.testing.assert_array_equal(x, photo16(2))
    detune_folder(tmp_path / "in", tmp_path / "detuned", copies=3, identity_fraction=0.0)
    x = read_image(tmp_path / "detuned" / "input" / "a_0.png", dtype="native").pixels
    assert not np.array_equal(x, photo16(2))


def test_refusals(tmp_path):
    write_image(tmp_path / "in" / "a.png", photo16(3), bit_depth=16)
    with pytest.raises(ValueError, match="must not lie inside"):
        detune_folder(tmp_path / "in", tmp_path / "in" / "pairs")
    with pytest.raises(ValueError, match="scheme"):
        detune_folder(tmp_path / "in", tmp_path / "out", scheme="nope")
    with pytest.raises(ValueError, match="copies"):
        detune_folder(tmp_path / "in", tmp_path / "out", copies=0)
    detune_folder(tmp_path / "in", tmp_path / "out")
    first = (tmp_path / "out" / "input" / "a_0.png").read_bytes()
    with pytest.raises(FileExistsError, match="holds detuned pairs already"):  # never replaced unless asked
        detune_folder(tmp_path / "in", tmp_path / "out", seed=1)
    with pytest.raises(ValueError, match="must not lie inside the output folder"):  # pairs among the photos
        detune_folder(tmp_path / "out" / "target", tmp_path / "out")
    (tmp_path / "out" / "detuning.jsonl").unlink()  # a run killed before its record: the pairs are still kept
    with pytest.raises(ImageIOError, match="already exists"):
        detune_folder(tmp_path / "in", tmp_path / "out", seed=1)
    assert (tmp_path / "out" / "input" / "a_0.png").read_bytes() == first
    detune_folder(tmp_path / "in", tmp_path / "out", seed=1, overwrite=True)
    assert (tmp_path / "out" / "input" / "a_0.png").read_bytes() != first
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not an image")
    with pytest.raises(DatasetLayoutError, match="could be read"):
        detune_folder(tmp_path / "bad", tmp_path / "bad-out")


def test_photos_whose_names_differ_only_by_extension_are_reported_not_mixed(tmp_path):
    write_image(tmp_path / "in" / "x.png", photo16(4), bit_depth=16)
    write_image(tmp_path / "in" / "x.jpg", (photo16(5) // 257).astype(np.uint8))
    summary = detune_folder(tmp_path / "in", tmp_path / "out")
    assert (summary.photos, summary.pairs) == (1, 1)
    assert summary.failed == [("x.png", "its pairs would have the names of x.jpg's (same name but the extension); "
                                        "rename one")]
    records = [json.loads(line) for line in (tmp_path / "out" / "detuning.jsonl").read_text().splitlines()]
    assert [(r["name"], r["source"]) for r in records] == [("x_0.png", "x.jpg")]
    target = read_image(tmp_path / "out" / "target" / "x_0.png", dtype="native")
    assert target.bit_depth == 8  # the pair is x.jpg's, not overwritten by x.png's


def test_overwrite_removes_the_earlier_runs_pairs_that_it_does_not_write_again(tmp_path):
    write_image(tmp_path / "in" / "a.png", photo16(6), bit_depth=16)
    write_image(tmp_path / "in" / "sub" / "b.png", photo16(7), bit_depth=16)
    detune_folder(tmp_path / "in", tmp_path / "out", copies=3)
    (tmp_path / "in" / "sub" / "b.png").unlink()  # a photo taken out of the library is taken out of the pairs too
    write_image(tmp_path / "out" / "input" / "mine.png", photo16(8), bit_depth=16)  # no run listed it: kept
    summary = detune_folder(tmp_path / "in", tmp_path / "out", copies=1, overwrite=True)
    assert summary.removed == ["a_1.png", "a_2.png", "sub/b_0.png", "sub/b_1.png", "sub/b_2.png"]
    assert summary.unlisted == ["input/mine.png"]
    assert "removed 5 pair(s)" in str(summary) and "input/mine.png" in str(summary)
    for folder in ("input", "target"):
        left = sorted(p.relative_to(tmp_path / "out" / folder).as_posix()
                      for p in (tmp_path / "out" / folder).rglob("*.png"))
        assert left == (["a_0.png", "mine.png"] if folder == "input" else ["a_0.png"])
    assert (tmp_path / "in" / "a.png").exists()


@pytest.mark.parametrize("line", ['{"name": "../../in/a.png"}', '{"name": "/etc/x.png"}', "not json", '{"x": 1}'])
def test_a_record_that_is_not_detunes_is_never_trusted_for_removal(tmp_path, line):
    write_image(tmp_path / "in" / "a.png", photo16(9), bit_depth=16)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "detuning.jsonl").write_text(line + "\n")
    with pytest.raises(DatasetLayoutError, match="line 1 is not a detune record"):
        detune_folder(tmp_path / "in", tmp_path / "out", overwrite=True)
    assert (tmp_path / "in" / "a.png").exists() and not (tmp_path / "out" / "input").exists()


def test_the_summary_keeps_each_failure_on_its_own_line(tmp_path):
    write_image(tmp_path / "in" / "a.png", photo16(4), bit_depth=16)
    (tmp_path / "in" / "bad\nname.png").write_bytes(b"not an image")
    lines = str(detune_folder(tmp_path / "in", tmp_path / "out")).splitlines()
    assert len(lines) == 2 and lines[1].startswith("  failed: bad\\nname.png: "), lines


def test_a_name_that_is_not_utf8_is_detuned_like_any_other(tmp_path):
    """Found by an audit: its seed could not be made, which stopped the whole run with pairs half written."""
    write_image(tmp_path / "in" / "caf\udce9.png", photo16(4), bit_depth=16)
    write_image(tmp_path / "in" / "z.png", photo16(5), bit_depth=16)
    summary = detune_folder(tmp_path / "in", tmp_path / "out")
    assert (summary.photos, summary.pairs, summary.failed) == (2, 2, [])
    assert (tmp_path / "out" / "input" / "caf\udce9_0.png").is_file()
    assert pair_seed(0, "caf\udce9", 0) == pair_seed(0, "caf\udce9", 0) != pair_seed(0, "caf\udcea", 0)
