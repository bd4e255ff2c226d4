"""Tests for deepexpose.io. Every file is made in tmp_path with numpy, Pillow, tifffile or imagecodecs."""

from __future__ import annotations

import io
import itertools
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps
from PIL.TiffImagePlugin import IFDRational

from conftest import exif_thumbnail, exif_with_thumbnail, make_dng, make_nclx_heic
from deepexpose import io as dio
from deepexpose.cicp import Cicp, _build, icc_profile
from deepexpose.io import (
    Image,
    Notes,
    ImageReadError,
    ImageWriteError,
    decode_picture,
    encode_picture,
    from_tensor,
    is_image_file,
    quantize,
    read_image,
    read_preview,
    to_codes,
    to_tensor,
    write_image,
)

H, W = 12, 17  # deliberately not square, so every orientation gives a different layout


def rgb8(h=H, w=W, seed=0):
    """An asymmetric 8-bit RGB image: two gradients and noise."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    gch = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = g.integers(0, 256, (h, w), dtype=np.uint8)
    return np.stack([r, gch, b], axis=2)


def rgb16(h=H, w=W, seed=1):
    """Full-range 16-bit noise: a truncation to 8 bits anywhere would change it."""
    return np.random.default_rng(seed).integers(0, 65536, (h, w, 3), dtype=np.uint16)


def as_u8(pixels):
    return np.rint(np.asarray(pixels) * 255).astype(np.int32)


def as_u16(pixels):
    return np.rint(np.asarray(pixels, dtype=np.float64) * 65535).astype(np.int64)


@pytest.fixture(scope="module")
def icc():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_exif(orientation=None, make="TestCam"):
    exif = PILImage.Exif()
    exif[271] = make
    exif[272] = "Model X"
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()


def exif_tags(data):
    exif = PILImage.Exif()
    exif.load(data)
    return exif


def no_temp_files(directory):
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name] == []


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp", ".webp"])
def test_lossless_8bit_round_trip(tmp_path, ext):
    u8 = rgb8()
    kwargs = {"quality": 100} if ext == ".webp" else {}
    out = write_image(tmp_path / f"a{ext}", u8 / 255.0, **kwargs)
    img = read_image(out)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (H, W, 3)
    assert img.bit_depth == 8 and img.alpha is None and img.path == out
    assert img.format == dio._EXTENSION_FORMATS[ext]
    np.testing.assert_array_equal(as_u8(img.pixels), u8)
    # an independent decoder sees the same pixels
    np.testing.assert_array_equal(np.asarray(PILImage.open(out).convert("RGB")), u8)


@pytest.mark.parametrize("quality", [95, 75])
def test_jpeg_round_trip(tmp_path, quality):
    u8 = rgb8(seed=3)
    u8[..., 2] = 128  # JPEG cannot keep pure noise; keep the test about the pipeline, not the codec
    out = write_image(tmp_path / "a.jpg", u8 / 255.0, quality=quality)
    img = read_image(out)
    assert img.format == "JPEG" and img.bit_depth == 8 and img.pixels.shape == (H, W, 3)
    assert np.abs(as_u8(img.pixels) - u8).mean() < 6
    with PILImage.open(out) as im:  # 4:4:4 at quality >= 90, 4:2:0 below
        layers = im.layer  # (id, h, v, qtable) per component
        assert (layers[0][1] == 1) == (quality >= 90)


def test_webp_lossy(tmp_path):
    u8 = rgb8()
    u8[..., 2] = 100
    img = read_image(write_image(tmp_path / "a.webp", u8 / 255.0, quality=90))
    assert img.format == "WEBP" and np.abs(as_u8(img.pixels) - u8).mean() < 8


@pytest.mark.parametrize("lossless", [True, False])
@pytest.mark.parametrize("kind", ["simple", "alpha", "icc", "animated"])
def test_webp_says_whether_it_is_lossless(tmp_path, icc, lossless, kind):
    u8 = rgb8()
    pim = PILImage.fromarray(np.dstack([u8, u8[..., 0]]), "RGBA") if kind == "alpha" else PILImage.fromarray(u8)
    kw = {"lossless": True} if lossless else {"quality": 80}
    if kind == "icc":
        kw["icc_profile"] = icc
    elif kind == "animated":
        kw.update(save_all=True, append_images=[PILImage.fromarray(255 - u8)])
    pim.save(tmp_path / "a.webp", **kw)
    if kind in ("icc", "animated"):  # the extended layout: the image chunk comes further on
        assert (tmp_path / "a.webp").read_bytes()[12:16] == b"VP8X"
    assert read_image(tmp_path / "a.webp").lossless is lossless
    assert not read_image(write_image(tmp_path / "a.png", u8)).lossless


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_is_bit_exact(tmp_path, ext):
    u16 = rgb16()
    out = write_image(tmp_path / f"a{ext}", u16 / 65535.0, bit_depth=16)
    img = read_image(out)
    assert img.bit_depth == 16 and img.pixels.dtype == np.float32
    np.testing.assert_array_equal(quantize(img.pixels, 16), u16)
    # and the file itself holds the 16-bit values, for an independent decoder
    data = out.read_bytes()
    decoded = imagecodecs.png_decode(data) if ext == ".png" else tifffile.imread(out)
    np.testing.assert_array_equal(decoded, u16)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_alpha_round_trip(tmp_path, ext):
    u16, a16 = rgb16(), rgb16(seed=7)[..., 0]
    out = write_image(tmp_path / f"a{ext}", u16 / 65535.0, alpha=a16 / 65535.0, bit_depth=16)
    img = read_image(out)
    np.testing.assert_array_equal(quantize(img.pixels, 16), u16)
    np.testing.assert_array_equal(quantize(img.alpha, 16), a16)


def test_16bit_png_from_libpng_all_layouts(tmp_path):
    """PNGs written by libpng (adaptive filters): RGB, RGBA, gray, gray+alpha."""
    u16 = rgb16(h=33, w=29)
    cases = {"rgb": u16, "rgba": np.dstack([u16, u16[..., :1] // 3]), "gray": u16[..., :1].copy(),
             "graya": np.dstack([u16[..., :1], u16[..., 1:2]])}
    for name, arr in cases.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(imagecodecs.png_encode(arr, level=9))
        img = read_image(path)
        assert img.bit_depth == 16, name
        color = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
        np.testing.assert_array_equal(as_u16(img.pixels), color, err_msg=name)
        if arr.shape[2] in (2, 4):
            np.testing.assert_array_equal(as_u16(img.alpha), arr[..., -1], err_msg=name)
        else:
            assert img.alpha is None


def test_16bit_tiff_layouts(tmp_path):
    u16 = rgb16()
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(u16, -1, 0), photometric="rgb",
                     planarconfig="separate")
    tifffile.imwrite(tmp_path / "gray.tif", u16[..., 0], photometric="minisblack")
    tifffile.imwrite(tmp_path / "white.tif", u16[..., 0], photometric="miniswhite")
    tifffile.imwrite(tmp_path / "lzw.tif", u16, photometric="rgb", compression="lzw")
    np.testing.assert_array_equal(as_u16(read_image(tmp_path / "planar.tif").pixels), u16)
    np.testing.assert_array_equal(as_u16(read_image(tmp_path / "lzw.tif").pixels), u16)
    gray = read_image(tmp_path / "gray.tif")
    assert gray.bit_depth == 16
    assert 270 not in exif_tags(gray.exif)  # tifffile's '{"shape": ...}' note is not a description
    np.testing.assert_array_equal(as_u16(gray.pixels), np.repeat(u16[..., :1], 3, axis=2))
    white = read_image(tmp_path / "white.tif")
    np.testing.assert_array_equal(as_u16(white.pixels[..., 0]), 65535 - u16[..., 0].astype(np.int64))


def test_tiff_premultiplied_alpha_is_unpremultiplied(tmp_path):
    color = np.full((4, 5, 3), 20000, dtype=np.uint16)
    alpha = np.full((4, 5), 32768, dtype=np.uint16)
    alpha[0, 0] = 0
    premult = np.floor(color.astype(np.float64) * alpha[..., None] / 65535 + 0.5).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", np.dstack([premult, alpha]), photometric="rgb",
                     extrasamples=["assocalpha"])
    img = read_image(tmp_path / "p.tif")
    assert np.abs(as_u16(img.pixels[1:, 1:]) - 20000).max() <= 2
    assert img.pixels[0, 0].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(as_u16(img.alpha), alpha)


# ------------------------------------------------------------------------------------------ orientation


def _reference_layout(shape, orientation):
    """Index map given by Pillow's own exif_transpose on an in-memory image."""
    idx = np.arange(shape[0] * shape[1], dtype=np.int32).reshape(shape[:2])
    im = PILImage.fromarray(idx, "I")
    im.getexif()[0x0112] = orientation
    return np.asarray(ImageOps.exif_transpose(im))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png(tmp_path, orientation):
    u8 = rgb8()
    path = tmp_path / "o.png"
    PILImage.fromarray(u8).save(path, exif=make_exif(orientation))
    img = read_image(path)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(path)))
    assert img.pixels.shape == expected.shape
    np.testing.assert_array_equal(as_u8(img.pixels), expected)
    ref = _reference_layout(u8.shape, orientation)
    np.testing.assert_array_equal(as_u8(img.pixels), u8.reshape(-1, 3)[ref])
    tags = exif_tags(img.exif)
    assert tags.get(0x0112, 1) == 1 and tags[271] == "TestCam"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_16bit(tmp_path, orientation):
    """16-bit TIFF (Orientation tag in the IFD) and 16-bit PNG (eXIf chunk) are turned upright too."""
    u16 = rgb16()
    expected = u16.reshape(-1, 3)[_reference_layout(u16.shape, orientation)]
    tif = tmp_path / "o.tif"
    tifffile.imwrite(tif, u16, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    png = tmp_path / "o.png"
    write_image(png, u16 / 65535.0, bit_depth=16)
    data = png.read_bytes()  # put a raw eXIf chunk with the orientation in front of IDAT
    at = data.index(b"IDAT") - 4
    png.write_bytes(data[:at] + dio._png_chunk(b"eXIf", make_exif(orientation)[6:]) + data[at:])
    for path in (tif, png):
        img = read_image(path)
        np.testing.assert_array_equal(as_u16(img.pixels), expected, err_msg=path.name)
        if orientation != 1:
            assert exif_tags(img.exif)[0x0112] == 1


def test_exif_orientation_jpeg_and_8bit_tiff(tmp_path):
    u8 = rgb8()
    u8[..., 2] = 90
    jpg = tmp_path / "o.jpg"
    PILImage.fromarray(u8).save(jpg, exif=make_exif(6), quality=95)
    tif = tmp_path / "o.tif"
    tifffile.imwrite(tif, u8, photometric="rgb", extratags=[(274, "H", 1, 8, True)])
    for path in (jpg, tif):
        img = read_image(path)
        expected = np.asarray(ImageOps.exif_transpose(PILImage.open(path)))
        assert img.pixels.shape == (W, H, 3)
        np.testing.assert_array_equal(as_u8(img.pixels), expected)
        assert exif_tags(img.exif).get(0x0112) == 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_a_turned_photos_exif_resolution_and_pixel_dimensions_change_places(tmp_path, ext, orientation):
    exif = PILImage.Exif()
    exif[0x0112], exif[282], exif[283], exif[296] = orientation, 300.0, 150.0, 2
    exif.get_ifd(0x8769)[0xA002], exif.get_ifd(0x8769)[0xA003] = W, H
    path = tmp_path / f"o{ext}"
    PILImage.fromarray(rgb8()).save(path, exif=exif.tobytes(), **({"quality": 95} if ext != ".png" else {}))
    img = read_image(path)
    tags = PILImage.Exif()
    tags.load(img.exif)
    turned = orientation != 3
    assert tags[0x0112] == 1 and img.pixels.shape[:2] == ((W, H) if turned else (H, W))
    assert (float(tags[282]), float(tags[283])) == ((150.0, 300.0) if turned else (300.0, 150.0))
    assert (tags.get_ifd(0x8769)[0xA002], tags.get_ifd(0x8769)[0xA003]) == ((H, W) if turned else (W, H))
    # upright pixels given to write_image with such EXIF: nothing turned there, so nothing changes places
    out = write_image(tmp_path / "w.jpg", img.pixels, exif=exif.tobytes())
    again = PILImage.Exif()
    again.load(read_image(out).exif)
    assert again[0x0112] == 1 and float(again[282]) == 300.0


@pytest.mark.parametrize("kind", ["gray", "rgba", "cmyk", "palette", "rgb"])
@pytest.mark.parametrize("orientation", [2, 5, 6, 8])
def test_8bit_tiffs_of_every_kind_are_turned_upright_not_scrambled(tmp_path, kind, orientation):
    """Pillow 13 turns a TIFF itself while loading, and gave gray, palette, RGBA and CMYK ones with a 90-degree
    orientation back scrambled, at their stored size."""
    u8, a8 = rgb8(), rgb8(seed=9)[..., 1]
    ramp = (np.arange(256) * 257).astype(np.uint16)
    palette = {"photometric": "palette", "colormap": np.stack([ramp, ramp[::-1], ramp])}
    stored, options = {"gray": (u8[..., 0], {"photometric": "minisblack"}),
                       "rgba": (np.dstack([u8, a8]), {"photometric": "rgb", "extrasamples": [2]}),
                       "cmyk": (np.dstack([255 - u8, np.zeros((H, W), np.uint8)]), {"photometric": "separated"}),
                       "palette": (u8[..., 0], palette), "rgb": (u8, {"photometric": "rgb"})}[kind]
    tifffile.imwrite(tmp_path / "flat.tif", stored, **options)
    tifffile.imwrite(tmp_path / "turned.tif", stored, extratags=[(274, "H", 1, orientation, True)], **options)
    before = (tmp_path / "turned.tif").read_bytes()
    flat, turned = read_image(tmp_path / "flat.tif"), read_image(tmp_path / "turned.tif")
    where = _reference_layout(u8.shape, orientation)
    np.testing.assert_array_equal(turned.pixels, flat.pixels.reshape(-1, 3)[where])
    if kind == "rgba":
        np.testing.assert_array_equal(turned.alpha, flat.alpha.reshape(-1)[where])
    assert exif_tags(turned.exif).get(0x0112, 1) == 1 and (tmp_path / "turned.tif").read_bytes() == before


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiff_whose_first_page_is_a_thumbnail_is_read_as_its_photo(tmp_path, bits):
    """Some writers put a reduced-resolution copy (NewSubfileType 1) before the photo: the photo was read as the
    thumbnail, and enhance wrote a thumbnail-sized output. Its own orientation, resolution and EXIF come with it."""
    photo = rgb8() if bits == 8 else rgb16()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "thumb-first.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(photo[::3, ::3], photometric="rgb", subfiletype=1, extratags=[(315, "s", 0, "thumbnail", True)])
        tif.write(photo, photometric="rgb", resolution=(300, 150), iccprofile=profile,
                  extratags=[(274, "H", 1, 6, True), (315, "s", 0, "the photo", True)])
    before = path.read_bytes()
    img = read_image(path, dtype="native")
    np.testing.assert_array_equal(img.pixels, np.rot90(photo, -1))
    assert (img.bit_depth, img.pictures, img.icc_profile, img.dpi) == (bits, 1, profile, (150, 300))
    assert exif_tags(img.exif)[315] == "the photo" and exif_tags(img.exif).get(0x0112, 1) == 1
    assert path.read_bytes() == before


def test_big_endian_bigtiffs_of_8_bit_samples_are_read(tmp_path):
    """Pillow reads little-endian BigTIFFs only: these were refused as an 'unsupported TIFF layout', and Pillow's
    misreading of their EXIF printed a warning."""
    u8, a8 = rgb8(), rgb8(seed=9)[..., 1]
    for name, data, options in (("gray.tif", u8[..., 0], {"photometric": "minisblack"}),
                                ("rgb.tif", u8, {"photometric": "rgb", "extratags": [(274, "H", 1, 6, True),
                                                                                    (315, "s", 0, "me", True)]}),
                                ("rgba.tif", np.dstack([u8, a8]), {"photometric": "rgb", "extrasamples": [2]})):
        tifffile.imwrite(tmp_path / name, data, bigtiff=True, byteorder=">", **options)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            img = read_image(tmp_path / name, dtype="native")
        assert (img.bit_depth, img.pixels.dtype) == (8, np.uint8)
        if name == "gray.tif":
            np.testing.assert_array_equal(img.pixels, np.repeat(u8[..., :1], 3, axis=2))
        elif name == "rgb.tif":
            np.testing.assert_array_equal(img.pixels, np.rot90(u8, -1))
            assert exif_tags(img.exif)[315] == "me" and exif_tags(img.exif).get(0x0112, 1) == 1
        else:
            np.testing.assert_array_equal(img.pixels, u8)
            np.testing.assert_array_equal(img.alpha, a8)
    tifffile.imwrite(tmp_path / "cmyk.tif", np.dstack([u8, a8]), photometric="separated", bigtiff=True,
                     byteorder=">")
    assert_read_error(tmp_path / "cmyk.tif", "unsupported big-endian bigtiff tiff layout", "expected gray or rgb")


@pytest.mark.parametrize("compression", ["webp", "jpegxl"])
def test_8bit_tiffs_of_a_compression_pillow_lacks_are_read_as_8_bit(tmp_path, compression):
    """Pillow's libtiff decodes neither; these were refused as 'truncated or corrupt' or as an unsupported layout."""
    u8, a8 = rgb8(), rgb8(seed=9)[..., 1]
    tifffile.imwrite(tmp_path / "rgb.tif", u8, photometric="rgb", compression=compression,
                     extratags=[(274, "H", 1, 6, True)])
    tifffile.imwrite(tmp_path / "rgba.tif", np.dstack([u8, a8]), photometric="rgb", extrasamples=[2],
                     compression=compression)
    for name in ("rgb.tif", "rgba.tif"):
        img = read_image(tmp_path / name, dtype="native")
        stored = tifffile.imread(tmp_path / name)  # what the codec gives back (WebP may be lossy)
        assert (img.bit_depth, img.pixels.dtype, img.format) == (8, np.uint8, "TIFF")
        if name == "rgb.tif":
            np.testing.assert_array_equal(img.pixels, np.rot90(stored, -1))  # orientation 6, turned upright
        else:
            np.testing.assert_array_equal(img.pixels, stored[..., :3])
            np.testing.assert_array_equal(img.alpha, stored[..., 3])


def test_oriented_image_is_not_rotated_twice(tmp_path):
    u8 = rgb8()
    src = tmp_path / "src.png"
    PILImage.fromarray(u8).save(src, exif=make_exif(6))
    first = read_image(src)
    second = read_image(write_image(tmp_path / "out.png", first))
    np.testing.assert_array_equal(second.pixels, first.pixels)
    # EXIF passed to write_image with an Orientation is also written as 1: the pixels are upright
    third = read_image(write_image(tmp_path / "out2.png", first.pixels, exif=make_exif(6)))
    np.testing.assert_array_equal(third.pixels, first.pixels)
    assert exif_tags(third.exif)[0x0112] == 1


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("in_exif,turned", [(None, 6), (1, 1), (3, 3)])
def test_16bit_xmp_orientation_applies_where_exif_has_none(tmp_path, ext, in_exif, turned):
    """As Pillow does for 8-bit files: an XMP ``tiff:Orientation`` counts only where EXIF has no Orientation tag."""
    u16 = rgb16()
    packet = b'<rdf:Description tiff:Orientation="6"/>'
    path = tmp_path / f"x{ext}"
    if ext == ".png":
        data = write_image(path, u16, bit_depth=16).read_bytes()
        at = data.index(b"IDAT") - 4
        exif = dio._png_chunk(b"eXIf", make_exif(in_exif)[6:]) if in_exif else b""
        path.write_bytes(data[:at] + exif + dio._png_chunk(b"iTXt", dio._png_xmp(packet)) + data[at:])
    else:
        exif = [(274, "H", 1, in_exif, True)] if in_exif else []
        tifffile.imwrite(path, u16, photometric="rgb", extratags=[*exif, (700, "B", len(packet), packet, True)])
    with PILImage.open(path) as im:
        assert im.getexif()[0x0112] == turned  # Pillow's reading
    img = read_image(path, dtype="native")
    expected = {6: np.rot90(u16, -1), 1: u16, 3: u16[::-1, ::-1]}[turned]
    np.testing.assert_array_equal(img.pixels, expected)
    assert img.xmp == b'<rdf:Description tiff:Orientation="1"/>'
    again = read_image(write_image(tmp_path / f"again{ext}", img, bit_depth=16), dtype="native")
    np.testing.assert_array_equal(again.pixels, expected)  # upright: not turned again


# ------------------------------------------------------------------------------------------ conversions


def test_grayscale_and_bilevel(tmp_path):
    gray = rgb8()[..., 0]
    PILImage.fromarray(gray, "L").save(tmp_path / "l.png")
    PILImage.fromarray(gray > 128).save(tmp_path / "1.png")
    img = read_image(tmp_path / "l.png")
    np.testing.assert_array_equal(as_u8(img.pixels), np.repeat(gray[..., None], 3, axis=2))
    bilevel = read_image(tmp_path / "1.png")
    np.testing.assert_array_equal(as_u8(bilevel.pixels[..., 1]), np.where(gray > 128, 255, 0))


GRAY_ICC = b"\0" * 16 + b"GRAY" + b"\0" * 108  # a (fake) gray profile: only its colour-space field is read


def channels_in_file(path):
    """Colour channels (alpha not counted) as the file stores them, read by other decoders than ours."""
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return page.samplesperpixel - len(page.extrasamples)
    if path.suffix == ".png":
        return {0: 1, 4: 1, 2: 3, 6: 3}[path.read_bytes()[25]]  # the IHDR colour type
    with PILImage.open(path) as im:
        return len(im.getbands()) - ("A" in im.getbands())


def test_grey_flag_and_profile_on_read(tmp_path):
    gray = rgb8()[..., 0]
    PILImage.fromarray(gray, "L").save(tmp_path / "l.png", icc_profile=GRAY_ICC)
    PILImage.fromarray(gray, "L").save(tmp_path / "l.jpg", quality=95)
    PILImage.fromarray(np.dstack([gray, gray]), "LA").save(tmp_path / "la.png")
    (tmp_path / "g16.png").write_bytes(imagecodecs.png_encode(rgb16()[..., :1].copy()))
    tifffile.imwrite(tmp_path / "g16.tif", rgb16()[..., 0], photometric="minisblack")
    PILImage.fromarray(rgb8()).save(tmp_path / "rgb.png", icc_profile=GRAY_ICC)
    PILImage.fromarray(rgb8()).convert("P").save(tmp_path / "p.png")
    for name in ("l.png", "l.jpg", "la.png", "g16.png", "g16.tif"):
        for dtype in ("float32", "native"):
            assert read_image(tmp_path / name, dtype=dtype).grey, (name, dtype)
    assert read_image(tmp_path / "l.png").icc_profile == GRAY_ICC  # a gray photo keeps its gray profile
    rgb = read_image(tmp_path / "rgb.png")
    assert not rgb.grey and rgb.icc_profile is None  # a gray profile does not describe RGB pixels
    assert not read_image(tmp_path / "p.png").grey


@pytest.mark.parametrize("ext,bits", [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".jpg", 8),
                                      (".bmp", 8)])
def test_grey_photo_is_written_grey(tmp_path, ext, bits):
    gray = (rgb16()[..., 0] if bits == 16 else rgb8()[..., 0])
    src = tmp_path / f"src{bits}.png"
    if bits == 16:
        src.write_bytes(imagecodecs.png_encode(gray[..., None].copy()))
    else:
        PILImage.fromarray(gray, "L").save(src, icc_profile=GRAY_ICC)
    img = read_image(src, dtype="native")
    out = write_image(tmp_path / f"out{ext}", img, bit_depth=bits, icc_profile=GRAY_ICC)
    assert channels_in_file(out) == 1
    back = read_image(out, dtype="native")
    assert back.grey and back.bit_depth == bits
    if ext != ".jpg":
        np.testing.assert_array_equal(back.pixels, img.pixels)
    else:
        assert np.abs(back.pixels.astype(int) - img.pixels).max() <= 3
    assert back.icc_profile == (None if ext == ".bmp" else GRAY_ICC)  # BMP carries no profile
    # the same photo written as RGB (grey=False) is RGB, and its gray profile is not attached to RGB pixels
    rgb = read_image(write_image(tmp_path / f"rgb{ext}", img, bit_depth=bits, grey=False, icc_profile=GRAY_ICC))
    assert not rgb.grey and rgb.icc_profile is None


def test_grey_output_is_the_rec709_luma_with_alpha_and_webp_stays_rgb(tmp_path, icc):
    u8, a8 = rgb8(), rgb8(seed=3)[..., 2]
    out = write_image(tmp_path / "g.png", u8, grey=True, alpha=a8, icc_profile=icc)
    with PILImage.open(out) as im:
        assert im.mode == "LA" and "icc_profile" not in im.info  # an RGB profile does not describe gray
        luma = np.asarray(im)[..., 0].astype(int)
        np.testing.assert_array_equal(np.asarray(im)[..., 1], a8)
    expected = np.rint(u8.astype(np.float64) @ [0.2126, 0.7152, 0.0722])
    assert np.abs(luma - expected).max() <= 1 and np.mean(luma == expected) > 0.95  # float32 sums may round apart
    u16 = rgb16()
    g16 = read_image(write_image(tmp_path / "g16.tif", u16, bit_depth=16, grey=True), dtype="native")
    assert g16.grey
    expected16 = np.rint(u16.astype(np.float64) @ [0.2126, 0.7152, 0.0722])
    assert np.abs(g16.pixels[..., 0].astype(int) - expected16).max() <= 1
    floats = rgb8(seed=5) / np.float64(255)  # float pixels: the luma is rounded once, not each channel first
    g8 = read_image(write_image(tmp_path / "f.png", floats, grey=True), dtype="native").pixels[..., 0]
    np.testing.assert_array_equal(g8, np.floor(floats @ np.array([0.2126, 0.7152, 0.0722]) * 255 + 0.5))
    webp = write_image(tmp_path / "g.webp", u8, grey=True, quality=100)
    assert channels_in_file(webp) == 3 and not read_image(webp).grey


def test_grey_weights_are_the_filters_luminance_weights():
    from deepexpose.filters.base import LUMA_709

    assert dio.LUMA_709 == LUMA_709


def test_large_grey_jpeg_in_strips_decodes_to_the_one_piece_pixels(tmp_path, monkeypatch):
    gray = np.tile(rgb8(64, 96)[..., 0], (2, 2))
    rgb = np.repeat(gray[..., None], 3, axis=2)
    monkeypatch.setattr(dio, "JPEG_STRIP_MIN_PIXELS", 1)
    for quality in (95, 80):
        one = write_image(tmp_path / f"one{quality}.jpg", rgb, grey=True, quality=quality, threads=1)
        strips = write_image(tmp_path / f"strips{quality}.jpg", rgb, grey=True, quality=quality, threads=2)
        assert b"\xff\xdd" in strips.read_bytes() and channels_in_file(strips) == 1
        with PILImage.open(one) as a, PILImage.open(strips) as b:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_palette_with_and_without_transparency(tmp_path):
    im = PILImage.fromarray(rgb8()).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=16)
    im.save(tmp_path / "p.png")
    im.save(tmp_path / "pt.png", transparency=bytes([0, 128] + [255] * 14))
    with PILImage.open(tmp_path / "p.png") as ref:
        expected = np.asarray(ref.convert("RGB"))
    img = read_image(tmp_path / "p.png")
    assert img.alpha is None and img.bit_depth == 8
    np.testing.assert_array_equal(as_u8(img.pixels), expected)
    with PILImage.open(tmp_path / "pt.png") as ref:
        expected = np.asarray(ref.convert("RGBA"))
    img = read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(as_u8(img.pixels), expected[..., :3])
    np.testing.assert_array_equal(as_u8(img.alpha), expected[..., 3])
    assert set(np.unique(expected[..., 3])) >= {0, 128, 255}


def test_colour_key_transparency(tmp_path):
    u8 = rgb8()
    key = tuple(int(v) for v in u8[3, 4])
    PILImage.fromarray(u8).save(tmp_path / "k.png", transparency=key)
    img = read_image(tmp_path / "k.png")
    np.testing.assert_array_equal(as_u8(img.pixels), u8)
    np.testing.assert_array_equal(img.alpha == 0, np.all(u8 == key, axis=2))


def test_la_and_pa(tmp_path):
    gray, alpha = rgb8()[..., 0], rgb8(seed=5)[..., 2]
    PILImage.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(as_u8(img.pixels), np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(as_u8(img.alpha), alpha)

    pal = PILImage.fromarray(rgb8()).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=8)
    pa = pal.convert("PA")
    pa.putalpha(PILImage.fromarray(alpha, "L"))
    pa.save(tmp_path / "pa.tif")
    with PILImage.open(tmp_path / "pa.tif") as ref:
        assert ref.mode == "PA"
        expected = np.asarray(ref.convert("RGBA"))
    img = read_image(tmp_path / "pa.tif")
    np.testing.assert_array_equal(as_u8(img.pixels), expected[..., :3])
    np.testing.assert_array_equal(as_u8(img.alpha), alpha)


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
@pytest.mark.parametrize("profile", [None, b"broken", "rgb"])
def test_cmyk_without_a_cmyk_profile_is_converted_by_the_plain_formula(tmp_path, ext, profile, icc):
    cmyk = PILImage.fromarray(rgb8()).convert("CMYK")
    path = tmp_path / f"c{ext}"
    if profile == b"broken":  # says CMYK in its header, but no profile follows
        profile = bytes(16) + b"CMYKLab " + bytes(104)
    kw = {"icc_profile": icc if profile == "rgb" else profile} if profile else {}
    cmyk.save(path, quality=95, **kw) if ext == ".jpg" else cmyk.save(path, **kw)
    with PILImage.open(path) as ref:
        assert ref.mode == "CMYK" and ref.info.get("icc_profile") == kw.get("icc_profile")
        expected = np.asarray(ref.convert("RGB"))
    img = read_image(path)
    assert img.pixels.shape == (H, W, 3) and img.icc_profile is None
    np.testing.assert_array_equal(as_u8(img.pixels), expected)


def cmyk_profile(table=b"A2B0"):
    """A tiny ICC v2 CMYK printer profile: a 2-point lut16 ``table`` from CMYK to Lab, neutral paper at L* 90 and
    black ink at L* 10, cyan, magenta and yellow each taking 25 from L* and tinting a* and b*."""
    def s15(v):
        return struct.pack(">i", round(v * 65536))

    grid = []  # the first input channel varies slowest
    for c, m, y, k in itertools.product((0, 1), repeat=4):
        lab = (10 if k else 90 - 25 * (c + m + y), -30 * c + 50 * m, -30 * c - 10 * m + 60 * y)
        grid += [round(lab[0] / 100 * 0xFF00), round((lab[1] + 128) * 256), round((lab[2] + 128) * 256)]
    lut = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + struct.pack(">HH", 2, 2) + struct.pack(">8H", *[0, 65535] * 4)
           + struct.pack(f">{len(grid)}H", *grid) + struct.pack(">6H", *[0, 65535] * 3))
    desc = b"desc" + bytes(4) + struct.pack(">I", 10) + b"test CMYK\0" + bytes(82)
    wtpt = b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [(b"desc", desc), (table, lut), (b"wtpt", wtpt)]
    offset, directory, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        directory += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + directory + body


def undated(profile):
    """An ICC profile without its creation date (header bytes 24..36), which LittleCMS sets to the time it makes one."""
    return profile[:24] + profile[36:]


def cmyk_patches():
    """Paper, black, cyan, magenta, yellow and a mid grey of C, M and Y, each an 8 x 8 block (a JPEG keeps it)."""
    a = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [128, 128, 128, 0]]],
                 np.uint8)
    return np.repeat(np.repeat(a, 8, axis=0), 8, axis=1)


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_is_converted_to_srgb_through_its_profile(tmp_path, ext, icc):
    profile, cmyk = cmyk_profile(), PILImage.fromarray(cmyk_patches(), "CMYK")
    cmyk.save(tmp_path / f"c{ext}", quality=100, icc_profile=profile)
    if ext == ".jpg":  # stored inverted, as Photoshop writes CMYK JPEGs, behind an Adobe marker
        data = (tmp_path / "c.jpg").read_bytes()
        assert data[2:4] == b"\xff\xee" and data[6:11] == b"Adobe"
        assert np.array_equal(255 - imagecodecs.jpeg8_decode(data), cmyk_patches())
    img = read_image(tmp_path / f"c{ext}", dtype="native")
    srgb = ImageCms.createProfile("sRGB")
    cms = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    expected = np.asarray(ImageCms.profileToProfile(cmyk, cms, srgb, renderingIntent=0, outputMode="RGB"))
    np.testing.assert_array_equal(img.pixels, expected)
    assert np.abs(img.pixels.astype(int) - np.asarray(cmyk.convert("RGB"))).max() > 40  # not the plain formula
    assert undated(img.icc_profile) == undated(icc)  # the pixels are sRGB now, and written so
    with PILImage.open(write_image(tmp_path / "out.jpg", img)) as out:
        assert out.mode == "RGB" and out.info["icc_profile"] == img.icc_profile


def test_cmyk_profile_without_a_perceptual_table_is_used_relative_colorimetric(tmp_path, icc):
    profile = cmyk_profile(b"A2B1")
    assert ImageCms.isIntentSupported(ImageCms.ImageCmsProfile(io.BytesIO(profile)), 0, 0) == -1
    PILImage.fromarray(cmyk_patches(), "CMYK").save(tmp_path / "c.tif", icc_profile=profile)
    img = read_image(tmp_path / "c.tif", dtype="native")
    black = img.pixels[0, 8]  # L* 10 is sRGB 27 (by hand: Y = (26 / 116) ** 3, then the sRGB curve)
    assert np.abs(black.astype(int) - 27).max() <= 1 and img.pixels[0, 0].tolist() == [255, 255, 255]
    assert undated(img.icc_profile) == undated(icc)


def test_non_rgb_icc_profile_is_dropped(tmp_path, icc):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    PILImage.fromarray(rgb8()).save(tmp_path / "lab.png", icc_profile=lab)
    PILImage.fromarray(rgb8()).save(tmp_path / "srgb.png", icc_profile=icc)
    assert read_image(tmp_path / "lab.png").icc_profile is None
    assert read_image(tmp_path / "srgb.png").icc_profile == icc


# ------------------------------------------------------------------------------------------ alpha, metadata


@pytest.mark.parametrize("ext,kw", [(".png", {}), (".tif", {}), (".webp", {"quality": 100}), (".bmp", {})])
def test_alpha_round_trip_exact(tmp_path, ext, kw):
    u8, a8 = rgb8(), rgb8(seed=9)[..., 1]
    a8[0, :] = 0  # fully transparent pixels keep their colour too
    out = write_image(tmp_path / f"a{ext}", u8 / 255.0, alpha=a8 / 255.0, **kw)
    img = read_image(out)
    np.testing.assert_array_equal(as_u8(img.pixels), u8)
    np.testing.assert_array_equal(as_u8(img.alpha), a8)
    again = read_image(write_image(tmp_path / f"b{ext}", img, **kw))  # an Image carries its alpha
    np.testing.assert_array_equal(again.alpha, img.alpha)


def test_a_bmp_with_alpha_is_a_bitmapv5_that_other_readers_see_the_alpha_of(tmp_path):
    from deepexpose.io import bmp_with_alpha

    u8, a8 = rgb8(), rgb8(seed=9)[..., 1]
    out = write_image(tmp_path / "a.bmp", u8 / 255.0, alpha=a8 / 255.0)
    data = out.read_bytes()
    assert data[:2] == b"BM" and int.from_bytes(data[14:18], "little") == 124  # the BITMAPV5HEADER
    assert int.from_bytes(data[2:6], "little") == len(data) == 14 + 124 + 4 * H * W
    with PILImage.open(out) as im:  # Pillow reads an alpha mask's fourth byte as alpha
        assert im.mode == "RGBA" and im.info["compression"] == 3  # BI_BITFIELDS
        np.testing.assert_array_equal(np.asarray(im), np.dstack([u8, a8]))
    gray = bmp_with_alpha(u8[..., :1], a8)  # one gray channel is written as R = G = B
    with PILImage.open(io.BytesIO(gray)) as im:
        np.testing.assert_array_equal(np.asarray(im), np.dstack([u8[..., 0]] * 3 + [a8]))
    opaque = write_image(tmp_path / "b.bmp", u8 / 255.0)  # without alpha: the 24-bit BMP Pillow writes
    assert int.from_bytes(opaque.read_bytes()[28:30], "little") == 24


@pytest.mark.parametrize("ext", [".jpg"])
def test_alpha_dropped_where_unsupported(tmp_path, ext):
    u8 = rgb8()
    out = write_image(tmp_path / f"a{ext}", u8 / 255.0, alpha=np.zeros((H, W), np.float32))
    img = read_image(out)
    assert img.alpha is None
    assert np.abs(as_u8(img.pixels) - u8).mean() < 6  # colours written as they are, not composited


@pytest.mark.parametrize("ext,bits", [(".jpg", 8), (".png", 8), (".png", 16), (".webp", 8), (".tif", 8),
                                      (".tif", 16)])
def test_exif_and_icc_kept_on_write(tmp_path, icc, ext, bits):
    exif = make_exif(orientation=1)
    out = write_image(tmp_path / f"m{ext}", rgb8() / 255.0, bit_depth=bits, icc_profile=icc, exif=exif)
    img = read_image(out)
    assert img.icc_profile == icc
    tags = exif_tags(img.exif)
    assert tags[271] == "TestCam" and tags[272] == "Model X"
    assert tags.get(0x0112, 1) == 1
    if ext != ".tif":  # full EXIF blocks come back byte for byte
        assert img.exif == exif
    # an independent reader sees the profile as well
    with PILImage.open(out) as im:
        if bits == 8:
            assert im.info.get("icc_profile") == icc


def test_image_metadata_is_reused_and_can_be_dropped(tmp_path, icc):
    src = tmp_path / "src.jpg"
    PILImage.fromarray(rgb8()).save(src, icc_profile=icc, exif=make_exif(3))
    img = read_image(src)
    kept = read_image(write_image(tmp_path / "kept.png", img))
    assert kept.icc_profile == icc and exif_tags(kept.exif)[271] == "TestCam"
    dropped = read_image(write_image(tmp_path / "dropped.png", img, icc_profile=b"", exif=b""))
    assert dropped.icc_profile is None and dropped.exif is None


XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmp:Rating="4" '
       b'xmlns:xmp="http://ns.adobe.com/xap/1.0/"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
DPI_TOL = 0.013  # PNG stores whole pixels per metre: within half of one, 0.0127 dpi


@pytest.mark.parametrize("ext,bits,codes", [(".jpg", 8, False), (".jpg", 8, True), (".png", 8, False),
                                            (".png", 16, True), (".tif", 8, True), (".tif", 16, False),
                                            (".webp", 8, False)])
def test_xmp_and_dpi_round_trip(tmp_path, ext, bits, codes):
    px = rgb8() if codes else rgb8() / np.float32(255)
    out = write_image(tmp_path / f"m{ext}", px, bit_depth=bits, xmp=XMP, dpi=(300, 150))
    img = read_image(out)
    assert img.xmp == XMP
    with PILImage.open(out) as im:  # an independent reader sees them too
        assert im.info["xmp"] == XMP
        dpi = im.info.get("dpi")
    if ext == ".webp":  # WebP has no resolution
        assert img.dpi is None and dpi is None
    else:
        assert img.dpi == pytest.approx((300, 150), abs=DPI_TOL) and dpi == pytest.approx((300, 150), abs=DPI_TOL)
    again = read_image(write_image(tmp_path / f"again{ext}", img, bit_depth=bits))  # an Image brings its own
    assert again.xmp == XMP and again.dpi == img.dpi


def test_jpeg_with_xmp_and_dpi_from_codes_is_pillows_file(tmp_path, icc):
    px = rgb8(30, 41)
    for kw in (dict(xmp=XMP), dict(dpi=(300, 72)), dict(dpi=(72.4, 299.6), xmp=XMP),
               dict(exif=make_exif(1), icc_profile=icc * 150, xmp=XMP, dpi=(96, 96))):
        a = write_image(tmp_path / "c.jpg", px, overwrite=True, **kw).read_bytes()
        b = write_image(tmp_path / "f.jpg", px / np.float32(255), overwrite=True, **kw).read_bytes()
        assert a == b, list(kw)
        img = read_image(tmp_path / "c.jpg", dtype="native")
        dpi = tuple(float(round(d)) for d in kw["dpi"]) if "dpi" in kw else None  # JFIF holds whole numbers
        assert img.xmp == kw.get("xmp") and img.dpi == dpi


def test_large_jpeg_in_strips_keeps_xmp_and_dpi(tmp_path):
    px = rgb8(1024, 1024, seed=4)
    data = write_image(tmp_path / "a.jpg", px, threads=2, xmp=XMP, dpi=(240, 180)).read_bytes()
    assert 0xDD in _markers(data)  # the strip encoder ran
    img = read_image(tmp_path / "a.jpg", dtype="native")
    assert img.xmp == XMP and img.dpi == (240.0, 180.0)
    np.testing.assert_array_equal(img.pixels, imagecodecs.jpeg8_decode(data))


def test_files_without_xmp_or_dpi_are_unchanged(tmp_path):
    """No XMP or dpi: the very bytes Pillow (or the 16-bit writers) wrote before, and none to drop."""
    px = rgb8()
    for name, kw, save in (("a.jpg", {}, dict(quality=95, subsampling=0)), ("a.png", {}, dict(compress_level=6)),
                           ("b.jpg", dict(quality=75), dict(quality=75, subsampling=2))):
        buf = __import__("io").BytesIO()
        PILImage.fromarray(px).save(buf, format=name[2:].replace("jpg", "jpeg"), **save)
        assert write_image(tmp_path / name, px, threads=1, **kw).read_bytes() == buf.getvalue(), name
        assert write_image(tmp_path / f"f{name}", px / np.float32(255), **kw).read_bytes() == buf.getvalue(), name
    png16 = write_image(tmp_path / "e.png", px, bit_depth=16).read_bytes()
    assert b"pHYs" not in png16 and b"iTXt" not in png16
    with tifffile.TiffFile(write_image(tmp_path / "e.tif", px, bit_depth=16)) as tif:
        assert 700 not in tif.pages[0].tags and tif.pages[0].tags[296].value == 1  # tifffile's "no unit"
    # an Image's own XMP and dpi are dropped with b"" and ()
    src = read_image(write_image(tmp_path / "src.png", px, xmp=XMP, dpi=(300, 300)))
    for name, bits in (("d.jpg", 8), ("d.png", 8), ("d.png", 16), ("d.tif", 8), ("d.tif", 16), ("d.webp", 8)):
        plain = write_image(tmp_path / f"plain{bits}{name}", px, bit_depth=bits).read_bytes()
        dropped = write_image(tmp_path / f"dropped{bits}{name}", src, bit_depth=bits, xmp=b"", dpi=())
        assert dropped.read_bytes() == plain, (name, bits)
        assert read_image(dropped).xmp is None and read_image(dropped).dpi is None


@pytest.mark.parametrize("packet", [b'<rdf:Description tiff:Orientation="6" tiff:Make="C"/>',
                                    b"<rdf:Description><tiff:Orientation>6</tiff:Orientation></rdf:Description>"])
def test_rotated_jpeg_xmp_says_upright_and_dpi_is_swapped(tmp_path, packet):
    src = tmp_path / "rot.jpg"
    PILImage.fromarray(rgb8()).save(src, exif=make_exif(6), xmp=packet, dpi=(300, 100), quality=95)
    upright = packet.replace(b"6", b"1")
    for dtype in ("float32", "native"):
        img = read_image(src, dtype=dtype)
        assert img.pixels.shape == (W, H, 3) and img.xmp == upright and img.dpi == (100.0, 300.0)
    for ext in (".jpg", ".png"):
        out = read_image(write_image(tmp_path / f"out{ext}", img))
        assert out.pixels.shape == (W, H, 3) and out.xmp == upright
        assert out.dpi == pytest.approx((100, 300), abs=DPI_TOL)
    # a packet given to write_image is made upright as well, as EXIF is
    assert read_image(write_image(tmp_path / "given.png", rgb8(), xmp=packet)).xmp == upright


def test_rotated_tiffs_swap_their_dpi(tmp_path):
    for bits, px in ((8, rgb8()), (16, rgb16())):  # turned by Pillow / here
        path = tmp_path / f"o{bits}.tif"
        tifffile.imwrite(path, px, photometric="rgb", resolution=(300, 100), resolutionunit="CENTIMETER",
                         extratags=[(274, "H", 1, 6, True), (700, "B", len(XMP), XMP, True)])
        img = read_image(path)
        assert img.pixels.shape == (W, H, 3) and img.xmp == XMP
        assert img.dpi == pytest.approx((254, 762)), bits


def test_resolution_without_a_unit_is_none(tmp_path):
    px = rgb8()
    PILImage.fromarray(px).save(tmp_path / "aspect.jpg")  # JFIF density 1:1 with no unit
    PILImage.fromarray(px).save(tmp_path / "exif.jpg", exif=make_exif(1))  # Pillow falls back on 72 dpi
    with PILImage.open(tmp_path / "exif.jpg") as im:
        assert im.info["dpi"] == (72, 72)
    tifffile.imwrite(tmp_path / "none.tif", px, photometric="rgb")  # 1 pixel per no unit
    for name in ("aspect.jpg", "exif.jpg", "none.tif"):
        assert read_image(tmp_path / name).dpi is None, name
    data = bytearray(write_image(tmp_path / "cm.jpg", px, dpi=(118, 59)).read_bytes())
    data[13] = 2  # the JFIF unit: dots per centimetre
    (tmp_path / "cm.jpg").write_bytes(bytes(data))
    assert read_image(tmp_path / "cm.jpg").dpi == pytest.approx((118 * 2.54, 59 * 2.54))
    for bad in ((0, 300), (300,), (300, float("nan")), "300"):
        with pytest.raises(ImageWriteError, match="dpi"):
            write_image(tmp_path / "bad.png", px, dpi=bad)


def test_xmp_too_long_for_a_jpeg_marker_is_left_out(tmp_path):
    longest = XMP + b" " * (65504 - len(XMP))  # 65535-byte marker: length, header and packet
    for px in (rgb8(), rgb8() / np.float32(255)):
        assert read_image(write_image(tmp_path / "fits.jpg", px, xmp=longest, overwrite=True)).xmp == longest
        img = read_image(write_image(tmp_path / "long.jpg", px, xmp=longest + b" ", dpi=(72, 72), overwrite=True))
        assert img.xmp is None and img.dpi == (72.0, 72.0)
    assert read_image(write_image(tmp_path / "long.png", rgb8(), xmp=longest + b" ")).xmp == longest + b" "


def camera_exif(maker_note=False):
    """EXIF as a camera writes it: the make, the EXIF directory (exposure time, f-number, ISO, time taken, maybe a
    maker note) and the GPS directory (version, latitude)."""
    exif = PILImage.Exif()
    exif[271] = "TestCam"
    exif[0x8769] = {0x829A: IFDRational(1, 250), 0x829D: IFDRational(28, 10), 0x8827: 200,
                    0x9003: "2024:05:06 07:08:09", **({0x927C: b"maker note"} if maker_note else {})}
    exif[0x8825] = {0: b"\x02\x03\x00\x00", 1: "N", 2: (IFDRational(48), IFDRational(51), IFDRational(2958, 100))}
    return exif.tobytes()


def assert_camera_exif(exif):
    """``exif`` (a Pillow Exif) holds :func:`camera_exif`, without the maker note."""
    assert exif[271] == "TestCam"
    found, gps = exif.get_ifd(0x8769), exif.get_ifd(0x8825)
    assert (found[0x829A], found[0x829D], found[0x8827]) == (IFDRational(1, 250), IFDRational(28, 10), 200)
    assert found[0x9003] == "2024:05:06 07:08:09" and 0x927C not in found
    assert gps == {0: b"\x02\x03\x00\x00", 1: "N", 2: (48, 51, IFDRational(2958, 100))}


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiff_keeps_the_exif_and_gps_directories_without_the_maker_note(tmp_path, bits):
    out = write_image(tmp_path / "a.tif", rgb8(), bit_depth=bits, exif=camera_exif(maker_note=True))
    assert_camera_exif(exif_tags(read_image(out).exif))
    with PILImage.open(out) as im:  # independent readers see them too, in a classic TIFF
        assert_camera_exif(im.getexif())
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages[0].tags
        assert not tif.is_bigtiff and tags[34853].value["GPSLatitudeRef"] == "N"
        assert (tags[34665].value["ExposureTime"], tags[34665].value["ISOSpeedRatings"]) == ((1, 250), 200)
    assert_camera_exif(exif_tags(read_image(write_image(tmp_path / "b.tif", read_image(out), bit_depth=bits)).exif))
    # a TIFF that Pillow wrote (8-bit RGB, or 16-bit gray: read here by tifffile) is read with its directories
    px = rgb8() if bits == 8 else rgb16()[..., 0]
    PILImage.fromarray(px).save(tmp_path / "pillow.tif", exif=camera_exif(maker_note=True))
    img = read_image(tmp_path / "pillow.tif")
    assert img.bit_depth == bits
    assert_camera_exif(exif_tags(img.exif))


def test_a_jpegs_exif_survives_a_tiff(tmp_path):
    src = tmp_path / "a.jpg"
    PILImage.fromarray(rgb8()).save(src, exif=camera_exif(), quality=95)
    for bits in (8, 16):
        tif = write_image(tmp_path / f"a{bits}.tif", read_image(src), bit_depth=bits)
        back = write_image(tmp_path / f"b{bits}.jpg", read_image(tif))
        assert_camera_exif(exif_tags(read_image(back).exif))
        with PILImage.open(back) as im:
            assert_camera_exif(im.getexif())


def test_a_tiff_without_exif_directories_has_no_pointers_to_them(tmp_path):
    """Without EXIF or GPS directories to carry (none, or one left empty by its maker note, which is dropped) the
    file has no pointer to one, nor the placeholders the directories are written through."""
    px = (np.arange(12 * 17 * 3).reshape(12, 17, 3) * 37 % 256).astype(np.uint8)
    alpha = (np.arange(12 * 17).reshape(12, 17) % 256).astype(np.uint8)
    maker_note_only = exif_tags(make_exif(6))
    maker_note_only[0x8769] = {0x927C: b"maker note"}
    cases = [dict(), dict(bit_depth=16),
             dict(exif=make_exif(6), icc_profile=b"\0" * 16 + b"RGB " + b"\1" * 108, xmp=b"<x/>", dpi=(300, 150),
                  alpha=alpha),
             dict(bit_depth=16, exif=make_exif(6), grey=True, dpi=(72, 72)),
             dict(bit_depth=16, exif=maker_note_only.tobytes(), grey=True, dpi=(72, 72))]
    data = []
    for i, kw in enumerate(cases):
        path = write_image(tmp_path / f"{i}.tif", px, **kw)
        with tifffile.TiffFile(path) as tif:
            assert not {34665, 34666, 34853, 34854} & {tag.code for tag in tif.pages[0].tags.values()}, i
        data.append(path.read_bytes())
    assert data[3] == data[4]  # the directory holding only a maker note is not written


def test_exif_tags_that_cannot_be_written_are_dropped_one_by_one():
    exif = exif_tags(camera_exif())
    exif.get_ifd(0x8769)[0x9999] = 2 ** 70  # no TIFF type holds it
    exif.get_ifd(0x8825)[0x1F] = None
    found = dio._exif_directories(exif)
    assert found[0x8769] == {0x829A: IFDRational(1, 250), 0x829D: IFDRational(28, 10), 0x8827: 200,
                             0x9003: "2024:05:06 07:08:09"}
    assert sorted(found[0x8825]) == [0, 1, 2]


# ------------------------------------------------------------------------------------------ bad input


def assert_read_error(path, *words, **kwargs):
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kwargs)
    err = info.value
    assert path.name in str(err), str(err)
    assert err.path == path
    for word in words:
        assert word in err.reason.lower(), err.reason
    return err


def test_missing_and_empty_and_directory(tmp_path):
    assert_read_error(tmp_path / "missing.png", "not found")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert_read_error(tmp_path / "empty.jpg", "empty")
    (tmp_path / "dir.png").mkdir()
    assert_read_error(tmp_path / "dir.png", "directory")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n" * 20)
    assert_read_error(tmp_path / "notes.jpg", "not a recognised image")
    PILImage.fromarray(rgb8()).save(tmp_path / "anim.gif")  # a real image in a format we do not take
    assert_read_error(tmp_path / "anim.gif", "a gif, which only")


@pytest.mark.parametrize("kind", ["jpg", "png8", "png16", "tif16", "webp", "bmp"])
def test_truncated(tmp_path, kind):
    u8 = rgb8(h=64, w=64)
    path = tmp_path / f"full.{kind[:3] if kind != 'webp' else 'webp'}"
    if kind == "png16":
        write_image(path, rgb16(64, 64) / 65535.0, bit_depth=16)
    elif kind == "tif16":
        tifffile.imwrite(path, rgb16(64, 64), photometric="rgb")
    else:
        write_image(path, u8 / 255.0)
    data = path.read_bytes()
    cut = tmp_path / f"cut_{path.name}"
    cut.write_bytes(data[: len(data) // 2])
    assert_read_error(cut, "truncated")
    assert_read_error(cut, "truncated", dtype="native")  # (libjpeg-turbo alone would fill the rest with grey)
    if kind == "jpg":  # cut short, then something else appended (a motion photo's video, say)
        cut.write_bytes(data[: len(data) // 2] + b"\0\1 trailing video bytes" * 20)
        assert_read_error(cut, "truncated", dtype="native")


@pytest.mark.parametrize("kw", [dict(), dict(progressive=True), dict(restart_marker_blocks=1)])
def test_jpeg_with_bytes_after_its_end_is_read(tmp_path, monkeypatch, kw):
    path = tmp_path / "tail.jpg"
    PILImage.fromarray(rgb8(40, 56)).save(path, quality=95, exif=make_exif(3), **kw)
    expected = read_image(path, dtype="native").pixels
    decoded = []
    real = imagecodecs.jpeg8_decode
    monkeypatch.setattr(imagecodecs, "jpeg8_decode", lambda data, *a, **k: decoded.append(len(data)) or real(data))
    size = path.stat().st_size
    for tail in (b"camera trailer", b"\xff\xd8\xff\xe1 a motion photo's video" * 50, b"\0" * 16):
        path.write_bytes(path.read_bytes()[:size] + tail)
        np.testing.assert_array_equal(read_image(path, dtype="native").pixels, expected)
    assert decoded == [size] * 3  # libjpeg-turbo, on the JPEG without what follows it


def test_jpeg_end(tmp_path):
    for kw in (dict(), dict(progressive=True), dict(restart_marker_blocks=2), dict(exif=make_exif(1))):
        buf = __import__("io").BytesIO()
        PILImage.fromarray(rgb8(40, 56)).save(buf, "JPEG", quality=90, **kw)
        data = buf.getvalue()
        assert dio.jpeg_end(data, 0) == len(data), kw
        assert dio.jpeg_end(b"junk" + data + data, 4) == 4 + len(data)
        assert dio.jpeg_end(data[:-2], 0) is None and dio.jpeg_end(data[:len(data) // 2], 0) is None
    thumb = __import__("io").BytesIO()
    PILImage.fromarray(rgb8(8, 8)).save(thumb, "JPEG")
    app1 = b"\xff\xe1" + (len(thumb.getvalue()) + 2).to_bytes(2, "big") + thumb.getvalue()
    assert dio.jpeg_end(data[:2] + app1 + data[2:], 0) == len(data) + len(app1)  # not the thumbnail's end


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "uint32"])
def test_a_tiff_of_floating_point_or_32_bit_samples_is_read_as_16_bit_codes_and_written_back_as_it_was(tmp_path,
                                                                                                       dtype):
    """Photoshop's 32-bit and scientific float TIFFs, 32-bit integer TIFFs: read as the nearest 16-bit codes (an
    Image with ``samples``), written back as TIFF samples of the same type; RGB with alpha and gray too."""
    codes = rgb16()
    top = 4294967295 if dtype == "uint32" else 1.0
    values = (codes.astype(np.float64) / 65535 * top)
    values = np.round(values).astype(dtype) if dtype == "uint32" else values.astype(dtype)
    alpha = values[..., :1][::-1]
    tifffile.imwrite(tmp_path / "rgba.tif", np.concatenate([values, alpha], axis=2), photometric="rgb",
                     extrasamples=["unassalpha"])
    tifffile.imwrite(tmp_path / "gray.tif", values[..., 1], photometric="minisblack")
    img = read_image(tmp_path / "rgba.tif", dtype="native")
    assert (img.bit_depth, img.samples, img.pixels.dtype) == (16, dtype, np.uint16)
    tolerance = 32 if dtype == "float16" else 0  # float16 holds 11 significant bits: near 1, steps of 32 codes
    assert np.abs(img.pixels.astype(int) - codes).max() <= tolerance
    np.testing.assert_array_equal(img.alpha, img.pixels[..., 0][::-1])
    gray = read_image(tmp_path / "gray.tif", dtype="native")
    assert gray.grey and gray.samples == dtype
    np.testing.assert_array_equal(gray.pixels[..., 0], img.pixels[..., 1])
    write_image(tmp_path / "back.tif", img, bit_depth=16)
    back = tifffile.imread(tmp_path / "back.tif")
    assert back.dtype == np.dtype(dtype) and back.shape == (H, W, 4)
    again = read_image(tmp_path / "back.tif", dtype="native")
    np.testing.assert_array_equal(again.pixels, img.pixels)  # codes survive the round trip exactly
    np.testing.assert_array_equal(again.alpha, img.alpha)
    write_image(tmp_path / "ints.tif", img, bit_depth=16, samples="")  # integers asked for
    assert tifffile.imread(tmp_path / "ints.tif").dtype == np.uint16
    write_image(tmp_path / "x.png", img, bit_depth=16)  # a PNG holds integers: the Image's samples do not apply
    with pytest.raises(ImageWriteError, match="needs a 16-bit TIFF"):
        write_image(tmp_path / "y.png", img, bit_depth=16, samples=dtype)
    with pytest.raises(ImageWriteError, match="needs a 16-bit TIFF"):
        write_image(tmp_path / "y.tif", img, bit_depth=16, samples="int8")


def test_floating_point_tiffs_outside_zero_to_one_or_not_numbers_are_refused(tmp_path):
    hdr = np.full((4, 5, 3), 0.5, np.float32)
    hdr[0, 0] = 3.0
    tifffile.imwrite(tmp_path / "hdr.tif", hdr, photometric="rgb")
    assert_read_error(tmp_path / "hdr.tif", "floating-point samples from 0.5 to 3", "hdr")
    hdr[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", hdr, photometric="rgb")
    assert_read_error(tmp_path / "nan.tif", "3 floating-point samples are not numbers")
    near = np.full((4, 5, 3), 1.0 + 0.4 / 65535, np.float32)  # within half a code: the top code
    tifffile.imwrite(tmp_path / "near.tif", near, photometric="rgb")
    assert (read_image(tmp_path / "near.tif", dtype="native").pixels == 65535).all()


@pytest.mark.parametrize("depth", [10, 12, 14])
def test_tiffs_of_10_12_and_14_bit_samples_are_read_as_16_bit_codes(tmp_path, depth):
    """Scientific cameras and scanners write them; they were refused as an 'unsupported pixel format' whose message
    named them as supported (1- to 16-bit)."""
    top = (1 << depth) - 1
    codes = (rgb16() >> (16 - depth)).astype(np.uint16)
    codes[0, 0] = (top, 0, 1)
    tifffile.imwrite(tmp_path / "rgb.tif", codes, photometric="rgb", bitspersample=depth,
                     extratags=[(274, "H", 1, 8, True)])
    tifffile.imwrite(tmp_path / "gray.tif", codes[..., 1], photometric="minisblack", bitspersample=depth)
    scaled = np.floor(codes.astype(np.float64) * 65535 / top + 0.5).astype(np.uint16)
    rgb, gray = read_image(tmp_path / "rgb.tif", dtype="native"), read_image(tmp_path / "gray.tif", dtype="native")
    assert (rgb.bit_depth, gray.bit_depth, gray.grey, rgb.samples) == (16, 16, True, "")
    np.testing.assert_array_equal(rgb.pixels, np.rot90(scaled))  # orientation 8, turned upright
    np.testing.assert_array_equal(gray.pixels[..., 0], scaled[..., 1])
    assert tuple(rgb.pixels[-1, 0]) == (65535, 0, round(65535 / top))


def test_tiffs_of_other_odd_depths_are_refused_naming_what_is_read(tmp_path):
    tifffile.imwrite(tmp_path / "six.tif", np.zeros((4, 5, 3), np.uint8), photometric="rgb", bitspersample=6)
    err = assert_read_error(tmp_path / "six.tif", "unsupported pixel format: 6-bit integer samples")
    assert "1, 2, 4 and 8 to 16 bits or 32 bits" in err.reason


def test_unsupported_modes(tmp_path):
    tifffile.imwrite(tmp_path / "int16.tif", np.zeros((4, 5, 3), np.int16), photometric="rgb")
    assert_read_error(tmp_path / "int16.tif", "unsupported", "16-bit signed integer")
    tifffile.imwrite(tmp_path / "float32cmyk.tif", np.zeros((4, 5, 4), np.float32), photometric="separated")
    assert_read_error(tmp_path / "float32cmyk.tif", "unsupported float32 tiff layout")
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((4, 6, 5), np.uint16), photometric="rgb",
                     planarconfig="contig", extrasamples=[2, 0])
    assert_read_error(tmp_path / "five.tif", "unsupported", "5 samples")
    tifffile.imwrite(tmp_path / "five8.tif", np.zeros((4, 6, 5), np.uint8), photometric="rgb",
                     planarconfig="contig", extrasamples=[2, 0])
    assert_read_error(tmp_path / "five8.tif", "unsupported")
    # a Pillow mode outside what we convert (32-bit float 'F')
    with pytest.raises(ImageReadError, match="unsupported pixel mode 'F'"):
        dio._pillow_arrays(PILImage.new("F", (3, 2)), tmp_path / "x.tif")


def test_too_many_pixels_is_checked_before_decoding(tmp_path, monkeypatch):
    path = write_image(tmp_path / "big.png", rgb8() / 255.0)
    err = assert_read_error(path, "too many pixels", max_pixels=H * W - 1)
    assert str(H * W) in err.reason and f"set ${dio.MAX_PIXELS_ENV} higher" in err.reason
    assert read_image(path, max_pixels=H * W).pixels.shape == (H, W, 3)
    # a truncated body is never reached: the header check fires first
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:100])
    assert_read_error(cut, "too many pixels", max_pixels=10)
    tif16 = write_image(tmp_path / "big.tif", rgb16() / 65535.0, bit_depth=16)
    png16 = write_image(tmp_path / "big16.png", rgb16() / 65535.0, bit_depth=16)
    for p in (tif16, png16):
        assert_read_error(p, "too many pixels", max_pixels=10)
    monkeypatch.setenv(dio.MAX_PIXELS_ENV, "10")
    assert_read_error(path, "too many pixels")
    monkeypatch.setenv(dio.MAX_PIXELS_ENV, "none")
    read_image(path)
    monkeypatch.setenv(dio.MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=dio.MAX_PIXELS_ENV):
        read_image(path)


def test_pillow_limit_is_replaced_not_leaked(tmp_path, monkeypatch):
    path = write_image(tmp_path / "a.jpg", rgb8() / 255.0)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 20)  # Pillow alone would call this a bomb
    with pytest.raises(PILImage.DecompressionBombError):
        PILImage.open(path)
    assert read_image(path, max_pixels=None).pixels.shape == (H, W, 3)
    assert PILImage.MAX_IMAGE_PIXELS == 20
    assert_read_error(path, "too many pixels", max_pixels=20)


def test_errors_are_picklable(tmp_path):
    errors = (ImageReadError(tmp_path / "x.png", "file not found"),
              ImageWriteError(tmp_path / "y", "r", "file"),
              dio.ImageExistsError(tmp_path / "z.png", "exists"))
    for err in errors:
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err)
        assert again.reason == err.reason and again.path == err.path
    assert isinstance(ImageWriteError(None, "r"), dio.ImageIOError)


# ------------------------------------------------------------------------------------------ writing


def test_atomic_write_and_no_overwrite(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "er" / "out.png"
    assert write_image(target, rgb8() / 255.0) == target  # parents are created
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]
    before = target.read_bytes()
    with pytest.raises(ImageWriteError, match="already exists") as info:
        write_image(target, np.zeros((H, W, 3)))
    assert "out.png" in str(info.value)
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, dio.ImageExistsError)
    assert target.read_bytes() == before
    with monkeypatch.context() as m:  # refused before any encoding work
        m.setattr(dio, "_encode_png16", lambda *a, **k: pytest.fail("encoded although the target exists"))
        with pytest.raises(ImageWriteError, match="already exists"):
            write_image(target, np.zeros((H, W, 3)), bit_depth=16)
    write_image(target, np.zeros((H, W, 3)), overwrite=True)
    assert target.read_bytes() != before and read_image(target).pixels.max() == 0
    assert no_temp_files(target.parent)
    assert (os.stat(target).st_mode & 0o777) == (0o666 & ~_umask())


def test_atomic_write_bytes(tmp_path):
    target = tmp_path / "sub" / "record.json"
    assert dio.atomic_write_bytes(target, b'{"a": 1}') == target
    with pytest.raises(ImageWriteError, match="already exists") as info:
        dio.atomic_write_bytes(target, b"other")
    assert "cannot write file" in str(info.value) and "record.json" in str(info.value)
    assert target.read_bytes() == b'{"a": 1}'
    dio.atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(ImageWriteError):
        dio.atomic_write_bytes(tmp_path / "sub" / "bad.json", 3.5)  # not bytes: fails inside the write
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]


def test_atomic_copy(tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3 << 20))  # several chunks
    target = tmp_path / "sub" / "out.bin"
    assert dio.atomic_copy(source, target) == target and target.read_bytes() == source.read_bytes()
    with pytest.raises(ImageWriteError, match="already exists"):
        dio.atomic_copy(source, target)
    (tmp_path / "small").write_bytes(b"new")
    dio.atomic_copy(tmp_path / "small", target, overwrite=True)
    assert target.read_bytes() == b"new"
    with pytest.raises(ImageWriteError):
        dio.atomic_copy(tmp_path / "missing", tmp_path / "sub" / "other.bin")
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no temporary file left


def test_side_path_keeps_the_whole_output_name(tmp_path):
    assert dio.side_path(tmp_path / "a.b" / "photo.jpg", ".json") == tmp_path / "a.b" / "photo.jpg.json"
    assert dio.side_path("clip.mp4", ".cube") == Path("clip.mp4.cube")
    assert dio.side_path(tmp_path / "photo.png", ".json") != dio.side_path(tmp_path / "photo.jpg", ".json")


def test_shown_name_keeps_one_name_on_one_printable_line():
    assert dio.shown_name("café ☃.jpg") == "café ☃.jpg"
    assert dio.shown_name(Path("in") / "caf\udce9.jpg") == "in/caf\\xe9.jpg"  # a byte that is not UTF-8
    assert dio.shown_name("a\nb\tc\x1bd\u2028e\x7f.jpg") == "a\\nb\\tc\\x1bd\\u2028e\\x7f.jpg"
    assert dio.shown_name("\ud800") == "\\ud800"  # a surrogate that no byte gives


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_argument_errors(tmp_path):
    px = rgb8() / 255.0
    cases = [
        (dict(path=tmp_path / "a.xyz"), "unknown image extension"),
        (dict(path=tmp_path / "a.png", format="gif"), "unsupported output format"),
        (dict(path=tmp_path / "a.jpg", bit_depth=16), "8-bit"),
        (dict(path=tmp_path / "a.avif", bit_depth=16), "8-bit"),
        (dict(path=tmp_path / "a.png", bit_depth=12), "bit_depth"),
        (dict(path=tmp_path / "a.png", quality=0), "quality"),
        (dict(path=tmp_path / "a.png", pixels=px[..., :2]), "h x w x 3"),
        (dict(path=tmp_path / "a.png", pixels=rgb8().astype(np.int32)), "floating point"),
        (dict(path=tmp_path / "a.png", pixels=np.full((2, 2, 3), np.nan)), "nan"),
        (dict(path=tmp_path / "a.png", alpha=np.ones((3, 3))), "alpha"),
        (dict(path=tmp_path / "a.png", exif=b"garbage"), "exif"),
        (dict(path=tmp_path / "a.jpg", threads=0), "threads"),
        (dict(path=tmp_path / "a.jpg", threads=1.5), "threads"),
    ]
    for kw, words in cases:
        path = kw.pop("path")
        pixels = kw.pop("pixels", px)
        with pytest.raises(ImageWriteError) as info:
            write_image(path, pixels, **kw)
        assert words in str(info.value).lower() and path.name in str(info.value), (kw, str(info.value))
    assert list(tmp_path.iterdir()) == []


def test_format_argument_wins_over_extension(tmp_path):
    out = write_image(tmp_path / "image.dat", rgb8() / 255.0, format="tif")
    assert read_image(out).format == "TIFF"
    assert not is_image_file(out)


@pytest.mark.parametrize("ext,bits,patch", [(".png", 8, "pillow"), (".jpg", 8, "pillow"),
                                            (".tif", 16, "tifffile"), (".png", 16, "png16")])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch, ext, bits, patch, existing):
    target = tmp_path / f"out{ext}"
    if existing:
        target.write_bytes(b"old contents")

    def explode(fh):
        fh.write(b"partial data")
        raise RuntimeError("encoder exploded")

    if patch == "pillow":
        monkeypatch.setattr(PILImage.Image, "save", lambda self, fp, *a, **k: explode(fp))
    elif patch == "tifffile":
        monkeypatch.setattr(tifffile, "imwrite", lambda fp, *a, **k: explode(fp))
    else:
        monkeypatch.setattr(dio, "_encode_png16", lambda fh, *a, **k: explode(fh))
    with pytest.raises(ImageWriteError, match="encoder exploded") as info:
        write_image(target, rgb8() / 255.0, bit_depth=bits, overwrite=existing)
    assert target.name in str(info.value)
    if existing:
        assert target.read_bytes() == b"old contents"
        assert [p.name for p in tmp_path.iterdir()] == [target.name]
    else:
        assert list(tmp_path.iterdir()) == []


def test_interrupt_mid_write_removes_temp(tmp_path, monkeypatch):
    def interrupted(self, fp, *a, **k):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(PILImage.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "a.png", rgb8() / 255.0)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from deepexpose.io import remove_stale_temps, temp_path

    target = tmp_path / "a.png"
    mine = temp_path(target)
    assert mine.parent == tmp_path and mine.name.startswith(f".a.png.tmp-{os.getpid()}-") and not mine.exists()
    assert temp_path(target, ".mp4").suffix == ".mp4" and temp_path(target) != temp_path(target)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a process that has ended
    host = mine.name.split("-")[2]
    other_host = f"{(int(host, 16) + 1) % 0x10000:04x}"
    names = {
        "killed": f".a.png.tmp-{dead}-{host}-0123abcd",
        "killed clip": f".a.png.tmp-{dead}-{host}-0123abce.mp4",
        "running": f".a.png.tmp-{os.getppid()}-{host}-0123abcf",  # pytest's parent, alive
        "another machine's": f".a.png.tmp-{dead}-{other_host}-0123abd0",
        "another output's": f".b.png.tmp-{dead}-{host}-0123abd1",
        "a user's": f".a.png.tmp-{dead}-{host}-notours",
        "an older version's": ".a.png.tmp-0123abd2",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    write_image(target, rgb8() / 255.0)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"a.png", *names.values()} - {names["killed"], names["killed clip"]}
    assert remove_stale_temps(target) == [] and remove_stale_temps(tmp_path / "missing" / "x.png") == []


def test_reading_never_modifies_the_input(tmp_path):
    u8 = rgb8()
    paths = [write_image(tmp_path / f"a{ext}", u8 / 255.0) for ext in (".png", ".tif", ".bmp", ".webp")]
    jpg = tmp_path / "o.jpg"
    PILImage.fromarray(u8).save(jpg, exif=make_exif(6))
    paths += [jpg, write_image(tmp_path / "b.tif", rgb16() / 65535.0, bit_depth=16),
              write_image(tmp_path / "b.png", rgb16() / 65535.0, bit_depth=16)]
    old = 1_000_000_000_000_000_000
    for p in paths:
        os.utime(p, ns=(old, old))
    before = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths}
    for p in paths:
        read_image(p)
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths} == before
    assert sorted(tmp_path.iterdir()) == sorted(paths)


# ------------------------------------------------------------------------------------------ helpers


def test_to_codes_converts_floats_and_depths():
    eight = np.array([0, 1, 128, 255], np.uint8)
    assert to_codes(eight, 8) is eight  # codes at their own depth are passed as they are
    assert to_codes(eight, 16).tolist() == [0, 257, 32896, 65535]
    sixteen = np.array([0, 128, 129, 32896, 65535], np.uint16)
    assert to_codes(sixteen, 8).tolist() == [0, 0, 1, 128, 255]  # (v * 255 + 32767) // 65535: rounded
    assert to_codes(np.array([0.0, 0.5, 1.0], np.float32), 8).tolist() == [0, 128, 255]


def test_quantize_rounding():
    x = np.array([0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.5 / 255, 2.5 / 255, 1.0, -0.3, 1.7, np.nan], np.float32)
    q = quantize(x, 8)
    assert q.dtype == np.uint8
    assert q.tolist() == [0, 0, 1, 128, 2, 3, 255, 0, 255, 0]
    q16 = quantize(np.array([0.0, 0.5, 1.0, 1.49 / 65535, 1.51 / 65535]), 16)
    assert q16.dtype == np.uint16 and q16.tolist() == [0, 32768, 65535, 1, 2]
    k = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(quantize((k / np.float32(65535)).astype(np.float32), 16), k)
    with pytest.raises(ValueError):
        quantize(x, 10)
    with pytest.raises(TypeError):
        quantize(np.zeros(3, np.uint8), 8)


def test_tensor_conversions():
    pixels = (rgb8() / 255.0).astype(np.float32)
    t = to_tensor(pixels)
    assert t.shape == (1, 3, H, W) and t.dtype == torch.float32
    assert torch.equal(t[0, 0], torch.from_numpy(pixels[..., 0]))
    t[0, 0, 0, 0] = 5.0
    assert pixels[0, 0, 0] != 5.0  # the tensor is a copy
    img = Image(pixels=pixels)
    assert to_tensor(img).shape == (1, 3, H, W)
    back = from_tensor(to_tensor(pixels))
    assert back.shape == (H, W, 3) and back.dtype == np.float32 and back.flags.c_contiguous
    np.testing.assert_array_equal(back, pixels)
    out = from_tensor(torch.linspace(-1, 2, 3 * 4 * 5, dtype=torch.float64).reshape(3, 4, 5))
    assert out.shape == (4, 5, 3) and out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    with pytest.raises(ValueError):
        from_tensor(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError):
        to_tensor(np.zeros((4, 5), np.float32))


def test_is_image_file(tmp_path):
    for name in ("a.JPG", "b.jpeg", "c.png", "d.tif", "e.TIFF", "f.webp", "g.bmp", "j.HEIC", "k.heif", "l.hif",
                 "m.avif", "n.jfif", "o.JPE"):
        (tmp_path / name).write_bytes(b"x")
        assert is_image_file(tmp_path / name), name
    for name in ("h.gif", "i.txt", ".hidden.png", ".out.png.tmp-1234", "noext"):
        (tmp_path / name).write_bytes(b"x")
        assert not is_image_file(tmp_path / name), name
    (tmp_path / "dir.png").mkdir()
    assert not is_image_file(tmp_path / "dir.png")
    assert not is_image_file(tmp_path / "missing.png")
    assert {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif", ".hif",
            ".avif", ".dng",
            ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"} == set(dio.SUPPORTED_EXTENSIONS)


# --------------------------------------------------------------------------------------------- native codes


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp"])
def test_native_8bit_round_trip(tmp_path, ext):
    px = rgb8()
    path = write_image(tmp_path / f"a{ext}", px, quality=100)  # lossless WebP
    img = read_image(path, dtype="native")
    assert img.pixels.dtype == np.uint8 and img.bit_depth == 8 and img.alpha is None
    np.testing.assert_array_equal(img.pixels, px)
    np.testing.assert_array_equal(read_image(path).pixels, px / np.float32(255))  # float mode unchanged


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_native_16bit_and_alpha_round_trip(tmp_path, ext):
    px, alpha = rgb16(), rgb16(seed=5)[..., 0]
    path = write_image(tmp_path / f"a{ext}", px, bit_depth=16, alpha=alpha)
    img = read_image(path, dtype="native")
    assert img.pixels.dtype == np.uint16 and img.alpha.dtype == np.uint16 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, px)
    np.testing.assert_array_equal(img.alpha, alpha)
    flt = read_image(path)
    assert flt.pixels.dtype == np.float32 and flt.alpha.dtype == np.float32
    np.testing.assert_array_equal(flt.pixels, px / np.float32(65535))
    # the native image writes back bit-exactly, alpha included
    again = read_image(write_image(tmp_path / f"b{ext}", img, bit_depth=16), dtype="native")
    np.testing.assert_array_equal(again.pixels, px)
    np.testing.assert_array_equal(again.alpha, alpha)


def test_native_8bit_alpha_and_gray_and_orientation(tmp_path):
    px, alpha = rgb8(), rgb8(seed=3)[..., 2]
    img = read_image(write_image(tmp_path / "a.png", px, alpha=alpha), dtype="native")
    np.testing.assert_array_equal(img.pixels, px)
    np.testing.assert_array_equal(img.alpha, alpha)
    PILImage.fromarray(px[..., 1]).save(tmp_path / "g.png")
    gray = read_image(tmp_path / "g.png", dtype="native").pixels
    assert gray.dtype == np.uint8 and gray.shape == (H, W, 3)
    np.testing.assert_array_equal(gray, np.repeat(px[..., 1:2], 3, axis=2))
    pim = PILImage.fromarray(px)
    pim.save(tmp_path / "o.png", exif=make_exif(6))
    turned = read_image(tmp_path / "o.png", dtype="native").pixels
    np.testing.assert_array_equal(turned, np.rot90(px, -1))
    with pytest.raises(ValueError, match="dtype"):
        read_image(tmp_path / "a.png", dtype="uint8")


def test_write_codes_across_depths(tmp_path):
    px8, px16 = rgb8(), rgb16()
    up = read_image(write_image(tmp_path / "up.png", px8, bit_depth=16), dtype="native").pixels
    assert up.dtype == np.uint16
    np.testing.assert_array_equal(up, px8.astype(np.uint16) * 257)
    down = read_image(write_image(tmp_path / "down.png", px16, bit_depth=8), dtype="native").pixels
    assert down.dtype == np.uint8
    np.testing.assert_array_equal(down, np.floor(px16 / 65535.0 * 255 + 0.5).astype(np.uint8))
    # 16 -> 8 bits through codes equals quantising the float pixels, for every code
    k = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1).repeat(3, axis=2)
    exact = read_image(write_image(tmp_path / "all.png", k, bit_depth=8), dtype="native").pixels
    np.testing.assert_array_equal(exact, quantize(k / 65535.0, 8))
    # alpha as codes too, converted the same way as the colour
    a8 = rgb8(seed=4)[..., 0]
    img = read_image(write_image(tmp_path / "a16.tif", px8, bit_depth=16, alpha=a8), dtype="native")
    np.testing.assert_array_equal(img.alpha, a8.astype(np.uint16) * 257)
    # float pixels with code alpha and code pixels with float alpha mix freely
    mixed = read_image(write_image(tmp_path / "m.png", px8 / 255.0, alpha=a8), dtype="native")
    np.testing.assert_array_equal(mixed.pixels, px8)
    np.testing.assert_array_equal(mixed.alpha, a8)
    # JPEG from codes is the same file as from the equal floats
    write_image(tmp_path / "c.jpg", px8)
    write_image(tmp_path / "f.jpg", px8 / np.float32(255))
    assert (tmp_path / "c.jpg").read_bytes() == (tmp_path / "f.jpg").read_bytes()
    with pytest.raises(ImageWriteError, match="floating point"):
        write_image(tmp_path / "bad.png", px8, alpha=a8.astype(np.int16))


@pytest.mark.parametrize("kw", [dict(quality=92), dict(quality=95, subsampling=0), dict(quality=80, subsampling=1),
                                dict(quality=90, progressive=True), dict(quality=85, restart_marker_blocks=2)])
def test_native_jpeg_decodes_like_pillow(tmp_path, kw):
    px = np.asarray(PILImage.fromarray(rgb8(67, 93)).resize((93, 67)))
    path = tmp_path / "a.jpg"
    PILImage.fromarray(px).save(path, exif=make_exif(8), **kw)
    with PILImage.open(path) as pim:
        expected = np.asarray(ImageOps.exif_transpose(pim))
    img = read_image(path, dtype="native")
    np.testing.assert_array_equal(img.pixels, expected)
    assert exif_tags(img.exif).get(0x0112, 1) == 1
    np.testing.assert_array_equal(read_image(path).pixels, expected / np.float32(255))
    PILImage.fromarray(px[..., 0]).save(tmp_path / "g.jpg", **kw)
    with PILImage.open(tmp_path / "g.jpg") as pim:
        gray = np.asarray(pim)
    np.testing.assert_array_equal(read_image(tmp_path / "g.jpg", dtype="native").pixels,
                                  np.repeat(gray[..., None], 3, axis=2))


def test_jpeg_from_codes_is_pillows_file(tmp_path, icc):
    px = rgb8(30, 41)
    big_icc = icc * 150  # more than one APP2 marker
    for quality in (95, 75):
        for kw in (dict(), dict(exif=make_exif(1)), dict(icc_profile=icc),
                   dict(exif=make_exif(1), icc_profile=icc, xmp=b"<x/>", notes=Notes(IPTC, b"a comment")),
                   dict(exif=make_exif(3), icc_profile=big_icc)):
            a = write_image(tmp_path / f"c{quality}.jpg", px, quality=quality, overwrite=True, **kw).read_bytes()
            b = write_image(tmp_path / f"f{quality}.jpg", px / np.float32(255), quality=quality, overwrite=True,
                            **kw).read_bytes()
            assert a == b, (quality, list(kw))
    img = read_image(tmp_path / "c75.jpg", dtype="native")
    assert img.icc_profile == big_icc and exif_tags(img.exif).get(0x0112, 1) == 1
    grey = np.repeat(px[..., :1], 3, axis=2)
    for quality in (95, 75):  # gray too, at every quality
        a = write_image(tmp_path / f"gc{quality}.jpg", grey, quality=quality, grey=True, threads=1).read_bytes()
        b = write_image(tmp_path / f"gf{quality}.jpg", grey / np.float32(255), quality=quality, grey=True,
                        threads=1).read_bytes()
        assert a == b, quality
    from deepexpose import DeepExposeWarning

    long_exif = PILImage.Exif()
    long_exif[270] = "x" * 70000
    with pytest.warns(DeepExposeWarning, match=r"x.jpg: its EXIF \(70,0\d\d bytes\) is too long for a JPEG's one EXIF"):
        write_image(tmp_path / "x.jpg", px, exif=long_exif)  # too much EXIF for one marker: left out, not an error
    assert read_image(tmp_path / "x.jpg").exif is None


def _markers(data: bytes) -> list[int]:
    """The marker codes of a JPEG's entropy-coded data and around it (``FF00`` stuffing left out)."""
    return [data[i + 1] for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF)]


@pytest.mark.parametrize("quality", [95, 75])
def test_large_jpeg_is_encoded_in_strips_to_the_same_pixels(tmp_path, icc, monkeypatch, quality):
    monkeypatch.setattr(dio, "JPEG_STRIP_MIN_PIXELS", 0)  # a small photo, so the test is quick
    px = rgb8(203, 151, seed=5)  # neither side a multiple of 8 or 16
    kw = dict(quality=quality, exif=make_exif(6), icc_profile=icc, overwrite=True)
    one = write_image(tmp_path / "one.jpg", px, threads=1, **kw).read_bytes()
    assert 0xDD not in _markers(one)  # one piece: Pillow's file
    assert one == write_image(tmp_path / "pil.jpg", px / np.float32(255), **kw).read_bytes()
    mcu = 8 if quality >= 90 else 16
    for threads in (2, 3, 5, 16):  # 16: 13 or 7 strips, so the restart markers wrap from RST7 to RST0
        data = write_image(tmp_path / f"s{threads}.jpg", px, threads=threads, **kw).read_bytes()
        strip_rows = -(-(-(-203 // mcu)) // threads)  # MCU rows per strip
        strips = -(-(-(-203 // mcu)) // strip_rows)
        at = data.index(b"\xff\xdd")
        assert int.from_bytes(data[at + 4:at + 6], "big") == strip_rows * -(-151 // mcu)  # the restart interval
        assert [m for m in _markers(data) if 0xD0 <= m <= 0xD7] == [0xD0 + k % 8 for k in range(strips - 1)]
        assert abs(len(data) - len(one)) < 64 * strips
        for decode in (lambda b: np.asarray(PILImage.open(__import__("io").BytesIO(b)).convert("RGB")),
                       imagecodecs.jpeg8_decode):
            np.testing.assert_array_equal(decode(data), decode(one))
        img = read_image(tmp_path / f"s{threads}.jpg", dtype="native")
        assert img.icc_profile == icc and exif_tags(img.exif) == exif_tags(read_image(tmp_path / "one.jpg").exif)
        np.testing.assert_array_equal(img.pixels, imagecodecs.jpeg8_decode(one))


def test_jpeg_strips_from_one_megapixel_and_only_when_they_agree(tmp_path):
    assert dio.JPEG_STRIP_MIN_PIXELS == 1 << 20
    px = rgb8(1024, 1024, seed=2)
    assert 0xDD in _markers(write_image(tmp_path / "a.jpg", px, threads=2).read_bytes())
    assert 0xDD not in _markers(write_image(tmp_path / "b.jpg", px[:-1], threads=2).read_bytes())
    # strips whose tables differ are not joined: the caller encodes in one piece
    calls = []

    def encode(a):
        calls.append(a.shape[0])
        return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(a), level=90 - len(calls)))
    assert dio._encode_jpeg_strips(px, encode, 8, 2) is None and sorted(calls) == [512, 512]
    assert dio._encode_jpeg_strips(px[:8], encode, 8, 2) is None  # one MCU row: nothing to split
    assert dio._jpeg_split(b"\xff\xd8\xff\xd9") is None
    # a restart interval is a 16-bit count of MCUs: a wide photo gets more, shorter strips
    wide = np.zeros((256, 8 * 8000, 3), np.uint8)
    wide[::3, ::5] = 200

    def encode_444(a):
        return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(a), level=90, subsampling=(1, 1)))
    data = dio._encode_jpeg_strips(wide, encode_444, 8, 2)
    at = data.index(b"\xff\xdd")
    assert int.from_bytes(data[at + 4:at + 6], "big") == 8 * 8000  # 8 MCU rows, not 16
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(data), imagecodecs.jpeg8_decode(encode_444(wide)))


def test_read_preview_is_the_reduced_upright_jpeg(tmp_path):
    big = np.kron(rgb8(40, 52, seed=3), np.ones((16, 16, 1), np.uint8))  # 640 x 832, smooth 16-pixel blocks
    for orientation in (1, 3, 6, 8):
        path = tmp_path / f"o{orientation}.jpg"
        PILImage.fromarray(big).save(path, exif=make_exif(orientation), quality=95)
        full = read_image(path, dtype="native").pixels
        preview, shape = read_preview(path, 150)
        assert shape == full.shape[:2]
        assert preview.dtype == np.uint8 and preview.flags.c_contiguous
        # the smallest DCT scale keeping both sides >= 150: 1/4 of 640 x 832
        assert preview.shape == (full.shape[0] // 4, full.shape[1] // 4, 3)
        # each preview pixel is close to the mean of its 4 x 4 block of the full decode
        blocks = full.reshape(preview.shape[0], 4, preview.shape[1], 4, 3).mean(axis=(1, 3))
        assert np.abs(preview - blocks).mean() < 3  # (turned the wrong way: over 100)
    assert read_preview(tmp_path / "o1.jpg", 80)[0].shape == (80, 104, 3)  # 1/8
    gray = tmp_path / "g.jpg"
    PILImage.fromarray(big[..., 0]).save(gray, quality=95)
    g, _ = read_preview(gray, 150)
    assert g.shape == (160, 208, 3) and np.array_equal(g[..., 0], g[..., 2])


def test_read_preview_none_where_there_is_none(tmp_path):
    big = np.kron(rgb8(40, 52), np.ones((16, 16, 1), np.uint8))
    PILImage.fromarray(big).save(tmp_path / "a.jpg", quality=90)
    PILImage.fromarray(big).save(tmp_path / "a.png")
    PILImage.fromarray(big).convert("CMYK").save(tmp_path / "c.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    assert read_preview(tmp_path / "a.jpg", 400) is None  # no scale keeps both sides >= 400
    assert read_preview(tmp_path / "a.png", 100) is None
    assert read_preview(tmp_path / "c.jpg", 100) is None
    assert read_preview(tmp_path / "bad.jpg", 100) is None
    assert read_preview(tmp_path / "missing.jpg", 100) is None
    assert read_preview(tmp_path / "a.jpg", 100, max_pixels=1000) is None
    assert read_preview(tmp_path / "a.jpg", 100) is not None


@pytest.mark.parametrize("name,depth", [("a.png", 16), ("a.png", 8), ("a.tif", 16), ("a.tif", 8), ("a.bmp", 8)])
def test_write_takes_arrays_of_any_memory_layout(tmp_path, name, depth):
    """A transposed view (what ``tensor.permute(1, 2, 0).numpy()`` gives) is written like its contiguous copy."""
    codes = (np.random.default_rng(0).random((3, 9, 11)) * 65535).astype(np.uint16)
    view = codes.transpose(1, 2, 0)
    assert not view.flags["C_CONTIGUOUS"]
    write_image(tmp_path / "view" / name, view, bit_depth=depth)
    write_image(tmp_path / "copy" / name, np.ascontiguousarray(view), bit_depth=depth)
    assert (tmp_path / "view" / name).read_bytes() == (tmp_path / "copy" / name).read_bytes()
    back = read_image(tmp_path / "view" / name, dtype="native").pixels
    expected = view if depth == 16 else (view.astype(np.int64) * 255 + 32767) // 65535
    np.testing.assert_array_equal(back, expected)


# --------------------------------------------------------------------------------------------- HEIF and AVIF


def smooth8(h=16, w=24):
    """Smooth 8-bit RGB gradients, which lossy HEIC and AVIF keep within a few codes."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([40 + x * 160 // w, 30 + y * 180 // h, 120 + (x + y) * 60 // (h + w)], axis=2).astype(np.uint8)


def brands(path):
    """The major brand of an ISOBMFF file's ftyp box."""
    data = Path(path).read_bytes()
    assert data[4:8] == b"ftyp"
    return data[8:12]


@pytest.mark.parametrize("ext,fmt,brand", [(".heic", "HEIF", b"heic"), (".avif", "AVIF", b"avif")])
def test_heic_and_avif_round_trip_with_alpha_and_metadata(tmp_path, icc, ext, fmt, brand):
    px, alpha = smooth8(), np.linspace(0, 255, 24)[None, :].repeat(16, 0).astype(np.uint8)
    exif = make_exif(6)  # written as 1: the pixels written are upright
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6" xmp:Rating="4"/></x:xmpmeta>'
    out = write_image(tmp_path / f"a{ext}", px, alpha=alpha, icc_profile=icc, exif=exif, xmp=xmp, quality=95)
    assert brands(out) == brand
    img = read_image(out, dtype="native")
    assert img.format == fmt and img.bit_depth == 8 and img.pixels.shape == (16, 24, 3) and not img.grey
    assert np.abs(img.pixels.astype(int) - px).mean() < 4 and np.abs(img.alpha.astype(int) - alpha).mean() < 4
    assert img.icc_profile == icc and img.xmp == xmp.replace(b'"6"', b'"1"')
    tags = exif_tags(img.exif)
    assert tags[271] == "TestCam" and tags[272] == "Model X" and tags.get(0x0112, 1) == 1
    assert read_image(write_image(tmp_path / f"b{ext}", img)).pixels.shape == (16, 24, 3)  # not turned on writing
    assert write_image(tmp_path / "c.x", px, format=ext[1:]).read_bytes()[8:12] == brand


def test_heic_from_16_bit_codes_is_10_bit_and_reads_as_16_bit(tmp_path):
    import pillow_heif

    codes = np.repeat(np.linspace(0, 65535, 16 * 64).reshape(16, 64, 1), 3, axis=2).astype(np.uint16)
    out = write_image(tmp_path / "d.heic", codes, bit_depth=16, quality=100)
    assert pillow_heif.open_heif(out, convert_hdr_to_8bit=False).info["bit_depth"] == 10
    img = read_image(out, dtype="native")
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    assert len(np.unique(img.pixels)) > 256  # more levels than 8 bits hold
    assert np.abs(img.pixels.astype(int) - codes).mean() < 200  # about one 10-bit step is 64
    assert read_image(write_image(tmp_path / "e.heic", codes / 65535.0)).bit_depth == 8  # floats: 8 bits by default


@pytest.mark.parametrize("bits", [10, 12])
def test_10_and_12_bit_avif_read_as_16_bit(tmp_path, bits):
    top = (1 << bits) - 1
    codes = np.repeat(np.linspace(0, top, 16 * 64).reshape(16, 64, 1), 3, axis=2).round().astype(np.uint16)
    path = tmp_path / "d.avif"
    path.write_bytes(imagecodecs.avif_encode(codes, level=95, bitspersample=bits))
    img = read_image(path, dtype="native")
    assert img.format == "AVIF" and img.bit_depth == 16 and img.pixels.dtype == np.uint16
    assert len(np.unique(img.pixels)) > 256
    expected = codes.astype(np.float64) * 65535 / top  # a 12-bit file is not taken for a 10-bit one
    assert np.abs(img.pixels - expected).mean() < 65535 / top * 2
    assert read_image(write_image(tmp_path / "e.avif", img)).bit_depth == 8  # AVIF is written 8-bit


def test_widen_fills_the_16_bit_range():
    np.testing.assert_array_equal(dio._widen(np.array([0, 1, 512, 1023], np.uint16), 10), [0, 64, 32800, 65535])
    np.testing.assert_array_equal(dio._widen(np.array([0, 2048, 4095], np.uint16), 12), [0, 32776, 65535])


def blocks8():
    """Six flat gray blocks of 8 x 8 in a 16 x 24 image: every orientation gives another layout, and lossy coding
    keeps flat blocks exactly."""
    levels = np.array([[20, 60, 100], [140, 180, 220]], np.uint8)
    return np.repeat(np.kron(levels, np.ones((8, 8), np.uint8))[..., None], 3, axis=2)


@pytest.mark.parametrize("ext", [".heic", ".avif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_heif_and_avif_rotation_is_applied_exactly_once(tmp_path, ext, orientation):
    """Pillow's AVIF and pillow-heif's HEIF savers store the EXIF orientation as irot / imir (pillow-heif keeps
    the EXIF orientation too, which readers must then ignore)."""
    import pillow_heif

    assert dio.register_heif()
    px = blocks8()
    path = tmp_path / f"o{ext}"
    PILImage.fromarray(px).save(path, exif=make_exif(orientation), quality=90)
    if ext == ".heic":
        assert exif_tags(pillow_heif.open_heif(path).info["exif"]).get(0x0112) == orientation
    img = read_image(path, dtype="native")
    expected = px.reshape(-1, 3)[_reference_layout(px.shape, orientation)]
    assert img.pixels.shape == expected.shape
    assert np.abs(img.pixels.astype(int) - expected).max() <= 2
    assert exif_tags(img.exif).get(0x0112, 1) == 1 and exif_tags(img.exif)[271] == "TestCam"


def test_isobmff_brands_tell_heif_from_avif():
    def ftyp(major, *compatible):
        body = major + b"\0\0\0\0" + b"".join(compatible)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\0" * 16

    assert dio._isobmff_format(ftyp(b"heic", b"mif1", b"heic")) == "HEIF"
    assert dio._isobmff_format(ftyp(b"mif1", b"mif1", b"heic")) == "HEIF"  # a Samsung HEIC
    assert dio._isobmff_format(ftyp(b"mif1", b"mif1", b"avif")) == "AVIF"
    assert dio._isobmff_format(ftyp(b"avif", b"mif1", b"miaf")) == "AVIF"
    assert dio._isobmff_format(ftyp(b"isom", b"mp41")) is None  # a video
    assert dio._isobmff_format(b"\x89PNG\r\n\x1a\n" + b"\0" * 56) is None


def test_grey_is_written_grey_to_avif_and_rgb_to_heic(tmp_path):
    px = np.repeat(smooth8()[..., 1:2], 3, axis=2)
    assert read_image(write_image(tmp_path / "g.avif", px, grey=True)).grey
    assert not read_image(write_image(tmp_path / "g.heic", px, grey=True)).grey


def test_missing_heif_or_avif_codecs_fail_clearly_and_only_for_their_files(tmp_path, monkeypatch):
    from PIL import features

    import pillow_heif

    heic = write_image(tmp_path / "a.heic", smooth8())
    avif = write_image(tmp_path / "a.avif", smooth8())
    real_check = features.check
    monkeypatch.setattr(dio, "register_heif", lambda: False)
    monkeypatch.setattr(features, "check", lambda name: name != "avif" and real_check(name))
    for path, words in ((heic, "pillow-heif"), (avif, "avif support")):
        with pytest.raises(ImageReadError, match="(?i)" + words):
            read_image(path)
        with pytest.raises(ImageWriteError, match="(?i)" + words):
            write_image(tmp_path / "out" / path.name, smooth8())
    assert not (tmp_path / "out").exists()  # refused before anything is made
    assert read_image(write_image(tmp_path / "a.png", smooth8())).format == "PNG"  # other formats unaffected
    monkeypatch.undo()
    monkeypatch.setattr(pillow_heif, "libheif_info", lambda: {"HEIF": "", "AVIF": ""})
    with pytest.raises(ImageWriteError, match="HEVC encoder"):
        write_image(tmp_path / "b.heic", smooth8())
    assert read_image(heic).format == "HEIF"  # reading needs no encoder


@pytest.mark.parametrize("ext", [".heic", ".avif"])
def test_heif_and_avif_pixel_limit_and_damage(tmp_path, ext):
    path = write_image(tmp_path / f"a{ext}", smooth8(64, 64))
    assert_read_error(path, "too many pixels", max_pixels=64 * 64 - 1)
    assert read_image(path, max_pixels=64 * 64).pixels.shape == (64, 64, 3)
    data = path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    assert_read_error(cut, "truncated")


# --------------------------------------------------------------------------------------------- camera RAW


def srgb(linear):
    return 1.055 * linear ** (1 / 2.4) - 0.055


def test_a_dng_is_developed_to_16_bit_srgb_with_camera_white_balance(tmp_path):
    img = read_image(make_dng(tmp_path / "a.dng", level=0.3))
    assert (img.format, img.bit_depth, img.alpha, img.grey) == ("RAW", 16, None, False)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (32, 48, 3)
    assert img.icc_profile == dio._srgb_profile()
    mean = img.pixels.reshape(-1, 3).mean(axis=0)
    # grey although the camera saw (0.5, 1, 0.7): its white balance is applied; and exposed as shot, not brightened
    np.testing.assert_allclose(mean, srgb(0.3), atol=0.005)
    brighter = read_image(make_dng(tmp_path / "b.dng", level=0.6)).pixels.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(brighter, srgb(0.6), atol=0.005)
    native = read_image(tmp_path / "a.dng", dtype="native")
    assert native.pixels.dtype == np.uint16
    np.testing.assert_array_equal(native.pixels, as_u16(img.pixels))


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_dng_is_cut_to_its_default_crop_before_it_is_turned(tmp_path, orientation):
    scene = np.full((32, 48), 0.9)  # a bright border outside the picture the camera means
    scene[4:28, 8:40] = 0.2
    img = read_image(make_dng(tmp_path / "a.dng", scene, neutral=(1.0, 1.0, 1.0), orientation=orientation,
                              crop=(8, 4, 32, 24)))
    assert img.pixels.shape == ((24, 32, 3) if orientation == 1 else (32, 24, 3))  # before: 32 x 48, border and all
    np.testing.assert_allclose(img.pixels[2:-2, 2:-2].reshape(-1, 3).mean(axis=0), srgb(0.2), atol=0.01)


@pytest.mark.parametrize("peak", [0.5, 0.76, 1.0])
def test_a_dngs_exposure_does_not_depend_on_its_highlights(tmp_path, peak):
    """LibRaw lowers the white level to the brightest pixels when they are within 75 % of it (adjust_maximum_thr):
    a highlight at 0.76 of white brightened the whole photo by 0.4 EV, and clipped the highlight."""
    scene = np.full((32, 48), 0.2)
    scene[:4, :4] = peak
    img = read_image(make_dng(tmp_path / "a.dng", scene, neutral=(1.0, 1.0, 1.0)))
    np.testing.assert_allclose(img.pixels[16:, 16:].reshape(-1, 3).mean(axis=0), srgb(0.2), atol=0.005)
    np.testing.assert_allclose(img.pixels[1, 1], srgb(peak), atol=0.01)


def test_a_dng_is_turned_upright_once(tmp_path):
    scene = np.full((32, 48), 0.1)
    scene[:8, :16] = 0.8  # a bright top-left corner
    stored = read_image(make_dng(tmp_path / "o1.dng", scene), dtype="native").pixels
    turned = read_image(make_dng(tmp_path / "o6.dng", scene, orientation=6), dtype="native")
    assert turned.pixels.shape == (48, 32, 3)
    np.testing.assert_array_equal(turned.pixels, np.rot90(stored, -1))  # EXIF 6: turned 90 degrees clockwise
    assert exif_tags(turned.exif).get(0x0112) == 1


def test_a_dngs_exif_is_kept_without_its_maker_note(tmp_path):
    from PIL.TiffImagePlugin import IFDRational

    exif = {0x9003: "2024:05:06 07:08:09", 0x829A: IFDRational(1, 250), 0x927C: b"maker note"}
    img = read_image(make_dng(tmp_path / "a.dng", orientation=6, exif=exif))
    tags = exif_tags(img.exif)
    assert tags[271] == "TestMake" and tags[0x0112] == 1
    found = tags.get_ifd(0x8769)
    assert found[0x9003] == "2024:05:06 07:08:09" and found[0x829A] == IFDRational(1, 250)
    assert 0x927C not in found


def test_a_raw_without_tiff_structure_takes_the_exif_of_its_jpeg_preview(tmp_path):
    from types import SimpleNamespace

    import rawpy

    jpeg = io.BytesIO()
    PILImage.fromarray(rgb8()).save(jpeg, "JPEG", exif=make_exif(orientation=8, make="PreviewCam"))

    def raw(fmt=rawpy.ThumbFormat.JPEG, data=jpeg.getvalue()):
        return SimpleNamespace(extract_thumb=lambda: SimpleNamespace(format=fmt, data=data))

    tags = exif_tags(dio._raw_exif(tmp_path, b"FUJIFILMCCD-RAW ", raw()))
    assert tags[271] == "PreviewCam" and tags[0x0112] == 1
    assert dio._raw_exif(tmp_path, b"FUJIFILMCCD-RAW ", raw(rawpy.ThumbFormat.BITMAP)) is None

    def no_thumbnail():
        raise rawpy.LibRawNoThumbnailError(b"No thumbnail in file")

    assert dio._raw_exif(tmp_path, b"FUJIFILMCCD-RAW ", SimpleNamespace(extract_thumb=no_thumbnail)) is None


def test_raw_pixel_limit_and_damage(tmp_path):
    path = make_dng(tmp_path / "a.dng")
    assert_read_error(path, "too many pixels", max_pixels=32 * 48 - 1)
    assert read_image(path, max_pixels=32 * 48).pixels.shape == (32, 48, 3)
    cut = tmp_path / "cut.dng"
    cut.write_bytes(path.read_bytes()[:3000])
    assert_read_error(cut, "truncated or corrupt raw")
    fake = tmp_path / "photo.nef"
    PILImage.fromarray(rgb8()).save(fake, "JPEG")
    assert_read_error(fake, "not a camera raw file")
    for name, text in (("notes.nef", "to do:\n"), ("café.cr2", "crème brûlée, " * 9)):  # short and long
        (tmp_path / name).write_text(text, encoding="utf-8")  # was 'truncated or corrupt raw file' for the short
        assert_read_error(tmp_path / name, "not a camera raw file: it holds text")
    (tmp_path / "cut.cr2").write_bytes(path.read_bytes()[:100])
    assert_read_error(tmp_path / "cut.cr2", "truncated or corrupt raw")


def test_raw_needs_rawpy_and_cannot_be_written(tmp_path, monkeypatch):
    import sys

    path = make_dng(tmp_path / "a.dng")
    png = write_image(tmp_path / "a.png", rgb8())
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy fails
    assert_read_error(path, "pip install rawpy")
    assert read_image(png).format == "PNG"  # other formats unaffected
    with pytest.raises(ImageWriteError, match="cannot be written"):
        write_image(tmp_path / "out.nef", rgb8())
    assert not (tmp_path / "out.nef").exists()


def test_an_avif_is_not_turned_by_an_xmp_orientation(tmp_path):
    """AVIF readers turn a picture by its irot/imir (which Pillow reports as EXIF), never by an XMP orientation;
    Pillow's fallback to the XMP would make an edit turned and an unchanged copy not."""
    a = np.zeros((6, 8, 3), np.uint8)
    a[:2, :3] = 255
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    PILImage.fromarray(a).save(tmp_path / "x.avif", xmp=xmp)
    img = read_image(tmp_path / "x.avif", dtype="native")
    assert img.pixels.shape == (6, 8, 3) and b'tiff:Orientation="1"' in img.xmp
    exif = PILImage.Exif()
    exif[0x0112] = 6
    PILImage.fromarray(a).save(tmp_path / "e.avif", exif=exif.tobytes())
    assert read_image(tmp_path / "e.avif").pixels.shape == (8, 6, 3)


# --------------------------------------------------------------------------------------------- colour code points


def written_nclx(path):
    """The nclx code points in an ISOBMFF file's meta box, or None."""
    return dio._nclx(dio._isobmff_meta(Path(path).read_bytes()) or b"")


def test_a_display_p3_heic_gets_its_profile_in_every_format_and_keeps_its_nclx(tmp_path):
    p3 = Cicp(12, 13, 1, True)
    img = read_image(make_nclx_heic(tmp_path / "p3.heic", smooth8(), p3))
    assert img.cicp == p3 and img.icc_profile == icc_profile(p3)
    for ext in (".jpg", ".png", ".tif", ".webp", ".avif", ".heic"):
        back = read_image(write_image(tmp_path / f"o{ext}", img))
        assert back.icc_profile == icc_profile(p3), ext
    assert written_nclx(tmp_path / "o.heic") == p3 and read_image(tmp_path / "o.heic").cicp == p3  # no ICC there
    other = read_image(write_image(tmp_path / "icc.heic", img, icc_profile=_build(1, 13)))  # another profile wins
    assert other.icc_profile == _build(1, 13) and other.cicp is None
    png16 = read_image(write_image(tmp_path / "o16.png", img, bit_depth=16))
    assert png16.icc_profile == icc_profile(p3) and png16.cicp == read_image(tmp_path / "o.png").cicp \
        == Cicp(12, 13, 0, True)  # a cICP chunk beside the profile


def test_an_srgb_nclx_needs_no_profile_and_an_icc_file_has_no_cicp(tmp_path, icc):
    srgb = Cicp(1, 13, 6, True)
    img = read_image(make_nclx_heic(tmp_path / "s.heic", smooth8(), srgb))
    assert img.cicp == srgb and img.icc_profile is None
    assert read_image(write_image(tmp_path / "s.png", img)).icc_profile is None
    with_icc = read_image(write_image(tmp_path / "i.avif", smooth8(), icc_profile=icc))  # Pillow adds an sRGB nclx
    assert with_icc.icc_profile == icc and with_icc.cicp is None


def test_an_hdr_heic_keeps_its_pq_code_points_in_heic_and_png_only(tmp_path):
    pq = Cicp(9, 16, 9, False)
    codes = smooth8().astype(np.uint16) * 4  # 10-bit codes
    img = read_image(make_nclx_heic(tmp_path / "pq.heic", codes, pq), dtype="native")
    assert img.cicp == pq and img.cicp.hdr == "PQ" and img.icc_profile is None and img.bit_depth == 16
    out = write_image(tmp_path / "o.heic", img, bit_depth=16)
    assert written_nclx(out) == pq and read_image(out).cicp == pq
    for depth in (8, 16):  # PNG holds full-range RGB: matrix 0, full range
        back = read_image(write_image(tmp_path / f"o{depth}.png", img, bit_depth=depth))
        assert back.cicp == Cicp(9, 16, 0, True) and back.icc_profile is None, depth
    assert read_image(write_image(tmp_path / "o.tif", img, bit_depth=16)).icc_profile is None


def test_an_avif_nclx_is_read_from_its_colr_box(tmp_path):
    data = bytearray(write_image(tmp_path / "a.avif", smooth8()).read_bytes())
    at = data.find(b"colrnclx")
    assert struct.unpack_from(">HHH", data, at + 8) == (1, 13, 6)  # Pillow writes sRGB code points
    struct.pack_into(">H", data, at + 8, 12)  # Display P3 primaries
    (tmp_path / "p3.avif").write_bytes(bytes(data))
    img = read_image(tmp_path / "p3.avif")
    assert img.cicp == Cicp(12, 13, 6, True) and img.icc_profile == icc_profile(img.cicp)
    assert read_image(write_image(tmp_path / "p3.jpg", img)).icc_profile == icc_profile(img.cicp)


def test_write_image_makes_a_profile_from_given_code_points(tmp_path):
    out = write_image(tmp_path / "a.png", smooth8(), cicp=(12, 13, 0, 1))
    assert read_image(out).icc_profile == icc_profile(Cicp(12, 13, 0, True))
    assert read_image(write_image(tmp_path / "b.jpg", smooth8(), cicp=(12, 13, 0, 1), icc_profile=b"")).icc_profile \
        is None  # b"" drops the profile
    grey = read_image(write_image(tmp_path / "g.png", smooth8(), cicp=(1, 1, 1, 1), grey=True))
    assert grey.grey and grey.icc_profile == icc_profile(Cicp(1, 1, 1, True), grey=True)
    for bad in ((12, 13, 0), (12, 300, 0, 1), (-1, 13, 0, 1)):
        with pytest.raises(ImageWriteError, match="cicp must be"):
            write_image(tmp_path / "c.png", smooth8(), cicp=bad)
    assert not (tmp_path / "c.png").exists()


def test_a_png_cicp_chunk_overrides_its_icc_profile(tmp_path, icc):
    from PIL.PngImagePlugin import PngInfo

    for depth in (8, 16):
        plain = write_image(tmp_path / f"p{depth}.png", smooth8(), bit_depth=depth, icc_profile=icc)
        assert read_image(plain).icc_profile == icc and read_image(plain).cicp is None
    info = PngInfo()
    info.add(b"cICP", bytes([12, 13, 0, 1]))
    PILImage.fromarray(smooth8()).save(tmp_path / "c.png", icc_profile=icc, pnginfo=info)
    img = read_image(tmp_path / "c.png")
    assert img.cicp == Cicp(12, 13, 0, True) and img.icc_profile == icc_profile(img.cicp)
    data = bytearray(write_image(tmp_path / "c16.png", smooth8(), bit_depth=16, icc_profile=icc).read_bytes())
    chunk = struct.pack(">I", 4) + b"cICP" + bytes([12, 13, 0, 1])
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]) & 0xFFFFFFFF)
    at = data.find(b"IDAT") - 4
    (tmp_path / "d16.png").write_bytes(bytes(data[:at]) + chunk + bytes(data[at:]))
    img16 = read_image(tmp_path / "d16.png")
    assert img16.bit_depth == 16 and img16.cicp == img.cicp and img16.icc_profile == img.icc_profile


def test_isobmff_meta_and_nclx_parsing():
    def box(kind, body):
        return struct.pack(">I", 8 + len(body)) + kind + body

    colr = box(b"colr", b"nclx" + struct.pack(">HHHB", 12, 16, 9, 0x80))
    meta = box(b"meta", bytes(4) + box(b"iprp", box(b"ipco", colr)))
    data = box(b"ftyp", b"avif" + bytes(4)) + meta + box(b"mdat", bytes(100))
    assert dio._isobmff_meta(data) == meta and dio._nclx(meta) == Cicp(12, 16, 9, True)
    assert dio._isobmff_meta(data[:len(meta)]) is None  # cut inside the meta box: read more
    assert dio._isobmff_meta(box(b"ftyp", b"avif") + box(b"mdat", b"")) is None  # no meta in what was given
    assert dio._nclx(box(b"meta", box(b"colr", b"prof" + bytes(20)))) is None
    assert dio._nclx(meta[:-3]) is None  # a cut nclx box



# --------------------------------------------------------------------------------------------- IPTC, comments, text

# IPTC-IIM records: record 2 version, caption (2:120) "Hello, world" and a keyword (2:25), an odd total length
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04" + b"\x1c\x02\x78\x00\x0cHello, world" + b"\x1c\x02\x19\x00\x04surf"


def test_iptc_and_a_comment_are_kept_where_the_format_holds_them(tmp_path):
    notes = Notes(IPTC, "Café".encode(), (("Author", "Zoë"), ("Title", "タイトル"), ("parameters", "steps: 20")))
    expected = {".jpg": Notes(IPTC, notes.comment), ".tif": Notes(IPTC), ".png": Notes(None, *notes[1:]),
                ".webp": None, ".heic": None, ".bmp": None}
    for ext, want in expected.items():
        for depth in (8, 16) if ext in (".png", ".tif") else (8,):
            for px in (rgb8(), rgb8() / np.float32(255)):  # codes and floats go through different JPEG encoders
                got = read_image(write_image(tmp_path / f"a{depth}{ext}", px, bit_depth=depth, notes=notes,
                                             overwrite=True))
                assert got.notes == want, (ext, depth, px.dtype)
    jpg = read_image(tmp_path / "a8.jpg")
    for ext in (".jpg", ".png", ".tif"):  # from a JPEG: IPTC to TIFF, its comment to PNG
        want = expected[ext]._replace(text=()) if ext == ".png" else expected[ext]
        assert read_image(write_image(tmp_path / f"b{ext}", jpg)).notes == want, ext


def test_notes_read_from_files_other_tools_wrote(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    photoshop = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(IPTC)) + IPTC + b"\x00"
    app13 = b"\xff\xed" + struct.pack(">H", len(photoshop) + 2) + photoshop
    PILImage.fromarray(rgb8()).save(tmp_path / "p.jpg", comment=b"shot on film", extra=app13)
    assert read_image(tmp_path / "p.jpg").notes == Notes(IPTC, b"shot on film")
    info = PngInfo()
    info.add_text("Comment", "hello")
    info.add_text("Software", "GIMP", zip=True)  # zTXt
    info.add_itxt("Title", "タイトル", zip=True)  # compressed iTXt
    PILImage.fromarray(rgb8()).save(tmp_path / "t.png", pnginfo=info)
    assert read_image(tmp_path / "t.png").notes == Notes(None, b"hello", (("Software", "GIMP"), ("Title", "タイトル")))
    long_iptc = (np.arange(256, dtype=np.uint8).tobytes() * 70000 * 3)[:70000]
    assert tifffile.imwrite(tmp_path / "l.tif", rgb8(), extratags=[(33723, 4, len(long_iptc) // 4,
                                                                     np.frombuffer(long_iptc, "<u4"), True)]) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiff = read_image(tmp_path / "l.tif")  # stored as LONG, as Photoshop does
    assert not [w for w in caught if "33723" in str(w.message)]  # Pillow's complaint about the LONGs is not passed on
    assert tiff.notes.iptc == long_iptc
    assert read_image(write_image(tmp_path / "l.jpg", tiff)).notes is None  # over one APP13 marker: left out
    with pytest.raises(ImageWriteError, match="notes must be"):
        write_image(tmp_path / "x.png", rgb8(), notes=(IPTC, None, ()))
    assert read_image(write_image(tmp_path / "none.png", rgb8())).notes is None


def test_pictures_counts_the_pictures_a_file_holds(tmp_path):
    import pillow_heif

    a = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    PILImage.fromarray(a).save(tmp_path / "one.jpg")
    assert read_image(tmp_path / "one.jpg").pictures == 1
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([a, a[::-1], a]), photometric="rgb")
    tifffile.imwrite(tmp_path / "pages16.tif", np.stack([a, a[::-1]]).astype(np.uint16) * 257, photometric="rgb")
    with tifffile.TiffWriter(tmp_path / "thumbnail.tif") as tw:  # a reduced-resolution page is no picture of its own
        tw.write(a, photometric="rgb")
        tw.write(a[::4, ::4], photometric="rgb", subfiletype=1)
    first = read_image(tmp_path / "pages.tif", dtype="native")
    assert first.pictures == 3 and np.array_equal(first.pixels, a)  # the first page
    assert read_image(tmp_path / "pages16.tif").pictures == 2
    assert read_image(tmp_path / "thumbnail.tif").pictures == 1
    PILImage.fromarray(a).save(tmp_path / "mpo.jpg", format="MPO", save_all=True,
                               append_images=[PILImage.fromarray(a[::2, ::2])])
    mpo = read_image(tmp_path / "mpo.jpg")
    assert (mpo.format, mpo.pictures, mpo.width) == ("JPEG", 2, 32)
    burst = pillow_heif.from_pillow(PILImage.fromarray(a))
    burst.add_from_pillow(PILImage.fromarray(a[::-1]))
    burst.save(tmp_path / "burst.heic", quality=90)
    assert read_image(tmp_path / "burst.heic").pictures == 2


def test_a_gif_read_as_a_photo_says_enhance_reads_it(tmp_path):
    PILImage.fromarray(rgb8()).save(tmp_path / "a.gif")
    with pytest.raises(dio.ImageReadError, match="a GIF, which only 'deepexpose enhance' reads"):
        read_image(tmp_path / "a.gif")


def test_a_page_of_a_multi_page_tiff_is_read_by_its_number(tmp_path):
    a = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    b = (np.arange(10 * 12) * 500).astype(np.uint16).reshape(10, 12)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:
        tw.write(a[::4, ::4], photometric="rgb", subfiletype=1)  # a thumbnail: not counted
        tw.write(a, photometric="rgb")
        tw.write(b, photometric="minisblack", metadata=None, extratags=[(274, "H", 1, 6, True)])  # turned
        tw.write(a[::-1], photometric="rgb", compression="zlib")
    pages = [read_image(tmp_path / "pages.tif", page=i, dtype="native") for i in range(3)]
    assert [(p.pictures, p.bit_depth, p.grey) for p in pages] == [(3, 8, False), (3, 16, True), (3, 8, False)]
    assert np.array_equal(pages[0].pixels, a) and np.array_equal(pages[2].pixels, a[::-1])
    assert np.array_equal(pages[1].pixels[:, :, 0], np.rot90(b, -1))  # its own orientation applied
    with pytest.raises(dio.ImageReadError, match="has no page 4: it holds 3"):
        read_image(tmp_path / "pages.tif", page=3)
    PILImage.fromarray(a).save(tmp_path / "one.png")
    with pytest.raises(dio.ImageReadError, match="has no page 2: only a TIFF holds pages"):
        read_image(tmp_path / "one.png", page=1)
    assert read_image(tmp_path / "one.png", page=0).pictures == 1
    with pytest.raises(ValueError, match="page must be an integer >= 0"):
        read_image(tmp_path / "pages.tif", page=-1)


def test_pages_are_joined_into_one_tiff_each_with_its_own_metadata(tmp_path):
    from deepexpose.io import encode_image, join_tiff_pages

    rng = np.random.default_rng(0)
    a = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    b = (rng.random((10, 16, 3)) * 65535).astype(np.uint16)
    c = (rng.random((12, 8, 1)) * 255).astype(np.uint8).repeat(3, 2)
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110] = "Cam", "Model X"
    exif.get_ifd(0x8769)[0x829A] = (1, 250)  # exposure time, in the EXIF directory
    exif.get_ifd(0x8825)[1] = "N"  # GPS
    second = encode_image(tmp_path / "x.tif", b, bit_depth=16, exif=exif.tobytes(), dpi=(300, 300))
    third = encode_image(tmp_path / "x.tif", c, grey=True, alpha=np.full((12, 8), 128, np.uint8))
    assert not list(tmp_path.iterdir())  # encoded in memory alone
    path = write_image(tmp_path / "joined.tif", a, icc_profile=dio._srgb_profile(), pages=[second, third])
    with tifffile.TiffFile(path) as tif:
        assert [p.shape for p in tif.pages] == [(20, 30, 3), (10, 16, 3), (12, 8, 2)]
        assert np.array_equal(tif.pages[1].asarray(), b) and np.array_equal(tif.pages[2].asarray()[:, :, 0], c[..., 0])
    with PILImage.open(path) as pim:  # another reader follows every moved offset too
        pim.seek(1)
        assert pim.getexif().get_ifd(0x8769)[0x829A] == (1, 250) and pim.getexif().get_ifd(0x8825)[1] == "N"
        pim.seek(2)
        assert pim.mode == "LA" and np.array_equal(np.asarray(pim)[:, :, 1], np.full((12, 8), 128))
    pages = [read_image(path, page=i, dtype="native") for i in range(3)]
    assert pages[0].icc_profile == dio._srgb_profile() and pages[1].icc_profile is None
    assert pages[1].dpi == (300.0, 300.0)
    assert PILImage.Exif().load(pages[1].exif) is None and pages[2].alpha is not None and pages[2].grey
    assert join_tiff_pages([second]) == second
    with pytest.raises(dio.ImageWriteError, match="pages are written to TIFF output alone"):
        write_image(tmp_path / "a.png", a, pages=[second])
    swapped = encode_image(tmp_path / "x.tif", a)
    with pytest.raises(ValueError, match="part 2 is of another byte order"):
        join_tiff_pages([second, b"MM\x00*" + swapped[4:]])
    with pytest.raises(ValueError, match="part 2 is not a classic TIFF"):
        join_tiff_pages([second, encode_image(tmp_path / "x.png", a)])


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "heic", "avif"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_an_exif_thumbnail_is_made_again_from_the_pixels_written(tmp_path, fmt, big_endian):
    old = np.zeros((120, 160, 3), np.uint8)  # the photo as it was: black
    exif = exif_with_thumbnail(old, big_endian=big_endian)
    pixels = np.zeros((90, 240, 3), np.uint8)
    pixels[:, 120:] = 220  # the photo written: dark left half, light right half, 8:3
    out = write_image(tmp_path / f"a.{fmt}", pixels, exif=exif)
    back = read_image(out, dtype="native").exif
    thumb = exif_thumbnail(back)
    if fmt == "avif":  # Pillow's AVIF writer rewrites the EXIF without IFD1: no thumbnail, never the old one
        assert thumb is None
        return
    assert thumb.shape == (60, 160, 3)  # the old one's longest side, the new photo's shape
    assert thumb[:, :70].mean() < 30 and thumb[:, 90:].mean() > 190
    parsed = PILImage.Exif()
    parsed.load(back)
    assert parsed[0x010F].rstrip("\x00") == "Camera"
    assert len(back) == len(exif)  # in the old thumbnail's place: no other offset moves


def test_an_exif_thumbnail_that_cannot_be_remade_in_its_place_is_removed(tmp_path):
    exif = exif_with_thumbnail(b"\xff\xd8" + bytes(40) + b"\xff\xd9")  # 44 bytes: no JPEG fits there
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    back = read_image(write_image(tmp_path / "a.jpg", noise, exif=exif), dtype="native").exif
    assert exif_thumbnail(back) is None
    parsed = PILImage.Exif()
    parsed.load(back)
    assert parsed[0x010F].rstrip("\x00") == "Camera"
    assert dio._exif_with_thumbnail(b"Exif\x00\x00II*\x00\x08", noise) == b"Exif\x00\x00II*\x00\x08"  # cut: as is
    plain = PILImage.Exif()
    plain[0x010F] = "Maker"
    assert dio._exif_with_thumbnail(b"Exif\x00\x00" + plain.tobytes(), noise) == b"Exif\x00\x00" + plain.tobytes()


def test_a_turned_photos_exif_keeps_its_maker_data_in_place_and_gets_an_upright_thumbnail(tmp_path):
    exif = exif_with_thumbnail(np.zeros((120, 160, 3), np.uint8), orientation=6, big_endian=True)
    wide = np.zeros((60, 120, 3), np.uint8)
    wide[:, 60:] = 220  # stored sideways: turned 90 degrees clockwise, it is tall, dark on top
    PILImage.fromarray(wide).save(tmp_path / "turned.jpg", exif=exif)
    img = read_image(tmp_path / "turned.jpg", dtype="native")
    assert img.pixels.shape == (120, 60, 3) and len(img.exif) == len(exif)  # set in place: nothing moved
    parsed = PILImage.Exif()
    parsed.load(img.exif)
    assert parsed[0x0112] == 1 and parsed[0x010F].rstrip("\x00") == "Camera"
    back = read_image(write_image(tmp_path / "out.jpg", img), dtype="native").exif
    thumb = exif_thumbnail(back)
    assert thumb.shape == (120, 60, 3) and thumb[:50].mean() < 30 and thumb[70:].mean() > 190  # upright, as written


def _mpo_photo(orientation: int = 1):
    """A phone-like JPEG: a 24 x 32 photo (EXIF orientation given), then a preview, a gain map listed in the photo's
    GContainer XMP, a second view, and a motion photo's video; the parts as written."""
    from conftest import GAIN_MAP_XMP, MP_DISPARITY, MP_PREVIEW, MP_UNDEFINED, container_xmp, jpeg_bytes, multi_picture

    y, x = np.mgrid[0:24, 0:32]
    photo = np.stack([x * 6, y * 8, 60 + x], axis=2).astype(np.uint8)
    preview = jpeg_bytes(photo[::2, ::2])
    gain = jpeg_bytes((x[::2, ::2] * 15 + y[::2, ::2]).astype(np.uint8), quality=85, xmp=GAIN_MAP_XMP)
    view = jpeg_bytes(photo[:, ::-1])
    video = b"\0\0\0\x18ftypmp42" + bytes(range(200))
    ex = PILImage.Exif()
    ex[0x0112] = orientation
    head = jpeg_bytes(photo, xmp=container_xmp(("GainMap", "image/jpeg", len(gain)), ("MotionPhoto", "video/mp4",
                                                                                          len(video))),
                      exif=ex.tobytes())
    data = multi_picture(head, [(MP_PREVIEW, preview), (MP_UNDEFINED, gain), (MP_DISPARITY, view)], after=video)
    return data, photo, preview, gain, view, video


def _pictures(path) -> list[np.ndarray]:
    """Every picture of a multi-picture JPEG, as Pillow's MPO reader finds them from the index (Pillow opens a
    JPEG with Ultra HDR XMP as a plain JPEG, so the reader is asked for by name)."""
    from PIL.MpoImagePlugin import MpoImageFile

    out = []
    try:
        im = MpoImageFile(path)
    except ValueError:  # no index
        return [np.asarray(PILImage.open(path))]
    with im:
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im))
    return out


def test_a_jpegs_pictures_and_data_after_its_photo_are_written_back_after_the_new_photo(tmp_path):
    from deepexpose.mpf import DATA, GAIN_MAP, PREVIEW, VIEW

    data, photo, preview, gain, view, video = _mpo_photo()
    (tmp_path / "phone.jpg").write_bytes(data)
    img = read_image(tmp_path / "phone.jpg", dtype="native")
    assert [p.kind for p in img.trailer.parts] == [PREVIEW, GAIN_MAP, VIEW, DATA]
    brighter = np.clip(img.pixels.astype(int) + 60, 0, 255).astype(np.uint8)
    write_image(tmp_path / "out.jpg", brighter, trailer=img.trailer, xmp=img.xmp)
    out = (tmp_path / "out.jpg").read_bytes()
    assert out.endswith(video)  # the motion photo's video, last, as its XMP says
    frames = _pictures(tmp_path / "out.jpg")
    assert len(frames) == 4
    assert np.abs(frames[1].astype(int) - brighter[::2, ::2]).mean() < 4  # the preview shows the new photo
    again = read_image(tmp_path / "out.jpg").trailer
    assert [p.data for p in again.parts[1:]] == [gain, view, video]  # upright already: kept byte for byte
    assert again.parts[0].data != preview
    # other formats have no place for them; an empty trailer drops them from a JPEG
    write_image(tmp_path / "out.png", img)
    assert read_image(tmp_path / "out.png").trailer is None
    write_image(tmp_path / "bare.jpg", img, trailer=dio.Trailer(()))
    assert read_image(tmp_path / "bare.jpg").trailer is None and len(_pictures(tmp_path / "bare.jpg")) == 1
    with pytest.raises(ImageWriteError, match="trailer must be a deepexpose.mpf.Trailer"):
        write_image(tmp_path / "bad.jpg", img, trailer=b"video")


def test_a_turned_photos_pictures_are_turned_with_it_and_its_container_lengths_follow(tmp_path):
    from deepexpose.mpf import GAIN_MAP

    data, photo, preview, gain, view, video = _mpo_photo(orientation=6)
    (tmp_path / "phone.jpg").write_bytes(data)
    img = read_image(tmp_path / "phone.jpg", dtype="native")
    assert img.pixels.shape == (32, 24, 3) and {p.orientation for p in img.trailer.pictures} == {6}
    write_image(tmp_path / "out.jpg", img)
    frames = _pictures(tmp_path / "out.jpg")
    assert [f.shape[:2] for f in frames] == [(32, 24), (16, 12), (16, 12), (32, 24)]  # all upright
    source_gain = np.asarray(PILImage.open(io.BytesIO(gain)))
    assert np.abs(frames[2].astype(int) - np.rot90(source_gain, -1)).mean() < 2
    assert np.abs(frames[3].astype(int) - np.rot90(photo[:, ::-1], -1)).mean() < 3
    out = read_image(tmp_path / "out.jpg")
    new_gain = next(p for p in out.trailer.parts if p.kind == GAIN_MAP)  # still said to be a gain map
    assert new_gain.orientation == 1 and out.trailer.parts[-1].data == video
    assert f'Item:Length="{len(new_gain.data)}"'.encode() in out.xmp  # the container lists its new length
    assert len(new_gain.data) != len(gain) and f'Item:Length="{len(video)}"'.encode() in out.xmp


def test_encode_picture_keeps_a_pictures_tables_and_segments_and_decode_picture_turns_it():
    from conftest import GAIN_MAP_XMP, jpeg_bytes

    from deepexpose.mpf import GAIN_MAP, Part, segments

    y, x = np.mgrid[0:12, 0:16]
    gain = jpeg_bytes((x * 15).astype(np.uint8), quality=60, xmp=GAIN_MAP_XMP)
    part = Part(GAIN_MAP, gain, 2, orientation=8)
    pixels = decode_picture(part)
    assert pixels.shape == (16, 12, 1) and np.array_equal(pixels[:, :, 0], np.rot90(np.asarray(PILImage.open(
        io.BytesIO(gain))), 1))
    new = encode_picture(part, pixels)
    assert (new.kind, new.entry, new.orientation) == (GAIN_MAP, 2, 1)
    with PILImage.open(io.BytesIO(new.data)) as a, PILImage.open(io.BytesIO(gain)) as b:
        assert a.size == (12, 16) and a.quantization == b.quantization and a.info["xmp"] == b.info["xmp"]
    assert [m for m, _, _ in segments(new.data)].count(0xE1) == 1


def test_a_camera_jpeg_with_a_preview_after_it_reads_and_previews_as_its_photo(tmp_path):
    from conftest import MP_PREVIEW, jpeg_bytes, multi_picture

    big = np.kron(rgb8(40, 52, seed=5), np.ones((16, 16, 1), np.uint8))
    plain = jpeg_bytes(big, quality=92)
    (tmp_path / "plain.jpg").write_bytes(plain)
    (tmp_path / "camera.jpg").write_bytes(multi_picture(plain, [(MP_PREVIEW, jpeg_bytes(255 - big[::8, ::8]))]))
    photo = read_image(tmp_path / "camera.jpg", dtype="native")
    assert np.array_equal(photo.pixels, read_image(tmp_path / "plain.jpg", dtype="native").pixels)
    assert np.array_equal(read_image(tmp_path / "camera.jpg").pixels, read_image(tmp_path / "plain.jpg").pixels)
    preview, shape = read_preview(tmp_path / "camera.jpg", 150)  # the photo's own reduced decode, not its preview
    assert shape == (640, 832) and np.array_equal(preview, read_preview(tmp_path / "plain.jpg", 150)[0])


def test_a_heifs_thumbnails_are_made_again_from_the_pixels_written(tmp_path):
    import pillow_heif

    y, x = np.mgrid[0:96, 0:128]
    dark = np.stack([x // 2, y // 2, (x + y) // 4], axis=2).astype(np.uint8)
    pillow_heif.encode("RGB", (128, 96), dark.tobytes(), tmp_path / "phone.heic", quality=90, thumbnails=[64])
    img = read_image(tmp_path / "phone.heic", dtype="native")
    assert img.thumbnails == (64,) and img.auxiliary == ()
    bright = np.clip(img.pixels.astype(int) + 100, 0, 255).astype(np.uint8)
    write_image(tmp_path / "out.heic", bright, thumbnails=img.thumbnails)
    out = pillow_heif.open_heif(tmp_path / "out.heic")
    assert out.info["thumbnails"] == [64]
    thumb = np.asarray(out[0].get_thumbnail(0))
    assert thumb.shape == (48, 64, 3) and abs(thumb.mean() - bright.mean()) < 3  # the new pixels, not the old
    write_image(tmp_path / "none.heic", img, thumbnails=())
    assert pillow_heif.open_heif(tmp_path / "none.heic").info["thumbnails"] == []
    write_image(tmp_path / "out.png", img)  # other formats have none


def test_heif_auxiliary_names_depth_maps_gain_maps_and_mattes():
    from deepexpose.io import heif_auxiliary

    info = {"depth_images": [object()], "aux": {"urn:com:apple:photo:2020:aux:hdrgainmap": [3],
                                                 "urn:com:apple:photo:2019:aux:semantichairmatte": [4, 5],
                                                 "urn:example:thermal": [6]}}
    assert heif_auxiliary(info) == ("depth map", "HDR gain map", "portrait matte (hair)", "portrait matte (hair)",
                                    "urn:example:thermal")
    assert heif_auxiliary({"depth_images": [], "aux": {}}) == () == heif_auxiliary({})


def test_damaged_or_adobe_marked_pictures_after_a_photo_never_cost_the_photo(tmp_path):
    from conftest import MP_PREVIEW, MP_UNDEFINED, jpeg_bytes, multi_picture

    from deepexpose import DeepExposeWarning
    from deepexpose.mpf import Part, segments

    y, x = np.mgrid[0:24, 0:32]
    red = np.zeros((24, 32, 3), np.uint8)
    red[...] = (200, 60, 60)
    buffer = io.BytesIO()
    PILImage.fromarray(red[::2, ::2]).convert("CMYK").save(buffer, "JPEG", quality=95)  # Adobe APP14 in it
    cmyk = buffer.getvalue()
    assert 0xEE in [m for m, _, _ in segments(cmyk)]
    new = encode_picture(Part("preview", cmyk, 1), red[::2, ::2])
    assert 0xEE not in [m for m, _, _ in segments(new.data)]  # its transform would say the YCbCr data is RGB
    assert np.abs(np.asarray(PILImage.open(io.BytesIO(new.data)).convert("RGB")).astype(int) - red[::2, ::2]).max() < 8
    broken = jpeg_bytes(red[::2, ::2])[:-40] + b"\xff\xd9"  # a gain map cut short
    ex = PILImage.Exif()
    ex[0x0112] = 6
    data = multi_picture(jpeg_bytes(red, exif=ex.tobytes()), [(MP_PREVIEW, cmyk), (MP_UNDEFINED, broken)])
    (tmp_path / "odd.jpg").write_bytes(data)
    img = read_image(tmp_path / "odd.jpg", dtype="native")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        write_image(tmp_path / "out.jpg", img)
    told = [str(w.message) for w in seen]
    assert len(told) == 1 and "the picture after the photo cannot be read" in told[0] and "kept as it was" in told[0]
    assert seen[0].category is DeepExposeWarning  # and no "malformed MPO" warning from Pillow for the preview
    out = read_image(tmp_path / "out.jpg", dtype="native")
    assert out.pixels.shape == (32, 24, 3) and out.trailer.parts[1].data == broken
    assert np.abs(out.pixels.astype(int) - (200, 60, 60)).max() < 8


def test_a_jpeg_pillow_cannot_open_is_named_for_what_it_is(tmp_path):
    imagecodecs = pytest.importorskip("imagecodecs")
    data = imagecodecs.jpeg8_encode(np.full((16, 24, 3), 600, np.uint16), bitspersample=12)
    (tmp_path / "12bit.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"unsupported JPEG: 12-bit samples \(only 8-bit JPEGs are read\)"):
        read_image(tmp_path / "12bit.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    with pytest.raises(ImageReadError) as e:
        read_image(tmp_path / "junk.jpg")
    assert "unsupported JPEG" not in str(e.value)


def test_a_gray_photo_written_as_rgb_keeps_its_tones_through_an_rgb_profile_of_its_curve(tmp_path):
    from deepexpose.cicp import _build, rgb_profile_from_gray

    gray = _build(None, 8)  # linear
    PILImage.fromarray(np.full((24, 32), 60, np.uint8)).save(tmp_path / "g.jpg", icc_profile=gray)
    img = read_image(tmp_path / "g.jpg")
    assert img.grey and img.icc_profile == gray
    for name in ("g.webp", "g.heic"):
        write_image(tmp_path / name, img)
        out = read_image(tmp_path / name)
        assert not out.grey and out.icc_profile == rgb_profile_from_gray(gray), name
    write_image(tmp_path / "g.png", img)
    assert read_image(tmp_path / "g.png").icc_profile == gray  # a gray output keeps the gray profile itself


def test_an_exif_block_whose_first_directory_is_outside_it_is_left_out_with_a_warning(tmp_path):
    from deepexpose import DeepExposeWarning

    data = io.BytesIO()
    PILImage.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(data, format="JPEG")
    jpeg = data.getvalue()
    body = b"Exif\x00\x00MM\x00*\x00\x00\xff\xf0"  # IFD0 at 65520, past the end of the block
    (tmp_path / "bad.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:])
    with pytest.warns(DeepExposeWarning, match="bad.jpg: its EXIF cannot be read .*outside the block"):
        img = read_image(tmp_path / "bad.jpg")
    assert img.exif is None


def test_a_pngs_gamma_chunk_becomes_the_profile_it_describes(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from deepexpose.cicp import gamma_profile

    def png(name, gamma=None, srgb=False, mode="RGB"):
        info = PngInfo()
        if gamma is not None:
            info.add(b"gAMA", struct.pack(">I", round(gamma * 100000)))
        if srgb:
            info.add(b"sRGB", b"\x00")
        PILImage.new(mode, (8, 6), 90).save(tmp_path / name, pnginfo=info)
        return read_image(tmp_path / name)

    mac = png("mac.png", gamma=1 / 1.8)  # an old Mac PNG: shown brighter than sRGB data of the same codes
    assert mac.icc_profile == gamma_profile(1 / 0.55556) and mac.icc_profile[16:20] == b"RGB "  # as stored
    assert png("grey.png", gamma=1 / 1.8, mode="L").icc_profile == gamma_profile(1 / 0.55556, grey=True)
    assert png("plain.png").icc_profile is None
    assert png("web.png", gamma=0.45455).icc_profile is None  # the 1/2.2 written beside sRGB data
    assert png("srgb.png", gamma=1 / 1.8, srgb=True).icc_profile is None  # the sRGB chunk wins
    srgb = ImageCms.createProfile("sRGB")
    shown = ImageCms.profileToProfile(PILImage.new("RGB", (1, 1), (128, 128, 128)),
                                      ImageCms.ImageCmsProfile(io.BytesIO(mac.icc_profile)), srgb)
    expected = 255 * (1.055 * (0.5 ** 1.8) ** (1 / 2.4) - 0.055)  # linear 0.5 ** 1.8, encoded as sRGB
    assert abs(shown.getpixel((0, 0))[0] - expected) <= 2
    write_image(tmp_path / "mac.webp", mac)
    assert read_image(tmp_path / "mac.webp").icc_profile == mac.icc_profile  # carried as a profile everywhere
    info = PngInfo()
    info.add(b"gAMA", struct.pack(">I", 55556))
    PILImage.fromarray(np.full((6, 8), 30000, np.uint16)).save(tmp_path / "deep.png", pnginfo=info)  # 16-bit gray
    deep = read_image(tmp_path / "deep.png")
    assert deep.bit_depth == 16 and deep.icc_profile == gamma_profile(1 / 0.55556, grey=True)


def test_a_pngs_chromaticity_chunk_gives_the_gamma_profile_its_primaries(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from deepexpose.cicp import gamma_profile

    def chrm(white, red, green, blue):
        return struct.pack(">8I", *(round(v * 100000) for point in (white, red, green, blue) for v in point))

    adobe = chrm((0.3127, 0.3290), (0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
    srgb = chrm((0.3127, 0.3290), (0.64, 0.33), (0.30, 0.60), (0.15, 0.06))

    def png(name, gamma, chunk, mode="RGB", deep=False, srgb_chunk=False):
        info = PngInfo()
        info.add(b"gAMA", struct.pack(">I", round(gamma * 100000)))
        if chunk is not None:
            info.add(b"cHRM", chunk)
        if srgb_chunk:
            info.add(b"sRGB", b"\x00")
        pixels = np.full((6, 8), 30000, np.uint16) if deep else None
        (PILImage.fromarray(pixels) if deep else PILImage.new(mode, (8, 6), 90)).save(tmp_path / name, pnginfo=info)
        return read_image(tmp_path / name)

    adobe_profile = gamma_profile(1 / 0.45455, chromaticities=(((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)),
                                                              (0.3127, 0.3290)))
    assert png("adobe.png", 0.45455, adobe).icc_profile == adobe_profile  # not sRGB data, though 1/2.2
    assert png("mac.png", 1 / 1.8, adobe).icc_profile == gamma_profile(1 / 0.55556, chromaticities=(
        ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), (0.3127, 0.3290)))
    assert png("srgb.png", 0.45455, srgb).icc_profile is None  # what libpng writes beside sRGB data
    assert png("mac-srgb.png", 1 / 1.8, srgb).icc_profile == gamma_profile(1 / 0.55556)
    assert png("chunk.png", 0.45455, adobe, srgb_chunk=True).icc_profile is None  # the sRGB chunk wins
    assert png("grey.png", 1 / 1.8, adobe, mode="L").icc_profile == gamma_profile(1 / 0.55556, grey=True)
    nonsense = chrm((0.70, 0.25), (0.64, 0.33), (0.21, 0.71), (0.15, 0.06))  # white outside the primaries
    assert png("nonsense.png", 0.45455, nonsense).icc_profile is None
    assert png("nonsense-mac.png", 1 / 1.8, nonsense).icc_profile == gamma_profile(1 / 0.55556)
    # a 16-bit PNG's chunks are parsed here, not by Pillow: the same rules (gray ignores cHRM, as above)
    assert png("deep.png", 1 / 1.8, adobe, deep=True).icc_profile == gamma_profile(1 / 0.55556, grey=True)
    rgb16 = tmp_path / "deep-rgb.png"
    data = imagecodecs.png_encode(np.full((6, 8, 3), 20000, np.uint16))
    ihdr_end = 8 + 25  # the signature and the IHDR chunk
    extra = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
                     for k, d in ((b"gAMA", struct.pack(">I", 45455)), (b"cHRM", adobe)))
    rgb16.write_bytes(data[:ihdr_end] + extra + data[ihdr_end:])
    deep_rgb = read_image(rgb16)
    assert deep_rgb.bit_depth == 16 and deep_rgb.icc_profile == adobe_profile


def test_extension_format_and_holds_alpha():
    from deepexpose.io import extension_format, holds_alpha

    assert [extension_format(n) for n in ("a.JPG", "b.jfif", "c.jpe", "d.tif", "e.nef", "f.gif", "g")] == [
        "JPEG", "JPEG", "JPEG", "TIFF", "RAW", None, None]
    assert [holds_alpha(f) for f in ("PNG", "TIFF", "WEBP", "HEIF", "AVIF", "BMP", "JPEG", None)] == [
        True] * 6 + [False] * 2


def test_output_folder_accepts_folders_to_be_made_and_links_to_folders_and_refuses_files(tmp_path):
    from deepexpose.io import output_folder

    assert output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"  # made later by the writer
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert output_folder(tmp_path / "link" / "x") == tmp_path / "link" / "x"
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"^--out .*f is a file, not a folder: choose another --out$"):
        output_folder(tmp_path / "f", "--out")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError, match="which is a symbolic link to nothing"):
        output_folder(tmp_path / "dangling" / "x")
    with pytest.raises(NotADirectoryError, match=r"^-o .*dangling is a symbolic link to nothing, not a folder"):
        output_folder(tmp_path / "dangling")
    with pytest.raises(NotADirectoryError, match="which is a file"):
        output_folder(tmp_path / "f" / "x")
    for empty in ("", " "):  # -o "": not the current folder by accident
        with pytest.raises(ValueError, match="^-o is empty: name the output folder"):
            output_folder(empty)
    assert output_folder(".") == Path(".")


def test_writing_under_a_file_or_onto_a_folder_says_what_is_in_the_way(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(dio.ImageWriteError, match=r"cannot create the folder '.*x\.png' \(a file of that name is in "):
        dio.write_image(tmp_path / "x.png" / "a.png", rgb8() / 255.0)
    with pytest.raises(dio.ImageWriteError, match=r"cannot create the folder '.*x\.png/sub' \(.*x\.png is a file\)"):
        dio.write_image(tmp_path / "x.png" / "sub" / "a.png", rgb8() / 255.0)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(dio.ImageWriteError, match="is a folder, not a file"):
        dio.write_image(tmp_path / "d.png", rgb8() / 255.0, overwrite=True)
    assert (tmp_path / "x.png").read_bytes() == b"x" and not any((tmp_path / "d.png").iterdir())


def test_writable_folder_makes_the_folder_and_leaves_nothing_in_it(tmp_path):
    from deepexpose.io import writable_folder

    out = writable_folder(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="--out .* lies under .*file, which is a file"):
        writable_folder(tmp_path / "file" / "c", "--out")
    if os.path.isdir("/proc/self"):
        with pytest.raises(OSError, match="-o /proc/x: cannot write there"):
            writable_folder("/proc/x")
