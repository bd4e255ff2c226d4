"""Animated WebP, APNG and animated AVIF: telling them from stills, reading frames, writing them back."""

import numpy as np
import pytest
from PIL import Image, ImageCms

from deepexpose.animation import Animation, is_animation, read_animation, read_frames, write_animation
from deepexpose.io import ImageReadError, ImageWriteError, read_image


def frames(n=4, h=24, w=32, alpha=False):
    """``n`` different RGB(A) uint8 frames: a gradient moving right by 3 pixels a frame."""
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    out = []
    for i in range(n):
        rgb = np.concatenate([np.roll(x, 3 * i, axis=1).repeat(h, 0), y.repeat(w, 1), np.full((h, w, 1), 60.0 * i)],
                             axis=2).round().astype(np.uint8)
        out.append(np.dstack([rgb, np.full((h, w), 40 * i + 20, np.uint8)]) if alpha else rgb)
    return out


def save(path, arrays, **options):
    pictures = [Image.fromarray(a) for a in arrays]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **options)
    return path


@pytest.mark.parametrize("suffix, options", [(".webp", {"lossless": True}), (".png", {}), (".avif", {})])
def test_an_animation_is_told_from_a_still_by_its_first_bytes(tmp_path, suffix, options):
    animated = save(tmp_path / f"a{suffix}", frames(), duration=50, **options)
    still = tmp_path / f"s{suffix}"
    Image.fromarray(frames(1)[0]).save(still, **options)
    one_frame = save(tmp_path / f"one{suffix}", frames(1), duration=50, **options)
    assert is_animation(animated)
    assert not is_animation(still)
    assert not is_animation(one_frame)  # Pillow writes a single frame as a still
    assert not is_animation(tmp_path / "missing.webp")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(animated.read_bytes()[:20])  # before a WebP's flags and a PNG's acTL; an AVIF's brand is in it
    assert is_animation(cut) == (suffix == ".avif")


def test_a_pngs_animation_chunk_after_its_image_data_does_not_count(tmp_path):
    path = save(tmp_path / "a.png", frames(2), duration=50)
    data = path.read_bytes()
    start = data.index(b"acTL") - 4
    chunk = data[start:start + 8 + 8 + 4]
    end = data.index(b"IEND") - 4
    moved = data[:start] + data[start + len(chunk):end] + chunk + data[end:]  # acTL after the IDAT: not an APNG
    (tmp_path / "b.png").write_bytes(moved)
    assert is_animation(path) and not is_animation(tmp_path / "b.png")


@pytest.mark.parametrize("suffix, options, exact", [(".webp", {"lossless": True}, True), (".png", {}, True),
                                                    (".avif", {"quality": 90}, False)])
def test_frames_durations_and_alpha_come_back_as_written(tmp_path, suffix, options, exact):
    src = frames(alpha=True)
    path = save(tmp_path / f"a{suffix}", src, duration=[40, 60, 80, 100], loop=3, **options)
    info = read_animation(path)
    assert (info.frames, info.size, info.alpha) == (4, (32, 24), True)
    assert info.loop == (None if suffix == ".avif" else 3)
    got = list(read_frames(path, info))
    assert [d for _, _, d in got] == [40, 60, 80, 100]
    for (rgb, alpha, _), want in zip(got, src, strict=True):
        assert rgb.dtype == np.uint8 and rgb.shape == (24, 32, 3)
        error = np.abs(rgb.astype(int) - want[..., :3])
        assert error.max() == 0 if exact else error.mean() < 6  # AVIF is lossy
        assert np.abs(alpha.astype(int) - want[..., 3]).max() <= (0 if exact else 2)


@pytest.mark.parametrize("suffix", [".webp", ".png", ".avif"])
def test_write_animation_keeps_timing_loop_and_metadata(tmp_path, suffix):
    from deepexpose.io import _srgb_profile

    icc = _srgb_profile()
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    info = Animation(format="WEBP", frames=3, size=(32, 24), loop=5, background=(10, 20, 30, 255),
                     icc_profile=icc, exif=exif.tobytes(), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    src = [(f, None) for f in frames(3)]
    out = write_animation(tmp_path / f"o{suffix}", src, [30, 70, 110], info, quality=100)
    back = read_animation(out)
    assert (back.frames, back.size, back.alpha) == (3, (32, 24), False)
    assert back.icc_profile == icc and back.xmp == info.xmp
    read_exif = Image.Exif()
    read_exif.load(back.exif)
    assert read_exif[0x010F] == "Maker"
    assert back.loop == (None if suffix == ".avif" else 5)
    assert back.background == ((10, 20, 30, 255) if suffix == ".webp" else None)
    assert back.lossless == (suffix == ".webp")  # quality 100: a lossless WebP
    assert [d for _, _, d in read_frames(out, back)] == [30, 70, 110]
    if suffix != ".avif":
        assert all(np.array_equal(rgb, want) for (rgb, _, _), (want, _) in zip(read_frames(out, back), src))
    with pytest.raises(ImageWriteError, match="exists"):
        write_animation(out, src, [30, 70, 110], info)


def test_write_animation_refuses_what_it_cannot_write_and_leaves_nothing(tmp_path):
    info = Animation(format="PNG", frames=2, size=(32, 24))
    two = [(f, None) for f in frames(2)]
    with pytest.raises(ImageWriteError, match="WebP, PNG"):
        write_animation(tmp_path / "a.jpg", two, [10, 10], info)
    with pytest.raises(ImageWriteError, match="durations"):
        write_animation(tmp_path / "a.png", two, [10], info)
    with pytest.raises(ImageWriteError, match="one size"):
        write_animation(tmp_path / "a.png", [two[0], (frames(1, h=10)[0], None)], [10, 10], info)
    with pytest.raises(ImageWriteError, match="uint8"):  # 16 bits: a PNG only
        write_animation(tmp_path / "a.webp", [(two[0][0].astype(np.uint16), None)], [10], info)
    with pytest.raises(ImageWriteError, match="uint8"):  # and all the frames
        write_animation(tmp_path / "a.png", [two[0], (two[1][0].astype(np.uint16), None)], [10, 10], info)
    with pytest.raises(ImageWriteError, match="alpha must be H x W uint16"):
        write_animation(tmp_path / "a.png", [(two[0][0].astype(np.uint16), two[0][0][:, :, 0])], [10], info)
    with pytest.raises(ImageWriteError, match="quality"):
        write_animation(tmp_path / "a.webp", two, [10, 10], info, quality=0)
    assert list(tmp_path.iterdir()) == []
    mixed = [two[0], (two[1][0], np.full((24, 32), 128, np.uint8))]  # alpha on one frame only: both get it
    out = write_animation(tmp_path / "a.png", mixed, [10, 10], info)
    alphas = [a for _, a, _ in read_frames(out, read_animation(out))]
    assert alphas[0].min() == 255 and alphas[1].max() == 128


def test_read_animation_caps_the_pixels_of_all_frames_and_names_bad_files(tmp_path):
    path = save(tmp_path / "a.png", frames(4), duration=50)
    assert read_animation(path, max_pixels=4 * 24 * 32).frames == 4
    with pytest.raises(ImageReadError, match="4 frames of 32x24"):
        read_animation(path, max_pixels=4 * 24 * 32 - 1)
    with pytest.raises(ImageReadError, match="no such file"):
        read_animation(tmp_path / "missing.png")
    (tmp_path / "junk.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPjunk")
    with pytest.raises(ImageReadError, match="not a readable animation"):
        read_animation(tmp_path / "junk.webp")


def test_a_damaged_frame_is_named(tmp_path):
    path = save(tmp_path / "a.png", frames(3), duration=50)
    data = path.read_bytes()
    last = data.rindex(b"fdAT")
    (tmp_path / "cut.png").write_bytes(data[:last + 20])  # the last frame's data cut short
    info = read_animation(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="frame 3 of 3"):
        list(read_frames(tmp_path / "cut.png", info))


def test_an_exif_orientation_turns_every_frame(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise to be seen upright
    src = frames(2)
    path = save(tmp_path / "a.webp", src, duration=50, lossless=True, exif=exif.tobytes())
    info = read_animation(path)
    assert info.orientation == 6 and info.size == (24, 32)
    upright = Image.Exif()
    upright.load(info.exif)
    assert upright[0x0112] == 1  # the frames are turned, so the EXIF says so
    got = [rgb for rgb, _, _ in read_frames(path, info)]
    assert all(np.array_equal(g, np.rot90(s, -1)) for g, s in zip(got, src, strict=True))
    still = Image.fromarray(src[0])
    still.save(tmp_path / "still.webp", lossless=True, exif=exif.tobytes())
    assert np.array_equal(read_image(tmp_path / "still.webp", dtype="native").pixels, got[0])  # as a still is turned


def test_an_apngs_still_for_other_viewers_is_not_made_a_frame(tmp_path):
    red, green, blue = (np.full((8, 8, 3), c, np.uint8) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200)))
    path = save(tmp_path / "a.png", [red, green, blue], duration=50, default_image=True)
    info = read_animation(path)
    assert info.frames == 2 and info.skip == 1
    assert [rgb[0, 0].tolist() for rgb, _, _ in read_frames(path, info)] == [[0, 200, 0], [0, 0, 200]]


def test_an_animations_exif_thumbnail_is_made_again_from_its_first_frame(tmp_path):
    from conftest import exif_thumbnail, exif_with_thumbnail

    info = Animation(format="WEBP", frames=2, size=(32, 24), exif=exif_with_thumbnail(np.zeros((12, 16, 3), np.uint8)))
    bright = [(np.full((24, 32, 3), 200, np.uint8), None), (np.full((24, 32, 3), 100, np.uint8), None)]
    out = write_animation(tmp_path / "a.webp", bright, [50, 50], info, quality=100)
    assert exif_thumbnail(read_animation(out).exif).mean() > 190


def _gif(path, frames, alpha=None, **options):
    """A GIF of RGB ``frames`` (a transparent left half with ``alpha``) as Pillow writes it."""
    pictures = []
    for a in frames:
        if alpha is not None:
            pictures.append(Image.fromarray(np.dstack([a, alpha]), "RGBA"))
        else:
            pictures.append(Image.fromarray(a))
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **options)


def test_every_gif_is_an_animation_read_with_its_timing_loop_transparency_and_comment(tmp_path):
    frames = [np.full((16, 24, 3), v, np.uint8) for v in (40, 80, 120)]
    alpha = np.zeros((16, 24), np.uint8)
    alpha[:, 12:] = 255
    _gif(tmp_path / "a.gif", frames, alpha, duration=[100, 150, 200], loop=2, disposal=2, comment=b"made here")
    Image.fromarray(frames[0]).save(tmp_path / "still.gif")
    assert is_animation(tmp_path / "a.gif") and is_animation(tmp_path / "still.gif")
    info = read_animation(tmp_path / "a.gif")
    assert (info.format, info.frames, info.size, info.loop, info.alpha, info.comment) == (
        "GIF", 3, (24, 16), 2, True, b"made here")
    got = list(read_frames(tmp_path / "a.gif", info))
    assert [d for _, _, d in got] == [100, 150, 200]
    for (rgb, a, _), v in zip(got, (40, 80, 120)):
        assert np.array_equal(a, alpha) and (np.abs(rgb[:, 12:].astype(int) - v) <= 2).all()
    assert read_animation(tmp_path / "still.gif").frames == 1


def test_write_animation_writes_a_gif_back_as_it_was_read(tmp_path):
    frames = [np.full((16, 24, 3), v, np.uint8) for v in (40, 80)]
    alpha = np.zeros((16, 24), np.uint8)
    alpha[:, 12:] = 255
    _gif(tmp_path / "a.gif", frames, alpha, duration=[100, 250], loop=0, disposal=2, comment=b"hi")
    info = read_animation(tmp_path / "a.gif")
    brighter = [(np.clip(rgb.astype(int) + 100, 0, 255).astype(np.uint8), a) for rgb, a, _ in
                read_frames(tmp_path / "a.gif", info)]
    write_animation(tmp_path / "out.gif", brighter, [100, 250], info)
    again = read_animation(tmp_path / "out.gif")
    assert (again.frames, again.loop, again.comment, again.alpha) == (2, 0, b"hi", True)
    back = list(read_frames(tmp_path / "out.gif", again))
    assert [d for _, _, d in back] == [100, 250]
    for (rgb, a, _), v in zip(back, (140, 180)):
        assert np.array_equal(a, alpha) and (np.abs(rgb[:, 12:].astype(int) - v) <= 2).all()
    once = Animation(format="GIF", frames=2, size=(24, 16))  # no loop count: played once, as the source was
    write_animation(tmp_path / "once.gif", [(f, None) for f in frames], [100, 100], once)
    assert "loop" not in Image.open(tmp_path / "once.gif").info


def test_a_transparent_gif_keeps_every_colour_that_fits_its_palette(tmp_path):
    rng = np.random.default_rng(0)
    colours = (rng.random((200, 3)) * 255).astype(np.uint8)
    frames = []
    for _ in range(2):
        rgb = colours[rng.integers(0, 200, (20, 30))]
        alpha = np.full((20, 30), 255, np.uint8)
        alpha[:, :8] = 0
        frames.append((rgb, alpha))
    write_animation(tmp_path / "t.gif", frames, [100, 200], Animation(format="GIF", frames=2, size=(30, 20), loop=0))
    back = list(read_frames(tmp_path / "t.gif", read_animation(tmp_path / "t.gif")))
    for (rgb, alpha), (rgb2, alpha2, _) in zip(frames, back):
        assert np.array_equal(alpha2, alpha) and np.array_equal(rgb2[alpha > 0], rgb[alpha > 0])  # Pillow's: off by 22


@pytest.mark.parametrize("n", [1, 3])
def test_a_16_bit_apng_is_read_and_written_with_16_bits(tmp_path, n):
    rng = np.random.default_rng(n)
    src = [(rng.integers(0, 65536, (10, 12, 3)).astype(np.uint16), rng.integers(0, 65536, (10, 12)).astype(np.uint16))
           for _ in range(n)]
    src[0][1][0, 0] = 65535
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    info = Animation(format="PNG", frames=n, size=(12, 10), loop=3, icc_profile=icc, exif=exif.tobytes(),
                     xmp=b"<x:xmpmeta>made here</x:xmpmeta>")
    durations = [40.0, 70000.0, 12.4][:n]
    out = write_animation(tmp_path / "a.png", src, durations, info)
    assert is_animation(out)
    got = read_animation(out)
    assert got.bit_depth == 16 and got.frames == n and got.loop == 3 and got.alpha and got.icc_profile == icc
    tags = Image.Exif()
    tags.load(got.exif)
    assert tags[0x010F] == "Camera maker"
    assert b"made here" in got.xmp
    back = list(read_frames(out, got))
    for (rgb, alpha, duration), (want_rgb, want_alpha), want in zip(back, src, durations, strict=True):
        assert rgb.dtype == alpha.dtype == np.uint16
        assert np.array_equal(rgb, want_rgb) and np.array_equal(alpha, want_alpha)
        assert duration == round(want) if want < 65535 else duration == want  # 70 s: over 100 instead of 1000
    with Image.open(out) as pim:  # any APNG reader sees the same animation (at 8 bits, as Pillow decodes it)
        assert pim.n_frames == n and pim.info["loop"] == 3 and pim.info["duration"] == 40
    # an APNG's 8-bit frames are left alone: read with Pillow, as 8 bits
    eight = write_animation(tmp_path / "b.png", [(rgb[:, :, :3].astype(np.uint8), None) for rgb, _ in src],
                            durations, info)
    assert read_animation(eight).bit_depth == 8
    assert all(f.dtype == np.uint8 for f, _, _ in read_frames(eight, read_animation(eight)))


def test_a_16_bit_apngs_still_image_outside_the_animation_is_left_out_and_grey_frames_become_rgb(tmp_path):
    import imagecodecs

    grey = np.random.default_rng(0).integers(0, 65536, (3, 8, 6)).astype(np.uint16)
    path = tmp_path / "g.png"
    path.write_bytes(imagecodecs.apng_encode(grey))
    info = read_animation(path)
    assert info.bit_depth == 16 and info.frames == 3 and info.skip == 0
    got = [rgb for rgb, alpha, _ in read_frames(path, info)]
    assert all(np.array_equal(rgb, np.repeat(g[:, :, None], 3, axis=2)) for rgb, g in zip(got, grey, strict=True))
    # the first image as a still shown by viewers without APNG, not a frame: its fcTL dropped, the others renumbered
    chunks = []
    for kind, body in _png_chunks(path.read_bytes()):
        if kind == b"acTL":
            body = (2).to_bytes(4, "big") + body[4:]
        elif kind in (b"fcTL", b"fdAT"):
            seq = int.from_bytes(body[:4], "big")
            if seq == 0:
                continue
            body = (seq - 1).to_bytes(4, "big") + body[4:]
        chunks.append(_png_chunk(kind, body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))
    info = read_animation(path)
    assert info.skip == 1 and info.frames == 2 and info.bit_depth == 16
    got = [rgb for rgb, _, _ in read_frames(path, info)]
    assert all(np.array_equal(rgb[:, :, 1], g) for rgb, g in zip(got, grey[1:], strict=True))


@pytest.mark.parametrize("depth", [8, 16])
def test_an_apngs_frames_are_composed_as_the_apng_specification_shows_them(tmp_path, depth):
    import zlib

    top, size = (1 << depth) - 1, depth // 8

    def pixels(*rgba):  # one row of RGBA pixels, filter type 0
        return zlib.compress(b"\0" + b"".join(int(v).to_bytes(size, "big") for px in rgba for v in px))

    def control(seq, w, x, dispose, blend):
        body = b"".join(v.to_bytes(4, "big") for v in (seq, w, 1, x, 0)) + (1).to_bytes(2, "big")
        return _png_chunk(b"fcTL", body + (10).to_bytes(2, "big") + bytes([dispose, blend]))

    red, green, blue, clear = [top, 0, 0, top], [0, top, 0, top], [0, 0, top, top], [0, 0, 0, 0]
    mid = (top + 1) // 2
    half = [top, top, top, mid]  # white at half alpha
    frames = [(control(0, 4, 0, 1, 0), b"IDAT", pixels(red, red, red, red)),  # dispose: background
              (control(1, 2, 1, 2, 0), b"fdAT", pixels(green, green)),  # dispose: previous
              (control(3, 1, 3, 0, 0), b"fdAT", pixels(blue)),  # on what frame 2 found: a clear canvas
              (control(5, 2, 2, 0, 1), b"fdAT", pixels(half, half))]  # over: on clear, and on blue
    header = (4).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([depth, 6, 0, 0, 0])  # 4 x 1 RGBA
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    png += _png_chunk(b"acTL", (4).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    for i, (fctl, kind, data) in enumerate(frames):
        png += fctl + _png_chunk(kind, data if kind == b"IDAT" else (2 * i).to_bytes(4, "big") + data)
    path = tmp_path / "ops.png"
    path.write_bytes(png + _png_chunk(b"IEND", b""))
    info = read_animation(path)
    assert info.bit_depth == depth and info.frames == 4
    got = [np.dstack([rgb, alpha]) for rgb, alpha, _ in read_frames(path, info)]
    assert all(g.dtype == (np.uint8 if depth == 8 else np.uint16) for g in got)
    assert got[0].tolist() == [[red] * 4]
    assert got[1].tolist() == [[clear, green, green, clear]]  # frame 1's region cleared before it
    assert got[2].tolist() == [[clear, clear, clear, blue]]  # frame 2's region put back as it was: clear
    # over a clear pixel, the pixel itself; over opaque blue, opaque, white at half weight (Pillow: alpha 191 of
    # 255, and over nothing a darkened grey at alpha 64)
    assert got[3].tolist() == [[clear, clear, half, [mid, mid, top, top]]]
    assert [d for _, _, d in read_frames(path, info)] == [100.0] * 4


def test_a_16_bit_apng_stores_only_what_changes_from_frame_to_frame(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 65536, (60, 80, 3)).astype(np.uint16)  # noise: a whole frame compresses badly
    src = []
    for i in range(8):
        frame = base.copy()
        frame[10 + i:15 + i, 20:26] = 1000 * i
        src.append((frame, None))
    info = Animation(format="PNG", frames=8, size=(80, 60))
    out = write_animation(tmp_path / "a.png", src, [50] * 8, info)
    single = write_animation(tmp_path / "one.png", src[:1], [50], info)
    assert out.stat().st_size < 1.2 * single.stat().st_size  # eight frames, little more than one
    controls = [body for kind, body in _png_chunks(out.read_bytes()) if kind == b"fcTL"]
    sizes = [(int.from_bytes(c[4:8], "big"), int.from_bytes(c[8:12], "big"), int.from_bytes(c[12:16], "big"),
              int.from_bytes(c[16:20], "big")) for c in controls]
    assert sizes[0] == (80, 60, 0, 0) and sizes[1] == (6, 6, 20, 10) and sizes[7] == (6, 6, 20, 16)
    assert all(np.array_equal(rgb, want) for (rgb, _, _), (want, _) in zip(read_frames(out, read_animation(out)), src,
                                                                            strict=True))
    with Image.open(out) as pim:  # another reader composes the same frames
        for i, (want, _) in enumerate(src):
            pim.seek(i)
            assert np.array_equal(np.asarray(pim.convert("RGB")), (want >> 8).astype(np.uint8))


def _png_chunks(data):
    """(type, body) of each chunk of a PNG."""
    pos = 8
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
        pos += 12 + size


def _png_chunk(kind, body):
    import zlib

    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def test_a_damaged_16_bit_apng_is_named(tmp_path):
    import imagecodecs

    path = tmp_path / "d.png"
    data = imagecodecs.apng_encode(np.zeros((2, 8, 6, 3), np.uint16))
    cut = data.rindex(b"fdAT") + 8
    path.write_bytes(data[:cut] + bytes(20))
    info = read_animation(path)  # the header is whole
    with pytest.raises(ImageReadError, match="d.png.*frame 2 of 2 is truncated or corrupt"):
        list(read_frames(path, info))
