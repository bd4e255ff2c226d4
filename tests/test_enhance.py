"""``deepexpose enhance``: options, a mixed folder of good and bad inputs, kill-and-rerun, metadata round trips."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import exif_thumbnail, exif_with_thumbnail, make_dng, make_nclx_heic
from deepexpose import DeepExposeWarning
from deepexpose.enhance import EnhanceConfig, collect_jobs, enhance_paths
from deepexpose.io import read_image, write_image
from deepexpose.lut import read_cube, toward_identity


def photo(seed=0, h=48, w=64):
    """A smooth, photo-like picture (gradients and blobs), darker than a good photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.3 * x + 0.1, 0.25 * y + 0.1, 0.2 * (x + y) / 2 + 0.05], axis=2)
    blob = np.exp(-((x - rng.uniform(0.2, 0.8)) ** 2 + (y - rng.uniform(0.2, 0.6)) ** 2) / 0.02)[..., None]
    return np.clip(base + 0.4 * blob * rng.uniform(0.3, 1, 3), 0, 1)


def save(path, pixels, bits=8, mode="RGB", **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    if bits == 16:
        write_image(path, pixels, bit_depth=16)
        return path
    Image.fromarray((pixels * 255).round().astype(np.uint8), mode).save(path, **kw)
    return path


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def cfg(out, **kw):
    return EnhanceConfig(out=str(out), progress=False, **{"method": "classic", **kw})


def test_mixed_folder_good_and_bad_inputs(tmp_path):
    src = tmp_path / "in"
    save(src / "a.jpg", photo(0), quality=95)
    save(src / "sub" / "b.png", photo(1))
    save(src / "sub" / "deep" / "c.tif", photo(2))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (src / "empty.png").write_bytes(b"")
    (src / "notes.txt").write_text("not an image, not picked up from a folder")
    truncated = save(src / "trunc.png", photo(3))
    truncated.write_bytes(truncated.read_bytes()[:200])
    before = digest(src)
    summary = enhance_paths([src, tmp_path / "missing.jpg", src / "notes.txt"], cfg(tmp_path / "out"))
    assert digest(src) == before  # inputs untouched
    status = {Path(o.source).name: (o.status, o.reason) for o in summary.outcomes}
    assert {k for k, v in status.items() if v[0] == "done"} == {"a.jpg", "b.png", "c.tif"}
    assert status["broken.jpg"][0] == status["empty.png"][0] == status["trunc.png"][0] == "failed"
    assert "empty" in status["empty.png"][1]
    assert status["missing.jpg"] == ("failed", "no such file or folder")
    assert "not a supported image" in status["notes.txt"][1]
    assert summary.exit_code == 1 and "3 done, 0 skipped, 5 failed" in str(summary)
    out = tmp_path / "out"
    for rel in ("a.jpg", "sub/b.png", "sub/deep/c.tif"):
        img = read_image(out / rel)
        assert img.pixels.shape == (48, 64, 3)
        assert not np.allclose(img.pixels, read_image(src / rel).pixels, atol=2 / 255)  # classic changed it
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.jpg", "b.png", "c.tif"]


def test_all_good_exit_zero_and_cli(tmp_path):
    from deepexpose.cli import main

    save(tmp_path / "in" / "x.png", photo(4))
    code = main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--method", "identity",
                 "--no-progress"])
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "x.png")),
                          np.asarray(Image.open(tmp_path / "in" / "x.png")))  # identity is exact
    assert main(["enhance", str(tmp_path / "nothing"), "-o", str(tmp_path / "o2"), "--method", "classic",
                 "--no-progress"]) == 1


def test_a_16_bit_photo_written_in_a_format_of_8_bits_says_so_unless_bit_depth_8_asked(tmp_path, recwarn):
    """--format jpg made a 16-bit PNG 8-bit without a word (found by review); --bit-depth 8 asks for it."""
    src = save(tmp_path / "in" / "deep.png", photo(4), bits=16)
    s = enhance_paths([src], cfg(tmp_path / "jpg", format="jpg", sidecar=True))
    assert s.exit_code == 0 and read_image(tmp_path / "jpg" / "deep.jpg").bit_depth == 8
    said = [str(w.message) for w in recwarn if "more than 8 bits" in str(w.message)]
    assert said == [f"{src}: left out of the output: its samples of more than 8 bits: JPG output holds 8 (PNG or TIFF "
                    "output keeps 16, HEIC 10; --bit-depth 8 says 8 are meant)"]
    assert "more than 8 bits" in json.loads((tmp_path / "jpg" / "deep.jpg.json").read_text())["left_out"]
    recwarn.clear()
    for folder, options in (("asked", {"format": "jpg", "bit_depth": 8}), ("png8", {"bit_depth": 8}),
                            ("png16", {})):
        assert enhance_paths([src], cfg(tmp_path / folder, sidecar=True, **options)).exit_code == 0
    assert not [w for w in recwarn if "more than 8 bits" in str(w.message)]
    assert not any("left_out" in json.loads(p.read_text()) for p in tmp_path.glob("[ap]*/*.json"))


def test_format_quality_and_bit_depth(tmp_path):
    src = save(tmp_path / "in" / "p.png", photo(5, 96, 128))
    out = tmp_path / "out"
    assert enhance_paths([src], cfg(out / "hi", format="jpg", quality=95)).exit_code == 0
    assert enhance_paths([src], cfg(out / "lo", format="jpg", quality=20)).exit_code == 0
    assert (out / "lo" / "p.jpg").stat().st_size < (out / "hi" / "p.jpg").stat().st_size
    assert enhance_paths([src], cfg(out / "t16", format="tiff", bit_depth=16)).exit_code == 0
    assert read_image(out / "t16" / "p.tif").bit_depth == 16
    # 16 bits asked of a JPEG: refused before any work when --format says so, per file when the input's is JPEG
    with pytest.raises(ValueError, match="--bit-depth 16 needs --format png, tiff or heic"):
        enhance_paths([src], cfg(out / "j16", format="jpg", bit_depth=16))
    jpeg = save(tmp_path / "in" / "q.jpg", photo(5))
    bad = enhance_paths([jpeg], cfg(out / "j16", bit_depth=16))
    assert bad.exit_code == 1 and "--bit-depth 16: JPG output holds 8 bits; pass --format png, tiff or heic" in \
        bad.failed[0].reason
    with pytest.raises(ValueError, match="format"):
        enhance_paths([src], cfg(out / "x", format="gif"))
    for field, value in (("strength", 1.5), ("bit_depth", 12), ("quality", 0), ("jobs", 0), ("temporal_window", 4),
                         ("temporal_window", -1)):
        with pytest.raises(ValueError):
            enhance_paths([src], cfg(out / "x", **{field: value}))
    with pytest.raises(ValueError, match="contradict"):
        enhance_paths([src], cfg(out / "x", skip_existing=True, overwrite=True))
    assert not (out / "x").exists() and not (out / "j16" / "p.jpg").exists()


def webp_kind(path):
    """``lossless`` or ``lossy``: whether the file holds a VP8L (lossless) or a VP8 (lossy) image chunk."""
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and (b"VP8L" in data) != (b"VP8 " in data)
    return "lossless" if b"VP8L" in data else "lossy"


def test_a_lossless_webp_stays_lossless_unless_a_quality_is_given(tmp_path):
    from deepexpose.cli import main

    src, out = tmp_path / "in", tmp_path / "out"
    save(src / "ll.webp", photo(6), lossless=True)
    save(src / "ly.webp", photo(7), quality=90)
    assert read_image(src / "ll.webp").lossless and not read_image(src / "ly.webp").lossless
    assert enhance_paths([src], cfg(out / "default")).exit_code == 0
    assert webp_kind(out / "default" / "ll.webp") == "lossless" and webp_kind(out / "default" / "ly.webp") == "lossy"
    assert enhance_paths([src / "ll.webp"], cfg(out / "png", format="png")).exit_code == 0
    edited = np.asarray(Image.open(out / "png" / "ll.png"))
    assert np.array_equal(np.asarray(Image.open(out / "default" / "ll.webp")), edited)  # the rendered pixels
    assert not np.array_equal(np.asarray(Image.open(src / "ll.webp")), edited)  # edited, not copied
    assert enhance_paths([src], cfg(out / "q95", quality=95)).exit_code == 0  # a quality given wins
    assert webp_kind(out / "q95" / "ll.webp") == "lossy"
    cli = ["enhance", str(src), "--method", "classic", "--no-progress", "-o"]
    for folder, given, ll, ly in (("c", [], "lossless", "lossy"), ("c80", ["--quality", "80"], "lossy", "lossy"),
                                  ("c100", ["--quality", "100"], "lossless", "lossless")):
        assert main(cli + [str(out / folder), *given]) == 0
        assert (webp_kind(out / folder / "ll.webp"), webp_kind(out / folder / "ly.webp")) == (ll, ly), folder


def test_a_malformed_pixel_limit_fails_the_command_once(tmp_path, monkeypatch):
    src = save(tmp_path / "in" / "p.png", photo(5))
    monkeypatch.setenv("DEEPEXPOSE_MAX_PIXELS", "abc")
    with pytest.raises(ValueError, match="DEEPEXPOSE_MAX_PIXELS='abc'"):
        enhance_paths([src], cfg(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_tiff_keeps_its_extension_and_the_same_input_twice_is_done_once(tmp_path):
    a = save(tmp_path / "in" / "a.tiff", photo(1))
    save(tmp_path / "in" / "a.tif", photo(2))
    s = enhance_paths([a, tmp_path / "in", a], cfg(tmp_path / "out"))
    assert (s.count("done"), s.exit_code) == (2, 0), str(s)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "a.tiff"]
    assert np.array_equal(read_image(tmp_path / "out" / "a.tiff").pixels,
                          read_image(enhance_one(a, tmp_path / "solo")).pixels)


def enhance_one(src, out):
    assert enhance_paths([src], cfg(out)).exit_code == 0
    return next(p for p in Path(out).iterdir() if p.suffix != ".json")


def test_symlinked_folders_are_followed_each_real_folder_once(tmp_path):
    save(tmp_path / "elsewhere" / "b.png", photo(2))
    save(tmp_path / "in" / "a.png", photo(1))
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)  # must not recurse forever
    jobs, bad, _ = collect_jobs([tmp_path / "in"], tmp_path / "out")
    assert [j.output.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["a.png", "linked/b.png"]
    assert bad == []
    # a link into the folder itself is left out (the folder is walked anyway), whatever its name's order
    save(tmp_path / "in" / "z_real" / "c.png", photo(3))
    (tmp_path / "in" / "a_link").symlink_to(tmp_path / "in" / "z_real", target_is_directory=True)
    jobs = collect_jobs([tmp_path / "in"], tmp_path / "out")[0]
    assert [j.output.relative_to(tmp_path / "out").as_posix() for j in jobs] == [
        "a.png", "linked/b.png", "z_real/c.png"]


def test_a_photo_left_unchanged_is_copied_byte_for_byte(tmp_path):
    from PIL import PngImagePlugin

    jpeg = save(tmp_path / "in" / "a.jpg", photo(3, 96, 128), quality=90, subsampling=2, dpi=(300, 300))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "kept")
    png = save(tmp_path / "in" / "b.png", photo(4), pnginfo=info)
    s = enhance_paths([jpeg, png], cfg(tmp_path / "zero", strength=0.0, sidecar=True))
    assert s.count("done") == 2
    assert (tmp_path / "zero" / "a.jpg").read_bytes() == jpeg.read_bytes()  # not re-encoded: nothing lost
    assert (tmp_path / "zero" / "b.png").read_bytes() == png.read_bytes()
    assert json.loads((tmp_path / "zero" / "a.jpg.json").read_text())["copied"] is True
    # another format, or a real edit, is written as usual
    assert enhance_paths([jpeg], cfg(tmp_path / "png", strength=0.0, format="png")).exit_code == 0
    assert np.array_equal(read_image(tmp_path / "png" / "a.png").pixels, read_image(jpeg).pixels)
    assert enhance_paths([jpeg], cfg(tmp_path / "full", sidecar=True)).exit_code == 0
    assert (tmp_path / "full" / "a.jpg").read_bytes() != jpeg.read_bytes()
    assert "copied" not in json.loads((tmp_path / "full" / "a.jpg.json").read_text())


def test_an_unchanged_photo_is_written_not_copied_where_a_copy_would_differ(tmp_path):
    src = tmp_path / "in"
    exif = Image.Exif()
    exif[0x0112] = 6
    save(src / "rot.jpg", photo(1), quality=95, exif=exif.tobytes())  # still to be turned upright
    save(src / "png_named.jpg", photo(2), format="PNG")  # a PNG under a JPEG name
    Image.fromarray((photo(3) * 255).astype(np.uint8)).convert("CMYK").save(src / "cmyk.jpg")
    save(src / "deep.png", photo(4), bits=16)
    s = enhance_paths([src], cfg(tmp_path / "out", strength=0.0, sidecar=True))
    assert s.count("done") == 4 and s.exit_code == 0, str(s)
    s8 = enhance_paths([src / "deep.png"], cfg(tmp_path / "out8", strength=0.0, sidecar=True, bit_depth=8))
    assert s8.exit_code == 0
    out = tmp_path / "out"
    for name in ("rot.jpg", "png_named.jpg", "cmyk.jpg"):
        assert (out / name).read_bytes() != (src / name).read_bytes(), name
        assert "copied" not in json.loads((out / f"{name}.json").read_text()), name
    assert (out / "png_named.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a real JPEG, as its name says
    assert read_image(out / "rot.jpg").pixels.shape[:2] == (64, 48)  # upright, as an edited photo would be
    with Image.open(out / "rot.jpg") as im:
        assert im.getexif().get(0x0112, 1) == 1
    with Image.open(out / "cmyk.jpg") as im:
        assert im.mode == "RGB"
    assert read_image(tmp_path / "out8" / "deep.png").bit_depth == 8
    assert (out / "deep.png").read_bytes() == (src / "deep.png").read_bytes()  # 16 bits kept: a copy


def test_an_unchanged_tiff_is_copied_where_pillow_cannot_open_it_and_written_where_a_copy_would_differ(tmp_path):
    """Floating-point, 12-bit and big-endian BigTIFF files were rewritten at --strength 0 (Pillow, which chose, cannot
    open them); a TIFF turned by its Orientation tag or its XMP and a CMYK one are written. One of two pages is
    copied (was: written, its pages re-encoded); one whose second page is turned is written."""
    import tifffile

    src = tmp_path / "in"
    src.mkdir()
    u8 = (photo(5) * 255).round().astype(np.uint8)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    tifffile.imwrite(src / "float.tif", photo(5).astype(np.float32), photometric="rgb")
    tifffile.imwrite(src / "twelve.tif", u8.astype(np.uint16) * 16, photometric="rgb", bitspersample=12)
    tifffile.imwrite(src / "big.tif", u8, photometric="rgb", bigtiff=True, byteorder=">")
    tifffile.imwrite(src / "turned.tif", u8, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    tifffile.imwrite(src / "xmp.tif", u8, photometric="rgb", extratags=[(700, "B", len(xmp), xmp, True)])
    tifffile.imwrite(src / "cmyk.tif", np.dstack([255 - u8, np.zeros(u8.shape[:2], np.uint8)]),
                     photometric="separated")
    tifffile.imwrite(src / "pages.tif", np.stack([u8, u8[::-1]]), photometric="rgb")
    with tifffile.TiffWriter(src / "turned-page.tif") as tw:
        tw.write(u8, photometric="rgb")
        tw.write(u8, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    s = enhance_paths([src], cfg(tmp_path / "out", strength=0.0, sidecar=True))
    assert s.count("done") == 8 and s.exit_code == 0, str(s)
    out = tmp_path / "out"
    for name in ("float.tif", "twelve.tif", "big.tif", "turned.tif", "xmp.tif", "cmyk.tif", "pages.tif",
                 "turned-page.tif"):
        copied = name in ("float.tif", "twelve.tif", "big.tif", "pages.tif")
        assert ((out / name).read_bytes() == (src / name).read_bytes()) == copied, name
        assert json.loads((out / f"{name}.json").read_text()).get("copied", False) == copied, name
    assert read_image(out / "xmp.tif").pixels.shape[:2] == (64, 48)  # turned upright, as an edit would be
    assert read_image(out / "turned-page.tif", page=1).pixels.shape[:2] == (64, 48)
    assert "pages" not in json.loads((out / "pages.tif.json").read_text())  # the copy holds them as they are


def test_a_multi_page_tiff_is_copied_only_when_every_page_comes_back_unchanged(tmp_path):
    """The first page unchanged at its own depth is not enough: a 16-bit second page asked for in 8 bits is
    converted, so the file is written (pages of 8 and 16 bits, --bit-depth 8, --strength 0)."""
    import tifffile

    u8 = (photo(5) * 255).round().astype(np.uint8)
    src = tmp_path / "in" / "mixed.tif"
    src.parent.mkdir()
    with tifffile.TiffWriter(src) as tw:
        tw.write(u8, photometric="rgb")
        tw.write(u8.astype(np.uint16) * 257, photometric="rgb")
    before = src.read_bytes()
    s = enhance_paths([src], cfg(tmp_path / "out", strength=0.0, bit_depth=8, sidecar=True))
    assert s.exit_code == 0, str(s)
    out = tmp_path / "out" / "mixed.tif"
    assert out.read_bytes() != before and src.read_bytes() == before
    doc = json.loads(out.with_name("mixed.tif.json").read_text())
    assert "copied" not in doc and [p["page"] for p in doc["pages"]] == [2]
    second = read_image(out, page=1, dtype="native")
    assert second.bit_depth == 8 and np.array_equal(second.pixels, u8)
    s = enhance_paths([src], cfg(tmp_path / "kept", strength=0.0, sidecar=True))  # every page at its own depth
    assert (tmp_path / "kept" / "mixed.tif").read_bytes() == before
    assert json.loads((tmp_path / "kept" / "mixed.tif.json").read_text())["copied"] is True


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_what_a_page_leaves_out_is_warned_of_once(tmp_path, strength):
    """A 16-bit second page with a channel of unspecified meaning, written in 8 bits: one warning naming page 2,
    whether the edit changes the photo (no copy from the start) or not (a copy ruled out by that page alone)."""
    import tifffile

    u8 = (photo(5) * 255).round().astype(np.uint8)
    src = tmp_path / "in" / "mask.tif"
    src.parent.mkdir()
    with tifffile.TiffWriter(src) as tw:
        tw.write(u8, photometric="rgb")
        tw.write(np.dstack([u8, u8[..., :1]]).astype(np.uint16) * 257, photometric="rgb", extrasamples=[0])
    with pytest.warns(DeepExposeWarning) as seen:
        assert enhance_paths([src], cfg(tmp_path / "out", strength=strength, bit_depth=8)).exit_code == 0
    named = [str(w.message) for w in seen if "(page 2)" in str(w.message)]
    assert len(named) == 1 and "unspecified meaning" in named[0], named


def test_a_photo_whose_name_is_not_ascii_gets_its_lut(tmp_path):
    src = save(tmp_path / "in" / "café.png", photo(7))
    s = enhance_paths([src], cfg(tmp_path / "out", lut=True))  # failed: the LUT's title was encoded as ASCII
    assert s.exit_code == 0, str(s)
    assert (tmp_path / "out" / "café.png.cube").read_text().startswith('TITLE "deepexpose cafe.png')
    assert enhance_paths([src], cfg(tmp_path / "out", lut=True, skip_existing=True)).count("skipped") == 1


def test_strength_blends_toward_input(tmp_path):
    src = save(tmp_path / "in" / "p.png", photo(6))
    x = read_image(src).pixels
    outs = {}
    for s in (0.0, 0.5, 1.0):
        enhance_paths([src], cfg(tmp_path / f"s{s}", strength=s))
        outs[s] = read_image(tmp_path / f"s{s}" / "p.png").pixels
    assert np.abs(outs[0.0] - x).max() <= 1 / 255
    d_half, d_full = np.abs(outs[0.5] - x).mean(), np.abs(outs[1.0] - x).mean()
    assert 0.3 * d_full < d_half < 0.7 * d_full


def test_sidecar_and_lut(tmp_path, agent_model):
    src = save(tmp_path / "in" / "p.jpg", photo(7))
    c = cfg(tmp_path / "out", method="agent", model=str(agent_model), sidecar=True, lut=True, lut_size=17)
    assert enhance_paths([src], c).exit_code == 0
    doc = json.loads((tmp_path / "out" / "p.jpg.json").read_text())
    assert doc["method"] == "agent" and doc["source"] == "p.jpg" and doc["size"] == [64, 48]
    edit = doc["edit"]
    assert len(edit["local_exposure"]["ev"]) == 3 and "exposure" in edit and "saturation" in edit
    assert any(abs(v) > 1e-3 for f in edit.values() for v in (f.values() if isinstance(f, dict) else []) if
               isinstance(v, float))  # a real, non-trivial edit was chosen
    cube = read_cube(tmp_path / "out" / "p.jpg.cube")
    table = cube.table.reshape(-1, 3)
    assert table.shape == (17 ** 3, 3)
    # at --strength the LUT is blended toward the identity as the pixels are: applied to the input it gives the
    # written output (this method's edit is per pixel), and at strength 0 it is the identity
    x = read_image(src).pixels
    for strength in (0.5, 0.0):
        c = cfg(tmp_path / f"s{strength}", method="classic", format="png", lut=True, lut_size=33, strength=strength)
        assert enhance_paths([src], c).exit_code == 0
        half = read_cube(tmp_path / f"s{strength}" / "p.png.cube")
        written = read_image(tmp_path / f"s{strength}" / "p.png").pixels
        assert np.abs(half.apply(x) - written).mean() < 0.5 / 255
        assert np.abs(half.apply(x) - written).max() <= 2 / 255
    assert np.abs(half.table - toward_identity(half.table, 0.0)).max() < 1e-6
    # the LUT is the per-pixel (global) part: its grid point for pure grey 0.5 equals the filters applied to it
    from deepexpose.filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline
    pipe = FilterPipeline(DEFAULT_GLOBAL_FILTERS)
    g = {k: v for k, v in edit.items() if k != "local_exposure"}
    mid = pipe(torch.full((1, 3, 1, 1), 0.5), pipe.action_from_description(g)).flatten().numpy()
    assert np.allclose(table[8 + 8 * 17 + 8 * 17 * 17], mid, atol=1e-4)
    with pytest.raises(ValueError, match="unknown --method"):
        enhance_paths([src], cfg(tmp_path / "o2", method="nonexistent"))


def test_single_view_option(tmp_path, agent_model):
    src = save(tmp_path / "in" / "p.png", photo(8))
    views = {}
    for single in (False, True):
        out = tmp_path / f"out{single}"
        c = cfg(out, method="agent", model=str(agent_model), sidecar=True, single_view=single)
        assert enhance_paths([src], c).exit_code == 0
        views[single] = json.loads((out / "p.png.json").read_text())
    assert views[False]["views"] == "consensus" and views[True]["views"] == "whole photo"
    assert views[False]["edit"] != views[True]["edit"]
    with pytest.raises(ValueError, match="agent only"):
        enhance_paths([src], cfg(tmp_path / "x", method="classic", single_view=True))
    with pytest.raises(ValueError, match="agent only"):
        enhance_paths([src], cfg(tmp_path / "x", method="classic", untouched_within=37.0))
    # a threshold every edit stays within: the photo comes back bit for bit, and the sidecar says why
    c = cfg(tmp_path / "gate", method="agent", model=str(agent_model), untouched_within=0.01, sidecar=True)
    assert enhance_paths([src], c).exit_code == 0
    assert json.loads((tmp_path / "gate" / "p.png.json").read_text())["untouched_within"] == 0.01
    assert np.array_equal(read_image(tmp_path / "gate" / "p.png", dtype="native").pixels,
                          read_image(src, dtype="native").pixels)
    assert (tmp_path / "gate" / "p.png").read_bytes() == src.read_bytes()  # the file itself, copied


def test_large_jpeg_chosen_on_a_preview_while_it_decodes(tmp_path, agent_model, monkeypatch):
    import threading

    import deepexpose.enhance as enhance_module
    from deepexpose.io import read_preview
    from deepexpose.methods import load_method

    src = tmp_path / "in"
    big = save(src / "big.jpg", photo(9, h=544, w=640), quality=92)
    save(src / "small.jpg", photo(9, h=200, w=240), quality=92)  # no reduced scale keeps sides >= 256
    lossless = save(src / "png" / "big.png", photo(9, h=544, w=640))
    threads = []
    real = enhance_module._plan_preview
    monkeypatch.setattr(enhance_module, "_plan_preview",
                        lambda *a: threads.append(threading.get_ident()) or real(*a))
    out = tmp_path / "out"
    c = cfg(out, method="agent", model=str(agent_model), sidecar=True, format="png")
    assert enhance_paths([src], c).exit_code == 0
    assert len(threads) == 2 and threading.get_ident() not in threads  # the JPEGs, on a side thread
    docs = {n: json.loads((out / f"{n}.png.json").read_text()) for n in ("big", "small", "png/big")}
    assert docs["big"]["chosen_on"] == [320, 272]
    assert "chosen_on" not in docs["small"] and "chosen_on" not in docs["png/big"]
    agent = load_method("agent", agent_model)
    full = read_image(big, dtype="native").pixels
    preview, shape = read_preview(big, agent.preview_side)
    assert shape == full.shape[:2]
    plan = agent.plan(preview)
    assert docs["big"]["edit"] == plan.edit
    np.testing.assert_array_equal(read_image(out / "big.png", dtype="native").pixels, plan.render(full, 1.0))
    whole = read_image(lossless, dtype="native").pixels  # no preview: chosen on the decoded photo
    np.testing.assert_array_equal(read_image(out / "png" / "big.png", dtype="native").pixels,
                                  agent.plan(whole).render(whole, 1.0))


def test_jpeg_output_encoded_on_torchs_threads(tmp_path, monkeypatch):
    import deepexpose.io as dio
    from deepexpose.enhance import encode_threads

    monkeypatch.setattr(dio, "JPEG_STRIP_MIN_PIXELS", 0)  # this small photo is encoded like a large one
    src = save(tmp_path / "in" / "p.png", photo(4, h=96, w=64))  # a PNG: an unchanged JPEG would be copied
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert encode_threads() == threads
            out = tmp_path / f"out{threads}"
            assert enhance_paths([src], cfg(out, method="identity", format="jpg")).exit_code == 0
            assert (b"\xff\xdd" in (out / "p.jpg").read_bytes()) == (threads > 1)  # restart markers join strips
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(read_image(tmp_path / "out1" / "p.jpg").pixels,
                                  read_image(tmp_path / "out2" / "p.jpg").pixels)


def test_a_jpeg_that_fails_to_decode_fails_with_its_reason(tmp_path, agent_model):
    src = save(tmp_path / "in" / "cut.jpg", photo(3, h=544, w=640), quality=92)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    summary = enhance_paths([src], cfg(tmp_path / "out", method="agent", model=str(agent_model)))
    assert summary.exit_code != 0 and "truncated" in summary.failed[0].reason
    assert not (tmp_path / "out" / "cut.jpg").exists()


def test_skip_existing_overwrite_and_refusal(tmp_path):
    src = tmp_path / "in"
    for i in range(2):
        save(src / f"{i}.png", photo(i))
    out = tmp_path / "out"
    assert enhance_paths([src], cfg(out)).count("done") == 2
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = enhance_paths([src], cfg(out))
    assert again.count("failed") == 2 and "--skip-existing" in again.failed[0].reason
    skipped = enhance_paths([src], cfg(out, skip_existing=True))
    assert skipped.count("skipped") == 2 and skipped.exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp
    time.sleep(0.01)
    assert enhance_paths([src], cfg(out, overwrite=True)).count("done") == 2
    assert all(p.stat().st_mtime_ns > stamp[p.name] for p in out.iterdir())
    # an output that would land on an input is refused, even with --overwrite
    s = enhance_paths([src], cfg(src, overwrite=True))
    assert s.count("failed") == 2 and "overwrite an input" in s.failed[0].reason


def test_an_overwritten_outputs_earlier_side_files_not_asked_for_again_are_removed(tmp_path):
    from deepexpose.enhance import remove_earlier_side_files

    src = save(tmp_path / "in" / "a.png", photo(0))
    out = tmp_path / "out"
    assert enhance_paths([src], cfg(out, sidecar=True, lut=True, strength=0.0)).exit_code == 0
    assert json.loads((out / "a.png.json").read_text())["strength"] == 0.0 and (out / "a.png.cube").exists()
    assert enhance_paths([src], cfg(out, overwrite=True)).exit_code == 0  # another edit, no side files asked for
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # before: the strength-0 sidecar and LUT stayed
    assert enhance_paths([src], cfg(out, overwrite=True, sidecar=True, lut=True)).exit_code == 0
    assert enhance_paths([src], cfg(out, overwrite=True, sidecar=True)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.png.json"]  # the LUT alone went
    (out / "a.png.cube").write_text("my own grade\n")  # not deepexpose's: left alone
    (out / "a.png.json").write_text('{"source": "b.png"}\n')  # another input's
    assert remove_earlier_side_files(src, out / "a.png", cfg(out)) == []
    assert (out / "a.png.cube").read_text() == "my own grade\n" and "b.png" in (out / "a.png.json").read_text()


def test_side_files_of_another_file_and_side_files_asked_for_later(tmp_path):
    src = save(tmp_path / "in" / "a.png", photo(0))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png.json").write_text('{"mine": true}\n')  # someone's own notes under the sidecar's name
    s = enhance_paths([src], cfg(out, sidecar=True))
    assert s.count("failed") == 1 and "a.png.json already exists and is not deepexpose's" in s.failed[0].reason
    assert (out / "a.png.json").read_text() == '{"mine": true}\n' and not (out / "a.png").exists()
    (out / "a.png.json").write_text(json.dumps({"source": "a.png"}))  # ours, left by a run killed before the image
    (out / "a.png.cube").write_text('TITLE "deepexpose a.png"\n')
    assert enhance_paths([src], cfg(out, sidecar=True, lut=True)).count("done") == 1
    assert json.loads((out / "a.png.json").read_text())["source"] == "a.png"
    assert (out / "a.png.cube").stat().st_size > 99  # replaced by the whole LUT
    # a sidecar asked for on a finished output: skipped, and the summary says how to get it
    save(tmp_path / "in" / "b.png", photo(1))
    enhance_paths([tmp_path / "in" / "b.png"], cfg(out))
    s = enhance_paths([tmp_path / "in" / "b.png"], cfg(out, sidecar=True, skip_existing=True))
    assert s.count("skipped") == 1 and "without b.png.json (pass --overwrite" in s.outcomes[0].reason
    assert f"skipped 1 existing output that lacks the side files asked for, e.g. {out / 'b.png'}" in str(s)
    (out / "c.png.cube").write_text("LUT_3D_SIZE 2\n")  # a LUT someone else made
    save(tmp_path / "in" / "c.png", photo(2))
    s = enhance_paths([tmp_path / "in" / "c.png"], cfg(out, lut=True))
    assert "c.png.cube already exists" in s.failed[0].reason
    assert enhance_paths([tmp_path / "in" / "c.png"], cfg(out, lut=True, overwrite=True)).count("done") == 1


def test_the_summary_keeps_each_failure_on_its_own_line(tmp_path):
    (tmp_path / "bad\nname.jpg").write_bytes(b"")
    (tmp_path / "caf\udce9.jpg").write_bytes(b"")
    lines = str(enhance_paths([tmp_path], cfg(tmp_path / "out"))).splitlines()
    assert lines == ["0 done, 0 skipped, 2 failed", f"  failed: {tmp_path}/bad\\nname.jpg: file is empty (0 bytes)",
                     f"  failed: {tmp_path}/caf\\xe9.jpg: file is empty (0 bytes)"]


def test_a_sidecar_names_a_source_that_is_not_utf8_as_the_summary_does_and_a_rerun_knows_it(tmp_path):
    from deepexpose.enhance import source_name

    src = save(tmp_path / "in" / "caf\udce9.png", photo(0))
    assert source_name(src) == "caf\\xe9.png" and source_name(Path("café.png")) == "café.png"
    assert enhance_paths([src], cfg(tmp_path / "out", sidecar=True)).count("done") == 1
    text = (tmp_path / "out" / "caf\udce9.png.json").read_text()
    assert json.loads(text)["source"] == "caf\\xe9.png" and "\\udce9" not in text  # no lone surrogate in the JSON
    s = enhance_paths([src], cfg(tmp_path / "out", overwrite=True))  # its sidecar, now not asked for, is its own
    assert s.count("done") == 1 and not (tmp_path / "out" / "caf\udce9.png.json").exists()


def test_name_collision_reported(tmp_path):
    a = save(tmp_path / "a" / "same.png", photo(1))
    b = save(tmp_path / "b" / "same.png", photo(2))
    jobs, bad, ignored = collect_jobs([a, b], tmp_path / "out")
    assert len(jobs) == 1 and "collides" in bad[0].reason and ignored == {}


def test_a_case_twin_added_after_a_run_collides_with_the_output_it_would_take_over(tmp_path):
    """Found by an audit: a.JPG added beside a.jpg after a run with --format png sorts first and took a.jpg's
    output over (counted as skipped by --skip-existing, replaced by --overwrite)."""
    src = tmp_path / "in"
    save(src / "a.jpg", photo(0))
    assert enhance_paths([src], cfg(tmp_path / "out", format="png", sidecar=True)).exit_code == 0
    first = (tmp_path / "out" / "a.png").read_bytes()
    save(src / "a.JPG", photo(1))
    for option in ("skip_existing", "overwrite"):
        s = enhance_paths([src], cfg(tmp_path / "out", format="png", sidecar=True, **{option: True}))
        assert [(Path(o.source).name, o.status) for o in s.outcomes] == [
            ("a.JPG", "failed"), ("a.jpg", "skipped" if option == "skip_existing" else "done")], option
        assert s.failed[0].reason == f"its output name collides with that of {src / 'a.jpg'}"
        assert json.loads((tmp_path / "out" / "a.png.json").read_text())["source"] == "a.jpg"
    assert (tmp_path / "out" / "a.png").read_bytes() == first  # the same photo's edit written again
    s = enhance_paths([src], cfg(tmp_path / "fresh", format="png"))  # no earlier output: name order decides
    assert [(Path(o.source).name, o.status) for o in s.outcomes] == [("a.jpg", "failed"), ("a.JPG", "done")]


def test_outputs_in_the_way_are_named_for_what_they_are(tmp_path, monkeypatch):
    """Found by an audit: an output that is a folder was "exists", "skipped" or "is a directory" by option; a link
    already in the output folder was called a name collision (its target's name was compared), a link to nothing
    there was replaced without --overwrite; an earlier sidecar that cannot be read gave a raw PermissionError."""
    src = tmp_path / "in"
    save(src / "a.png", photo(0))
    save(src / "b.png", photo(1))
    out = tmp_path / "out"
    (out / "a.png").mkdir(parents=True)
    for option in ({}, {"skip_existing": True}, {"overwrite": True}):
        s = enhance_paths([src / "a.png"], cfg(out, **option))
        assert s.failed[0].reason == "its output is a folder, not a file: move it away or choose another -o", option
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.png").symlink_to("elsewhere.png")  # to nothing
    (links / "b.png").symlink_to("kept.png")
    kept = save(links / "kept.png", photo(2)).read_bytes()
    s = enhance_paths([src], cfg(links))
    assert [(Path(o.source).name, o.status, o.reason) for o in s.outcomes] == [
        ("a.png", "failed", "the output exists (pass --skip-existing or --overwrite)"),
        ("b.png", "failed", "the output exists (pass --skip-existing or --overwrite)")]
    s = enhance_paths([src], cfg(links, overwrite=True))
    assert s.count("done") == 2 and not (links / "a.png").is_symlink() and not (links / "b.png").is_symlink()
    assert (links / "kept.png").read_bytes() == kept and not (links / "elsewhere.png").exists()  # replaced, not through
    real = Path.read_bytes

    def read_bytes(self):
        if self.suffix == ".json":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    assert enhance_paths([src / "a.png"], cfg(links, overwrite=True, sidecar=True)).exit_code == 0
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    s = enhance_paths([src / "a.png"], cfg(links, overwrite=True, sidecar=True))
    assert s.failed[0].reason == f"permission denied: {links / 'a.png.json'}"


def test_fifos_link_loops_and_unreadable_folders_fail_alone(tmp_path, monkeypatch):
    """Found by an audit: a FIFO named p.jpg made the run wait forever (its first bytes were read to tell its kind),
    a link loop stopped the whole batch with an error, and a folder that could not be read was left out silently
    (or, given itself, called empty)."""
    src = tmp_path / "in"
    save(src / "a.png", photo(0))
    save(src / "locked" / "b.png", photo(1))
    save(tmp_path / "shut" / "c.png", photo(2))
    for name in ("pipe.jpg", "pipe.ts", "pipe.gif"):
        os.mkfifo(src / name)
    (src / "loop.jpg").symlink_to("loop.jpg")
    (src / "gone.png").symlink_to("nothing.png")
    real = os.scandir

    def scandir(path="."):
        if Path(path).name in ("locked", "shut"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    inputs = [src, src / "pipe.jpg", src / "loop.jpg", tmp_path / "shut", tmp_path / "missing.png"]
    jobs, bad, _ = collect_jobs(inputs, tmp_path / "out")
    assert [j.source.name for j in jobs] == ["a.png"]
    assert sorted((Path(b.source).relative_to(tmp_path).as_posix(), b.reason) for b in bad) == [
        ("in/gone.png", "a symbolic link to nothing"), ("in/locked", "cannot read this folder (permission denied)"),
        ("in/loop.jpg", "a symbolic link loop"),  # named itself and found in the folder: listed once
        ("in/pipe.gif", "not a regular file (a FIFO, device or socket)"),
        ("in/pipe.jpg", "not a regular file (a FIFO, device or socket)"),
        ("in/pipe.ts", "not a regular file (a FIFO, device or socket)"),
        ("missing.png", "no such file or folder"), ("shut", "cannot read this folder (permission denied)")]
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert (s.count("done"), s.count("failed"), s.exit_code) == (1, 6, 1)


def test_names_near_the_file_systems_limit(tmp_path):
    """Found by an audit: a 252-byte name stopped the whole batch with an error once its photo was written (the check
    for an earlier sidecar, 257 bytes, raised), and a 250-byte name of two-byte letters could not be written at all
    (its temporary name kept 200 letters, 400 bytes)."""
    long, wide = "M" * 248 + ".png", "é" * 123 + ".png"
    for name in (long, wide, "a.png", "z.png"):
        save(tmp_path / "in" / name, photo(len(name) % 5))
    s = enhance_paths([tmp_path / "in"], cfg(tmp_path / "out"))
    assert s.count("done") == 4 and s.exit_code == 0, str(s)
    s = enhance_paths([tmp_path / "in"], cfg(tmp_path / "side", sidecar=True))
    assert s.count("done") == 3 and [o.reason for o in s.outcomes if o.status == "failed"] == [
        f"cannot write {long}.json: the name is longer than the file system allows (shorten the input's name)"]
    again = enhance_paths([tmp_path / "in"], cfg(tmp_path / "side", sidecar=True, skip_existing=True))
    assert (again.count("skipped"), again.count("failed")) == (3, 1)
    assert enhance_paths([tmp_path / "in"], cfg(tmp_path / "out", overwrite=True)).count("done") == 4


def test_entry_says_what_a_path_is(tmp_path, monkeypatch):
    from deepexpose.enhance import _entry

    save(tmp_path / "a.png", photo(0))
    (tmp_path / "gone").symlink_to("nowhere")
    assert [_entry(tmp_path), _entry(tmp_path / "a.png"), _entry(tmp_path / "gone"), _entry(tmp_path / "no")] == [
        "folder", "file", "a symbolic link to nothing", "no such file or folder"]

    def stat(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "stat", stat)
    assert _entry(tmp_path / "a.png") == "permission denied"  # a file under a folder that cannot be searched


def test_output_folder_inside_the_input_folder(tmp_path):
    src = tmp_path / "in"
    for i in range(2):
        save(src / f"{i}.png", photo(i))
    first = enhance_paths([src], cfg(src / "enhanced"))
    stamp = {p.name: p.stat().st_mtime_ns for p in (src / "enhanced").iterdir()}
    # a rerun (say, after a kill) neither enhances the outputs again nor calls the inputs' own outputs a clash
    again = enhance_paths([src], cfg(src / "enhanced", skip_existing=True))
    assert first.count("done") == 2 and again.count("skipped") == 2 and again.exit_code == 0
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*")) == [
        "0.png", "1.png", "enhanced", "enhanced/0.png", "enhanced/1.png"]
    assert {p.name: p.stat().st_mtime_ns for p in (src / "enhanced").iterdir()} == stamp
    # a folder of the same name elsewhere in the tree is still an input
    save(src / "sub" / "enhanced" / "2.png", photo(2))
    assert [j.source.name for j in collect_jobs([src], src / "enhanced")[0]] == ["0.png", "1.png", "2.png"]


def test_other_files_in_folders_are_counted_not_lost(tmp_path):
    src = tmp_path / "in"
    save(src / "a.png", photo(1))
    for name in ("b.svg", "c.SVG", "sub/d.psd", "notes", ".hidden.txt"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"x")
    jobs, bad, ignored = collect_jobs([src], tmp_path / "out")
    assert [j.source.name for j in jobs] == ["a.png"] and bad == []
    assert ignored == {".svg": 2, ".psd": 1, "(no extension)": 1}
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert s.count("done") == 1 and s.exit_code == 0 and s.ignored == ignored
    assert str(s).splitlines()[-1] == ("  ignored in the folders, not an image or video deepexpose reads: 4 files "
                                       "((no extension) 1, .psd 1, .svg 2)")


def test_jobs_two_processes(tmp_path):
    src = tmp_path / "in"
    for i in range(3):
        save(src / f"{i}.png", photo(i))
    (src / "bad.png").write_bytes(b"nope")
    s = enhance_paths([src], cfg(tmp_path / "par", jobs=2))
    serial = enhance_paths([src], cfg(tmp_path / "ser"))
    assert s.count("done") == serial.count("done") == 3 and s.count("failed") == serial.count("failed") == 1
    assert digest(tmp_path / "par") == digest(tmp_path / "ser")


def _dies_on_die(job):
    """A ``--jobs`` worker's work that kills its own process on a file named ``die*`` (as the kernel kills one out
    of memory)."""
    from deepexpose.enhance import Outcome

    if job.source.name.startswith("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    return Outcome(str(job.source), str(job.output), "done")


def test_a_worker_process_that_dies_fails_its_own_file_and_the_batch_goes_on():
    from deepexpose.enhance import WORKER_DIED, Job, pooled

    names = ["a", "die", "b", "c", "d"]
    jobs = [Job(Path(n), Path("out") / n) for n in names]
    got = [(Path(o.source).name, o.status, o.reason) for o in pooled(jobs, _dies_on_die, 2)]
    assert got == [("a", "done", ""), ("die", "failed", WORKER_DIED), ("b", "done", ""), ("c", "done", ""),
                   ("d", "done", "")]


def test_workers_that_cannot_start_leave_the_rest_to_this_process_with_a_warning():
    from deepexpose.enhance import POOL_STRIKES, Job, Outcome, pooled

    jobs = [Job(Path(n), Path("out") / n) for n in "abc"]
    here = []

    def fallback(job):
        here.append(job.source.name)
        return Outcome(str(job.source), str(job.output), "done", "here")

    with pytest.warns(DeepExposeWarning, match=f"{POOL_STRIKES} pools of worker processes in a row could not start"):
        got = [(Path(o.source).name, o.status) for o in pooled(jobs, _dies_on_die, 2, int, ("x",), fallback)]
    assert got == [("a", "done"), ("b", "done"), ("c", "done")] and here == ["a", "b", "c"]  # int("x") fails
    with pytest.raises(RuntimeError, match="run without --jobs"):
        list(pooled(jobs, _dies_on_die, 2, int, ("x",)))


def test_an_interrupted_run_says_what_it_did_before_it(tmp_path, monkeypatch, capsys):
    import deepexpose.enhance as enhance
    from deepexpose.cli import main

    src = tmp_path / "in"
    for i in range(4):
        save(src / f"{i}.png", photo(i))
    (src / "1.png").write_bytes(b"nope")
    real = enhance.run_job

    def stopped(method, job, cfg):
        if job.source.name == "3.png":
            raise KeyboardInterrupt
        return real(method, job, cfg)

    monkeypatch.setattr(enhance, "run_job", stopped)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--method", "classic", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "deepexpose enhance: interrupted; before it: 2 done, 0 skipped, 1 failed" in err
    assert "  failed: " in err and "1.png" in err and "--skip-existing finishes the rest" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "2.png"]


def test_the_bundled_agents_edit_is_the_same_whatever_the_number_of_torch_threads():
    from deepexpose.methods import AgentMethod, ClassifierMethod

    before = torch.get_num_threads()
    try:
        for method in (AgentMethod(), ClassifierMethod()):
            for seed in (7, 30, 32, 39):  # photos whose edits differed in the sixth digit with one thread or two
                pixels = (photo(seed, 200, 300) * 255).round().astype(np.uint8)
                edits = []
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    edits.append(method.plan(pixels).edit)
                assert edits[0] == edits[1]
    finally:
        torch.set_num_threads(before)


def test_a_sigterm_lost_while_ffmpeg_was_started_still_stops_the_batch(tmp_path, monkeypatch, capsys):
    """A signal handler's exception raised inside a fork handler is discarded by Python (imageio-ffmpeg starts
    ffmpeg with preexec_fn): the signal is kept in cli.STOPPED and the batch stops after the file it came in."""
    import deepexpose.cli as cli
    import deepexpose.enhance as enhance

    src = tmp_path / "in"
    for i in range(3):
        save(src / f"{i}.png", photo(i))
    real = enhance.run_job

    def swallowed(method, job, cfg):
        if job.source.name == "0.png":
            cli.STOPPED.append(cli.Terminated)  # as _on_sigterm does before its raise went nowhere
        return real(method, job, cfg)

    monkeypatch.setattr(enhance, "run_job", swallowed)
    assert cli.main(["enhance", str(src), "-o", str(tmp_path / "out"), "--method", "classic", "--no-progress"]) == 143
    assert "deepexpose enhance: terminated; before it: 1 done, 0 skipped, 0 failed" in capsys.readouterr().err
    assert cli.STOPPED == [] and [p.name for p in (tmp_path / "out").iterdir()] == ["0.png"]


def test_jobs_two_processes_get_the_agents_options(tmp_path, agent_model):
    src = tmp_path / "in"
    for i in range(2):
        save(src / f"{i}.png", photo(i))
    for single in (False, True):
        options = {"method": "agent", "model": str(agent_model), "sidecar": True, "single_view": single}
        assert enhance_paths([src], cfg(tmp_path / f"par{single}", jobs=2, **options)).count("done") == 2
        assert enhance_paths([src], cfg(tmp_path / f"ser{single}", **options)).count("done") == 2
        assert digest(tmp_path / f"par{single}") == digest(tmp_path / f"ser{single}")
        side = json.loads((tmp_path / f"par{single}" / "0.png.json").read_text())
        assert side["views"] == ("whole photo" if single else "consensus")
    assert digest(tmp_path / "parTrue") != digest(tmp_path / "parFalse")


def test_metadata_round_trips(tmp_path):
    src = tmp_path / "in"
    icc = b"\0" * 16 + b"RGB " + b"\0" * 108  # a (fake) RGB profile, kept byte for byte
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the output is upright with Orientation 1
    exif[0x010F] = "TestCam"
    save(src / "rot.jpg", photo(1), quality=95, exif=exif.tobytes(), icc_profile=icc)
    save(src / "deep.png", photo(2), bits=16)
    rgba = np.dstack([photo(3), np.linspace(0, 1, 64)[None, :].repeat(48, 0)])
    Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(src / "alpha.png")
    assert enhance_paths([src], cfg(tmp_path / "out")).exit_code == 0
    out = tmp_path / "out"
    with Image.open(out / "rot.jpg") as im:
        assert im.size == (48, 64)  # rotated upright
        assert im.info.get("icc_profile") == icc
        e = im.getexif()
        assert e.get(0x0112) == 1 and e.get(0x010F) == "TestCam"
    assert read_image(out / "deep.png").bit_depth == 16
    a_in, a_out = read_image(src / "alpha.png"), read_image(out / "alpha.png")
    assert np.array_equal(a_in.alpha, a_out.alpha)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bmp = write_image(tmp_path / "bmp_in" / "alpha.bmp", a_in)
        assert enhance_paths([bmp], cfg(tmp_path / "bmp", sidecar=True)).exit_code == 0
    assert np.array_equal(read_image(tmp_path / "bmp" / "alpha.bmp").alpha, a_in.alpha)  # a BMP keeps it too
    assert not any("transparency" in str(w.message) for w in seen)
    assert "left_out" not in json.loads((tmp_path / "bmp" / "alpha.bmp.json").read_text())


def test_xmp_and_dpi_are_kept(tmp_path):
    src = tmp_path / "in"
    exif = Image.Exif()
    exif[0x0112] = 6  # turned upright: the XMP orientation says so too, and x and y resolution swap
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6" xmp:Rating="5"/></x:xmpmeta>'
    save(src / "rot.jpg", photo(1), quality=95, exif=exif.tobytes(), xmp=xmp, dpi=(300, 200))
    assert enhance_paths([src], cfg(tmp_path / "out")).exit_code == 0
    before, after = read_image(src / "rot.jpg"), read_image(tmp_path / "out" / "rot.jpg")
    assert after.pixels.shape == (64, 48, 3)
    assert not np.allclose(after.pixels, before.pixels, atol=2 / 255)  # edited, not copied
    assert after.xmp == xmp.replace(b'Orientation="6"', b'Orientation="1"') and after.dpi == (200.0, 300.0)


def test_a_grayscale_photo_stays_grayscale(tmp_path):
    from deepexpose.io import write_image

    src = tmp_path / "in"
    src.mkdir()
    grey = photo(4).mean(axis=2)
    gray_icc = b"\0" * 16 + b"GRAY" + b"\0" * 108  # a (fake) gray profile, kept byte for byte
    Image.fromarray((grey * 255).round().astype(np.uint8), "L").save(src / "bw.png", icc_profile=gray_icc)
    Image.fromarray((grey * 255).round().astype(np.uint8), "L").save(src / "bw.jpg", quality=95)
    write_image(src / "bw16.png", np.repeat(grey[..., None], 3, axis=2), bit_depth=16, grey=True)
    save(src / "colour.png", photo(5))
    assert enhance_paths([src], cfg(tmp_path / "out")).exit_code == 0
    out = tmp_path / "out"
    for name, bits in (("bw.png", 8), ("bw.jpg", 8), ("bw16.png", 16)):
        before, after = read_image(src / name), read_image(out / name)
        assert after.grey and after.bit_depth == bits, name
        assert not np.allclose(after.pixels, before.pixels, atol=2 / 255), name  # edited, not copied
    assert read_image(out / "bw.png").icc_profile == gray_icc
    assert not read_image(out / "colour.png").grey
    with Image.open(out / "bw.jpg") as im:
        assert im.mode == "L"


def test_killed_run_finishes_on_rerun(tmp_path):
    src = tmp_path / "in"
    for i in range(40):
        save(src / f"{i:02d}.png", photo(i, 96, 128))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "deepexpose.cli", "enhance", str(src), "-o", str(out), "--method", "classic",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len([p for p in out.glob("*.png")]) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.png")}
    assert 3 <= len(finished) < 40, "the run should have been killed halfway"
    for name in finished:  # every visible output is a complete image
        read_image(out / name)
    r = subprocess.run(cmd + ["--skip-existing"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{40 - len(finished)} done, {len(finished)} skipped, 0 failed" in r.stdout
    for name, (mtime, data) in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime and (out / name).read_bytes() == data
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(os.listdir(src))
    assert not list(out.glob(".*.tmp-*"))  # what the killed run was writing is gone too


def test_an_unexpected_error_fails_only_that_file(tmp_path, monkeypatch):
    import deepexpose.enhance as enh

    src = tmp_path / "in"
    for i in range(3):
        save(src / f"{i}.png", photo(i))
    real = enh.enhance_image

    def flaky(method, source, output, cfg):
        if source.name == "1.png":
            raise TypeError("something nobody planned for")
        if source.name == "2.png":  # a photo too large for the memory left
            raise MemoryError
        return real(method, source, output, cfg)

    monkeypatch.setattr(enh, "enhance_image", flaky)
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert s.count("done") == 1 and s.failed[0].reason == "TypeError: something nobody planned for"
    assert s.failed[1].reason.startswith("not enough memory for this file (MemoryError)")


def test_quality_for_keeps_a_lossless_webp_lossless_unless_a_quality_is_given():
    from deepexpose.enhance import DEFAULT_QUALITY
    from deepexpose.io import Image as Img

    lossless, lossy = Img(np.zeros((2, 2, 3), np.float32), lossless=True), Img(np.zeros((2, 2, 3), np.float32))
    cfg = EnhanceConfig()
    assert cfg.quality_for(lossless, Path("a.WEBP")) == 100 and DEFAULT_QUALITY == 95
    assert cfg.quality_for(lossless, Path("a.png")) == cfg.quality_for(lossy, Path("a.webp")) == 95
    assert cfg.quality_for(None, Path("clip.mp4")) == 95
    assert EnhanceConfig(quality=80).quality_for(lossless, Path("a.webp")) == 80


def save_heif(path, pixels, **kw):
    """An 8-bit HEIC or AVIF written by pillow-heif's or Pillow's own saver (an EXIF orientation becomes irot/imir)."""
    from deepexpose.io import register_heif

    assert register_heif()
    return save(path, pixels, quality=95, **kw)


def test_heic_and_avif_are_written_in_their_own_format(tmp_path):
    src = tmp_path / "in"
    save_heif(src / "p.heic", photo(1))
    save_heif(src / "sub" / "q.avif", photo(2))
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert (s.count("done"), s.exit_code) == (2, 0), str(s)
    for name, fmt, brand in (("p.heic", "HEIF", b"heic"), ("sub/q.avif", "AVIF", b"avif")):
        out = tmp_path / "out" / name
        assert out.read_bytes()[4:12] == b"ftyp" + brand
        after = read_image(out)
        assert after.format == fmt and after.pixels.shape == (48, 64, 3) and after.bit_depth == 8
        assert not np.allclose(after.pixels, read_image(src / name).pixels, atol=4 / 255), name  # edited, not copied


def test_format_jpg_converts_a_rotated_heic_with_its_exif_and_icc(tmp_path):
    icc = b"\0" * 16 + b"RGB " + b"\0" * 108  # a (fake) RGB profile, kept byte for byte
    exif = Image.Exif()
    exif[0x0112] = 6  # stored by pillow-heif as irot, and kept in the EXIF, which readers must ignore
    exif[0x010F] = "TestCam"
    heic = save_heif(tmp_path / "in" / "p.heic", photo(1), exif=exif.tobytes(), icc_profile=icc)
    for folder, strength in (("edit", 1.0), ("same", 0.0)):
        assert enhance_paths([heic], cfg(tmp_path / folder, format="jpg", strength=strength)).exit_code == 0
        with Image.open(tmp_path / folder / "p.jpg") as im:
            assert im.format == "JPEG" and im.size == (48, 64)  # turned upright once
            assert im.info.get("icc_profile") == icc
            e = im.getexif()
            assert e.get(0x0112) == 1 and e.get(0x010F) == "TestCam"
    same = read_image(tmp_path / "same" / "p.jpg").pixels
    assert np.abs(same - np.rot90(photo(1), -1)).mean() < 3 / 255  # the pixels, turned the right way


def test_unchanged_heic_and_avif_are_copied_and_16_bits_go_to_10_bit_heic(tmp_path):
    import pillow_heif

    from deepexpose.io import write_image

    src, out = tmp_path / "in", tmp_path / "out"
    exif = Image.Exif()
    exif[0x0112] = 6
    save_heif(src / "rot.heic", photo(1), exif=exif.tobytes())
    save_heif(src / "rot.avif", photo(2), exif=exif.tobytes())  # irot: applied by every reader of the copy
    write_image(src / "deep.heic", photo(3), bit_depth=16)
    save(src / "d16.png", photo(4), bits=16)
    s = enhance_paths([src], cfg(out / "zero", strength=0.0, sidecar=True))
    assert (s.count("done"), s.exit_code) == (4, 0), str(s)
    for name in ("rot.heic", "rot.avif", "deep.heic", "d16.png"):
        assert (out / "zero" / name).read_bytes() == (src / name).read_bytes(), name
        assert json.loads((out / "zero" / f"{name}.json").read_text())["copied"] is True, name
    assert enhance_paths([src / "deep.heic", src / "d16.png"], cfg(out / "edit", format="heic")).exit_code == 0
    for name in ("deep.heic", "d16.png"):
        path = out / "edit" / Path(name).with_suffix(".heic").name
        assert pillow_heif.open_heif(path, convert_hdr_to_8bit=False).info["bit_depth"] == 10, name
        assert read_image(path).bit_depth == 16
    assert enhance_paths([src / "deep.heic"], cfg(out / "avif", format="avif")).exit_code == 0
    assert read_image(out / "avif" / "deep.avif").bit_depth == 8  # AVIF is written 8-bit
    with pytest.raises(ValueError, match="--bit-depth 16 needs --format png, tiff or heic"):
        enhance_paths([src / "deep.heic"], cfg(out / "x", format="avif", bit_depth=16))


def test_a_display_p3_heic_keeps_its_colours_described_in_every_output(tmp_path):
    from deepexpose.cicp import Cicp, icc_profile
    from deepexpose.io import _isobmff_meta, _nclx

    p3 = Cicp(12, 13, 1, True)
    src = make_nclx_heic(tmp_path / "in" / "p3.heic", (photo(1) * 255).round().astype(np.uint8), p3)
    for fmt in ("", "jpg", "png", "tiff"):
        out = tmp_path / f"out-{fmt or 'same'}"
        assert enhance_paths([src], cfg(out, format=fmt)).exit_code == 0
        written = next(out.iterdir())
        if fmt:
            assert read_image(written).icc_profile == icc_profile(p3), fmt
        else:  # HEIC: the code points themselves
            assert _nclx(_isobmff_meta(written.read_bytes())) == p3


def test_an_hdr_heic_is_edited_with_a_warning_saying_what_keeps_it(tmp_path):
    from deepexpose import DeepExposeWarning
    from deepexpose.cicp import Cicp

    pq = Cicp(9, 16, 9, False)
    src = make_nclx_heic(tmp_path / "in" / "pq.heic", (photo(2) * 1023).round().astype(np.uint16), pq)
    with pytest.warns(DeepExposeWarning, match=r"pq.heic is HDR \(PQ\).*its HDR colour description is kept"):
        assert enhance_paths([src], cfg(tmp_path / "heic")).exit_code == 0
    assert read_image(tmp_path / "heic" / "pq.heic").cicp == pq
    with pytest.warns(DeepExposeWarning, match=r"HDR \(PQ\).*its HDR colour description is kept"):
        assert enhance_paths([src], cfg(tmp_path / "png", format="png", bit_depth=16)).exit_code == 0
    assert read_image(tmp_path / "png" / "pq.png").cicp == Cicp(9, 16, 0, True)
    with pytest.warns(DeepExposeWarning, match=r"HDR \(PQ\).*\.tif output cannot describe it"):
        assert enhance_paths([src], cfg(tmp_path / "tif", format="tiff")).exit_code == 0
    assert read_image(tmp_path / "tif" / "pq.tif").icc_profile is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # an SDR photo: no warning
        assert enhance_paths([save_heif(tmp_path / "in2" / "s.heic", photo(3))], cfg(tmp_path / "sdr")).exit_code == 0


def test_iptc_comments_and_png_text_survive_an_edit(tmp_path):
    import struct

    from deepexpose.io import Notes, write_image

    iptc = b"\x1c\x02\x78\x00\x0bA caption.!"
    photoshop = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00"
    src = save(tmp_path / "in" / "a.jpg", photo(1), quality=95, comment=b"roll 12",
               extra=b"\xff\xed" + struct.pack(">H", len(photoshop) + 2) + photoshop)
    png = write_image(tmp_path / "in" / "b.png", photo(2), notes=Notes(None, b"hi", (("Author", "Zoë"),)))
    assert enhance_paths([src, png], cfg(tmp_path / "out")).exit_code == 0
    assert read_image(tmp_path / "out" / "a.jpg").notes == Notes(iptc, b"roll 12")
    assert read_image(tmp_path / "out" / "b.png").notes == Notes(None, b"hi", (("Author", "Zoë"),))
    assert not np.allclose(read_image(tmp_path / "out" / "b.png").pixels, read_image(png).pixels)  # edited


def raw_scene(h=32, w=48):
    y, x = np.mgrid[0:h, 0:w]
    return 0.05 + 0.2 * x / w + 0.1 * y / h  # a dim gradient


def test_a_raw_photo_is_written_as_a_16_bit_tiff_or_in_the_format_asked(tmp_path):
    from PIL.TiffImagePlugin import IFDRational

    from deepexpose.io import _srgb_profile

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_dng(src / "sub" / "a.dng", raw_scene(), orientation=6, exif={0x829A: IFDRational(1, 250), 0x8827: 200})
    before = digest(src)
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert (s.count("done"), s.exit_code) == (1, 0), str(s)
    assert digest(src) == before
    assert [p.name for p in (tmp_path / "out" / "sub").iterdir()] == ["a.tif"]
    img = read_image(tmp_path / "out" / "sub" / "a.tif")
    assert (img.format, img.bit_depth, img.pixels.shape) == ("TIFF", 16, (48, 32, 3))
    assert img.icc_profile == _srgb_profile()
    assert not np.allclose(img.pixels, read_image(src / "sub" / "a.dng").pixels, atol=2 / 255)  # corrected
    with Image.open(tmp_path / "out" / "sub" / "a.tif") as im:  # the TIFF keeps the EXIF directory
        exif = im.getexif()
        assert exif[0x010F] == "TestMake" and exif.get_ifd(0x8769) == {0x829A: IFDRational(1, 250), 0x8827: 200}
    assert enhance_paths([src / "sub" / "a.dng"], cfg(tmp_path / "jpg", format="jpg")).exit_code == 0
    with Image.open(tmp_path / "jpg" / "a.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (32, 48)
        exif = im.getexif()
        assert exif[0x010F] == "TestMake" and exif.get(0x0112) == 1 and exif.get_ifd(0x8769)[0x829A] == 1 / 250


def test_an_unchanged_raw_photo_is_developed_not_copied(tmp_path):
    (tmp_path / "in").mkdir()
    dng = make_dng(tmp_path / "in" / "a.dng", raw_scene())
    s = enhance_paths([dng], cfg(tmp_path / "out", strength=0.0, sidecar=True))
    assert s.exit_code == 0, str(s)
    out = tmp_path / "out" / "a.tif"
    assert "copied" not in json.loads((tmp_path / "out" / "a.tif.json").read_text())
    assert np.array_equal(read_image(out).pixels, read_image(dng).pixels)  # the developed pixels, 16 bits


def test_a_raw_and_a_tiff_of_one_name_collide(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_dng(src / "a.dng", raw_scene())
    save(src / "a.tif", photo(1))
    before = digest(src)
    s = enhance_paths([src], cfg(tmp_path / "out"))
    assert digest(src) == before
    assert [(Path(o.source).name, o.status) for o in s.outcomes] == [("a.tif", "failed"), ("a.dng", "done")]
    assert "collides with that of" in s.failed[0].reason and "a.dng" in s.failed[0].reason
    assert read_image(tmp_path / "out" / "a.tif").bit_depth == 16  # the RAW's, not the 8-bit TIFF's


def test_frames_of_raw_photos_are_written_as_tiffs(tmp_path):
    from deepexpose.video import frame_outputs

    frames = tmp_path / "shot"
    frames.mkdir()
    for i in (1, 2):
        make_dng(frames / f"f{i}.dng", raw_scene() * (1 + 0.1 * i))
    s = enhance_paths([frames], cfg(tmp_path / "out", frames=True))
    assert s.exit_code == 0, str(s)
    assert sorted(p.name for p in (tmp_path / "out" / "shot").iterdir()) == ["f1.tif", "f2.tif"]
    assert read_image(tmp_path / "out" / "shot" / "f2.tif").bit_depth == 16
    save(frames / "f1.tif", photo(1))
    with pytest.raises(ValueError, match="f1.dng and f1.tif would both be written as f1.tif"):
        frame_outputs(frames, tmp_path / "again")


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiffs_channel_of_unspecified_meaning_is_named_as_left_out(tmp_path, bits):
    """An RGB TIFF with a fourth sample that is not alpha (ExtraSamples 0): the channel was dropped silently."""
    import tifffile

    from deepexpose import DeepExposeWarning

    a = (np.linspace(0, 120, 48 * 64 * 4) % 121).astype(np.uint16 if bits == 16 else np.uint8).reshape(48, 64, 4)
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "mask.tif", a, photometric="rgb", extrasamples=[0])
    tifffile.imwrite(src / "alpha.tif", a, photometric="rgb", extrasamples=[2])
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match=r"mask.tif: left out of the output: its extra channel") as seen:
        assert enhance_paths([src], cfg).exit_code == 0
    assert len(seen) == 1  # alpha is carried through
    doc = json.loads((tmp_path / "out" / "mask.tif.json").read_text())
    assert doc["left_out"].startswith("its extra channel of unspecified meaning (TIFF ExtraSamples 0")
    assert "left_out" not in json.loads((tmp_path / "out" / "alpha.tif.json").read_text())
    assert read_image(tmp_path / "out" / "mask.tif").alpha is None


def test_a_multi_page_tiff_keeps_every_page_each_enhanced_on_its_own(tmp_path):
    """A TIFF written as a TIFF keeps its pages, each corrected as a photo of its own (was: the first alone, the
    others left out with a warning); written as another format, only the first page is, with that warning."""
    import tifffile

    from deepexpose import DeepExposeWarning

    a = (np.linspace(0, 120, 48 * 64 * 3) % 121).astype(np.uint8).reshape(48, 64, 3)
    gray16 = np.linspace(0, 30000, 20 * 24).astype(np.uint16).reshape(20, 24)
    rgba = np.concatenate([a[:32, :40][::-1], np.full((32, 40, 1), 200, np.uint8)], axis=2)
    src = tmp_path / "in"
    src.mkdir()
    pages = [(a, dict(photometric="rgb")),
             (gray16, dict(photometric="minisblack", resolution=(300, 300), resolutionunit="INCH")),
             (rgba, dict(photometric="rgb", extrasamples=["unassalpha"]))]
    with tifffile.TiffWriter(src / "pages.tif") as tw:
        tw.write(a[::4, ::4], photometric="rgb", subfiletype=1)  # a thumbnail first: no page of its own
        for data, options in pages:
            tw.write(data, **options)
    alone = tmp_path / "alone"
    alone.mkdir()
    for i, (data, options) in enumerate(pages):
        tifffile.imwrite(alone / f"p{i}.tif", data, **options)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # nothing is left out
        assert enhance_paths([src], cfg).exit_code == 0
    assert enhance_paths([alone], cfg.__class__(**{**cfg.__dict__, "out": str(tmp_path / "each")})).exit_code == 0
    out = tmp_path / "out" / "pages.tif"
    assert read_image(out).pictures == 3
    for i in range(3):
        page = read_image(out, page=i, dtype="native")
        each = read_image(tmp_path / "each" / f"p{i}.tif", dtype="native")
        assert (page.bit_depth, page.grey) == (each.bit_depth, each.grey) == ((16, True) if i == 1 else (8, False))
        assert np.array_equal(page.pixels, each.pixels) and not np.array_equal(page.pixels, read_image(
            src / "pages.tif", page=i, dtype="native").pixels), i  # changed, as the page alone is
        assert (page.alpha is None) == (i != 2) and (i != 2 or np.array_equal(page.alpha, each.alpha))
    assert read_image(out, page=1).dpi == (300.0, 300.0)
    doc = json.loads((tmp_path / "out" / "pages.tif.json").read_text())
    sizes = [(p["page"], p["size"]) for p in doc["pages"]]
    assert "left_out" not in doc and sizes == [(2, [24, 20]), (3, [40, 32])] and doc["size"] == [64, 48]
    assert [p["edit"] for p in doc["pages"]] == [json.loads((tmp_path / "each" / f"p{i}.tif.json").read_text())[
        "edit"] for i in (1, 2)]
    png = EnhanceConfig(out=str(tmp_path / "png"), method="classic", sidecar=True, progress=False, format="png")
    with pytest.warns(DeepExposeWarning, match=r"pages.tif: left out of the output: 2 of the file's 3 pages") as seen:
        assert enhance_paths([src / "pages.tif"], png).exit_code == 0
    assert len(seen) == 1
    doc = json.loads((tmp_path / "png" / "pages.png.json").read_text())
    assert doc["left_out"] == "2 of the file's 3 pages: only the first is enhanced" and "pages" not in doc
    assert np.array_equal(read_image(tmp_path / "png" / "pages.png").pixels, read_image(out).pixels)


def test_an_enhanced_photos_exif_thumbnail_shows_the_enhanced_photo(tmp_path):
    dark = np.full((96, 128, 3), 25, np.uint8)
    dark[:, ::2] = 35
    src = tmp_path / "in" / "dark.jpg"
    src.parent.mkdir()
    Image.fromarray(dark).save(src, exif=exif_with_thumbnail(np.full((120, 160, 3), 30, np.uint8)), quality=95)
    assert enhance_paths([src], EnhanceConfig(out=str(tmp_path / "out"), method="classic",
                                              progress=False)).exit_code == 0
    out = read_image(tmp_path / "out" / "dark.jpg", dtype="native")
    assert out.pixels.mean() > 60  # brightened ...
    assert abs(exif_thumbnail(out.exif).mean() - out.pixels.mean()) < 5  # ... and so is its thumbnail


def test_typescript_sources_named_like_transport_streams_are_not_taken_for_clips(tmp_path):
    from deepexpose.enhance import is_transport_stream

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "index.ts").write_text("export const x: number = 1;\n" * 20)
    (tmp_path / "in" / "util.mts").write_text("export {};\n")
    packet = b"\x47" + bytes(187)
    (tmp_path / "in" / "tv.ts").write_bytes(packet * 3)
    (tmp_path / "in" / "cam.m2ts").write_bytes((bytes(4) + packet) * 3)  # M2TS: a timestamp before each packet
    assert not is_transport_stream(tmp_path / "in" / "index.ts")
    assert not is_transport_stream(tmp_path / "in" / "util.mts")
    assert is_transport_stream(tmp_path / "in" / "tv.ts") and is_transport_stream(tmp_path / "in" / "cam.m2ts")
    jobs, bad, ignored = collect_jobs([tmp_path / "in"], tmp_path / "out")
    assert sorted(j.source.name for j in jobs) == ["cam.m2ts", "tv.ts"] and ignored == {".ts": 1, ".mts": 1}
    jobs, bad, _ = collect_jobs([tmp_path / "in" / "index.ts"], tmp_path / "out")
    assert not jobs and "not an MPEG transport stream" in bad[0].reason


def _phone_jpeg(path, *, dark=40):
    """A dark phone JPEG followed by a preview, an Ultra HDR gain map, a stereo second view and a motion photo's
    video; returns the gain map and the video as written."""
    from conftest import GAIN_MAP_XMP, MP_DISPARITY, MP_PREVIEW, MP_UNDEFINED, container_xmp, jpeg_bytes, multi_picture

    y, x = np.mgrid[0:48, 0:64]
    photo = np.stack([dark + x // 4, dark + y // 4, dark + (x + y) // 8], axis=2).astype(np.uint8)
    gain = jpeg_bytes((x[::4, ::4] * 4).astype(np.uint8), xmp=GAIN_MAP_XMP)
    video = b"\0\0\0\x18ftypmp42" + bytes(300)
    head = jpeg_bytes(photo, xmp=container_xmp(("GainMap", "image/jpeg", len(gain)), ("MotionPhoto", "video/mp4",
                                                                                          len(video))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(multi_picture(head, [(MP_PREVIEW, jpeg_bytes(photo[::4, ::4])), (MP_UNDEFINED, gain),
                                          (MP_DISPARITY, jpeg_bytes(photo[:, ::-1]))], after=video))
    return gain, video


def test_a_phone_jpegs_preview_gain_map_second_view_and_video_come_through_enhance(tmp_path):
    from PIL.MpoImagePlugin import MpoImageFile

    from deepexpose import DeepExposeWarning

    gain, video = _phone_jpeg(tmp_path / "in" / "phone.jpg")
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # nothing is left out
        assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    out = tmp_path / "out" / "phone.jpg"
    with MpoImageFile(out) as im:  # Pillow takes a JPEG with Ultra HDR XMP for a plain one unless asked
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im).astype(float))
    source = read_image(tmp_path / "in" / "phone.jpg", dtype="native").pixels.astype(float)
    assert frames[0].mean() > source.mean() + 20  # auto exposure brightened the photo...
    assert abs(frames[3].mean() - frames[0].mean()) < 2  # ... and its second view alike
    assert abs(frames[1].mean() - frames[0].mean()) < 2  # the preview shows the edited photo
    trailer = read_image(out).trailer
    assert trailer.parts[1].data == gain and out.read_bytes().endswith(video)
    doc = json.loads((tmp_path / "out" / "phone.jpg.json").read_text())
    assert [line.split(": ")[1] for line in doc["after_photo"]] == [
        "made again from the edited photo", "kept (an HDR display applies it to the edited photo)",
        "edited as the photo was", "kept as it was"]
    assert "left_out" not in doc


def test_a_phone_jpeg_written_as_png_says_what_it_leaves_out_and_an_unchanged_one_is_copied(tmp_path):
    from deepexpose import DeepExposeWarning

    _phone_jpeg(tmp_path / "in" / "phone.jpg")
    cfg = EnhanceConfig(out=str(tmp_path / "png"), method="classic", sidecar=True, progress=False, format="png")
    with pytest.warns(DeepExposeWarning, match=r"phone.jpg: left out of the output: what follows the photo in the "
                                               r"JPEG, preview \(\d+ bytes\), gain map"):
        assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    doc = json.loads((tmp_path / "png" / "phone.png.json").read_text())
    assert doc["left_out"].endswith("only JPEG output keeps it") and "after_photo" not in doc
    cfg = EnhanceConfig(out=str(tmp_path / "same"), method="classic", progress=False, strength=0.0)
    assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    assert (tmp_path / "same" / "phone.jpg").read_bytes() == (tmp_path / "in" / "phone.jpg").read_bytes()


def test_a_heic_whose_gain_map_and_depth_map_cannot_be_written_says_so_unless_it_is_copied(tmp_path, monkeypatch):
    # pillow-heif writes no auxiliary images, so no file made here holds one: the names read are given instead
    import pillow_heif

    from deepexpose import DeepExposeWarning
    from deepexpose import io as dio

    monkeypatch.setattr(dio, "heif_auxiliary", lambda info: ("depth map", "HDR gain map"))
    y, x = np.mgrid[0:48, 0:64]
    dark = np.stack([20 + x // 4, 20 + y // 4, 30 + x // 8], axis=2).astype(np.uint8)
    (tmp_path / "in").mkdir()
    pillow_heif.encode("RGB", (64, 48), dark.tobytes(), tmp_path / "in" / "iphone.heic", quality=90, thumbnails=[32])
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match=r"iphone.heic: left out of the output: the image's depth map, HDR gain "
                                               r"map: no output written here holds them"):
        assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    doc = json.loads((tmp_path / "out" / "iphone.heic.json").read_text())
    assert doc["left_out"] == "the image's depth map, HDR gain map: no output written here holds them"
    assert pillow_heif.open_heif(tmp_path / "out" / "iphone.heic").info["thumbnails"] == [32]
    cfg = EnhanceConfig(out=str(tmp_path / "same"), method="classic", progress=False, strength=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeepExposeWarning)  # copied byte for byte: nothing left out
        assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    assert (tmp_path / "same" / "iphone.heic").read_bytes() == (tmp_path / "in" / "iphone.heic").read_bytes()


def test_a_damaged_second_view_is_kept_as_it_was_and_the_photo_is_still_enhanced(tmp_path):
    from conftest import MP_DISPARITY, jpeg_bytes, multi_picture

    from deepexpose import DeepExposeWarning

    dark = np.full((48, 64, 3), 40, np.uint8)
    dark[:, ::2] = 50
    whole = jpeg_bytes(dark)
    broken = whole[:whole.index(b"\xff\xda")] + b"\xff\xd9"  # its markers, no scan
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pair.jpg").write_bytes(multi_picture(jpeg_bytes(dark), [(MP_DISPARITY, broken)]))
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match="pair.jpg: the view after the photo cannot be read"):
        assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    out = read_image(tmp_path / "out" / "pair.jpg", dtype="native")
    assert out.pixels.mean() > dark.mean() + 20 and out.trailer.parts[0].data == broken
    doc = json.loads((tmp_path / "out" / "pair.jpg.json").read_text())
    assert doc["after_photo"] == [f"picture ({len(broken)} bytes): kept"]


def test_a_folders_gifs_are_enhanced_as_animations_not_ignored(tmp_path):
    from deepexpose.animation import read_animation, read_frames

    src = tmp_path / "in"
    src.mkdir()
    dark = [np.full((32, 48, 3), v, np.uint8) for v in (30, 34)]
    for a in dark:
        a[:, ::2] += 12
    Image.fromarray(dark[0]).save(src / "still.gif")
    pictures = [Image.fromarray(a) for a in dark]
    pictures[0].save(src / "moving.gif", save_all=True, append_images=pictures[1:], duration=[80, 120], loop=0)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
    summary = enhance_paths([src], cfg)
    assert summary.exit_code == 0 and summary.ignored == {}
    for name, frames in (("still.gif", 1), ("moving.gif", 2)):
        info = read_animation(tmp_path / "out" / name)
        got = list(read_frames(tmp_path / "out" / name, info))
        assert info.frames == frames and all(rgb.mean() > 60 for rgb, _, _ in got)  # brightened
    assert [d for _, _, d in read_frames(tmp_path / "out" / "moving.gif", info)] == [80, 120]


def test_a_photo_whose_output_cannot_be_written_leaves_no_side_files(tmp_path, monkeypatch):
    from deepexpose import enhance as enhance_module
    from deepexpose.io import ImageWriteError

    src = tmp_path / "in"
    save(src / "a.png", photo(1))

    def refuse(path, *args, **kwargs):
        raise ImageWriteError(path, "the disk is full")

    monkeypatch.setattr(enhance_module, "write_image", refuse)
    s = enhance_paths([src], EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, lut=True,
                                           progress=False))
    assert s.count("failed") == 1 and "the disk is full" in str(s)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no sidecar, no LUT of a photo not there


def test_what_an_output_format_cannot_hold_is_told_not_failed(tmp_path):
    from deepexpose import DeepExposeWarning

    src = tmp_path / "in"
    src.mkdir()
    dark = np.full((48, 64, 3), 40, np.uint8)
    dark[:, ::2] = 50
    rgba = np.dstack([dark, np.full((48, 64), 255, np.uint8)])
    rgba[:, :20, 3] = 0
    Image.fromarray(rgba).save(src / "logo.png")
    Image.fromarray(np.dstack([dark, np.full((48, 64), 255, np.uint8)])).save(src / "opaque.png")
    big = Image.Exif()
    big[0x010E] = "x" * 70000  # an ImageDescription no JPEG marker holds
    Image.fromarray(dark).save(src / "bigexif.png", exif=big.tobytes())
    plain = src / "plain.jfif"
    Image.fromarray(dark).save(plain, format="JPEG")
    data = plain.read_bytes()
    (src / "empty_exif.jpg").write_bytes(data[:2] + b"\xff\xe1\x00\x08Exif\x00\x00" + data[2:])
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description xmpNote:HasExtendedXMP="ABC"/></x:xmpmeta>'
    Image.fromarray(dark).save(src / "extended.jpg", xmp=xmp)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False, format="jpg")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        s = enhance_paths([src], cfg)
    assert s.count("done") == 6 and s.exit_code == 0
    told = sorted(str(w.message) for w in seen if issubclass(w.category, DeepExposeWarning))
    assert len(told) == 4
    for expected in ("bigexif.jpg: its EXIF (70,", "empty_exif.jpg: its EXIF cannot be read",
                     "extended.jpg: left out of the output: its extended XMP",
                     "logo.png: left out of the output: its transparency: JPG has none"):
        assert sum(expected in t for t in told) == 1, expected
    doc = json.loads((tmp_path / "out" / "logo.jpg.json").read_text())
    assert doc["left_out"].startswith("its transparency")
    assert "left_out" not in json.loads((tmp_path / "out" / "opaque.jpg.json").read_text())
    assert read_image(tmp_path / "out" / "bigexif.jpg").exif is None
    assert read_image(tmp_path / "out" / "plain.jpg").pixels.mean() > dark.mean() / 255 + 0.05  # .jfif read as JPEG


def test_a_failed_rewrite_puts_back_the_earlier_runs_side_files(tmp_path, monkeypatch):
    from deepexpose import enhance as enhance_module
    from deepexpose import video as video_module
    from deepexpose.io import ImageWriteError

    src = tmp_path / "in"
    save(src / "a.png", photo(1))
    frames = tmp_path / "seq"
    for i in range(2):
        save(frames / f"f{i}.png", photo(i))
    options = dict(method="classic", sidecar=True, lut=True, progress=False)
    assert enhance_paths([src], EnhanceConfig(out=str(tmp_path / "out"), **options)).exit_code == 0
    assert enhance_paths([frames], EnhanceConfig(out=str(tmp_path / "fr"), frames=True, **options)).exit_code == 0
    before = {p: p.read_bytes() for p in [*(tmp_path / "out").iterdir(), *(tmp_path / "fr" / "seq").iterdir()]}

    def refuse(path, *args, **kwargs):
        raise ImageWriteError(path, "the disk is full")

    monkeypatch.setattr(enhance_module, "write_image", refuse)
    monkeypatch.setattr(video_module, "write_image", refuse)
    again = dict(options, strength=0.5, overwrite=True)  # another edit: other side files, had they stayed
    assert enhance_paths([src], EnhanceConfig(out=str(tmp_path / "out"), **again)).exit_code == 1
    assert enhance_paths([frames], EnhanceConfig(out=str(tmp_path / "fr"), frames=True, **again)).exit_code == 1
    after = {p: p.read_bytes() for p in [*(tmp_path / "out").iterdir(), *(tmp_path / "fr" / "seq").iterdir()]}
    assert after == before  # the earlier outputs with their own sidecars and LUTs


def test_frames_say_what_their_outputs_leave_out_once(tmp_path):
    from deepexpose import DeepExposeWarning

    frames = tmp_path / "seq"
    frames.mkdir()
    for i in range(3):
        rgba = np.dstack([np.full((24, 32, 3), 40 + i, np.uint8), np.full((24, 32), 255, np.uint8)])
        rgba[:, :8, 3] = 0
        Image.fromarray(rgba).save(frames / f"f{i}.png")
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", frames=True, sidecar=True, progress=False,
                        format="jpg")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert enhance_paths([frames], cfg).exit_code == 0
    told = [str(w.message) for w in seen if issubclass(w.category, DeepExposeWarning)]
    assert len(told) == 2 and "f0.png: left out of the output: its transparency" in told[0]
    assert "3 frames in all leave something out" in told[1]
    for i in range(3):
        doc = json.loads((tmp_path / "out" / "seq" / f"f{i}.jpg.json").read_text())
        assert doc["left_out"].startswith("its transparency")


def test_a_png_named_gif_comes_back_as_the_gif_its_name_says(tmp_path):
    from deepexpose.animation import read_animation

    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((16, 24, 3), 40, np.uint8)).save(tmp_path / "in" / "really_png.gif", format="PNG")
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
    assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    assert read_animation(tmp_path / "out" / "really_png.gif").format == "GIF"


def test_options_that_do_not_apply_to_clips_and_animations_are_named_once():
    from deepexpose.enhance import Job, warn_of_photo_options

    jobs = [Job(Path("a.jpg"), Path("o/a.jpg")), Job(Path("c.mp4"), Path("o/c.mp4"), "video"),
            Job(Path("d.mov"), Path("o/d.mov"), "video"), Job(Path("g.gif"), Path("o/g.gif"), "animation")]
    cfg = EnhanceConfig(out="o", bit_depth=16, lut=True)
    with pytest.warns(DeepExposeWarning) as record:
        lines = warn_of_photo_options(jobs, cfg)
    assert [str(w.message) for w in record] == lines == [
        "--bit-depth and --lut do not apply to the 2 clip(s), which keep their container and codec (8 or 10 bits, "
        "as the source) and get no LUT", "--lut does not apply to the 1 animation(s), which get no LUT"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_of_photo_options(jobs[:1], cfg) == []  # a photo takes them all
        assert warn_of_photo_options(jobs, EnhanceConfig(out="o", sidecar=True)) == []


def test_a_floating_point_tiff_comes_back_floating_point_unless_another_depth_or_format_is_asked(tmp_path):
    import tifffile

    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "scan.tif", photo(3).astype(np.float32), photometric="rgb")
    runs = {"same": {}, "png": {"format": "png"}, "jpg": {"format": "jpg"}, "ints": {"bit_depth": 16}}
    for name, options in runs.items():
        cfg = EnhanceConfig(out=str(tmp_path / name), method="classic", sidecar=True, progress=False, **options)
        if name in ("png", "jpg"):
            bits = 16 if name == "png" else 8
            with pytest.warns(DeepExposeWarning, match=rf"floating-point samples \(float32\): {name.upper()} output "
                                                       rf"holds integers of {bits} bits at most"):
                assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
        else:
            assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    out = tifffile.imread(tmp_path / "same" / "scan.tif")
    assert out.dtype == np.float32 and out.shape == (48, 64, 3) and 0 <= out.min() and out.max() <= 1
    assert np.abs(out - photo(3)).mean() > 0.01  # corrected, not copied
    assert "left_out" not in json.loads((tmp_path / "same" / "scan.tif.json").read_text())
    assert "float32" in json.loads((tmp_path / "png" / "scan.png.json").read_text())["left_out"]
    assert read_image(tmp_path / "png" / "scan.png").bit_depth == 16
    assert tifffile.imread(tmp_path / "ints" / "scan.tif").dtype == np.uint16
    tifffile.imwrite(tmp_path / "gray.tif", photo(4)[..., 1].astype(np.float32), photometric="minisblack")
    for depth, dtype in ((0, np.float32), (16, np.uint16)):  # unchanged: copied, unless integers are asked for
        cfg = EnhanceConfig(out=str(tmp_path / f"unchanged{depth}"), method="identity", bit_depth=depth,
                            progress=False)
        assert enhance_paths([tmp_path / "gray.tif"], cfg).exit_code == 0
        assert tifffile.imread(tmp_path / f"unchanged{depth}" / "gray.tif").dtype == dtype


def test_no_progress_bar_is_drawn_into_a_pipe(tmp_path):
    """A bar redrawn with carriage returns filled logs and piped output; on a terminal it is drawn as before."""
    Image.new("RGB", (32, 24), (90, 120, 150)).save(tmp_path / "a.png")
    cmd = [sys.executable, "-m", "deepexpose.cli", "enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
           "--method", "classic"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 done, 0 skipped, 0 failed" in done.stdout + done.stderr
    assert "file/s" not in done.stderr and "\r" not in done.stderr
