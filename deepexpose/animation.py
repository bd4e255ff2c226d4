"""Animated pictures: animated WebP, APNG, animated AVIF and GIF, read frame by frame and written back whole.

An animation is a short clip inside an image file. ``deepexpose enhance`` corrects one as it corrects a clip
(:func:`deepexpose.video.enhance_animation`: an edit per frame, smoothed over time) and writes it back as an
animation with its frame durations, loop count (not AVIF's), background colour, transparency, ICC profile, EXIF
(its thumbnail made again) and XMP. Every GIF, one of a single frame included, is read as an animation: it is
written back as a GIF, each frame given a palette of its own (Pillow's adaptive palette; a frame with transparency
255 colours by median cut and one entry for its transparent pixels, :func:`_gif_frame`), with its durations, loop
count, transparency and comment (a GIF holds no ICC profile, EXIF or XMP that Pillow writes).

Pillow composes every frame onto the canvas as a viewer shows it (disposal and blending applied), so each frame
read here is the whole picture, and each frame written is whole too: the encoder itself finds what changes from
one frame to the next. Frames are 8-bit, as Pillow decodes them, except those of a 16-bit APNG. An APNG's frames are
composed here, each frame's image data decoded by imagecodecs' PNG codec (libpng), as the APNG specification shows
them (Pillow blends a frame over the one before as if alpha were a colour, and cuts 16 bits to 8); a 16-bit APNG is
written here too, each frame after the first stored as the rectangle that changed (:func:`_apng_frames`,
:func:`_encode_apng16`).
:func:`is_animation` tells an animation from a still picture by its header alone, so that collecting a folder of
photos opens no more than their first bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image as PILImage

from .io import (_DEFAULT, _PNG_SIGNATURE, ImageReadError, ImageWriteError, _atomic_write, _exif_upright,
                 _exif_with_thumbnail, _orient, _pillow_arrays, _pillow_limit_off, _pillow_orientation, _png_chunk,
                 _png_chunks, _png_profile_chunks, _png_xmp, _resolve_max_pixels, _webp_lossless, _xmp_upright,
                 _Default, to_codes)

ANIMATED_FORMATS = {"WEBP": ".webp", "PNG": ".png", "AVIF": ".avif", "GIF": ".gif"}
"""Pillow's names of the formats an animation is read from and written to, and their extensions"""
ANIMATION_SUFFIXES = frozenset({".webp", ".png", ".avif", ".gif"})
"""the extensions of files that may be animations (:func:`is_animation` tells)"""
_SUFFIX_FORMATS = {suffix: fmt for fmt, suffix in ANIMATED_FORMATS.items()}


@dataclass
class Animation:
    """What an animated file says besides its frames: ``format`` (a key of :data:`ANIMATED_FORMATS`), ``frames``
    (their number), ``size`` (width, height of the upright frames), ``loop`` (times to play, 0 forever; ``None``
    when the file does not say), ``background`` (WebP's canvas colour, RGBA), ``alpha`` (the frames have an alpha
    channel), ``lossless`` (a WebP whose first frame is lossless), ``skip`` (1 for an APNG whose first image is a
    still for viewers without APNG, not a frame of the animation: it is left out), ``orientation`` (the EXIF
    orientation applied to every frame), ``icc_profile``, ``exif`` (orientation reset to 1), ``xmp``, ``comment``
    (a GIF's) and ``bit_depth`` (16 for an APNG of 16 bits a sample, whose frames are read as ``uint16``; else 8)."""

    format: str
    frames: int
    size: tuple[int, int]
    loop: int | None = None
    background: tuple[int, int, int, int] | None = None
    alpha: bool = False
    lossless: bool = False
    orientation: int = 1
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    skip: int = 0
    comment: bytes | None = None
    bit_depth: int = 8


def is_animation(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an animated WebP (a ``VP8X`` chunk with the animation flag), an APNG (an ``acTL`` chunk
    before the image data), an AVIF image sequence (brand ``avis``) or a GIF (any: see the module notes), from its
    first bytes; ``False`` for anything else, including files that cannot be read (reading them reports why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return True
            if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X":
                return bool(head[20] & 0x02)
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                return _png_has_actl(fh)
            if head[4:8] == b"ftyp":
                size = struct.unpack(">I", head[:4])[0]
                brands = [head[i:i + 4] for i in range(8, min(size, len(head)), 4) if i != 12]
                return b"avis" in brands
    except (OSError, IndexError, struct.error):
        return False
    return False


def _png_has_actl(fh: IO[bytes]) -> bool:
    """Whether the PNG at ``fh`` has an ``acTL`` chunk before its first ``IDAT``, reading chunk headers only."""
    fh.seek(8)
    while len(header := fh.read(8)) == 8:
        size, kind = struct.unpack(">I", header[:4])[0], header[4:]
        if kind == b"acTL":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        fh.seek(size + 4, os.SEEK_CUR)  # the data and its CRC
    return False


def _open(path: Path) -> PILImage.Image:
    try:
        with _pillow_limit_off():
            pim = PILImage.open(path, formats=tuple(ANIMATED_FORMATS))
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except Exception as e:  # noqa: BLE001 - whatever Pillow cannot open is this file's failure
        raise ImageReadError(path, f"not a readable animation ({type(e).__name__}: {e})") from e
    return pim


def read_animation(path: str | os.PathLike[str], *, max_pixels: int | None | _Default = _DEFAULT) -> Animation:
    """The :class:`Animation` of ``path`` from its header. ``max_pixels`` (default as
    :func:`deepexpose.io.read_image`'s) caps the pixels of all its frames together, which an edit holds in
    memory at once when it is written; :class:`~deepexpose.io.ImageReadError` beyond it and for every problem with
    the file."""
    p = Path(path)
    limit = _resolve_max_pixels(max_pixels)
    with _open(p) as pim:
        if pim.format not in ANIMATED_FORMATS:
            raise ImageReadError(p, f"not an animation ({pim.format})")
        hidden = bool(pim.info.get("default_image"))  # an APNG's still image, shown by viewers without APNG
        frames = int(getattr(pim, "n_frames", 1)) - hidden
        width, height = pim.size
        if limit is not None and frames * width * height > limit:
            raise ImageReadError(p, f"too many pixels: {frames} frames of {width}x{height} are "
                                    f"{frames * width * height:,} pixels, more than the limit of {limit:,} "
                                    "($DEEPEXPOSE_MAX_PIXELS) for an animation, whose frames are held in memory")
        orientation = _pillow_orientation(pim)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        exif = pim.info.get("exif")
        exif = _exif_upright(bytes(exif)) if exif else None
        loop = pim.info.get("loop")
        background = pim.info.get("background")
        return Animation(
            format=str(pim.format), frames=frames, size=(width, height), skip=int(hidden),
            loop=int(loop) if loop is not None else None,
            background=tuple(int(v) for v in background) if isinstance(background, tuple) else None,
            alpha=pim.mode in ("RGBA", "LA", "PA", "La", "RGBa") or pim.info.get("transparency") is not None,
            lossless=pim.format == "WEBP" and _webp_lossless(p),
            orientation=orientation, icc_profile=pim.info.get("icc_profile") or None, exif=exif,
            xmp=_xmp_upright(pim.info.get("xmp")), comment=pim.info.get("comment") or None,
            bit_depth=_png_depth(p) if pim.format == "PNG" else 8)


def _png_depth(path: Path) -> int:
    """The bits a sample of the PNG at ``path``, from its ``IHDR``: 16, or 8 for any other depth."""
    with open(path, "rb") as fh:
        head = fh.read(25)
    return 16 if head.startswith(_PNG_SIGNATURE) and len(head) == 25 and head[24] == 16 else 8


def read_frames(path: str | os.PathLike[str], animation: Animation
                ) -> Iterator[tuple[np.ndarray, np.ndarray | None, float]]:
    """The frames of the animation at ``path`` (``animation``: its :func:`read_animation`), one at a time: ``H x W x
    3`` ``uint8`` RGB, ``H x W`` ``uint8`` alpha or ``None``, and the frame's duration in milliseconds; upright
    (its orientation applied). :class:`~deepexpose.io.ImageReadError` for a damaged frame. An APNG's frames are
    composed here (:func:`_apng_frames`), a 16-bit one's ``uint16`` RGB and alpha."""
    p = Path(path)
    if animation.format == "PNG":
        yield from _apng_frames(p, animation)
        return
    with _open(p) as pim:
        for i in range(animation.frames):
            try:
                pim.seek(i + animation.skip)
                pim.load()
                color, alpha, _ = _pillow_arrays(pim, p)
            except ImageReadError:
                raise
            except Exception as e:  # noqa: BLE001 - a decoder's error on a damaged frame
                raise ImageReadError(p, f"frame {i + 1} of {animation.frames} is truncated or corrupt "
                                        f"({type(e).__name__}: {e})") from e
            if color.ndim == 2:
                color = np.repeat(color[:, :, None], 3, axis=2)
            yield (_orient(color, animation.orientation),
                   _orient(alpha, animation.orientation) if alpha is not None else None,
                   float(pim.info.get("duration") or 0.0))


def _apng_frames(path: Path, animation: Animation) -> Iterator[tuple[np.ndarray, np.ndarray | None, float]]:
    """The frames of an APNG as :func:`read_frames` gives them (``uint16`` for a 16-bit one), composed as the APNG
    specification shows them: each frame's data (its ``IDAT`` or ``fdAT`` chunks) decoded as a PNG of its own
    (imagecodecs' ``png_decode``: libpng, a palette and depths under 8 bits expanded), put at its ``fcTL`` offset
    with its blend op (``SOURCE`` replaces, ``OVER`` composes by alpha, PNG's formula) and disposed of after it is
    shown (``BACKGROUND`` clears its region to transparent black, ``PREVIOUS`` restores it, a first frame's
    ``PREVIOUS`` counting as ``BACKGROUND``); each frame's duration from its ``fcTL`` (``delay_num / delay_den``
    seconds, a denominator of 0 meaning 100). Alpha is given where the file has it (an alpha channel, or a ``tRNS``
    chunk) or a frame shows transparency. (Pillow cuts 16-bit frames to 8 bits, and blends ``OVER`` as if alpha
    were a colour: half-transparent white over opaque blue came out with alpha 191, over nothing darkened.)"""
    data = path.read_bytes()
    ihdr, palette, controls, parts, still = None, b"", [], [], []
    for kind, start, end in _png_chunks(data):
        body = data[start:end]
        if kind == b"IHDR" and len(body) == 13:
            ihdr = body
        elif kind in (b"PLTE", b"tRNS"):  # what each frame's own PNG needs to decode as the file does
            palette += _png_chunk(kind, body)
        elif kind == b"fcTL" and len(body) == 26:
            controls.append(struct.unpack(">IIIIIHHBB", body))
            parts.append([])
        elif kind == b"IDAT":  # the default image is a frame only when an fcTL comes before it
            (parts[-1] if parts else still).append(body)
        elif kind == b"fdAT" and parts and len(body) > 4:
            parts[-1].append(body[4:])
    if ihdr is not None and not controls and animation.frames == 1:  # a still PNG (Pillow writes one frame so)
        controls, parts = [(0, *struct.unpack_from(">II", ihdr), 0, 0, 0, 0, 0, 0)], [still]
    if ihdr is None or len(controls) < animation.frames:
        raise ImageReadError(path, f"its frames cannot be decoded ({len(controls)} frame control chunks for "
                                   f"{animation.frames} frames)")
    width, height = struct.unpack_from(">II", ihdr)
    canvas = None
    for i, (_, w, h, x, y, num, den, dispose, blend) in enumerate(controls[:animation.frames]):
        if not (w and h and x + w <= width and y + h <= height) or i == 0 and (x, y, w, h) != (0, 0, width, height):
            raise ImageReadError(path, f"frame {i + 1} of {animation.frames} lies outside the picture")
        sub = _apng_part(path, ihdr, palette, w, h, parts[i], i, animation.frames)
        colours, top = 1 if sub.shape[2] < 3 else 3, np.iinfo(sub.dtype).max
        if canvas is None:
            canvas, with_alpha = np.zeros((height, width, colours + 1), sub.dtype), sub.shape[2] in (2, 4)
        if sub.shape[2] + (sub.shape[2] == colours) != canvas.shape[2] or sub.dtype != canvas.dtype:
            raise ImageReadError(path, f"frame {i + 1} of {animation.frames} decoded to {sub.dtype} {sub.shape}")
        region = canvas[y:y + h, x:x + w]
        saved = region.copy() if dispose == 2 and i > 0 else None
        if sub.shape[2] == colours:  # no alpha: opaque
            region[:, :, :colours], region[:, :, colours] = sub, top
        elif blend == 0:
            region[:] = sub
        else:  # OVER (PNG specification, "Alpha channel processing")
            src, dst = sub.astype(np.float64) / top, region.astype(np.float64) / top
            sa, da = src[:, :, -1:], dst[:, :, -1:] * (1 - src[:, :, -1:])
            out_a = sa + da
            colour = np.divide(src[:, :, :-1] * sa + dst[:, :, :-1] * da, out_a, out=np.zeros_like(src[:, :, :-1]),
                               where=out_a > 0)
            region[:] = np.rint(np.concatenate([colour, out_a], axis=2) * top)
        shown = canvas.copy()
        if dispose == 1 or dispose == 2 and saved is None:
            region[:] = 0
        elif dispose == 2:
            region[:] = saved
        color = shown[:, :, :3] if colours == 3 else np.repeat(shown[:, :, :1], 3, axis=2)
        alpha = shown[:, :, -1] if with_alpha or (shown[:, :, -1] != top).any() else None
        yield (_orient(np.ascontiguousarray(color), animation.orientation),
               _orient(np.ascontiguousarray(alpha), animation.orientation) if alpha is not None else None,
               1000.0 * num / (den or 100))


def _apng_part(path: Path, ihdr: bytes, palette: bytes, width: int, height: int, parts: list[bytes], index: int,
               frames: int) -> np.ndarray:
    """One frame's image data (its ``IDAT`` or ``fdAT`` bodies) decoded as a ``width x height`` PNG of the file's
    depth, colour type and interlacing, with its ``PLTE`` and ``tRNS`` chunks (``palette``):
    ``height x width x channels`` ``uint8`` or ``uint16`` (a palette expanded, ``tRNS`` made alpha)."""
    png = (_PNG_SIGNATURE + _png_chunk(b"IHDR", struct.pack(">II", width, height) + ihdr[8:]) + palette
           + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(b"IEND", b""))
    try:
        import imagecodecs

        sub = np.asarray(imagecodecs.png_decode(png))
    except ImportError as e:  # a dependency of deepexpose; only a broken install lacks it
        raise ImageReadError(path, "decoding an APNG needs the 'imagecodecs' package") from e
    except Exception as e:  # noqa: BLE001 - the decoder's error on a damaged frame
        raise ImageReadError(path, f"frame {index + 1} of {frames} is truncated or corrupt ({type(e).__name__}: "
                                   f"{e})") from e
    sub = sub[:, :, None] if sub.ndim == 2 else sub
    if sub.dtype not in (np.uint8, np.uint16) or sub.shape[:2] != (height, width) or not 1 <= sub.shape[2] <= 4:
        raise ImageReadError(path, f"frame {index + 1} of {frames} decoded to {sub.dtype} {sub.shape}, not "
                                   f"{width}x{height}")
    return sub


def write_animation(path: str | os.PathLike[str], frames: Iterable[tuple[np.ndarray, np.ndarray | None]],
                    durations: list[float], animation: Animation, *, quality: int = 95,
                    overwrite: bool = False) -> Path:
    """Write ``frames`` (``H x W x 3`` ``uint8`` RGB and ``H x W`` alpha or ``None``, all of one size) as an
    animation in the format of ``path``'s extension (:data:`ANIMATED_FORMATS`), atomically (``uint16`` frames and
    alpha, all of them, as a 16-bit APNG: :func:`_encode_apng16`): each frame shown for
    its ``durations`` entry (milliseconds), with the loop count, background, ICC profile, EXIF, XMP and comment of
    ``animation`` (a format keeps what it holds: APNG has no background, AVIF no loop count here, GIF only the
    loop count, which it may leave out to play once, and the comment; a GIF's frames with alpha are written whole,
    each replacing the one before, its transparent pixels one palette entry). ``quality``
    (1..100) applies to WebP, where 100 is lossless, and AVIF. Raises :class:`~deepexpose.io.ImageWriteError`,
    leaving no file, on any failure; an existing ``path`` is only replaced when ``overwrite`` is true."""
    p = Path(path)
    fmt = _SUFFIX_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageWriteError(p, f"an animation is written as WebP, PNG (APNG), AVIF or GIF, not {p.suffix or p.name}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ImageWriteError(p, f"quality must be an integer in 1..100, got {quality!r}")
    frames = list(frames)
    if fmt == "PNG" and frames and all(np.asarray(rgb).dtype == np.uint16 for rgb, _ in frames):
        data = _frames16(p, frames, durations)
        _atomic_write(p, lambda fh: fh.write(_encode_apng16(data, durations, animation)), overwrite)
        return p
    pictures = [_picture(p, rgb, alpha) for rgb, alpha in frames]
    if not pictures:
        raise ImageWriteError(p, "an animation needs at least one frame")
    if len(durations) != len(pictures):
        raise ImageWriteError(p, f"{len(durations)} durations for {len(pictures)} frames")
    if any(pic.size != pictures[0].size for pic in pictures):
        raise ImageWriteError(p, "the frames of an animation must all have one size")
    if any(pic.mode != pictures[0].mode for pic in pictures):  # alpha on some frames only: all get it
        pictures = [pic.convert("RGBA") for pic in pictures]
    options: dict[str, Any] = {"save_all": True, "append_images": pictures[1:],
                               "duration": [max(0, round(d)) for d in durations]}
    if fmt == "GIF":
        if pictures[0].mode == "RGBA":
            pictures = [_gif_frame(pic) for pic in pictures]
            options.update(disposal=2, transparency=_GIF_CLEAR)
            options["append_images"] = pictures[1:]
        options.update({"loop": animation.loop} if animation.loop is not None else {})
        options.update({"comment": animation.comment} if animation.comment else {})
    elif animation.icc_profile:
        options["icc_profile"] = animation.icc_profile
    if animation.exif and fmt != "GIF":  # its thumbnail made again from the first frame written, as a photo's is
        options["exif"] = _exif_with_thumbnail(animation.exif, np.asarray(pictures[0].convert("RGB")))
    if animation.xmp and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        options["pnginfo"] = PngInfo()
        options["pnginfo"].add(b"iTXt", _png_xmp(animation.xmp))
    elif animation.xmp and fmt != "GIF":
        options["xmp"] = animation.xmp
    if fmt not in ("AVIF", "GIF"):
        options["loop"] = animation.loop if animation.loop is not None else 0
    if fmt == "WEBP":
        options.update(quality=int(quality), lossless=quality == 100, exact=True)
        if animation.background is not None:
            options["background"] = animation.background
    elif fmt == "AVIF":
        options["quality"] = int(quality)
    elif fmt == "PNG":
        options["compress_level"] = 6

    def encode(fh: IO[bytes]) -> None:
        pictures[0].save(fh, format=fmt, **options)

    _atomic_write(p, encode, overwrite)
    return p


_GIF_CLEAR = 255  # the palette entry of a GIF frame's transparent pixels


def _gif_frame(picture: PILImage.Image) -> PILImage.Image:
    """An RGBA frame as a GIF's palette frame: its colours in 255 entries (median cut, no dithering: exact where
    it has no more), pixels of alpha under one half as entry :data:`_GIF_CLEAR`. (Pillow's own RGBA quantizer loses
    colours that would fit.)"""
    quantized = picture.convert("RGB").quantize(_GIF_CLEAR, method=PILImage.Quantize.MEDIANCUT,
                                                dither=PILImage.Dither.NONE)
    index = np.array(quantized)
    index[np.asarray(picture.getchannel("A")) < 128] = _GIF_CLEAR
    out = PILImage.fromarray(index, "P")
    palette = (quantized.getpalette() or [])[:3 * _GIF_CLEAR]
    out.putpalette(palette + [0] * (768 - len(palette)))
    out.info["transparency"] = _GIF_CLEAR
    return out


def _frames16(path: Path, frames: list[tuple[np.ndarray, np.ndarray | None]], durations: list[float]) -> np.ndarray:
    """``uint16`` frames (and alpha, given for some frames: all get it, opaque where it was not) as one
    ``N x H x W x 3|4`` array, checked as :func:`write_animation` checks 8-bit ones."""
    if len(durations) != len(frames):
        raise ImageWriteError(path, f"{len(durations)} durations for {len(frames)} frames")
    shape = np.asarray(frames[0][0]).shape
    with_alpha = any(alpha is not None for _, alpha in frames)
    data = np.empty((len(frames), *shape[:2], 4 if with_alpha else 3), np.uint16)
    for i, (rgb, alpha) in enumerate(frames):
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ImageWriteError(path, f"frames must be H x W x 3, got {rgb.shape}")
        if rgb.shape != shape:
            raise ImageWriteError(path, "the frames of an animation must all have one size")
        data[i, :, :, :3] = rgb
        if with_alpha:
            alpha = np.full(shape[:2], 65535, np.uint16) if alpha is None else np.asarray(alpha)
            if alpha.dtype != np.uint16 or alpha.shape != shape[:2]:
                raise ImageWriteError(path, f"alpha must be H x W uint16 like its frame, got {alpha.dtype} "
                                            f"{alpha.shape}")
            data[i, :, :, 3] = alpha
    return data


def _encode_apng16(data: np.ndarray, durations: list[float], animation: Animation) -> bytes:
    """A 16-bit APNG of the ``N x H x W x 3|4`` frames ``data``, with the ICC profile, EXIF (its thumbnail made
    again from the first frame), XMP and loop count of ``animation`` and each frame's duration (milliseconds over
    1000, or a coarser denominator where they do not fit 16 bits). The first frame is the default image, whole;
    each later one is stored as the smallest rectangle holding what changed since the frame before (blend
    ``SOURCE``, dispose ``NONE``), as Pillow stores 8-bit frames; each rectangle is encoded by imagecodecs'
    ``png_encode`` (libpng, zlib level 6 as PNGs are written here) and its image data moved into the APNG."""
    import imagecodecs

    n, height, width, channels = data.shape
    loop = animation.loop if animation.loop is not None else 0
    out = [_PNG_SIGNATURE, _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6 if channels == 4 else 2,
                                                                 0, 0, 0))]
    exif = _exif_with_thumbnail(animation.exif, to_codes(data[0, :, :, :3], 8)) if animation.exif else None
    out.append(_png_profile_chunks(animation.icc_profile, exif, animation.xmp))
    out.append(_png_chunk(b"acTL", struct.pack(">II", n, loop)))
    sequence = 0
    for i in range(n):
        top, left, bottom, right = 0, 0, height, width
        if i:
            changed = (data[i] != data[i - 1]).any(axis=2)
            rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
            top, left, bottom, right = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1) if rows.size else (0, 0, 1, 1)
        out.append(_png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, right - left, bottom - top, left, top,
                                                   *_delay(durations[i]), 0, 0)))
        sequence += 1
        encoded = imagecodecs.png_encode(np.ascontiguousarray(data[i, top:bottom, left:right]), level=6)
        image = b"".join(encoded[start:end] for kind, start, end in _png_chunks(encoded) if kind == b"IDAT")
        if i == 0:
            out.append(_png_chunk(b"IDAT", image))
        else:
            out.append(_png_chunk(b"fdAT", struct.pack(">I", sequence) + image))
            sequence += 1
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _delay(ms: float) -> tuple[int, int]:
    """An ``fcTL`` delay (numerator, denominator: seconds) for ``ms`` milliseconds: over 1000 where it fits 16 bits,
    else over 100, 10 or 1 (65535 seconds at most)."""
    for den in (1000, 100, 10, 1):
        num = round(max(0.0, ms) * den / 1000)
        if num <= 65535:
            return num, den
    return 65535, 1


def _picture(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> PILImage.Image:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageWriteError(path, f"frames must be H x W x 3 uint8 (uint16, all of them, for a PNG), got "
                                    f"{rgb.dtype} {rgb.shape}")
    if alpha is None:
        return PILImage.fromarray(np.ascontiguousarray(rgb), "RGB")
    alpha = np.asarray(alpha)
    if alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]:
        raise ImageWriteError(path, f"alpha must be H x W uint8 like its frame, got {alpha.dtype} {alpha.shape}")
    return PILImage.fromarray(np.ascontiguousarray(np.dstack([rgb, alpha])), "RGBA")


__all__ = ["ANIMATED_FORMATS", "ANIMATION_SUFFIXES", "Animation", "is_animation", "read_animation", "read_frames",
           "write_animation"]
