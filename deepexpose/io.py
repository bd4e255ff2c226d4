"""Robust image I/O: read photos into float RGB arrays and write them back atomically.

Reading (:func:`read_image`)
    JPEG, PNG, TIFF, WebP and BMP, 8- and 16-bit; HEIC/HEIF (``.heic``, ``.heif``, ``.hif``; ``Image.format``
    ``"HEIF"``) and AVIF, 8-, 10- and 12-bit. The result is ``H x W x 3`` float32 RGB in [0, 1] (or, with
    ``dtype="native"``, the file's own ``uint8`` / ``uint16`` codes, which take a quarter / half the memory)
    with the EXIF orientation applied (Pillow's ``ImageOps.exif_transpose`` semantics). Grayscale, palette
    and CMYK images are converted to RGB (CMYK with its profile, see below; ``Image.grey`` says the file was
    grayscale); an alpha channel
    (RGBA, LA, PA, palette or colour-key transparency) is returned separately in ``Image.alpha``. 16-bit files
    keep their full precision: 16-bit TIFFs are decoded by ``tifffile`` and 16-bit PNGs by ``imagecodecs``
    (Pillow would cut them to 8 bits); TIFFs of floating-point values in [0, 1] or of 32-bit integers give the
    nearest 16-bit codes (``Image.samples`` names their type, written back by :func:`write_image`). HEIF files are
    decoded by libheif through ``pillow-heif`` (registered with Pillow on first use, so importing deepexpose stays
    fast), AVIF files by Pillow; 10- and 12-bit ones (AVIF's
    by libavif through ``imagecodecs``) give ``bit_depth`` 16, their codes scaled to the full 16 bits (top bits
    repeated below them). Without ``pillow-heif``, or Pillow's AVIF support, reading such a file fails with a
    message naming what is missing; other formats are not affected. ``Image.lossless`` says a WebP file is
    lossless (its image is ``VP8L``). Multi-frame files (multi-page TIFF, animated WebP, APNG and AVIF) give
    their first frame (``read_image(..., page=N)`` another page of a TIFF), a HEIF file its primary image (its
    thumbnails' sizes kept as ``Image.thumbnails``; its depth maps and auxiliary images named in
    ``Image.auxiliary``, not read);
    ``Image.pictures`` says how many the file holds. A JPEG's photo is read, and what follows it in the file (the
    other pictures of a multi-picture JPEG, a gain map, a motion photo's video) is kept as ``Image.trailer``.
    Animations are read whole by :mod:`deepexpose.animation`.
    In native mode RGB and gray JPEGs are decoded by libjpeg-turbo through ``imagecodecs`` straight into the
    array (the same pixels as Pillow's decoder, tested, in about half the time of Pillow's decode plus its array
    copy).

    Camera RAW files (:data:`RAW_EXTENSIONS`: DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, PEF, SRW; recognised by
    extension; ``Image.format`` ``"RAW"``) are developed by LibRaw through ``rawpy`` (imported on first use): the
    camera's white balance, no automatic brightening (the photo keeps its real exposure, for the correction to
    fix) and the file's own white level (LibRaw's lowering of it to the brightest pixels, which brightened a photo
    by its highlights, is off), LibRaw's default demosaicing and highlight clipping, sRGB primaries and the sRGB
    curve (``gamma=(2.4, 12.92)``), 16-bit codes (``bit_depth`` 16) with an sRGB ICC profile, cut to the picture
    the file means (a DNG's default crop) and turned upright by the camera's orientation. Without ``rawpy``, only RAW
    files fail, saying so.

    Every failure is an :class:`ImageReadError` naming the file and the reason: missing, empty, not an
    image, truncated or corrupt, unsupported pixel layout (signed samples, floats outside [0, 1], odd channel
    counts), or more pixels than ``max_pixels`` (checked from the header, before anything is decoded). Reading
    never writes to the input file.

Writing (:func:`write_image`)
    8-bit JPEG, PNG, TIFF, WebP, BMP, HEIC (``pillow-heif``: libheif and x265) and AVIF (Pillow); 16-bit PNG and
    TIFF; HEIC from 16-bit codes as 10-bit; RGB, or with ``grey=True`` one grayscale channel (the Rec. 709 luma
    of the pixels; WebP and HEIC stay RGB), from float pixels in [0, 1] (rounded to the
    output depth) or from ``uint8`` / ``uint16`` codes (written as they are at their own depth; 8 -> 16 bits
    multiplies by 257, 16 -> 8 bits rounds to nearest). A JPEG from codes is encoded through ``imagecodecs``
    without Pillow's 4-byte copy: the file is byte for byte the one Pillow writes (tested), except that from
    1 MP up, given more than one thread, it is encoded in horizontal strips in parallel and joined with restart
    markers, which decodes to the very same pixels (tested) from a file of about the same size. The file is
    written to a hidden temporary file in the target directory, fsynced and then moved into place, so a
    reader never sees a partial file and a failure leaves nothing behind. An existing file is only replaced
    with ``overwrite=True`` (otherwise :class:`ImageExistsError`, also a ``FileExistsError``). Writing HEIC or
    AVIF where the encoder is missing fails with an :class:`ImageWriteError` naming it, before any file is made.
    Camera RAW files are read only: writing to a RAW name is an :class:`ImageWriteError`.
    :func:`atomic_write_bytes` does the same for side files such as JSON records.

Metadata rules
    * ``Image.exif`` holds raw EXIF bytes in the ``b"Exif\\0\\0" + TIFF`` layout of
      ``PIL.Image.Exif.tobytes``.
      When the pixels were rotated, its Orientation is reset to 1; otherwise the bytes are kept as read.
      :func:`write_image` also resets an Orientation other than 1, because the pixels it writes are upright.
      Where EXIF has no Orientation tag, a ``tiff:Orientation`` in the XMP packet turns the pixels (Pillow's rule,
      applied by Pillow to 8-bit files and here to 16-bit PNG and TIFF); an EXIF Orientation, even 1, wins.
    * JPEG, PNG, WebP, HEIF and AVIF carry the full EXIF block, its JPEG thumbnail (IFD1) made again from the
      pixels written (:func:`_exif_with_thumbnail`; Pillow's AVIF writer keeps no IFD1). TIFF carries, in both
      directions, the descriptive baseline tags (ImageDescription, Make, Model, Software, DateTime, Artist,
      Copyright) and the EXIF and GPS directories (exposure, aperture, ISO, dates, lens, position...; tags 34665 and
      34853), less the maker note and the Interoperability directory, whose offsets point into the source file; a
      tag that cannot be written again is dropped on its own. The directories are written as IFDs appended to the
      file, a classic TIFF (never BigTIFF; one that would pass 4 GB with them is written without them). Other tags
      of the first IFD and a JPEG's thumbnail (IFD1) are not carried into a TIFF; BMP carries no EXIF.
    * A camera RAW file's EXIF (Orientation 1) is, for a TIFF-based one (DNG, CR2, NEF, ARW, PEF, SRW), read as a
      TIFF's is (the maker note's offsets point into the RAW file), and for the others (CR3, RAF, ORF, RW2) the
      EXIF of the embedded JPEG preview, if it has any; else ``None``. Metadata never fails a read: an EXIF block
      that cannot be parsed (empty, damaged) is left out with a :class:`deepexpose.DeepExposeWarning`. A RAW file's
      XMP, ICC profile and resolution are not read.
    * HEIF and AVIF store rotation and mirroring as ``irot`` / ``imir`` properties of the picture, not in EXIF.
      libheif applies them while decoding, and a HEIF file's EXIF Orientation (which only describes them; HEIF
      readers ignore it) is reset to 1 without being applied again. Pillow reports an AVIF's ``irot`` / ``imir``
      as the EXIF Orientation (replacing the file's own), which is applied as for other formats. Both are written
      upright, with no ``irot`` / ``imir``.
    * Colour given as code points (an ``nclx`` box: primaries, transfer, matrix, range) and no ICC profile, as in
      phone and camera HEIF and AVIF files, or by a PNG's ``cICP`` chunk (which overrides its ICC profile), is kept
      as ``Image.cicp``; the pixels are not converted. Where an ICC profile can describe it (SDR transfers and the
      common primaries, e.g. Display P3 or BT.2020), that profile (:func:`deepexpose.cicp.icc_profile`) becomes
      ``Image.icc_profile``, so every format written describes the colours; HEIF output carries the code points
      themselves as its ``nclx`` box instead, and PNG output a ``cICP`` chunk beside the profile. An HDR transfer
      (PQ, HLG) has no ICC form, so only HEIF and PNG output keep it. A HEIF or AVIF file with an ICC profile has
      no ``cicp``: the profile describes it.
    * ICC profiles are kept for JPEG, PNG, TIFF, WebP, HEIF and AVIF (dropped for BMP). A profile read from the
      file is kept when it describes the file's RGB or gray data; one is written only where it describes the channels
      written (RGB or gray), so a gray photo's profile goes with its gray output and not with an RGB one.
      CMYK pixels (8-bit JPEG and TIFF) with a CMYK profile are converted to sRGB through it by LittleCMS
      (perceptual intent, relative colorimetric where the profile has no perceptual table) and get an sRGB
      profile; without one, or if the conversion fails, by Pillow's plain formula (R = (1 - C)(1 - K), G and B
      alike), dropping the profile. Pillow takes every CMYK JPEG as stored inverted (Adobe's convention, the
      way Photoshop writes them) and writes them so.
    * XMP packets are kept for JPEG, PNG, TIFF, WebP, HEIF and AVIF (dropped for BMP), read as ``Image.xmp``; a
      ``tiff:Orientation`` in the packet (attribute or element) is set to 1 on reading and writing, as the
      EXIF one is. A packet too long for one JPEG APP1 marker (over 65504 bytes) is left out of a JPEG, as is
      EXIF over 65533 bytes, each with a :class:`deepexpose.DeepExposeWarning`.
    * The stored resolution (``Image.dpi``, dots per inch as ``(x, y)``) is kept for JPEG (JFIF density),
      PNG (pHYs) and TIFF (XResolution, YResolution, ResolutionUnit); a density with no unit (aspect ratio
      only), TIFF's default of 1 with no unit, and values outside 1..65535 count as none. Pixels turned by
      90 degrees swap x and y. WebP, BMP, HEIF and AVIF have none here.
    * ``Image.notes`` (:class:`Notes`) holds the IPTC-IIM records of a JPEG (APP13, Photoshop resource 0x0404) or
      TIFF (tag 33723), kept in JPEG and TIFF; a JPEG's comment (COM) or a PNG's ``Comment`` text, kept in JPEG and
      PNG; and a PNG's other text chunks (tEXt, zTXt, iTXt), kept in PNG. IPTC or a comment too long for one JPEG
      marker is left out of a JPEG. Other Photoshop resources, a JPEG's second comment and TIFF comments are dropped.
    * What follows a JPEG's photo (``Image.trailer``, :mod:`deepexpose.mpf`) is written after a JPEG's photo, in
      its order, with the MPF index made to fit: a camera's preview made again from the pixels written, the other
      pictures (a gain map, a second view, unknown ones) byte for byte, or turned upright where the photo was
      (re-encoded with their own quantisation tables and segments; GContainer's ``Item:Length`` in the XMP follows
      a changed size), and other data (a motion photo's video) byte for byte. Other formats leave it out.
    * Alpha is written to PNG, TIFF, WebP, HEIF, AVIF and BMP (a 32-bit BITMAPV5 with an alpha mask,
      :func:`bmp_with_alpha`, which Pillow and Windows read; Pillow's own 32-bit BMPs come back opaque). JPEG has
      no alpha channel, so there it is dropped and the colour values are written unchanged, not composited;
      ``deepexpose enhance`` warns of it (:func:`deepexpose.enhance.warn_of_left_out`).

The decompression-bomb limit is ``max_pixels`` (default: the environment variable ``DEEPEXPOSE_MAX_PIXELS``
if set, else :data:`DEFAULT_MAX_PIXELS`; ``None`` means no limit). It replaces Pillow's own limit for reads
made here: Pillow's global ``MAX_IMAGE_PIXELS`` is switched off only while Pillow parses a header (and
while it decodes an image that is larger than Pillow's limit but within ours), under a lock, and is always
restored.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import secrets
import shutil
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .cicp import Cicp
from .cicp import icc_profile as cicp_icc_profile
from .cicp import gamma_profile, plausible, rgb_profile_from_gray
from .mpf import DATA, PREVIEW, Part, Trailer, join, jpeg_end, read_trailer, segments, xmp_with_lengths

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "Image",
    "Notes",
    "ImageExistsError",
    "ImageIOError",
    "atomic_write_bytes",
    "remove_stale_temps",
    "temp_path",
    "ImageReadError",
    "ImageWriteError",
    "from_tensor",
    "is_image_file",
    "decode_picture",
    "encode_picture",
    "extension_format",
    "holds_alpha",
    "heif_auxiliary",
    "jpeg_end",
    "quantize",
    "read_image",
    "read_preview",
    "register_heif",
    "to_tensor",
    "write_image",
]

DEFAULT_MAX_PIXELS = 200_000_000
"""Largest width x height :func:`read_image` decodes unless told otherwise."""

MAX_PIXELS_ENV = "DEEPEXPOSE_MAX_PIXELS"
"""Environment variable overriding :data:`DEFAULT_MAX_PIXELS`: a positive integer, or ``none`` (no limit)."""

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
"""Lower-case extensions of the camera RAW files :func:`read_image` develops (``Image.format`` ``"RAW"``)."""

_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP", ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF",
    **dict.fromkeys(sorted(RAW_EXTENSIONS), "RAW"),
}
SUPPORTED_EXTENSIONS = frozenset(_EXTENSION_FORMATS)
"""Lower-case file extensions (with the dot) that :func:`is_image_file` accepts."""

SUPPORTED_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "HEIF", "AVIF")
"""Format names as used by ``Image.format`` (which is also ``"RAW"`` for a camera RAW file, read only) and the
``format=`` argument of :func:`write_image`."""

_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIC": "HEIF", **{f: f for f in SUPPORTED_FORMATS}}
_PILLOW_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "AVIF")  # camera multi-picture JPEGs are MPO to Pillow
_MAX_BIT_DEPTH = {"JPEG": 8, "PNG": 16, "TIFF": 16, "WEBP": 8, "BMP": 8, "HEIF": 16, "AVIF": 8}  # HEIF: 10 in the file
_HAS_ALPHA = {"PNG", "TIFF", "WEBP", "HEIF", "AVIF", "BMP"}
_HAS_ICC = {"JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF"}
_HAS_GREY = {"JPEG", "PNG", "TIFF", "BMP", "AVIF"}
_HAS_XMP = {"JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF"}
_HAS_DPI = {"JPEG", "PNG", "TIFF"}
LUMA_709 = (0.2126, 0.7152, 0.0722)  # gray output's weights: filters.base.LUMA_709, repeated so io needs no torch

_ORIENTATION_TAG = 0x0112
# Baseline TIFF tags describing the picture: the EXIF of a TIFF's first IFD that travels through TIFF files.
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_EXIF_DIRECTORIES = (0x8769, 0x8825)  # pointer tags of the EXIF and GPS directories, which travel too
_FILE_OFFSET_TAGS = (0x927C, 0xA005)  # MakerNote, Interoperability IFD: their offsets point into the source file
_TIFF_XMP, _TIFF_RESOLUTION_TAGS = 700, (282, 283, 296)  # XMLPacket; XResolution, YResolution, ResolutionUnit
_TIFF_IPTC = 33723  # IPTC-NAA: the IPTC-IIM records (tifffile gives their bytes whether stored as UNDEFINED or LONG)
_TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_XMP_ORIENTATION = re.compile(rb"""(tiff:Orientation\s*(?:=\s*["']|>)\s*)[0-9]+""")
_PILLOW_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([0-9])')  # as PIL.Image.getexif finds it
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP_KEYWORD = b"XML:com.adobe.xmp\x00"  # an iTXt chunk's keyword and its NUL
_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}

_PILLOW_LIMIT_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- errors


class ImageIOError(Exception):
    """Base class of the errors raised here; ``.path`` is the file and ``.reason`` says what went wrong."""

    _verb = "access"

    def __init__(self, path: str | os.PathLike[str] | None, reason: str, what: str = "image") -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        self.what = what
        super().__init__(f"cannot {self._verb} {what} '{self.path}': {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, e.g. across DataLoader worker processes
        return (type(self), (self.path, self.reason, self.what))


class ImageReadError(ImageIOError):
    """A file could not be read as an image."""

    _verb = "read"


class ImageWriteError(ImageIOError):
    """An image could not be written (bad arguments, existing target, encoder or disk failure)."""

    _verb = "write"


class ImageExistsError(ImageWriteError, FileExistsError):
    """The target exists and ``overwrite`` was not given; also a ``FileExistsError`` for generic handlers."""


# --------------------------------------------------------------------------------------------- Image


class Notes(NamedTuple):
    """Descriptive metadata besides EXIF and XMP (see the module notes): ``iptc``, the IPTC-IIM records (captions,
    keywords, credit of news and agency photos); ``comment``, a JPEG comment or a PNG's ``Comment`` text; ``text``, a
    PNG's other text chunks as (keyword, text) pairs."""

    iptc: bytes | None = None
    comment: bytes | None = None
    text: tuple[tuple[str, str], ...] = ()


@dataclass(eq=False)  # arrays make field-wise == ambiguous; compare the fields you need
class Image:
    """A decoded image.

    ``pixels`` is float32 ``H x W x 3`` RGB in [0, 1], already upright. ``alpha`` is float32 ``H x W`` in
    [0, 1] or ``None``. Read with ``dtype="native"``, both hold the file's ``uint8`` or ``uint16`` codes
    instead, possibly as read-only arrays. ``bit_depth`` is the source precision (8 or 16), ``exif`` raw EXIF
    bytes with Orientation 1 (see the module notes), ``format`` one of :data:`SUPPORTED_FORMATS` or ``"RAW"``
    (a developed camera RAW file). ``grey``: the file holds one gray channel (its value repeated in ``pixels``);
    ``icc_profile`` is then a gray profile.
    ``xmp`` is the raw XMP packet (its ``tiff:Orientation`` set to 1), ``dpi`` the stored resolution as
    ``(x, y)`` dots per inch of the upright pixels; each ``None`` when the file has none (or none readable).
    ``lossless``: a WebP file whose (first) image is lossless (``VP8L``); ``False`` for every other file.
    ``bit_depth`` 16 includes 10- and 12-bit HEIF and AVIF files, their codes scaled to 16 bits.
    ``notes``: its IPTC records, comment and other PNG text (:class:`Notes`), or ``None`` when it has none.
    ``cicp``: the colour given as code points (primaries, transfer, matrix, range) by a HEIF or AVIF file's ``nclx``
    box, where it has no ICC profile, or by a PNG's ``cICP`` chunk; ``icc_profile`` is then one made from them where
    that is possible (see :func:`deepexpose.cicp.icc_profile`), and ``cicp.hdr`` names an HDR transfer.
    ``pictures``: how many pictures the file holds, of which this is the first (a HEIF file's primary one, a TIFF's
    first page that is not a reduced-resolution copy): the pages of a multi-page TIFF (thumbnails not counted), the
    images of a multi-picture JPEG (MPO: a camera's preview, a second view, a gain map), the top-level images of a
    HEIF file (a burst), the frames of an animation; 1 for most files.
    ``trailer``: what a JPEG holds after its photo (:class:`deepexpose.mpf.Trailer`: the other pictures of its MPF
    index, a gain map, a motion photo's video...), written back after a JPEG's photo; ``None`` when nothing follows.
    ``thumbnails``: the sizes (longer side) of a HEIF file's thumbnails, made again from the pixels when written as
    HEIF. ``auxiliary``: what a HEIF file's primary image carries that no output here holds, by name (``"depth map"``,
    ``"HDR gain map"``, ``"portrait matte (hair)"``, or the auxiliary type as the file gives it).
    ``samples``: for a TIFF whose samples are not 8- or 16-bit unsigned integers, their numpy type (``"float32"``,
    ``"float16"``, ``"float64"``, ``"uint32"``); the image is then read as 16-bit codes of them (``bit_depth``
    16), and :func:`write_image` writes a TIFF back with samples of that type (``""`` for every other file).
    ``unspecified``: how many channels of a TIFF (ExtraSamples 0: a mask, a depth...) are of no meaning the file
    names, and were read past: they are not transparency.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    path: Path | None = None
    grey: bool = False
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    lossless: bool = False
    cicp: Cicp | None = None
    notes: Notes | None = None
    pictures: int = 1
    trailer: Trailer | None = None
    thumbnails: tuple[int, ...] = ()
    auxiliary: tuple[str, ...] = ()
    samples: str = ""
    unspecified: int = 0

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


# --------------------------------------------------------------------------------------------- helpers


def extension_format(path: str | os.PathLike[str]) -> str | None:
    """The format a file's extension names (``"JPEG"`` for ``.jpg``, ``.jpeg``, ``.jpe``, ``.jfif``...; ``"RAW"``
    for a camera RAW file), or ``None``."""
    return _EXTENSION_FORMATS.get(Path(path).suffix.lower())


def holds_alpha(fmt: str | None) -> bool:
    """Whether :func:`write_image` writes alpha to format ``fmt`` (not to JPEG or BMP)."""
    return fmt in _HAS_ALPHA


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for an existing regular file with a supported extension whose name does not start with a dot.

    Hidden names are skipped so that temporary files (``.name.tmp-XXXX``) and macOS ``._*`` files are not
    taken for images. The contents are not inspected.
    """
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def quantize(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Map floats in [0, 1] to ``uint8`` (``bit_depth=8``) or ``uint16`` (16), rounding to nearest.

    Values are clipped to [0, 1] first, halves round up (``floor(x * max + 0.5)``), NaN becomes 0.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    a = np.asarray(pixels)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"quantize expects floating-point values in [0, 1], got dtype {a.dtype}")
    work = np.float64 if a.dtype == np.float64 else np.float32
    top = 255 if bit_depth == 8 else 65535
    x = np.nan_to_num(a.astype(work, copy=True), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(x, 0.0, 1.0, out=x)
    x *= top
    x += 0.5
    np.floor(x, out=x)
    return x.astype(np.uint8 if bit_depth == 8 else np.uint16)


def to_tensor(img: Image | np.ndarray) -> torch.Tensor:
    """``H x W x 3`` pixels (or an :class:`Image`) to a new ``1 x 3 x H x W`` float32 tensor."""
    import torch

    pixels = img.pixels if isinstance(img, Image) else np.asarray(img)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 pixels, got shape {pixels.shape}")
    if not np.issubdtype(pixels.dtype, np.floating):
        raise TypeError(f"expected floating-point pixels in [0, 1], got dtype {pixels.dtype}")
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    if np.shares_memory(chw, pixels):
        chw = chw.copy()
    return torch.from_numpy(chw).unsqueeze(0)


def from_tensor(t: torch.Tensor) -> np.ndarray:
    """A ``3 x H x W`` or ``1 x 3 x H x W`` tensor to ``H x W x 3`` float32 numpy pixels clipped to [0, 1]."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(t.shape)}")
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected 3 x H x W or 1 x 3 x H x W, got shape {tuple(t.shape)}")
    import torch

    hwc = t.detach().to(device="cpu", dtype=torch.float32).clamp(0.0, 1.0).permute(1, 2, 0)
    return np.ascontiguousarray(hwc.numpy(), dtype=np.float32)


class _Default:
    def __repr__(self) -> str:
        return f"DEFAULT (${MAX_PIXELS_ENV} or {DEFAULT_MAX_PIXELS})"


_DEFAULT = _Default()


def max_pixels_limit() -> int | None:
    """The decompression-bomb limit :func:`read_image` applies by default: ``$DEEPEXPOSE_MAX_PIXELS`` if set
    (``none`` for no limit), else :data:`DEFAULT_MAX_PIXELS`. Raises ``ValueError`` for a malformed variable."""
    return _resolve_max_pixels(_DEFAULT)


def _resolve_max_pixels(value: int | None | _Default) -> int | None:
    if isinstance(value, _Default):
        env = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
        if not env:
            return DEFAULT_MAX_PIXELS
        if env.lower() == "none":
            return None
        if not env.isdigit() or int(env) <= 0:
            raise ValueError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: expected a positive integer "
                             "or 'none'")
        return int(env)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"max_pixels must be a positive integer or None, got {value!r}")
    return int(value)


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation ``orientation`` (1..8) to an ``H x W [x C]`` array, as exif_transpose does."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def _as_exif_bytes(data: bytes) -> bytes:
    """Raw EXIF in the ``Exif\\0\\0`` + TIFF layout."""
    return data if data.startswith(_EXIF_HEADER) else _EXIF_HEADER + data


def _exif_ifd0(data: bytes) -> tuple[int, str, int]:
    """Where a raw EXIF block's TIFF header starts (after ``Exif\\0\\0``, if there), its byte order for
    :mod:`struct` and its first IFD's offset from that header; ``KeyError`` or ``struct.error`` when it has none."""
    base = 6 if data.startswith(_EXIF_HEADER) else 0
    bo = {b"II": "<", b"MM": ">"}[bytes(data[base:base + 2])]
    return base, bo, struct.unpack_from(bo + "I", data, base + 4)[0]


_SWAPPED_ON_TURNING = ((None, 282, 283), (0x8769, 0xA002, 0xA003))
"""(directory, tag, tag) pairs that change places when a photo is turned by 90 degrees: XResolution and
YResolution in IFD0, PixelXDimension and PixelYDimension in the Exif directory"""


def _exif_with_orientation_1(data: bytes, turned: bool = True) -> bytes | None:
    """``data`` with Orientation reset to 1 (unchanged bytes if it already is 1 or absent), and, where the pixels
    were ``turned`` by an orientation of 90 degrees (5 to 8), its x and y resolution and pixel dimensions swapped
    (:data:`_SWAPPED_ON_TURNING`). The values are set where they are, entries of a directory trading their values,
    so that nothing else in the block moves: a maker note's offsets stay valid and the thumbnail (IFD1) stays, to be
    made again upright (:func:`_exif_with_thumbnail`). A block that cannot be read that way is rewritten by Pillow,
    which keeps neither."""
    try:
        base, bo, ifd0 = _exif_ifd0(data)
        entries = _ifd_entries(data, base, bo, ifd0)
        if _ORIENTATION_TAG not in entries:
            return data
        at, kind, count = entries[_ORIENTATION_TAG]
        if kind != 3 or count != 1:
            raise ValueError("an Orientation that is not one SHORT")
        orientation = struct.unpack_from(bo + "H", data, at + 8)[0]
        if orientation == 1:
            return data
        out = bytearray(data)
        struct.pack_into(bo + "H", out, at + 8, 1)
        if turned and orientation in (5, 6, 7, 8):
            for pointer, a, b in _SWAPPED_ON_TURNING:
                found = entries
                if pointer is not None:
                    if pointer not in entries:
                        continue
                    offset = struct.unpack_from(bo + "I", data, entries[pointer][0] + 8)[0]
                    found = _ifd_entries(data, base, bo, offset)
                if a in found and b in found and found[a][2] == found[b][2] == 1:  # one value each: trade them
                    (at_a, kind_a, _), (at_b, kind_b, _) = found[a], found[b]
                    value_a, value_b = data[at_a + 8:at_a + 12], data[at_b + 8:at_b + 12]
                    struct.pack_into(bo + "H", out, at_a + 2, kind_b)
                    struct.pack_into(bo + "H", out, at_b + 2, kind_a)
                    out[at_a + 8:at_a + 12], out[at_b + 8:at_b + 12] = value_b, value_a
        return bytes(out)
    except (KeyError, ValueError, struct.error):
        pass
    exif = PILImage.Exif()
    exif.load(data)
    orientation = exif.get(_ORIENTATION_TAG, 1)
    if orientation == 1:
        return data
    exif[_ORIENTATION_TAG] = 1
    if turned and orientation in (5, 6, 7, 8):
        for pointer, a, b in _SWAPPED_ON_TURNING:
            tags = exif if pointer is None else exif.get_ifd(pointer)
            if a in tags and b in tags:
                tags[a], tags[b] = tags[b], tags[a]
    return exif.tobytes()


def _ifd_entries(data: bytes, base: int, bo: str, offset: int) -> dict[int, tuple[int, int, int]]:
    """The entries of the TIFF directory at ``offset`` (from ``base``) of ``data``: tag -> (where its 12 bytes
    start, its type, its count)."""
    at = base + offset
    entries = {}
    for i in range(struct.unpack_from(bo + "H", data, at)[0]):
        tag, kind, count = struct.unpack_from(bo + "HHI", data, at + 2 + 12 * i)
        entries[tag] = (at + 2 + 12 * i, kind, count)
    return entries


def _exif_upright(data: bytes) -> bytes | None:
    """Raw EXIF with its Orientation reset to 1, or ``None`` if it cannot be edited safely (dropped rather than
    kept with a wrong Orientation)."""
    try:
        return _exif_with_orientation_1(_as_exif_bytes(data))
    except Exception:
        return None


def _exif_from_tiff_tags(tags: dict[int, Any], rotated: bool, ifds: dict[int, dict] | None = None) -> bytes | None:
    """An EXIF block holding a TIFF's descriptive text tags, the non-empty directories ``ifds`` (pointer tag ->
    tags) and Orientation 1 if the pixels were rotated."""
    exif = PILImage.Exif()
    for pointer, ifd in (ifds or {}).items():
        if ifd:
            exif[pointer] = ifd
    for code in _TIFF_TEXT_TAGS:
        value = tags.get(code)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if code == 270 and isinstance(value, str) and value.startswith('{"shape":'):
            continue  # tifffile's own shape note, not a description (and wrong once the image changes)
        if isinstance(value, str) and value.strip("\x00 "):
            exif[code] = value.rstrip("\x00")
    if rotated:
        exif[_ORIENTATION_TAG] = 1
    return exif.tobytes() if len(exif) else None


def _exif_directories(exif: PILImage.Exif) -> dict[int, dict[int, Any]]:
    """The non-empty EXIF and GPS directories of ``exif`` (pointer tag -> tags), less the tags whose offsets point
    into the source file and, tag by tag, those that cannot be written again; never raises."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    found = {}
    for pointer in _EXIF_DIRECTORIES:
        try:
            tags = exif.get_ifd(pointer)
        except Exception:
            continue
        kept = {}
        for tag, value in tags.items():
            if tag in _FILE_OFFSET_TAGS:
                continue
            try:
                single = ImageFileDirectory_v2(group=pointer)
                single[tag] = value
                single.tobytes()
            except Exception:
                continue
            kept[tag] = value
        if kept:
            found[pointer] = kept
    return found


def _tiff_exif(path: Path | bytes, rotated: bool, tags: dict[int, Any] | None = None) -> bytes | None:
    """The EXIF of a TIFF file (or of its bytes, see :func:`_tiff_main_first`): the descriptive tags of its first
    IFD (``tags``: as read already, else read here) with its EXIF and GPS directories (see
    :func:`_exif_directories`), and Orientation 1 if the pixels were rotated. Never raises: if the file's
    directories cannot be read, the descriptive ``tags`` alone (or ``None``), as for a BigTIFF, whose directories
    Pillow does not read."""
    try:
        with _opened(path) as fh:
            if fh.read(4) in _TIFF_SIGNATURES[2:]:  # BigTIFF: Pillow would misread it, with a warning
                raise ValueError("BigTIFF")
            fh.seek(0)
            found = PILImage.Exif()
            found.load_from_fp(fh)
            return _exif_from_tiff_tags(dict(found) if tags is None else tags, rotated, _exif_directories(found))
    except Exception:
        return None if tags is None else _exif_from_tiff_tags(tags, rotated)


def _xmp_orientation(xmp: Any) -> int:
    """The ``tiff:Orientation`` of an XMP packet as Pillow reads it (which it uses where EXIF has no Orientation tag);
    1 if absent or invalid."""
    match = _PILLOW_XMP_ORIENTATION.search(xmp) if isinstance(xmp, (bytes, bytearray)) else None
    value = int(match[1]) if match else 1
    return value if value in range(1, 9) else 1


def _xmp_upright(xmp: Any) -> bytes | None:
    """An XMP packet with its ``tiff:Orientation`` (attribute or element) set to 1, as the pixels read or written
    here are upright; ``None`` for an empty packet or anything but bytes."""
    if not isinstance(xmp, (bytes, bytearray)) or not xmp:
        return None
    return _XMP_ORIENTATION.sub(rb"\g<1>1", bytes(xmp))


def _dpi(x: Any, y: Any, scale: float = 1.0) -> tuple[float, float] | None:
    """``(x, y)`` dots per inch (``x * scale``, ``y * scale``) if both are in 1..65535, which every format can
    store, else ``None``."""
    try:
        dpi = (float(x) * scale, float(y) * scale)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return dpi if all(1 <= v <= 65535 for v in dpi) else None


def _tiff_dpi(tags: dict[int, Any]) -> tuple[float, float] | None:
    """The resolution of TIFF tags 282, 283 and 296 (tifffile's ``(numerator, denominator)`` or Pillow's
    rational values), in inches (unit 2, the default) or centimetres (3); ``None`` for no unit or no tags."""
    def ratio(v: Any) -> float:
        return v[0] / v[1] if isinstance(v, tuple) else float(v)

    try:
        scale = {2: 1.0, 3: 2.54}.get(int(tags.get(296, 2)))
        if scale is None or 282 not in tags or 283 not in tags:
            return None
        return _dpi(ratio(tags[282]), ratio(tags[283]), scale)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None


def _icc_for(icc: bytes | None, grey: bool) -> bytes | None:
    """The profile if it describes RGB data, or with ``grey`` gray data (ICC header bytes 16..20), else ``None``."""
    if icc and len(icc) >= 20 and icc[16:20] == (b"GRAY" if grey else b"RGB "):
        return bytes(icc)
    return None


def _to_float(a: np.ndarray, top: int) -> np.ndarray:
    return np.divide(a, np.float32(top), dtype=np.float32)


def _warn(message: str) -> None:
    """A :class:`deepexpose.DeepExposeWarning` from reading or writing, pointing at the caller's caller."""
    from . import DeepExposeWarning

    warnings.warn(message, DeepExposeWarning, stacklevel=3)


def _readable_exif(path: Path, exif: bytes | None) -> bytes | None:
    """``exif`` if it can be written again (:func:`_exif_for_writing` parses it), else ``None`` with a warning:
    an empty or damaged EXIF block never fails a photo."""
    if not exif:
        return None
    try:
        base, _, ifd0 = _exif_ifd0(exif)
        if base + ifd0 + 2 > len(exif):
            raise ValueError("its first directory lies outside the block")
        _exif_for_writing(exif)
    except (KeyError, struct.error):
        _warn(f"{path}: its EXIF cannot be read (no TIFF header); it is left out")
        return None
    except (ValueError, TypeError) as e:
        _warn(f"{path}: its EXIF cannot be read ({e}); it is left out")
        return None
    return exif


def _finish(path: Path, color: np.ndarray, alpha: np.ndarray | None, bit_depth: int, orientation: int,
            icc: bytes | None, exif: bytes | None, fmt: str, native: bool = False, xmp: Any = None,
            dpi: tuple[float, float] | None = None, cicp: Cicp | None = None) -> Image:
    """Integer ``H x W x {1, 3}`` colour and ``H x W`` alpha to an upright float (or, ``native``, integer)
    :class:`Image`; ``dpi`` is that of the stored pixels (swapped here if ``orientation`` turns them). ``cicp``,
    the colour code points of a file without an ICC profile, gives the profile where one describes them."""
    top = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    convert = (lambda a: a.astype(dtype, copy=False)) if native else (lambda a: _to_float(a, top))
    if color.ndim == 2:
        color = color[:, :, None]
    grey = color.shape[2] == 1
    pixels = convert(color)
    if grey:
        pixels = np.repeat(pixels, 3, axis=2)
    pixels = _orient(pixels, orientation)
    alpha_f = _orient(convert(alpha), orientation) if alpha is not None else None
    if dpi is not None and orientation in _TRANSPOSING:
        dpi = (dpi[1], dpi[0])
    if icc is None and cicp is not None:
        icc = cicp_icc_profile(cicp, grey)
    else:
        cicp = None
    return Image(pixels=pixels, alpha=alpha_f, bit_depth=bit_depth, icc_profile=_icc_for(icc, grey),
                 exif=_readable_exif(path, exif), format=fmt, path=path, grey=grey, xmp=_xmp_upright(xmp), dpi=dpi,
                 cicp=cicp)


def _check_pixels(path: Path, width: int, height: int, limit: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"invalid image size {width} x {height}")
    if limit is not None and width * height > limit:
        raise ImageReadError(
            path, f"too many pixels: {width} x {height} = {width * height} exceeds the limit of {limit} "
                  f"(if the file is trusted, set ${MAX_PIXELS_ENV} higher, or max_pixels= in Python)")


@contextlib.contextmanager
def _pillow_limit_off(needed: bool = True) -> Iterator[None]:
    """Switch off Pillow's global decompression-bomb limit (ours applies instead); restore it afterwards."""
    if not needed:
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = PILImage.MAX_IMAGE_PIXELS
        PILImage.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            PILImage.MAX_IMAGE_PIXELS = saved


def _over_pillow_limit(pixels: int) -> bool:
    limit = PILImage.MAX_IMAGE_PIXELS
    return limit is not None and pixels > limit


@functools.cache
def register_heif() -> bool:
    """Register pillow-heif's HEIF opener and saver with Pillow, once, when first needed (importing deepexpose stays
    fast); ``False`` where pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _codec_missing(fmt: str, writing: bool = False) -> str | None:
    """Why ``fmt`` (HEIF, AVIF or RAW) cannot be read, or with ``writing`` written, here; ``None`` if it can."""
    if fmt == "RAW":
        try:
            import rawpy  # noqa: F401
        except ImportError:
            return "camera RAW files need the 'rawpy' package (pip install rawpy)"
    elif fmt == "AVIF":
        from PIL import features

        if not features.check("avif"):
            return "AVIF needs Pillow built with AVIF support (libavif): PIL.features.check('avif') is false"
    elif fmt == "HEIF":
        if not register_heif():
            return "HEIC/HEIF needs the 'pillow-heif' package (pip install pillow-heif)"
        import pillow_heif

        if writing and not pillow_heif.libheif_info()["HEIF"]:
            return "writing HEIC needs an HEVC encoder (x265), which this pillow-heif's libheif lacks"
    return None


def _isobmff_format(head: bytes) -> str | None:
    """``"AVIF"`` or ``"HEIF"`` for a file starting with an ISOBMFF ``ftyp`` box that names such a brand (the major
    brand, or a compatible one after the minor version), else ``None``."""
    if head[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    return "HEIF" if brands & _HEIF_BRANDS else None


def _widen(a: np.ndarray, bits: int) -> np.ndarray:
    """``bits``-bit codes (10 or 12) in ``uint16`` to 16-bit codes, their top bits repeated below them (0 stays 0,
    the largest code becomes 65535)."""
    return (a << (16 - bits)) | (a >> (2 * bits - 16))


# --------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None | _Default = _DEFAULT,
               dtype: str = "float32", page: int = 0) -> Image:
    """Read a JPEG, PNG, TIFF, WebP, BMP, HEIC/HEIF or AVIF file, or develop a camera RAW file, into an upright
    float :class:`Image` (see the module notes).

    ``max_pixels`` caps width x height, checked from the header before decoding; the default is
    ``$DEEPEXPOSE_MAX_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`; ``None`` disables the check.
    ``dtype="native"`` keeps the decoded ``uint8`` / ``uint16`` codes (pixels and alpha) instead of converting
    them to float32 in [0, 1]: a 100 MP photo is 300 MB as 8-bit codes but 1.2 GB as float32. The arrays may
    be read-only (copy them to edit in place).
    ``page``: which picture of a multi-page TIFF to read, from 0 (``Image.pictures`` says how many it holds;
    reduced-resolution copies such as thumbnails are not counted); every other file has picture 0 alone.
    Raises :class:`ImageReadError` for every problem with the file.
    """
    p = Path(path)
    if dtype not in ("float32", "native"):
        raise ValueError(f"dtype must be 'float32' or 'native', got {dtype!r}")
    if isinstance(page, bool) or not isinstance(page, (int, np.integer)) or page < 0:
        raise ValueError(f"page must be an integer >= 0, got {page!r}")
    native = dtype == "native"
    limit = _resolve_max_pixels(max_pixels)
    head = _read_head(p)
    if page and (p.suffix.lower() in RAW_EXTENSIONS or head[:4] not in _TIFF_SIGNATURES):
        raise ImageReadError(p, f"has no page {page + 1}: only a TIFF holds pages")
    try:
        if p.suffix.lower() in RAW_EXTENSIONS:
            if missing := _codec_missing("RAW"):
                raise ImageReadError(p, missing)
            return _read_raw(p, head, limit, native)
        if head.startswith(_PNG_SIGNATURE) and len(head) > 24 and head[24] == 16:
            return _read_png16(p, limit, native)
        if head[:4] in _TIFF_SIGNATURES:
            with warnings.catch_warnings():
                # Photoshop stores IPTC records as LONGs, of which Pillow expects one; tifffile reads them (Notes)
                warnings.filterwarnings("ignore", message="Metadata Warning, tag 33723 had too many entries")
                return _read_tiff(p, limit, native, int(page))
        container = _isobmff_format(head)
        if container and (missing := _codec_missing(container)):
            raise ImageReadError(p, missing)
        if container == "HEIF":
            return _read_heif(p, limit, native)
        return _read_pillow(p, limit, tiff_layout=None, native=native, avif=container == "AVIF")
    except (ImageReadError, MemoryError):
        raise
    except PILImage.DecompressionBombError as e:
        raise ImageReadError(p, f"too many pixels ({e})") from e
    except Exception as e:  # anything a decoder throws at a damaged file
        raise ImageReadError(p, f"truncated or corrupt image data ({type(e).__name__}: {e})") from e


def read_preview(path: str | os.PathLike[str], min_side: int, *,
                 max_pixels: int | None | _Default = _DEFAULT) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A small upright ``h x w x 3`` uint8 copy of an 8-bit RGB or gray JPEG, for looking at the photo before
    (or while) :func:`read_image` decodes all of it, and the ``(height, width)`` of the whole upright photo;
    ``None`` when there is no such copy to be had cheaply.

    libjpeg decodes at 1/2, 1/4 or 1/8 of the size by a reduced inverse DCT (Pillow's ``draft``; at 1/8 each pixel is
    the mean of an 8 x 8 block, the DC coefficient), skipping most of the work; the smallest of those scales whose
    sides are both at least ``min_side`` is used, with the EXIF orientation applied as :func:`read_image` applies
    it; a multi-picture JPEG's is of its photo. ``None`` for any other file (CMYK JPEGs included), one no scale can
    reduce, one over ``max_pixels`` (as :func:`read_image`), and any error (:func:`read_image` reports it).
    """
    p = Path(path)
    try:
        with _pillow_limit_off():
            pim = PILImage.open(p, formats=["JPEG"])
        with pim:
            width, height = pim.size
            limit = _resolve_max_pixels(max_pixels)
            if (pim.format not in ("JPEG", "MPO") or pim.mode not in ("RGB", "L")
                    or (limit is not None and width * height > limit)):
                return None
            orientation = _pillow_orientation(pim)
            pim.draft(pim.mode, (min_side, min_side))
            if pim.size == (width, height):
                return None
            pim.load()
            small = np.asarray(pim)
    except Exception:
        return None
    if small.ndim == 2:
        small = np.repeat(small[:, :, None], 3, axis=2)
    upright = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    return np.ascontiguousarray(_orient(small, orientation)), upright


def _starts_with(path: Path, heads: tuple[bytes, ...]) -> bool:
    """Whether the file ``path`` starts with one of ``heads`` (false when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(max(map(len, heads))).startswith(heads)
    except OSError:
        return False


def _read_head(path: Path) -> bytes:
    """Check that ``path`` is a non-empty readable regular file and return its first bytes."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ImageReadError(path, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, "not a regular file")
        if st.st_size == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
        with open(path, "rb") as fh:
            return fh.read(64)
    except FileNotFoundError as e:
        broken = os.path.islink(path)
        raise ImageReadError(path, "a symbolic link to nothing (or a link loop)" if broken else "file not found") from e
    except PermissionError as e:
        raise ImageReadError(path, "permission denied") from e
    except OSError as e:
        raise ImageReadError(path, f"cannot open file ({e.strerror or e})") from e


_PILLOW_MODE_NAMES = {"I": "32-bit integer", "F": "32-bit floating point", "LAB": "CIE L*a*b*", "HSV": "HSV"}


def _read_pillow(path: Path, limit: int | None, tiff_layout: str | None, native: bool = False,
                 avif: bool = False, tiff: bytes | None = None) -> Image:
    """Read through Pillow; ``tiff_layout`` describes a TIFF, ``avif`` says that the file's brand is AVIF. ``tiff``:
    a TIFF's bytes to read instead of the file's (:func:`_tiff_main_first`)."""
    source: Path | bytes = path if tiff is None else tiff
    unturned = _tiff_unturned(source) if tiff_layout is not None else None
    try:
        with _pillow_limit_off():
            opened = unturned[0] if unturned else path if tiff is None else io.BytesIO(tiff)
            pim = PILImage.open(opened, formats=_PILLOW_FORMATS)
    except UnidentifiedImageError as e:
        if tiff_layout is not None:
            raise ImageReadError(path, f"unsupported TIFF layout ({tiff_layout})") from e
        if avif:
            raise ImageReadError(path, "truncated or corrupt AVIF file (libavif cannot parse it)") from e
        if kind := _unread_jpeg(path):
            raise ImageReadError(path, f"unsupported JPEG: {kind} (only 8-bit JPEGs are read)") from e
        if _starts_with(path, (b"GIF87a", b"GIF89a")):
            raise ImageReadError(path, "a GIF, which only 'deepexpose enhance' reads (as an animation); photos here "
                                       "are JPEG, PNG, TIFF, WebP, BMP, HEIC or AVIF") from e
        raise ImageReadError(path, "not a recognised image file (supported: JPEG, PNG, TIFF, WebP, BMP, HEIC, "
                                   "AVIF)") from e
    with pim:
        width, height = pim.size
        _check_pixels(path, width, height, limit)
        fmt = "JPEG" if pim.format == "MPO" else str(pim.format)
        decoded = avif_meta = None
        if native and pim.format in ("JPEG", "MPO") and pim.mode in ("RGB", "L"):
            codes = _decode_jpeg_codes(path, pim.mode, width, height, cut=pim.format == "MPO")
            decoded = None if codes is None else (codes, None, 8)
        elif pim.format == "AVIF":
            avif_meta = _avif_meta(path)
            decoded = _decode_avif_deep(path, avif_meta)
        if decoded is not None:  # a JPEG as Pillow decodes it (tested) without its 4-byte copy, or a deep AVIF
            in_file = orientation = _pillow_orientation(pim)
            color, alpha, bit_depth = decoded
        else:
            with _pillow_limit_off(_over_pillow_limit(width * height)):
                in_file = _pillow_orientation(pim)
                pim.load()  # force decoding now, inside our error handling
            # a PNG eXIf chunk after the image data only shows up after loading. Rotate by what is left, reset
            # EXIF if anything was (a TIFF's orientation was taken out for Pillow: it is turned here)
            orientation = unturned[1] if unturned else _pillow_orientation(pim)
            in_file = orientation if unturned else in_file
        rotated = orientation != 1 or in_file != 1
        icc = pim.info.get("icc_profile")
        raw_exif = pim.info.get("exif")
        xmp = pim.info.get("xmp")
        notes = _pillow_notes(pim, fmt)
        gamma_icc = _png_gamma_profile(pim.info, pim.mode in ("L", "LA", "I;16", "I")) if fmt == "PNG" else None
        try:
            tiff_tags = dict(pim.getexif()) if fmt == "TIFF" else {}
        except Exception:
            tiff_tags = {}
        pictures = int(getattr(pim, "n_frames", 1) or 1)
        trailer = _jpeg_trailer(path, _has_mp_index(pim), xmp, orientation) if fmt == "JPEG" else None
        dpi = _pillow_dpi(pim, fmt, tiff_tags)
        if dpi is not None and orientation == 1 and in_file in _TRANSPOSING:  # Pillow turned the TIFF itself
            dpi = (dpi[1], dpi[0])
        if decoded is None:
            rgb, icc = _cmyk_to_srgb(pim, icc) if pim.mode == "CMYK" else (pim, icc)
            color, alpha, bit_depth = _pillow_arrays(rgb, path)

    if fmt == "TIFF":
        exif = _tiff_exif(source, rotated, tiff_tags)
    elif raw_exif:
        exif = _exif_upright(bytes(raw_exif)) if rotated else _as_exif_bytes(bytes(raw_exif))
    else:
        exif = None
    cicp = _nclx(avif_meta) if avif_meta and not icc else _png_cicp(path) if fmt == "PNG" else None
    if fmt == "PNG" and cicp is not None:
        icc = None  # a cICP chunk overrides the iCCP chunk (PNG 3rd edition, 11.3.2.6)
    elif fmt == "PNG" and icc is None:
        icc = gamma_icc
    img = _finish(path, color, alpha, bit_depth, orientation, icc, exif, fmt, native, xmp, dpi, cicp)
    img.lossless = fmt == "WEBP" and _webp_lossless(path)
    img.notes = notes
    img.pictures = pictures
    img.trailer = trailer
    return img


def _unread_jpeg(path: Path) -> str | None:
    """What kind of JPEG Pillow cannot open: ``"12-bit samples"``, ``"lossless coding"``...; ``None`` when the
    file does not start as a JPEG or its frame header says nothing Pillow refuses."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    if not head.startswith(b"\xff\xd8\xff"):
        return None
    for marker, start, end in segments(head):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and end <= len(head):
            precision = head[start + 4]
            if marker in (0xC3, 0xC7, 0xCB, 0xCF):
                return f"lossless coding ({precision}-bit samples)"
            if precision != 8:
                return f"{precision}-bit samples"
            return None
    return None


_SRGB_CHROMATICITIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290)


def _png_gamma_profile(info: dict[str, Any], grey: bool) -> bytes | None:
    """The ICC profile that a PNG's ``gAMA`` chunk, with its ``cHRM`` chunk, describes where they alone say how to
    show the file (no ``sRGB`` chunk; the caller has seen no profile or ``cICP`` chunk): a power curve with sRGB's
    primaries, or those of ``cHRM`` where it names others (ignored for gray, and where no display could have them).
    ``None`` without a usable ``gAMA``, or where the chunks describe sRGB data: a gamma of 1/2.2 (within 1 %, as
    written beside it) with sRGB's primaries or none. ``info`` holds Pillow's ``gamma``, ``chromaticity`` (white,
    red, green, blue; x, y each) and ``srgb``."""
    gamma = info.get("gamma")
    if not isinstance(gamma, (int, float)) or "srgb" in info or not 0.1 <= gamma <= 10:
        return None
    chrm = info.get("chromaticity")
    primaries = None
    if not grey and isinstance(chrm, tuple) and len(chrm) == 8:
        candidate = ((chrm[2], chrm[3]), (chrm[4], chrm[5]), (chrm[6], chrm[7])), (chrm[0], chrm[1])
        srgb = np.ravel([*_SRGB_CHROMATICITIES[0], _SRGB_CHROMATICITIES[1]])
        own = np.ravel([*candidate[0], candidate[1]])
        if plausible(candidate) and np.abs(own - srgb).max() > 0.001:
            primaries = candidate
    if primaries is None and abs(gamma * 2.2 - 1) <= 0.01:
        return None
    return gamma_profile(1 / gamma, grey, primaries)


_TRAILER_XMP = (b"GContainer", b"Container:Directory", b"MicroVideo", b"MotionPhoto")


def _has_mp_index(pim: PILImage.Image) -> bool:
    """Whether a JPEG has an MPF index (Pillow opens an Ultra HDR photo as a plain JPEG, not as an MPO)."""
    return any(kind == "APP2" and body.startswith(b"MPF\x00") for kind, body in getattr(pim, "applist", ()))


def _jpeg_trailer(path: Path, indexed: bool, xmp: Any, orientation: int) -> Trailer | None:
    """What follows a JPEG's photo (:func:`deepexpose.mpf.read_trailer`); the file is read whole only when it has
    an MPF index, does not end with the photo's end of image, or its XMP names appended items. Never fails a read."""
    try:
        if not indexed and not (isinstance(xmp, (bytes, str)) and any(
                k in (xmp.encode() if isinstance(xmp, str) else xmp) for k in _TRAILER_XMP)):
            with open(path, "rb") as fh:
                fh.seek(-2, os.SEEK_END)
                if fh.read(2) == b"\xff\xd9":
                    return None
        data = path.read_bytes()
        end = jpeg_end(data, 0)
        return None if end is None else read_trailer(data, end, orientation)
    except (OSError, ValueError, struct.error):
        return None


_PNG_COMMENT = "Comment"
_PHOTOSHOP_IPTC = 0x0404  # the Photoshop image resource holding IPTC-IIM records


def _pillow_notes(pim: PILImage.Image, fmt: str) -> Notes | None:
    """A JPEG's IPTC records (APP13) and comment (COM), or a loaded PNG's text chunks, as Pillow read them."""
    if fmt == "JPEG":
        iptc = (pim.info.get("photoshop") or {}).get(_PHOTOSHOP_IPTC)
        comment = pim.info.get("comment")
        return _notes(bytes(iptc) if iptc else None, bytes(comment) if comment else None, [])
    if fmt == "PNG":
        return _notes(None, None, [(str(k), str(v)) for k, v in getattr(pim, "text", {}).items()])
    return None


def _notes(iptc: bytes | None, comment: bytes | None, text: list[tuple[str, str]]) -> Notes | None:
    """:class:`Notes` from what a file holds, a PNG's ``Comment`` text as the comment and its XMP left out (it is
    ``Image.xmp``); ``None`` when there is nothing."""
    for key, value in text:
        if key == _PNG_COMMENT and comment is None:
            comment = value.encode()
    rest = tuple((k, v) for k, v in text if k not in (_PNG_COMMENT, _PNG_XMP_KEYWORD[:-1].decode()))
    return Notes(iptc, comment, rest) if iptc or comment or rest else None


def _cmyk_to_srgb(pim: PILImage.Image, icc: bytes | None) -> tuple[PILImage.Image, bytes | None]:
    """A loaded CMYK image converted to sRGB through its CMYK profile ``icc`` by LittleCMS, and the sRGB profile;
    ``(pim, None)`` (for Pillow's plain formula) without a CMYK profile or if the conversion fails."""
    if not icc or len(icc) < 20 or icc[16:20] != b"CMYK":
        return pim, None
    from PIL import ImageCms

    try:
        cmyk = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        supported = ImageCms.isIntentSupported(cmyk, ImageCms.Intent.PERCEPTUAL, ImageCms.Direction.INPUT) == 1
        intent = ImageCms.Intent.PERCEPTUAL if supported else ImageCms.Intent.RELATIVE_COLORIMETRIC
        rgb = ImageCms.profileToProfile(pim, cmyk, ImageCms.createProfile("sRGB"), renderingIntent=intent,
                                        outputMode="RGB")
    except Exception:  # a broken profile: the plain formula rather than a failed read
        return pim, None
    return rgb, _srgb_profile()


@functools.cache
def _srgb_profile() -> bytes:
    """LittleCMS's sRGB profile, made once."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _webp_lossless(path: Path) -> bool:
    """Whether a WebP file's image, or an animation's first frame, is lossless (a ``VP8L`` chunk, not ``VP8 ``),
    from the RIFF chunk headers."""
    with open(path, "rb") as fh:
        if fh.read(12)[8:] != b"WEBP":
            return False
        while len(header := fh.read(8)) == 8:
            kind, size = header[:4], struct.unpack("<I", header[4:])[0]
            if kind in (b"VP8 ", b"VP8L"):
                return kind == b"VP8L"
            # an animation frame: skip its 16-byte header and read its chunks; skip other chunks (padded to even)
            fh.seek(16 if kind == b"ANMF" else size + (size & 1), os.SEEK_CUR)
    return False


def _pillow_dpi(pim: PILImage.Image, fmt: str, tiff_tags: dict[int, Any]) -> tuple[float, float] | None:
    """The stored resolution of a JPEG (JFIF density in inches or centimetres; not Pillow's ``dpi``, which falls
    back on EXIF and on 72), PNG (pHYs in metres) or TIFF, else ``None``."""
    if fmt == "JPEG":
        density = pim.info.get("jfif_density")
        scale = {1: 1.0, 2: 2.54}.get(pim.info.get("jfif_unit"))
        return _dpi(*density, scale) if scale and isinstance(density, tuple) and len(density) == 2 else None
    if fmt == "PNG":
        dpi = pim.info.get("dpi")
        return _dpi(*dpi) if isinstance(dpi, tuple) and len(dpi) == 2 else None
    return _tiff_dpi(tiff_tags) if fmt == "TIFF" else None


def _decode_jpeg_codes(path: Path, mode: str, width: int, height: int, cut: bool = False) -> np.ndarray | None:
    """A baseline/progressive RGB or gray JPEG decoded by libjpeg-turbo through ``imagecodecs`` straight into
    a (writable) array: the same pixels as Pillow (tested) at about half the time of Pillow's decode plus its
    array copy. ``None`` (use Pillow, which also reports damaged files) if anything is unexpected, including
    a file with no end-of-image marker: libjpeg-turbo fills a truncated file's missing rows with grey and
    only warns. Bytes after the marker (a phone's motion-photo video, padding; with ``cut``, the other pictures of
    a multi-picture JPEG, which also end with one) are left out."""
    try:
        import imagecodecs

        data = path.read_bytes()
        if cut or not data.endswith(b"\xff\xd9"):
            end = jpeg_end(data, 0)
            if end is None:
                return None
            data = data[:end]
        decoded = imagecodecs.jpeg8_decode(data)
    except Exception:
        return None
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    if decoded.dtype != np.uint8 or decoded.shape != shape:
        return None
    return decoded


def _opened(source: Path | bytes) -> IO[bytes]:
    """A file's bytes, or the bytes given, to read from."""
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _tiff_unturned(path: Path | bytes) -> tuple[IO[bytes], int] | None:
    """For a TIFF (or its bytes) whose first IFD has an Orientation (tag 274) other than 1: the file's bytes, in
    memory, with that orientation set to 1, and the orientation. Pillow turns a TIFF upright itself while loading,
    and for gray, palette, RGBA and CMYK ones (Pillow 13) returned their pixels scrambled; read unturned, they are
    turned here as every other photo is. ``None`` for any other file (classic and BigTIFF, either byte order, are
    read)."""
    with _opened(path) as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 16:
            return None
        version = struct.unpack_from(order + "H", head, 2)[0]
        if version not in (42, 43):
            return None
        big = version == 43
        count_fmt, entry, value_at = ("Q", 20, 12) if big else ("H", 12, 8)
        fh.seek(struct.unpack_from(order + ("Q" if big else "I"), head, 8 if big else 4)[0])
        size = struct.calcsize(count_fmt)
        counted = fh.read(size)
        if len(counted) < size:
            return None
        ifd_entries = fh.tell()
        entries = fh.read(entry * min(struct.unpack(order + count_fmt, counted)[0], 4096))
        for at in range(0, len(entries) - entry + 1, entry):
            tag, kind = struct.unpack_from(order + "HH", entries, at)
            if tag != _ORIENTATION_TAG:
                continue
            value = struct.unpack_from(order + "H", entries, at + value_at)[0]  # SHORT: left-justified
            if kind != 3 or value not in range(2, 9):
                return None
            fh.seek(0)
            data = bytearray(fh.read())
            struct.pack_into(order + "H", data, ifd_entries + at + value_at, 1)
            return io.BytesIO(bytes(data)), value
    return None


def _pillow_orientation(pim: PILImage.Image) -> int:
    """EXIF (or XMP) orientation as Pillow sees it; 1 when absent, invalid or unreadable. For an AVIF, the EXIF
    alone, where Pillow puts its ``irot`` / ``imir``: AVIF readers do not turn a picture by an XMP orientation."""
    try:
        if pim.format == "AVIF":
            exif = PILImage.Exif()
            if raw := pim.info.get("exif"):
                exif.load(raw)
            value = int(exif.get(_ORIENTATION_TAG, 1))
        else:
            value = int(pim.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1
    return value if value in range(1, 9) else 1


def _pillow_arrays(pim: PILImage.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Colour (``H x W`` gray or ``H x W x 3``), alpha or None, and bit depth of a loaded Pillow image."""
    mode = pim.mode
    has_key = pim.info.get("transparency") is not None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(pim).astype(np.uint16), None, 16
    if mode == "1":
        pim, mode = pim.convert("L"), "L"
    if mode == "P":
        palette_alpha = pim.palette is not None and pim.palette.mode == "RGBA"
        mode = "RGBA" if has_key or palette_alpha else "RGB"
        pim = pim.convert(mode)
    elif mode in ("L", "RGB") and has_key:  # colour-key transparency (PNG tRNS)
        mode = mode + "A" if mode == "L" else "RGBA"
        pim = pim.convert(mode)
    elif mode in ("PA", "RGBa"):
        pim, mode = pim.convert("RGBA"), "RGBA"
    elif mode == "La":
        pim, mode = pim.convert("LA"), "LA"
    elif mode in ("RGBX", "CMYK", "YCbCr"):
        pim, mode = pim.convert("RGB"), "RGB"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        name = _PILLOW_MODE_NAMES.get(mode, "unknown")
        raise ImageReadError(path, f"unsupported pixel mode '{mode}' ({name}); only 8- and 16-bit "
                                   "gray, palette, RGB and CMYK images are supported")
    a = np.asarray(pim)
    if mode in ("LA", "RGBA"):
        return a[..., :-1], a[..., -1], 8
    return a, None, 8


# HEIF and AVIF ------------------------------------------------------------------------------------


def _read_heif(path: Path, limit: int | None, native: bool = False) -> Image:
    """The primary image of a HEIC/HEIF file, decoded by libheif through pillow-heif; 10- and 12-bit ones as 16-bit
    codes. libheif applies the file's rotation and mirroring (``irot``, ``imir``); a HEIF file's EXIF orientation
    only describes them (HEIF readers ignore it), so it is reset to 1, never applied a second time."""
    import pillow_heif

    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    width, height = heif.size
    _check_pixels(path, width, height, limit)
    layout = heif.mode.split(";")[0]
    if layout not in ("L", "LA", "RGB", "RGBA"):
        raise ImageReadError(path, f"unsupported HEIF pixel mode '{heif.mode}' (premultiplied alpha is not supported)")
    bits = int(heif.info["bit_depth"])
    data = np.asarray(heif)  # decodes the image
    if bits > 8:
        data = _widen(data, bits)
    color, alpha = (data[..., :-1], data[..., -1]) if layout.endswith("A") else (data, None)
    raw_exif = heif.info.get("exif")
    exif = _exif_upright(raw_exif) if raw_exif else None
    nclx = heif.info.get("nclx_profile")
    cicp = None if not nclx else Cicp(int(nclx["color_primaries"]), int(nclx["transfer_characteristics"]),
                                      int(nclx["matrix_coefficients"]), bool(nclx["full_range_flag"]))
    img = _finish(path, color, alpha, 16 if bits > 8 else 8, 1, heif.info.get("icc_profile"), exif, "HEIF", native,
                  heif.info.get("xmp"), cicp=cicp)
    img.pictures = len(heif)
    img.thumbnails = tuple(int(t) for t in heif.info.get("thumbnails") or () if t)
    img.auxiliary = heif_auxiliary(heif.info)
    return img


_AUXILIARY = {"hdrgainmap": "HDR gain map", "semanticskinmatte": "portrait matte (skin)",
              "semantichairmatte": "portrait matte (hair)", "semanticteethmatte": "portrait matte (teeth)",
              "semanticglassesmatte": "portrait matte (glasses)", "semanticskymatte": "portrait matte (sky)",
              "portraiteffectsmatte": "portrait matte"}


def heif_auxiliary(info: dict[str, Any]) -> tuple[str, ...]:
    """What a HEIF image carries beside its pixels and alpha, by name, from pillow-heif's ``info``: each depth map
    and auxiliary image (Apple's HDR gain map and portrait mattes named, others by their type)."""
    names = ["depth map"] * len(info.get("depth_images") or ())
    for kind, ids in (info.get("aux") or {}).items():
        name = next((v for k, v in _AUXILIARY.items() if str(kind).lower().endswith(k)), str(kind))
        names += [name] * len(ids)
    return tuple(names)


def _avif_meta(path: Path) -> bytes:
    """An AVIF's top-level ``meta`` box (item properties: ``av1C``, ``colr``...), from the file's first 64 KB
    where it is whole there (it comes before the picture data, which is not read), else from the whole file;
    ``b""`` when it has none."""
    with open(path, "rb") as fh:
        meta = _isobmff_meta(fh.read(1 << 16))
    return (_isobmff_meta(path.read_bytes()) or b"") if meta is None else meta


def _decode_avif_deep(path: Path, meta: bytes) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """Colour, alpha and bit depth 16 of an AVIF of 10 or 12 bits a sample (``meta``: its meta box), decoded by
    libavif through ``imagecodecs`` (Pillow decodes to 8 bits); ``None`` for an 8-bit one (Pillow decodes it).
    Like Pillow's, this decoder leaves the rotation and mirroring (``irot``, ``imir``) to apply: Pillow reports
    them as the EXIF orientation."""
    bits = _av1_bit_depth(meta)
    if bits == 8:
        return None
    import imagecodecs

    if not imagecodecs.AVIF.available:
        return None
    decoded = imagecodecs.avif_decode(path.read_bytes())
    if decoded.dtype != np.uint16:
        return None
    decoded = _widen(decoded, bits)
    if decoded.ndim == 3 and decoded.shape[2] in (2, 4):
        return decoded[..., :-1], decoded[..., -1], 16
    return decoded, None, 16


def _isobmff_meta(data: bytes) -> bytes | None:
    """The top-level ``meta`` box of an ISOBMFF file (HEIF, AVIF) starting with ``data``; ``None`` when ``data``
    ends before one is found whole, ``b""`` at a broken box size."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:
            size = len(data) - pos
        if kind == b"meta":
            return data[pos:pos + size] if pos + size <= len(data) else None
        if size < 8:
            return b""
        pos += size
    return None


def _av1_bit_depth(meta: bytes) -> int:
    """8, 10 or 12: the deepest of the AV1 image items in an AVIF's ``meta`` box, from their ``av1C`` boxes (the
    ``high_bitdepth`` and ``twelve_bit`` flags of the third byte, AV1-ISOBMFF 2.3.3); 8 where there are none."""
    bits, at = 8, meta.find(b"av1C")
    while 0 <= at <= len(meta) - 7:
        flags = meta[at + 6]
        bits = max(bits, (12 if flags & 0x20 else 10) if flags & 0x40 else 8)
        at = meta.find(b"av1C", at + 4)
    return bits


def _nclx(meta: bytes) -> Cicp | None:
    """The colour code points of the first ``colr`` box of type ``nclx`` in an ISOBMFF ``meta`` box (ISO/IEC
    23008-12 6.5.5: primaries, transfer, matrix as 16-bit numbers, then the full-range flag), or ``None``."""
    at = meta.find(b"colrnclx")
    if at < 4 or at + 15 > len(meta) or struct.unpack_from(">I", meta, at - 4)[0] < 19:
        return None
    primaries, transfer, matrix = struct.unpack_from(">HHH", meta, at + 8)
    return Cicp(primaries, transfer, matrix, bool(meta[at + 14] & 0x80))


# camera RAW ---------------------------------------------------------------------------------------

_RAW_SETTINGS = {"use_camera_wb": True, "no_auto_bright": True, "adjust_maximum_thr": 0.0, "gamma": (2.4, 12.92),
                 "output_bps": 16}


def _is_text(head: bytes) -> bool:
    """Whether a file's first bytes are text (UTF-8 without control characters other than tab, CR and LF); every
    RAW format starts with binary header fields."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return False
        text = head[:e.start].decode("utf-8")  # a character cut off at the end of ``head``
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


def _read_raw(path: Path, head: bytes, limit: int | None, native: bool = False) -> Image:
    """Develop a camera RAW file with LibRaw through rawpy (settings in the module notes); ``head`` is its start."""
    import rawpy

    try:
        with rawpy.RawPy() as raw:
            raw.open_file(os.fspath(path))
            _check_pixels(path, raw.sizes.width, raw.sizes.height, limit)
            raw.unpack()
            orientation = _FLIP_ORIENTATION.get(int(raw.sizes.flip), 1)  # the file's; postprocess reports its own
            rgb = _raw_crop(raw.postprocess(output_color=rawpy.ColorSpace.sRGB, user_flip=0, **_RAW_SETTINGS),
                            raw.sizes)
            exif = _raw_exif(path, head, raw)
    except rawpy.LibRawError as e:
        if _is_text(head):
            raise ImageReadError(path, "not a camera RAW file: it holds text") from e
        if isinstance(e, rawpy.LibRawFileUnsupportedError):
            raise ImageReadError(path, "not a camera RAW file LibRaw can read (an unknown camera, or not a RAW "
                                       "file)") from e
        reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ImageReadError(path, f"truncated or corrupt RAW file (LibRaw: {reason})") from e
    return _finish(path, rgb, None, 16, orientation, _srgb_profile(), exif, "RAW", native)


_FLIP_ORIENTATION = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}
"""LibRaw's ``flip`` (dcraw's: 4 transposes, 2 flips the rows, 1 the columns) as the EXIF orientation it stands for"""


def _raw_crop(rgb: np.ndarray, sizes: Any) -> np.ndarray:
    """The developed sensor image ``rgb`` (not yet turned) cut to the picture the camera means, where the file gives
    one (a DNG's DefaultCropOrigin and DefaultCropSize, LibRaw's ``crop_*`` sizes): the border outside it holds
    pixels that are not part of the photo. Unchanged where none is given or it does not fit."""
    left, top = int(getattr(sizes, "crop_left_margin", 0)), int(getattr(sizes, "crop_top_margin", 0))
    width, height = int(getattr(sizes, "crop_width", 0)), int(getattr(sizes, "crop_height", 0))
    if width <= 0 or height <= 0 or left < 0 or top < 0 or top + height > rgb.shape[0] or left + width > rgb.shape[1]:
        return rgb
    return rgb[top:top + height, left:left + width]


def _raw_exif(path: Path, head: bytes, raw: Any) -> bytes | None:
    """The EXIF of a RAW file (see the module notes) with Orientation 1, or ``None``; never raises."""
    try:
        return _tiff_exif(path, rotated=True) if head[:4] in _TIFF_SIGNATURES else _preview_exif(raw)
    except Exception:
        return None


def _preview_exif(raw: Any) -> bytes | None:
    """The EXIF of a RAW file's embedded JPEG preview, Orientation reset to 1; ``None`` if it has none."""
    import rawpy

    thumb = raw.extract_thumb()
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None
    with PILImage.open(io.BytesIO(thumb.data), formats=["JPEG"]) as pim:
        data = pim.info.get("exif")
    return _exif_upright(data) if data else None


# TIFF ---------------------------------------------------------------------------------------------

_PHOTOMETRIC_NAMES = {0: "min-is-white", 1: "min-is-black", 2: "RGB", 3: "palette", 4: "mask", 5: "CMYK",
                      6: "YCbCr", 8: "CIELab"}


_PILLOW_LACKS = {34712: "JPEG 2000", 34887: "LERC", 50001: "WebP", 50002: "JPEG XL", 52546: "JPEG XL"}
"""TIFF compressions that Pillow's libtiff does not decode and tifffile (imagecodecs) does"""


def _read_tiff(path: Path, limit: int | None, native: bool = False, picture: int = 0) -> Image:
    """Inspect picture ``picture`` of a TIFF (:func:`_tiff_picture_pages`) with tifffile; decode 9- to 16-bit ones,
    gray or RGB ones of floating-point or 32-bit integer samples as 16-bit codes (:data:`WIDE_TIFF_SAMPLES`), and
    8-bit ones of a compression Pillow lacks (:data:`_PILLOW_LACKS`: WebP, JPEG XL...) or in a big-endian BigTIFF
    here; hand the other 1- to 8-bit ones to Pillow."""
    with tifffile.TiffFile(path) as tif:
        chosen = _tiff_picture_pages(tif)
        if picture >= len(chosen):
            raise ImageReadError(path, f"has no page {picture + 1}: it holds {len(chosen)}")
        main = chosen[picture]
        page = tif.pages[main]
        bits = int(page.bitspersample)
        sample_format = int(page.sampleformat)
        photometric = int(page.photometric)
        spp = int(page.samplesperpixel)
        name = _PHOTOMETRIC_NAMES.get(photometric, photometric)
        layout = f"photometric {name}, {spp} samples of {bits} bits"
        wide = WIDE_TIFF_SAMPLES.get((sample_format, bits))
        if wide is None and (sample_format not in (1, 4) or bits not in (1, 2, 4, *range(8, 17))):
            kind = {2: "signed integer", 3: "floating-point"}.get(sample_format, "integer")
            raise ImageReadError(path, f"unsupported pixel format: {bits}-bit {kind} samples (supported: unsigned "
                                       "integers of 1, 2, 4 and 8 to 16 bits or 32 bits, and 16-, 32- and 64-bit "
                                       "floating point)")
        base = {0: 1, 1: 1, 2: 3, 3: 1, 5: 4, 6: 3}.get(photometric)  # gray, gray, RGB, palette, CMYK, YCbCr
        extras = tuple(int(x) for x in page.extrasamples)
        if base is None or spp != base + len(extras) or len(extras) > 1:
            raise ImageReadError(path, f"unsupported TIFF layout ({layout}, {len(extras)} extra samples); "
                                       "expected gray, RGB, palette, CMYK or YCbCr with at most one alpha")
        iptc = page.tags.get(_TIFF_IPTC)
        iptc = bytes(iptc.value) if iptc is not None and isinstance(iptc.value, (bytes, bytearray)) else None
        pictures = len(chosen)
        big_endian_bigtiff = tif.is_bigtiff and tif.byteorder == ">"  # Pillow reads little-endian BigTIFF only
        here = bits > 8 or wide or (bits == 8 and (int(page.compression) in _PILLOW_LACKS or big_endian_bigtiff))
        promoted = _tiff_main_first(path, int(page.offset)) if main else None
        if here:
            img = _decode_tifffile(path, page, limit, layout, native, wide or "", promoted)
    if not here:  # 1- to 8-bit: Pillow knows the rest
        img = _read_pillow(path, limit, tiff_layout=layout, native=native, tiff=promoted)
    img.notes = _notes(iptc, None, [])
    img.pictures = pictures
    img.unspecified = extras.count(0)
    return img


def _tiff_picture_pages(tif: tifffile.TiffFile) -> list[int]:
    """The indices of a TIFF's pages that are pictures of their own (NewSubfileType bit 0 clear): not
    reduced-resolution copies (thumbnails, previews; some writers put one first, and the photo after it). ``[0]``
    when every page is one."""
    if len(tif.pages) == 1:
        return [0]
    return [index for index, page in enumerate(tif.pages) if not int(getattr(page, "subfiletype", 0)) & 1] or [0]


def _tiff_main_page(tif: tifffile.TiffFile) -> int:
    """The index of a TIFF's first page that is a picture of its own (:func:`_tiff_picture_pages`)."""
    return _tiff_picture_pages(tif)[0]


def _tiff_main_first(path: Path, offset: int) -> bytes:
    """A TIFF file's bytes, in memory, with its header pointing at the IFD at ``offset`` (its main picture) as the
    first: every reader of the first IFD (Pillow, the EXIF, the orientation) then reads that picture. The input
    file is never touched."""
    data = bytearray(path.read_bytes())
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack_from(order + "H", data, 2)[0] == 43:  # BigTIFF: 8-byte offset at byte 8
        struct.pack_into(order + "Q", data, 8, offset)
    else:
        struct.pack_into(order + "I", data, 4, offset)
    return bytes(data)


def _tiff_pictures(tif: tifffile.TiffFile) -> int:
    """How many pages of a TIFF are pictures of their own (:func:`_tiff_picture_pages`)."""
    return len(_tiff_picture_pages(tif))


WIDE_TIFF_SAMPLES = {(3, 16): "float16", (3, 32): "float32", (3, 64): "float64", (1, 32): "uint32"}
"""TIFF (SampleFormat, BitsPerSample) read as 16-bit codes, by the numpy type they are written back as"""


def _to_codes16(path: Path, data: np.ndarray, samples: str) -> np.ndarray:
    """``data`` of a :data:`WIDE_TIFF_SAMPLES` type as 16-bit codes: floats in [0, 1] rounded to the nearest of
    65535 steps, 32-bit integers rounded to the nearest ``v / 65537``. Floats outside [0, 1] (scene-referred,
    HDR) or not finite are refused: clipping them would lose what they hold."""
    if samples == "uint32":
        return ((data.astype(np.uint64) + 32768) // 65537).astype(np.uint16)
    finite = np.isfinite(data)
    if not finite.all():
        raise ImageReadError(path, f"{np.count_nonzero(~finite)} floating-point samples are not numbers (NaN or "
                                   "infinite)")
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if low < -0.5 / 65535 or high > 1.0 + 0.5 / 65535:  # within half a code of [0, 1]: rounded into it
        raise ImageReadError(path, f"unsupported pixel values: floating-point samples from {low:g} to {high:g} "
                                   "(scene-referred or HDR); only values in 0..1 can be edited here")
    return np.clip(np.floor(data.astype(np.float64) * 65535.0 + 0.5), 0, 65535).astype(np.uint16)


def _decode_tifffile(path: Path, page: Any, limit: int | None, layout: str, native: bool = False,
                     samples: str = "", promoted: bytes | None = None) -> Image:
    """Decode the main page of a 9- to 16-bit TIFF (already checked: unsigned, sensible sample count; 10, 12 or 14
    bits scaled to 16-bit codes, ``v * 65535 / (2**bits - 1)`` rounded), of one of ``samples``
    (:data:`WIDE_TIFF_SAMPLES`) as 16-bit codes of them, or of an 8-bit one Pillow cannot decode (of a compression
    it lacks, or a big-endian BigTIFF).
    ``promoted``: the file's bytes with that page first (:func:`_tiff_main_first`), when it is not."""
    photometric = int(page.photometric)
    extras = tuple(int(x) for x in page.extrasamples)
    depth = int(page.bitspersample)
    bits = 8 if depth == 8 and not samples else 16
    if photometric not in (0, 1, 2):
        lacks = _PILLOW_LACKS.get(int(page.compression))
        kind = samples or (f"{depth}-bit" if bits == 16 else f"{lacks}-compressed" if lacks else "big-endian BigTIFF")
        raise ImageReadError(path, f"unsupported {kind} TIFF layout ({layout}); expected gray or RGB")
    _check_pixels(path, int(page.imagewidth), int(page.imagelength), limit)
    if page.imagedepth != 1:
        raise ImageReadError(path, "unsupported TIFF layout (volumetric image)")
    tags = {tag.code: tag.value for tag in page.tags.values()
            if tag.code in (*_TIFF_TEXT_TAGS, _ORIENTATION_TAG, 34675, _TIFF_XMP, *_TIFF_RESOLUTION_TAGS)}
    data = page.asarray()
    axes = page.axes
    base = 3 if photometric == 2 else 1
    if axes == "YX":
        data = data[:, :, None]
    elif axes == "SYX":
        data = np.moveaxis(data, 0, -1)
    elif axes != "YXS":
        raise ImageReadError(path, f"unsupported TIFF layout (axes {axes!r})")
    dtype = np.uint8 if bits == 8 else np.uint16
    top = np.iinfo(dtype).max
    if samples:
        data = _to_codes16(path, data, samples)
    elif 8 < depth < 16:
        data = ((data.astype(np.uint64) * 65535 * 2 + (1 << depth) - 1) // (2 * ((1 << depth) - 1))).astype(dtype)
    else:
        data = data.astype(dtype, copy=False)
    color, alpha = data[:, :, :base], (data[:, :, base] if extras else None)
    if photometric == 0:  # min-is-white
        color = top - color
    if extras and extras[0] == 0:  # unspecified extra sample: not alpha
        alpha = None
    elif extras and extras[0] == 1:  # associated (premultiplied) alpha -> straight alpha
        a = alpha.astype(np.float64)[:, :, None]
        straight = np.where(a > 0, color * (top / np.maximum(a, 1.0)), 0.0)
        color = np.clip(np.floor(straight + 0.5), 0, top).astype(dtype)
    xmp = tags.get(_TIFF_XMP)
    orientation = int(tags[_ORIENTATION_TAG]) if _ORIENTATION_TAG in tags else _xmp_orientation(xmp)  # Pillow's rule
    orientation = orientation if orientation in range(1, 9) else 1
    icc = tags.get(34675)
    exif = _tiff_exif(path if promoted is None else promoted, orientation != 1, tags)
    img = _finish(path, color, alpha, bits, orientation, bytes(icc) if icc else None, exif, "TIFF", native, xmp,
                  _tiff_dpi(tags))
    img.samples = samples
    return img


# 16-bit PNG ---------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each chunk up to IEND; stops quietly at a truncation (the decoder
    reports it)."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4:pos + 8]
        yield kind, pos + 8, min(pos + 8 + length, len(data))
        if kind == b"IEND":
            return
        pos += 12 + length


def _png_cicp(path: Path) -> Cicp | None:
    """The code points of a PNG's ``cICP`` chunk (primaries, transfer, matrix, full-range flag; PNG 3rd edition),
    from the chunks before its image data, or ``None``."""
    with open(path, "rb") as fh:
        fh.seek(len(_PNG_SIGNATURE))
        while len(header := fh.read(8)) == 8:
            length, kind = struct.unpack(">I4s", header)
            if kind == b"cICP":
                body = fh.read(length)
                return Cicp(body[0], body[1], body[2], bool(body[3])) if length == 4 == len(body) else None
            if kind in (b"IDAT", b"IEND"):
                return None
            fh.seek(length + 4, os.SEEK_CUR)
    return None


def _read_png16(path: Path, limit: int | None, native: bool = False) -> Image:
    data = path.read_bytes()
    ihdr = icc = exif = xmp = dpi = cicp = None
    text: list[tuple[str, str]] = []
    chunk_info: dict[str, Any] = {}  # gAMA, cHRM and sRGB, as Pillow's info names them
    for kind, start, end in _png_chunks(data):
        if kind == b"IHDR" and end - start == 13:
            ihdr = struct.unpack_from(">IIBBBBB", data, start)
        elif kind == b"gAMA" and end - start == 4:
            chunk_info["gamma"] = struct.unpack_from(">I", data, start)[0] / 100000
        elif kind == b"cHRM" and end - start == 32:
            chunk_info["chromaticity"] = tuple(v / 100000 for v in struct.unpack_from(">8I", data, start))
        elif kind == b"sRGB":
            chunk_info["srgb"] = True
        elif kind == b"cICP" and end - start == 4:
            cicp = Cicp(data[start], data[start + 1], data[start + 2], bool(data[start + 3]))
        elif kind == b"iCCP":  # profile name, NUL, compression method, zlib stream
            name_end = data.find(b"\x00", start, end)
            if name_end >= 0:
                with contextlib.suppress(zlib.error):
                    icc = zlib.decompress(data[name_end + 2:end])
        elif kind == b"eXIf":
            exif = _as_exif_bytes(data[start:end])
        elif kind == b"iTXt" and data.startswith(_PNG_XMP_KEYWORD, start):
            xmp = _png_itxt_text(data[start + len(_PNG_XMP_KEYWORD):end])
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and (pair := _png_text(kind, data[start:end])):
            text.append(pair)
        elif kind == b"pHYs" and end - start == 9 and data[start + 8] == 1:  # unit 1: pixels per metre
            dpi = _dpi(*struct.unpack_from(">II", data, start), 0.0254)
    if ihdr is None:
        raise ImageReadError(path, "corrupt PNG (no valid IHDR chunk)")
    _check_pixels(path, ihdr[0], ihdr[1], limit)

    try:
        import imagecodecs
    except ImportError as e:
        raise ImageReadError(path, "decoding a 16-bit PNG needs the 'imagecodecs' package") from e
    decoded = np.asarray(imagecodecs.png_decode(data))
    if decoded.dtype != np.uint16:
        raise ImageReadError(path, f"16-bit PNG decoded to unexpected dtype {decoded.dtype}")
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    channels = decoded.shape[2]
    if channels in (2, 4):  # gray or RGB with alpha (imagecodecs also turns a tRNS colour key into alpha)
        color, alpha = decoded[:, :, :-1], decoded[:, :, -1]
    else:
        color, alpha = decoded, None

    orientation, exif = _orientation_and_exif(exif, xmp)
    if cicp is not None:
        icc = None  # a cICP chunk overrides the iCCP chunk (PNG 3rd edition, 11.3.2.6)
    elif icc is None:
        icc = _png_gamma_profile(chunk_info, color.shape[2] == 1)  # as for an 8-bit PNG (_read_pillow)
    img = _finish(path, color, alpha, 16, orientation, icc, exif, "PNG", native, xmp, dpi, cicp)
    img.notes = _notes(None, None, text)
    return img


def _png_text(kind: bytes, body: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk's body (Latin-1, zlib-compressed Latin-1, UTF-8), as Pillow
    reads them; ``None`` if malformed."""
    keyword, sep, rest = body.partition(b"\x00")
    if not sep or not keyword:
        return None
    try:
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":  # compression method 0 (zlib), then the stream
            return (keyword.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")) if rest[:1] == b"\x00" \
                else None
        text = _png_itxt_text(rest)
        return None if text is None else (keyword.decode("latin-1"), text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, TypeError):
        return None


def _png_itxt_text(rest: bytes) -> bytes | None:
    """The text of an iTXt chunk after its keyword and NUL: compression flag and method, language, NUL,
    translated keyword, NUL, text (zlib-compressed with flag 1); ``None`` if malformed."""
    if len(rest) < 2 or rest[1] != 0:
        return None
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        return None
    if rest[0] == 0:
        return parts[2]
    try:
        return zlib.decompress(parts[2])
    except zlib.error:
        return None


def _orientation_and_exif(exif: bytes | None, xmp: Any = None) -> tuple[int, bytes | None]:
    """Orientation (1..8) stored in raw EXIF or, where EXIF has no Orientation tag, in the XMP packet (Pillow's
    rule), and the EXIF with it reset to 1."""
    if exif is None:
        return _xmp_orientation(xmp), None
    try:
        tags = PILImage.Exif()
        tags.load(exif)
        orientation = int(tags.get(_ORIENTATION_TAG, _xmp_orientation(xmp)))
    except Exception:  # unreadable EXIF: keep the bytes, do not rotate
        return 1, exif
    if orientation not in range(2, 9):
        return 1, exif
    try:
        return orientation, _exif_with_orientation_1(exif)
    except Exception:  # cannot be edited safely: drop it rather than keep a wrong Orientation
        return orientation, None


# --------------------------------------------------------------------------------------------- writing


def write_image(path: str | os.PathLike[str], image_or_pixels: Image | np.ndarray, *, bit_depth: int = 8,
                format: str | None = None, quality: int = 95, icc_profile: bytes | None = None,
                exif: bytes | PILImage.Exif | None = None, alpha: np.ndarray | None = None,
                overwrite: bool = False, threads: int | None = None, grey: bool | None = None,
                xmp: bytes | str | None = None, dpi: tuple[float, float] | None = None,
                cicp: Cicp | None = None, notes: Notes | None = None, trailer: Trailer | None = None,
                thumbnails: tuple[int, ...] | None = None, samples: str | None = None,
                pages: Sequence[bytes] = ()) -> Path:
    """Write RGB pixels (``H x W x 3``) atomically to ``path``; with ``grey`` (default: an Image's own ``grey``,
    else false) as one gray channel, their Rec. 709 luma ``0.2126 R + 0.7152 G + 0.0722 B`` rounded, where the
    format has one (JPEG, PNG, TIFF, BMP, AVIF; WebP and HEIF stay RGB).

    Float pixels are in [0, 1] (values outside are clipped) and are rounded to ``bit_depth``. ``uint8`` and
    ``uint16`` pixels (and alpha) are codes: written unchanged at their own depth, scaled by 257 from 8 to 16
    bits, rounded to nearest from 16 to 8 bits (``(v * 255 + 32767) // 65535``, equal to quantising
    ``v / 65535``).

    ``image_or_pixels`` is an array or an :class:`Image`; for an Image, its alpha, ICC profile, EXIF, XMP and dpi are
    used unless the corresponding argument is given (pass ``b""`` to drop a profile, EXIF or XMP, ``()`` to drop the
    dpi); a profile is written only when it describes what is written (an RGB profile with RGB, a gray one with
    gray; a gray one with RGB, as a gray photo is written to WebP or HEIC, becomes the RGB profile of its curve,
    :func:`deepexpose.cicp.rgb_profile_from_gray`). ``xmp`` is a raw XMP packet (a str is UTF-8 encoded), ``dpi`` an
    ``(x, y)`` resolution in dots per inch (1..65535), each written where the format stores it (see the module
    notes). ``cicp`` (default: an Image's own) is the colour as H.273 code points: HEIF output carries it as its
    ``nclx`` box (an HDR one included) unless it has another ICC profile (libheif writes one or the other), PNG
    output as a ``cICP`` chunk; where no profile is given, every format gets the ICC profile made from it, if one
    can be (see :func:`deepexpose.cicp.icc_profile`). ``notes`` (default: an Image's own; :class:`Notes`) go where
    the format holds them: IPTC records to JPEG and TIFF, the comment to JPEG and PNG, other text to PNG.
    ``trailer`` (default: an Image's own; ``Trailer(())`` for none) follows a JPEG's photo, its previews made again
    from the pixels written and its pictures turned upright (:func:`deepexpose.mpf.join`); other formats have no
    place for it. ``thumbnails`` (default: an Image's own) are the longer sides of thumbnails made from the pixels
    for a HEIF file (4 to less than the image's longer side). The format comes from ``format`` or else from the
    extension. ``bit_depth`` is 8, or 16 for PNG, TIFF and HEIF (HEIF stores 10 bits). ``quality`` (1..100) applies
    to JPEG (4:4:4 chroma at 90 and above), WebP (100 means lossless), HEIF and AVIF (4:2:0 chroma).
    ``samples`` (default: an Image's own, where the output is a 16-bit TIFF) writes a 16-bit TIFF's codes as
    samples of that type: ``"float32"``, ``"float16"`` or ``"float64"`` holding ``code / 65535``, ``"uint32"``
    holding ``code * 65537`` (:data:`WIDE_TIFF_SAMPLES`; ``""``: the codes themselves).
    ``pages``: for TIFF output, the pages that follow this picture, each a TIFF of one page as
    :func:`encode_image` gives it (a multi-page TIFF's other pages, :func:`join_tiff_pages`).
    ``threads`` (default: the cores available) encode a JPEG of 1 MP or more in strips (see the module notes).
    Parent directories are created. Raises :class:`ImageWriteError`, and leaves no partial or temporary file,
    on any failure; an existing ``path`` is only replaced when ``overwrite`` is true. Returns ``path``.
    """
    p = Path(path)
    encode = _image_encoder(p, image_or_pixels, bit_depth=bit_depth, format=format, quality=quality,
                            icc_profile=icc_profile, exif=exif, alpha=alpha, threads=threads, grey=grey, xmp=xmp,
                            dpi=dpi, cicp=cicp, notes=notes, trailer=trailer, thumbnails=thumbnails, samples=samples)
    if pages:
        if _output_format(p, format) != "TIFF":
            raise ImageWriteError(p, "pages are written to TIFF output alone")
        first = encode

        def encode(fh: IO[bytes]) -> None:
            picture = io.BytesIO()
            first(picture)
            fh.write(join_tiff_pages([picture.getvalue(), *pages]))

    _atomic_write(p, encode, overwrite)
    return p


def encode_image(path: str | os.PathLike[str], image_or_pixels: Image | np.ndarray, **options: Any) -> bytes:
    """The bytes :func:`write_image` would write to ``path`` with ``options`` (its keywords but ``overwrite`` and
    ``pages``), in memory; nothing is written. A page of a multi-page TIFF is made so. Raises
    :class:`ImageWriteError`."""
    p = Path(path)
    encode = _image_encoder(p, image_or_pixels, **options)
    out = io.BytesIO()
    try:
        encode(out)
    except ImageIOError:
        raise
    except Exception as e:
        raise ImageWriteError(p, f"encoding failed ({type(e).__name__}: {e})") from e
    return out.getvalue()


def _image_encoder(p: Path, image_or_pixels: Image | np.ndarray, *, bit_depth: int = 8, format: str | None = None,
                   quality: int = 95, icc_profile: bytes | None = None,
                   exif: bytes | PILImage.Exif | None = None, alpha: np.ndarray | None = None,
                   threads: int | None = None, grey: bool | None = None, xmp: bytes | str | None = None,
                   dpi: tuple[float, float] | None = None, cicp: Cicp | None = None, notes: Notes | None = None,
                   trailer: Trailer | None = None, thumbnails: tuple[int, ...] | None = None,
                   samples: str | None = None) -> Callable[[IO[bytes]], None]:
    """What writes ``image_or_pixels`` as :func:`write_image` describes, checked first (:class:`ImageWriteError`)."""
    try:
        fmt = _output_format(p, format)
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
        if bit_depth > _MAX_BIT_DEPTH[fmt]:
            raise ValueError(f"{fmt} supports only 8-bit output; use PNG, TIFF or HEIF for 16-bit")
        if missing := _codec_missing(fmt, writing=True):
            raise ValueError(missing)
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
        if isinstance(image_or_pixels, Image):
            img = image_or_pixels
            pixels = img.pixels
            alpha = img.alpha if alpha is None else alpha
            icc_profile = img.icc_profile if icc_profile is None else icc_profile
            exif = img.exif if exif is None else exif
            xmp = img.xmp if xmp is None else xmp
            dpi = img.dpi if dpi is None else dpi
            grey = img.grey if grey is None else grey
            cicp = img.cicp if cicp is None else cicp
            notes = img.notes if notes is None else notes
            trailer = img.trailer if trailer is None else trailer
            thumbnails = img.thumbnails if thumbnails is None else thumbnails
            if samples is None and fmt == "TIFF" and bit_depth == 16:
                samples = img.samples
        else:
            pixels = image_or_pixels
        if samples and (samples not in WIDE_TIFF_SAMPLES.values() or fmt != "TIFF" or bit_depth != 16):
            raise ValueError(f"samples {samples!r} needs a 16-bit TIFF and one of "
                             f"{', '.join(WIDE_TIFF_SAMPLES.values())}")
        grey = bool(grey) and fmt in _HAS_GREY
        codes_given = np.asarray(pixels).dtype in _CODE_DTYPES
        checked = _check_pixels_array(pixels)
        rgb = to_codes(_luma(checked) if grey else checked, bit_depth)
        a = to_codes(_check_alpha(alpha, rgb.shape[:2]), bit_depth) if alpha is not None else None
        if notes is not None and not isinstance(notes, Notes):
            raise TypeError(f"notes must be a deepexpose.io.Notes, got {type(notes).__name__}")
        if trailer is not None and not isinstance(trailer, Trailer):
            raise TypeError(f"trailer must be a deepexpose.mpf.Trailer, got {type(trailer).__name__}")
        if cicp is not None:
            if len(cicp) != 4 or not all(0 <= int(v) <= 255 for v in cicp[:3]):
                raise ValueError(f"cicp must be (primaries, transfer, matrix, full_range), codes 0..255, got {cicp!r}")
            cicp = Cicp(*(int(v) for v in cicp[:3]), bool(cicp[3]))
        icc = _icc_for(icc_profile, grey)
        if icc is None and not grey and _icc_for(icc_profile, True):  # a gray photo written as RGB (WebP, HEIC)
            icc = rgb_profile_from_gray(bytes(icc_profile))  # type: ignore[arg-type]
        if icc is None and cicp is not None and icc_profile != b"":
            icc = cicp_icc_profile(cicp, grey)
        exif_bytes = _exif_for_writing(exif)
        if exif_bytes and fmt not in ("TIFF", "BMP"):  # TIFF carries tags, not the block; BMP no EXIF
            exif_bytes = _exif_with_thumbnail(exif_bytes, rgb)
        xmp_bytes = _xmp_for_writing(xmp) if fmt in _HAS_XMP else None
        dpi = _dpi_for_writing(dpi) if fmt in _HAS_DPI else None
        if threads is None:
            threads = available_cores()
        elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    except (ValueError, TypeError) as e:
        raise ImageWriteError(p, str(e)) from e

    if fmt not in _HAS_ALPHA:
        a = None
    if fmt not in _HAS_ICC:
        icc = None
    if fmt == "BMP":
        exif_bytes = None
    if fmt == "JPEG" and xmp_bytes and len(xmp_bytes) > _JPEG_MAX_MARKER - len(_JPEG_XMP_HEADER):
        xmp_bytes = None  # too long for its one APP1 marker (extended XMP is not written): dropped, not an error
        _warn(f"{p}: its XMP ({len(_xmp_for_writing(xmp) or b''):,} bytes) is too long for a JPEG's one XMP marker; "
              "it is left out")
    if fmt == "JPEG" and exif_bytes and len(exif_bytes) > _JPEG_MAX_MARKER:
        _warn(f"{p}: its EXIF ({len(exif_bytes):,} bytes) is too long for a JPEG's one EXIF marker; it is left out")
        exif_bytes = None
    if fmt == "HEIF" and cicp is not None and icc is not None and icc == cicp_icc_profile(cicp, grey):
        icc = None  # libheif writes one colour box, an ICC profile or code points: the code points themselves
    if fmt != "JPEG" or trailer is not None and not trailer.parts:
        trailer = None
    if trailer is not None:
        try:
            before = trailer
            trailer = _trailer_for(trailer, rgb, p)
            xmp_bytes = xmp_with_lengths(xmp_bytes, [(len(a.data), len(b.data))
                                                     for a, b in zip(before.parts, trailer.parts)])
        except Exception as e:
            raise ImageWriteError(p, f"the pictures after the photo cannot be written ({type(e).__name__}: {e})") from e
    meta = _Meta(icc, exif_bytes, xmp_bytes, dpi, cicp if fmt in ("HEIF", "PNG") else None, _notes_for(fmt, notes),
                 tuple(int(t) for t in thumbnails or ()) if fmt == "HEIF" else (), samples or "")

    def encode(fh: IO[bytes]) -> None:
        if trailer is not None:
            photo = io.BytesIO()
            write(photo)
            fh.write(join(photo.getvalue(), trailer))
        else:
            write(fh)

    def write(fh: IO[bytes]) -> None:
        if fmt == "TIFF":
            _encode_tiff(fh, rgb, a, meta)
        elif fmt == "PNG" and bit_depth == 16:
            _encode_png16(fh, rgb, a, meta)
        elif fmt == "HEIF":
            _encode_heif(fh, rgb, a, meta, int(quality))
        elif fmt == "JPEG" and codes_given and (data := _encode_jpeg_codes(rgb, int(quality), meta, int(threads))):
            fh.write(data)
        elif fmt == "BMP" and a is not None:
            fh.write(bmp_with_alpha(rgb, a))
        else:
            _encode_pillow(fh, fmt, rgb, a, meta, int(quality))

    return encode


def _trailer_for(trailer: Trailer, rgb: np.ndarray, path: Path) -> Trailer:
    """``trailer`` to follow the upright photo ``rgb`` (8-bit codes): a preview made again from it, at the old
    preview's longer side, and every other picture not yet upright turned (:func:`encode_picture`). A picture
    that cannot be decoded is kept as it was, with a warning (:class:`deepexpose.DeepExposeWarning`) naming
    ``path``."""
    parts = []
    for part in trailer.parts:
        try:
            if part.kind == PREVIEW:
                with _open_picture(part.data) as old:
                    side = max(old.size)
                h, w = rgb.shape[:2]
                size = (side, max(1, round(h * side / w))) if w >= h else (max(1, round(w * side / h)), side)
                small = PILImage.fromarray(rgb[:, :, 0] if rgb.shape[2] == 1 else rgb).resize(
                    size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)
                a = np.asarray(small)
                part = encode_picture(part, a[:, :, None] if a.ndim == 2 else a)
            elif part.kind != DATA and part.orientation != 1:
                part = encode_picture(part, decode_picture(part))
        except Exception as e:  # a damaged picture: never the reason to lose the photo
            _warn(f"{path}: the {part.kind} after the photo cannot be read ({type(e).__name__}: {e}); it is kept as "
                  "it was")
        parts.append(part)
    return Trailer(tuple(parts), trailer.mpf, trailer.photo_segments)


def _open_picture(data: bytes) -> PILImage.Image:
    """A JPEG picture of a trailer opened by Pillow's JPEG reader itself (its own MPF attribute segment makes
    Pillow's format detection warn of a malformed MPO)."""
    from PIL import JpegImagePlugin

    return JpegImagePlugin.JpegImageFile(io.BytesIO(data))


def decode_picture(part: Part) -> np.ndarray:
    """The pixels of a picture that follows a JPEG's photo (:class:`deepexpose.mpf.Part`): ``uint8`` ``H x W x 1``
    (gray) or ``x 3``, turned upright by its ``orientation``."""
    with _open_picture(part.data) as pim:
        a = np.asarray(pim if pim.mode in ("L", "RGB") else pim.convert("RGB"))
    return _orient(a[:, :, None] if a.ndim == 2 else a, part.orientation)


def encode_picture(part: Part, pixels: np.ndarray) -> Part:
    """``part`` with upright ``uint8`` ``pixels`` (``H x W x 1`` or ``x 3``) in place of its own, encoded as its
    JPEG was (its quantisation tables and chroma sampling, where they fit) after its own APPn and COM segments
    (EXIF with Orientation 1 and a thumbnail made again, XMP, MPF attributes...; not Adobe's APP14, whose colour
    transform would describe the old coding); orientation 1."""
    from PIL import JpegImagePlugin

    grey = pixels.shape[2] == 1
    with _open_picture(part.data) as old:
        tables = dict(getattr(old, "quantization", None) or {})
        sampling = JpegImagePlugin.get_sampling(old)
    options: dict[str, Any] = {"quality": 90}
    if len(tables) >= (1 if grey else 2):
        options = {"qtables": [tables[k] for k in sorted(tables)][:1 if grey else 2]}
        if not grey and sampling >= 0:
            options["subsampling"] = sampling
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels[:, :, 0] if grey else pixels)).save(buf, "JPEG", **options)
    new = buf.getvalue()
    head = b""
    for marker, start, end in segments(part.data):
        if (0xE0 <= marker <= 0xEF or marker == 0xFE) and marker != 0xEE:
            body = part.data[start + 4:end]
            if marker == 0xE1 and body.startswith(_EXIF_HEADER):
                try:
                    body = _exif_with_thumbnail(_exif_for_writing(body) or body, pixels)
                except Exception:
                    pass  # kept as it was
                head += _app_marker(1, body)
            else:
                head += part.data[start:end]
    rest = next(start for marker, start, _ in segments(new) if not 0xE0 <= marker <= 0xEF)
    return Part(part.kind, new[:2] + head + new[rest:], part.entry)


def _output_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = _FORMAT_ALIASES.get(str(format).upper().lstrip("."))
        if fmt is None:
            raise ValueError(f"unsupported output format {format!r} "
                             f"(supported: {', '.join(SUPPORTED_FORMATS)})")
        return fmt
    fmt = _EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image extension {path.suffix!r} (use one of "
                         f"{', '.join(sorted(SUPPORTED_EXTENSIONS - RAW_EXTENSIONS))} or pass format=)")
    if fmt == "RAW":
        raise ValueError(f"camera RAW files ({path.suffix}) cannot be written; write TIFF (16-bit) or another format")
    return fmt


_CODE_DTYPES = (np.uint8, np.uint16)


def to_codes(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float values in [0, 1] or ``uint8`` / ``uint16`` codes to codes of ``bit_depth`` bits (see
    :func:`write_image`)."""
    if a.dtype not in _CODE_DTYPES:
        return quantize(a, bit_depth)
    source = 8 if a.dtype == np.uint8 else 16
    if source == bit_depth:
        return a
    if source == 8:
        return a.astype(np.uint16) * np.uint16(257)
    return _narrow(a, 255)


def _narrow(a: np.ndarray, top: int) -> np.ndarray:
    """16-bit codes to codes of 0..``top`` (255: ``uint8``, else ``uint16``), rounded to nearest, in slices (no
    full-size ``uint32`` temporary)."""
    out = np.empty(a.shape, np.uint8 if top == 255 else np.uint16)
    flat_in, flat_out = a.reshape(-1), out.reshape(-1)
    step = 1 << 20
    for i in range(0, flat_in.size, step):
        v = flat_in[i:i + step].astype(np.uint32)
        v *= top
        v += 32767
        flat_out[i:i + step] = v // 65535
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 1`` Rec. 709 luma of ``H x W x 3`` pixels: codes rounded to their own dtype, floats left as
    float32 (rounded once, when written). In slices of rows, so large codes need no full-size float temporary."""
    codes = rgb.dtype in _CODE_DTYPES
    out = np.empty((*rgb.shape[:2], 1), rgb.dtype if codes else np.float32)
    weights = np.array(LUMA_709, np.float32)
    rows = max(1, (1 << 20) // max(1, rgb.shape[1]))
    for top in range(0, rgb.shape[0], rows):
        luma = rgb[top:top + rows].astype(np.float32) @ weights
        out[top:top + rows, :, 0] = np.rint(luma).astype(rgb.dtype) if codes else luma
    return out


def _check_pixels_array(pixels: Any) -> np.ndarray:
    a = np.asarray(pixels)
    if not np.issubdtype(a.dtype, np.floating) and a.dtype not in _CODE_DTYPES:
        raise TypeError(f"pixels must be floating point in [0, 1] or uint8 / uint16 codes, got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"pixels must be H x W x 3, got shape {a.shape}")
    if a.dtype not in _CODE_DTYPES and not np.isfinite(a).all():
        raise ValueError("pixels contain NaN or infinite values")
    return a


def _check_alpha(alpha: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not np.issubdtype(a.dtype, np.floating) and a.dtype not in _CODE_DTYPES:
        raise TypeError(f"alpha must be floating point in [0, 1] or uint8 / uint16 codes, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"alpha must be H x W = {tuple(shape)}, got shape {a.shape}")
    if a.dtype not in _CODE_DTYPES and not np.isfinite(a).all():
        raise ValueError("alpha contains NaN or infinite values")
    return a


def _exif_for_writing(exif: bytes | PILImage.Exif | None) -> bytes | None:
    """EXIF as ``Exif\\0\\0`` + TIFF bytes with Orientation 1 (the written pixels are upright)."""
    if exif is None:
        return None
    if isinstance(exif, PILImage.Exif):
        exif = exif.tobytes()
    if not isinstance(exif, (bytes, bytearray, memoryview)):
        raise TypeError(f"exif must be bytes or PIL.Image.Exif, got {type(exif).__name__}")
    data = bytes(exif)
    if not data:
        return None
    data = _as_exif_bytes(data)
    if data[6:10] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("exif is not raw EXIF data (expected a TIFF header, optionally after 'Exif\\0\\0')")
    try:
        return _exif_with_orientation_1(data, turned=False)  # the pixels given are upright: nothing is turned here
    except Exception as e:
        raise ValueError(f"exif cannot be parsed ({e})") from e


_THUMBNAIL_QUALITIES = (90, 80, 70, 60, 50, 40, 30)


def _exif_with_thumbnail(exif: bytes, rgb: np.ndarray) -> bytes:
    """``exif`` (``Exif\\0\\0`` + TIFF) with the JPEG thumbnail of its IFD1, if it has one, made again from ``rgb``
    (the pixels written, ``H x W [x 1|3]`` codes), so that file browsers and cameras that show it show the edited
    photo, upright, not the photo as it was. The new thumbnail takes the old one's place (its longest side, the
    photo's shape; the highest quality of :data:`_THUMBNAIL_QUALITIES` that fits in the old one's bytes, zeros
    after it), so that no other offset in the EXIF moves (a maker note's stay valid). Where it does not fit, or the
    thumbnail is not a JPEG whose bytes lie in the block, IFD1 is unlinked: no thumbnail rather than a wrong one."""
    try:
        base, bo, ifd0 = _exif_ifd0(exif)
        link = base + ifd0 + 2 + 12 * struct.unpack_from(bo + "H", exif, base + ifd0)[0]
        ifd1 = struct.unpack_from(bo + "I", exif, link)[0]
        if ifd1 == 0:
            return exif
        entries = {}
        for i in range(struct.unpack_from(bo + "H", exif, base + ifd1)[0]):
            at = base + ifd1 + 2 + 12 * i
            tag, kind, count = struct.unpack_from(bo + "HHI", exif, at)
            if kind in (3, 4) and count == 1:  # SHORT or LONG, held in the entry itself
                entries[tag] = (at + 8, struct.unpack_from(bo + ("H" if kind == 3 else "I"), exif, at + 8)[0], kind)
    except (KeyError, struct.error):
        return exif  # not a layout this reads: left as it is (Orientation was already checked)
    out = bytearray(exif)
    start, length = entries.get(0x0201, (0, 0, 0))[1], entries.get(0x0202, (0, 0, 0))[1]
    if 0x0202 in entries and entries[0x0202][2] == 4 and start and 0 < length and base + start + length <= len(exif):
        try:
            with PILImage.open(io.BytesIO(exif[base + start:base + start + length])) as old:
                side = max(old.size)
        except Exception:  # noqa: BLE001 - an unreadable old thumbnail: the usual 160 pixels
            side = 160
        new = _thumbnail_jpeg(rgb, side, length)
        if new is not None:
            out[base + start:base + start + length] = new + bytes(length - len(new))
            struct.pack_into(bo + "I", out, entries[0x0202][0], len(new))
            return bytes(out)
    struct.pack_into(bo + "I", out, link, 0)
    return bytes(out)


def _thumbnail_jpeg(rgb: np.ndarray, side: int, room: int) -> bytes | None:
    """A baseline JPEG of ``rgb`` whose longest side is ``side`` (at most the photo's) in at most ``room`` bytes, at
    the highest quality of :data:`_THUMBNAIL_QUALITIES` that fits, else at half that size; ``None`` when none
    does."""
    h, w = rgb.shape[:2]
    side = max(1, min(side, max(h, w)))
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    step = max(1, min(h, w) // (4 * max(1, min(size))))  # a strided view first: a 100 MP photo is not copied
    small = rgb[::step, ::step]
    if small.dtype == np.uint16:
        small = (small >> 8).astype(np.uint8)
    small = np.ascontiguousarray(small[..., 0] if small.ndim == 3 and small.shape[2] == 1 else small)
    picture = PILImage.fromarray(small).resize(size, PILImage.Resampling.LANCZOS)
    for smaller in (picture, picture.reduce(2)):  # half the size where even the lowest quality does not fit
        for quality in _THUMBNAIL_QUALITIES:
            buffer = io.BytesIO()
            smaller.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= room:
                return buffer.getvalue()
    return None


def _xmp_for_writing(xmp: bytes | str | None) -> bytes | None:
    """An XMP packet as bytes (a string is UTF-8 encoded) with ``tiff:Orientation`` 1; ``None`` for none."""
    if isinstance(xmp, str):
        xmp = xmp.encode()
    if xmp is not None and not isinstance(xmp, (bytes, bytearray, memoryview)):
        raise TypeError(f"xmp must be bytes, got {type(xmp).__name__}")
    return _xmp_upright(bytes(xmp)) if xmp else None


def _dpi_for_writing(dpi: tuple[float, float] | None) -> tuple[float, float] | None:
    """``(x, y)`` dots per inch as floats; ``None`` for ``None`` or ``()``."""
    if dpi is None or (isinstance(dpi, (tuple, list)) and len(dpi) == 0):
        return None
    checked = _dpi(*dpi) if isinstance(dpi, (tuple, list)) and len(dpi) == 2 else None
    if checked is None:
        raise ValueError(f"dpi must be (x, y) dots per inch, each in 1..65535, got {dpi!r}")
    return checked


class _Meta(NamedTuple):
    """What :func:`write_image` writes besides the pixels, each ``None`` where the format has no place for it."""

    icc: bytes | None
    exif: bytes | None
    xmp: bytes | None
    dpi: tuple[float, float] | None
    cicp: Cicp | None = None
    notes: Notes | None = None
    thumbnails: tuple[int, ...] = ()
    samples: str = ""


def _notes_for(fmt: str, notes: Notes | None) -> Notes | None:
    """What of ``notes`` ``fmt`` holds: IPTC in JPEG (up to one APP13 marker) and TIFF, the comment in JPEG (up to
    one COM marker) and PNG, other text in PNG; ``None`` when nothing is left."""
    if notes is None:
        return None
    iptc = notes.iptc if fmt == "TIFF" or fmt == "JPEG" and len(_photoshop_iptc(notes.iptc or b"")) <= \
        _JPEG_MAX_MARKER else None
    comment = notes.comment if fmt == "PNG" or fmt == "JPEG" and len(notes.comment or b"") <= _JPEG_MAX_MARKER else None
    text = notes.text if fmt == "PNG" else ()
    return Notes(iptc or None, comment or None, tuple(text)) if iptc or comment or text else None


def _photoshop_iptc(iptc: bytes) -> bytes:
    """A JPEG APP13 body holding IPTC records: Photoshop's signature and one image resource (``8BIM``, id 0x0404,
    an empty name padded to even, the size, the data padded to even)."""
    return (b"Photoshop 3.0\x00" + b"8BIM" + struct.pack(">H", _PHOTOSHOP_IPTC) + b"\x00\x00"
            + struct.pack(">I", len(iptc)) + iptc + bytes(len(iptc) & 1))


def _png_text_chunks(notes: Notes | None) -> list[tuple[bytes, bytes]]:
    """The PNG chunks of ``notes``: tEXt where the text is Latin-1, else uncompressed iTXt (UTF-8), as Pillow's
    ``PngInfo.add_text`` writes them; the comment first, as ``Comment``."""
    if notes is None:
        return []
    pairs = ([(_PNG_COMMENT, notes.comment.decode("utf-8", "replace"))] if notes.comment else []) + list(notes.text)
    chunks = []
    for key, value in pairs:
        name = key.encode("latin-1", "replace")[:79]
        try:
            chunks.append((b"tEXt", name + b"\x00" + value.encode("latin-1")))
        except UnicodeEncodeError:
            chunks.append((b"iTXt", name + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    return chunks


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` with the same guarantees as :func:`write_image` (temp file, fsync, move;
    parents created; no overwrite unless asked). For side files such as JSON records next to images.
    Raises :class:`ImageWriteError` (its message says "file", not "image")."""
    p = Path(path)
    _atomic_write(p, lambda fh: fh.write(bytes(data)), overwrite, what="file")
    return p


def atomic_copy(source: str | os.PathLike[str], path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Copy the file ``source`` to ``path`` byte for byte, in chunks, with the guarantees of
    :func:`atomic_write_bytes` (temp file, fsync, move; no overwrite unless asked)."""
    p = Path(path)

    def copy(fh: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)

    _atomic_write(p, copy, overwrite, what="file")
    return p


def side_path(output: str | os.PathLike[str], suffix: str) -> Path:
    """``photo.jpg`` -> ``photo.jpg.json``: the side file of an output keeps the output's whole name, so two
    outputs differing only by format never share a sidecar or LUT."""
    out = Path(output)
    return out.with_name(out.name + suffix)


_EXISTS = "file already exists (pass --overwrite, or overwrite=True in Python, to replace it)"


_HOST = zlib.crc32(os.uname().nodename.encode() if hasattr(os, "uname") else b"") & 0xFFFF


def output_folder(path: str | os.PathLike, option: str = "-o") -> Path:
    """``path`` as a :class:`~pathlib.Path`, refused up front (:class:`NotADirectoryError`, naming ``option``) when it
    or a folder above it is an existing file, so that a command fails before any work rather than on every
    output it then cannot write; an empty ``path`` (``-o ""``, which would write into the current folder) is
    refused (:class:`ValueError`) too."""
    if not os.fspath(path).strip():
        raise ValueError(f"{option} is empty: name the output folder ('.' for the current one)")
    out = Path(path)
    for p in (out, *out.parents):
        if p.is_dir():
            break
        if os.path.lexists(p):
            dangling = os.path.islink(p) and not os.path.exists(p)
            what = "a symbolic link to nothing" if dangling else "a file"
            where = f"is {what}" if p == out else f"lies under {p}, which is {what}"
            raise NotADirectoryError(f"{option} {path} {where}, not a folder: choose another {option}")
    return out


def available_cores() -> int:
    """The cores this process may run on (its affinity where the system tells it), at least 1."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def writable_folder(path: str | os.PathLike, option: str = "-o") -> Path:
    """:func:`output_folder`, made (with the folders above it) and tried with a small file written and removed there,
    so that a command whose results would all be written at its end (an evaluation) fails before its work when they
    cannot be (:class:`OSError` naming ``option`` and the reason)."""
    out = output_folder(path, option)
    probe = temp_path(out / "probe")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OSError(f"{option} {path}: cannot write there ({e.strerror or e})") from None
    return out


def temp_path(path: Path, suffix: str = "") -> Path:
    """A hidden temporary name next to ``path`` (``.photo.jpg.tmp-PID-HOST-XXXXXXXX`` plus ``suffix``), which says
    which process on which machine writes it, so that a later run can tell what a killed one left behind
    (:func:`remove_stale_temps`)."""
    return path.parent / f".{_temp_head(path.name)}.tmp-{os.getpid()}-{_HOST:04x}-{secrets.token_hex(4)}{suffix}"


def _temp_head(name: str) -> str:
    """The start of ``name`` a temporary name keeps: at most 200 bytes on disk, whole characters (a name of 250
    bytes in two-byte letters kept 200 of them, 400 bytes, and could not be created)."""
    head = name[:200]
    while len(os.fsencode(head)) > 200:
        head = head[:-1]
    return head


_LINE_BREAKING = frozenset({"Cc", "Cs", "Zl", "Zp"})


def undecodable_escaped(text: str) -> str:
    """``text`` (a file name) with each byte that is not UTF-8, kept by the file system's surrogateescape (PEP 383),
    written ``\\xNN``, as :func:`shown_name` shows it: JSON with a lone surrogate in it is refused by strict parsers,
    and a file of such bytes is not UTF-8. Other letters as they are."""
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)


def shown_name(name: str | os.PathLike) -> str:
    """``name`` as a summary line shows it: a byte that is not UTF-8 (kept by the file system's surrogateescape,
    PEP 383) as ``\\xNN`` and a control character or line separator as its escape (``\\n``, ``\\x1b``,
    ``\\u2028``), so that one name stays on one line and any terminal can print it; other letters as they are."""
    import unicodedata

    out = []
    for c in os.fspath(name):
        if unicodedata.category(c) not in _LINE_BREAKING:
            out.append(c)
        elif 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` (:func:`temp_path`) that a process of this machine which is no longer
    running left behind: a run killed while writing a clip leaves one as large as the clip. Another machine's (on a
    shared folder), a running process's and any other file are left alone. Returns those removed. A folder is
    listed once per process (:func:`_stale_temps`), not once per file written into it."""
    removed = []
    for name in _stale_temps(str(path.parent)).pop(_temp_head(path.name), []):
        with contextlib.suppress(OSError):
            os.unlink(path.parent / name)
            removed.append(path.parent / name)
    return removed


_TEMP_NAME = re.compile(r"\.(.+)\.tmp-(\d+)-([0-9a-f]{4})-[0-9a-f]{8}(?:\.[^./]*)?")


@functools.lru_cache(maxsize=256)
def _stale_temps(folder: str) -> dict[str, list[str]]:
    """The temporary files in ``folder`` that ended processes of this machine left behind, by the name of the file
    each was to become (what killed runs left before this process first wrote there)."""
    stale: dict[str, list[str]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            found = _TEMP_NAME.fullmatch(name)
            if found and int(found.group(3), 16) == _HOST and not _running(int(found.group(2))):
                stale.setdefault(found.group(1), []).append(name)
    return stale


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one that cannot be signalled still runs)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _atomic_write(path: Path, encode: Callable[[IO[bytes]], object], overwrite: bool,
                  what: str = "image") -> None:
    """Run ``encode`` into a temp file next to ``path`` (:func:`temp_path`; those a killed run left are removed
    first), fsync, then move it into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocking = next((p for p in (path.parent, *path.parent.parents) if os.path.lexists(p) and not p.is_dir()),
                        None)
        reason = e.strerror or str(e)
        if blocking is not None and e.errno in (errno.EEXIST, errno.ENOTDIR):
            reason = "a file of that name is in the way" if blocking == path.parent else f"{blocking} is a file"
        raise ImageWriteError(path, f"cannot create the folder '{path.parent}' ({reason})", what) from e
    if path.is_dir():
        raise ImageWriteError(path, "is a folder, not a file: move it away or choose another -o", what)
    if not overwrite and os.path.lexists(path):
        raise ImageExistsError(path, _EXISTS, what)

    remove_stale_temps(path)
    while True:
        tmp = temp_path(path)
        try:
            fh = open(tmp, "xb")  # noqa: SIM115 - closed below; "x": never clobber, usual umask permissions
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise ImageWriteError(path, f"cannot create a temporary file ({e.strerror or e})", what) from e
    try:
        with fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _move_into_place(tmp, path, overwrite, what)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, ImageWriteError) or not isinstance(e, Exception) or isinstance(e, MemoryError):
            raise
        if isinstance(e, OSError):
            raise ImageWriteError(path, f"write failed ({e.strerror or e})", what) from e
        raise ImageWriteError(path, f"encoding failed ({type(e).__name__}: {e})", what) from e
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _move_into_place(tmp: Path, path: Path, overwrite: bool, what: str) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:  # a hard link fails if the target appeared meanwhile: no race with another writer
        os.link(tmp, path)
    except FileExistsError as e:
        raise ImageExistsError(path, _EXISTS, what) from e
    except OSError:  # file system without hard links
        if os.path.lexists(path):
            raise ImageExistsError(path, _EXISTS, what) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def bmp_with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """A 32-bit BMP with an alpha channel, as Windows' BITMAPV5HEADER defines it: ``BI_BITFIELDS`` with the masks
    B, G, R, A from the low byte up, sRGB, rows bottom-up. Pillow writes a 32-bit BMP with the older header, whose
    fourth byte readers (Pillow's own included) take for unused, so an image written by it comes back opaque.
    ``rgb``: 8-bit codes, ``H x W x 3`` (or one gray channel); ``alpha``: ``H x W`` 8-bit codes."""
    h, w = alpha.shape
    rgb = rgb.reshape(h, w, -1)
    bgra = np.empty((h, w, 4), np.uint8)
    bgra[:, :, :3] = rgb[:, :, ::-1] if rgb.shape[2] == 3 else rgb[:, :, :1]
    bgra[:, :, 3] = alpha
    pixels = bgra[::-1].tobytes()
    header = struct.pack("<IiiHHIIiiII4I4s36x3I4I", 124, w, h, 1, 32, 3, len(pixels), 0, 0, 0, 0,
                         0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000, b"BGRs", 0, 0, 0, 4, 0, 0, 0)
    return struct.pack("<2sI4xI", b"BM", 14 + len(header) + len(pixels), 14 + len(header)) + header + pixels


def _encode_pillow(fh: IO[bytes], fmt: str, rgb: np.ndarray, alpha: np.ndarray | None, meta: _Meta,
                   quality: int) -> None:
    """8-bit JPEG, PNG, WebP, BMP and AVIF through Pillow (``rgb`` may be one gray channel)."""
    data = rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
    pim = PILImage.fromarray(np.ascontiguousarray(data[:, :, 0] if mode == "L" else data), mode)
    options: dict[str, Any] = {}
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.exif:
        options["exif"] = meta.exif
    if meta.dpi:
        options["dpi"] = meta.dpi
    if fmt == "PNG" and (meta.xmp or meta.cicp or meta.notes):
        from PIL.PngImagePlugin import PngInfo

        options["pnginfo"] = PngInfo()
        if meta.xmp:
            options["pnginfo"].add(b"iTXt", _png_xmp(meta.xmp))
        for kind, body in _png_text_chunks(meta.notes):
            options["pnginfo"].add(kind, body)
        if meta.cicp:
            options["pnginfo"].add(b"cICP", _png_cicp_body(meta.cicp))
    elif meta.xmp:
        options["xmp"] = meta.xmp
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 or mode == "L" else 2)  # gray: no chroma
        if meta.notes and meta.notes.iptc:
            options["extra"] = _app_marker(13, _photoshop_iptc(meta.notes.iptc))
        if meta.notes and meta.notes.comment:
            options["comment"] = meta.notes.comment
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality == 100, exact=True)
    elif fmt == "AVIF":
        options.update(quality=quality)
    elif fmt == "PNG":
        options.update(compress_level=6)
    pim.save(fh, format=fmt, **options)


_JPEG_MAX_MARKER = 65533  # Pillow's limit on the bytes of one APP marker


def _app_marker(n: int, body: bytes) -> bytes:
    """JPEG marker APPn holding ``body``."""
    return bytes([0xFF, 0xE0 + n]) + struct.pack(">H", len(body) + 2) + body


def _encode_jpeg_codes(rgb: np.ndarray, quality: int, meta: _Meta, threads: int = 1) -> bytes | None:
    """A baseline JPEG encoded by libjpeg-turbo through ``imagecodecs`` straight from the array (Pillow first
    copies it into 4-byte pixels), with Pillow's markers: JFIF APP0 (with the dpi as its density), then EXIF
    as APP1, IPTC as APP13, XMP as APP1, the ICC profile as APP2 chunks and the comment (COM), as Pillow orders
    them. With one thread, or under :data:`JPEG_STRIP_MIN_PIXELS`, the file is byte for byte the one
    ``_encode_pillow`` writes (tested); otherwise :func:`_encode_jpeg_strips`. ``None`` means use Pillow."""
    icc, exif = meta.icc, meta.exif
    if exif and len(exif) > _JPEG_MAX_MARKER:
        return None  # Pillow reports the error
    subsampling = (1, 1) if quality >= 90 or rgb.shape[2] == 1 else (2, 2)  # gray has no chroma to subsample
    try:
        import imagecodecs

        def encode(a: np.ndarray) -> bytes:
            return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(a), level=quality, subsampling=subsampling))

        data = None
        if threads > 1 and rgb.shape[0] * rgb.shape[1] >= JPEG_STRIP_MIN_PIXELS:
            data = _encode_jpeg_strips(rgb, encode, 8 * subsampling[0], threads)
        if data is None:
            data = encode(rgb)
    except Exception:
        return None
    if data[:4] != b"\xff\xd8\xff\xe0" or data[6:11] != b"JFIF\x00":
        return None
    cut = 4 + int.from_bytes(data[4:6], "big")
    if meta.dpi:  # density unit 1 (inch) and the rounded densities, as Pillow asks libjpeg to write them
        data = data[:13] + b"\x01" + struct.pack(">HH", *(round(d) for d in meta.dpi)) + data[18:]
    extra = _app_marker(1, exif) if exif else b""
    if meta.notes and meta.notes.iptc:
        extra += _app_marker(13, _photoshop_iptc(meta.notes.iptc))
    if meta.xmp:
        extra += _app_marker(1, _JPEG_XMP_HEADER + meta.xmp)
    if icc:
        step = _JPEG_MAX_MARKER - 14
        chunks = [icc[i:i + step] for i in range(0, len(icc), step)]
        for i, chunk in enumerate(chunks, start=1):
            extra += _app_marker(2, b"ICC_PROFILE\0" + bytes([i, len(chunks)]) + chunk)
    if meta.notes and meta.notes.comment:
        extra += b"\xff\xfe" + struct.pack(">H", len(meta.notes.comment) + 2) + meta.notes.comment
    return data[:cut] + extra + data[cut:]


JPEG_STRIP_MIN_PIXELS = 1 << 20
"""Photos of at least this many pixels are JPEG-encoded in strips on several threads."""


def _jpeg_split(data: bytes) -> tuple[bytes, bytes, int] | None:
    """A baseline JPEG's markers up to and including the start of scan, with the image height in its SOF0
    set to 0, and its entropy-coded data (``None`` if it is not laid out so); also where the height was."""
    i = 2
    sof = None
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xC0:
            sof = i + 5
        elif marker in (0xDD, 0xD9) or 0xC1 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # restart markers, a second frame or another process: not what was asked for
        if marker == 0xDA:
            if sof is None or data[-2:] != b"\xff\xd9":
                return None
            head = data[:sof] + b"\0\0" + data[sof + 2:end]
            return head, data[end:-2], sof
        i = end
    return None


def _encode_jpeg_strips(rgb: np.ndarray, encode: Callable[[np.ndarray], bytes], mcu: int,
                        threads: int) -> bytes | None:
    """One baseline JPEG encoded as horizontal strips on ``threads`` threads and joined with restart markers
    (ITU-T T.81 B.2.4.4: a restart interval of one strip's MCUs, ``RSTm`` between strips).

    Each strip is a whole number of ``mcu``-row MCUs, and libjpeg's colour conversion, box chroma downsampling, DCT
    and quantisation see nothing outside an MCU, so every block gets the same coefficients as in one encode of the
    whole photo: it decodes to the same pixels (tested). Only the entropy coding changes (the DC prediction restarts
    at each strip, each strip ends on a byte): a few bytes either way. ``None`` when the strips' tables do not agree
    (then encode in one piece)."""
    h, w = rgb.shape[:2]
    per_row = -(-w // mcu)  # MCUs in one MCU row
    mcu_rows = -(-h // mcu)
    strip_rows = min(-(-mcu_rows // threads), 65535 // per_row)  # the interval is a 16-bit count of MCUs
    if strip_rows < 1 or strip_rows >= mcu_rows:
        return None
    starts = range(0, h, strip_rows * mcu)
    with ThreadPoolExecutor(min(threads, len(starts))) as pool:
        parts = [_jpeg_split(d) for d in pool.map(lambda r: encode(rgb[r:r + strip_rows * mcu]), starts)]
    if any(p is None for p in parts) or len({p[0] for p in parts}) != 1:  # type: ignore[index]
        return None
    head, _, sof = parts[0]  # type: ignore[misc]
    sos = head.rindex(b"\xff\xda")
    out = [head[:sof], struct.pack(">H", h), head[sof + 2:sos],
           b"\xff\xdd\x00\x04" + struct.pack(">H", strip_rows * per_row), head[sos:]]
    for k, (_, scan, _) in enumerate(parts):  # type: ignore[misc]
        if k:
            out.append(bytes([0xFF, 0xD0 + (k - 1) % 8]))
        out.append(scan)
    out.append(b"\xff\xd9")
    return b"".join(out)


def _encode_tiff(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: _Meta) -> None:
    """8- or 16-bit RGB(A) or gray(+alpha) TIFF, deflate-compressed, with ICC (tag 34675), descriptive EXIF tags,
    XMP (tag 700), the dpi (XResolution, YResolution, ResolutionUnit inch; else tifffile's 1 with no unit) and the
    EXIF and GPS directories (see :func:`_add_exif_directories`); 16-bit codes as ``meta.samples`` (see
    :func:`write_image`)."""
    data = rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)
    if meta.samples == "uint32":
        data = data.astype(np.uint32) * np.uint32(65537)
    elif meta.samples:
        data = (data / np.float64(65535)).astype(meta.samples)
    extratags = []
    directories = {}
    if meta.exif:
        tags = PILImage.Exif()
        tags.load(meta.exif)
        for code in _TIFF_TEXT_TAGS:
            value = tags.get(code)
            if isinstance(value, str) and value and value.isascii():
                extratags.append((code, "s", 0, value, True))
        directories = _exif_directories(tags)
    if meta.xmp:
        extratags.append((_TIFF_XMP, "B", len(meta.xmp), meta.xmp, True))
    if meta.notes and meta.notes.iptc:
        extratags.append((_TIFF_IPTC, 7, len(meta.notes.iptc), meta.notes.iptc, True))  # type 7: UNDEFINED

    def write(out: IO[bytes], tags: list[tuple]) -> None:
        tifffile.imwrite(  # compressed, so never BigTIFF (tifffile picks it only for uncompressed data over 4 GB)
            out, data[:, :, 0] if data.shape[2] == 1 else data,
            photometric="rgb" if rgb.shape[2] == 3 else "minisblack",
            planarconfig="contig" if data.shape[2] > 1 else None,
            extrasamples=["unassalpha"] if alpha is not None else None, compression="zlib", predictor=True,
            iccprofile=meta.icc, extratags=tags, metadata=None, software=False, resolution=meta.dpi,
            resolutionunit="INCH" if meta.dpi else None,
        )

    if directories:
        tiff = io.BytesIO()
        write(tiff, [*extratags, *((pointer + 1, "I", 1, 0, True) for pointer in directories)])
        if _add_exif_directories(tiff, directories):
            fh.write(tiff.getbuffer())
            return
    write(fh, extratags)


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
"""bytes per value of each classic TIFF field type (BYTE ... IFD)"""
_TIFF_OFFSET_TAGS = {273, 288, 324, 513, 519, 520, 521}
"""tags whose values are offsets into the file: strips, free space, tiles, an old-style JPEG's data and tables"""
_TIFF_IFD_TAGS = {330, 34665, 34853, 40965}
"""tags whose values are offsets of directories: SubIFDs, the EXIF, GPS and interoperability directories"""


def join_tiff_pages(parts: Sequence[bytes]) -> bytes:
    """Classic TIFFs of one byte order (as :func:`encode_image` writes them) as one multi-page TIFF, their pages in
    order (TIFF 6.0, section 2: a chain of IFDs): each part is appended word-aligned, every offset in its directories
    (a value that does not fit its entry, the strip and tile offsets, the EXIF, GPS, interoperability and sub-IFD
    directories and theirs) moved by where it now starts, and its first IFD linked from the last IFD before it.
    Raises :class:`ValueError` for a part that is not such a TIFF, or a whole over 4 GB."""
    out = bytearray()
    link = -1  # where the last IFD so far keeps the offset of the next
    order = ""
    for number, part in enumerate(parts, 1):
        head = bytes(part[:8])
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            raise ValueError(f"part {number} is not a classic TIFF")
        endian = "<" if head[:2] == b"II" else ">"
        if order and endian != order:
            raise ValueError(f"part {number} is of another byte order than the first")
        order = endian
        out += b"\x00" * (len(out) % 2)
        base = len(out)
        data = bytearray(part)
        (first,) = struct.unpack_from(order + "I", data, 4)
        last = _move_ifds(data, order, first, base, set())
        out += data
        if link >= 0:
            struct.pack_into(order + "I", out, link, first + base)
        link = base + last
    if len(out) > 0xFFFFFFFF:
        raise ValueError(f"the pages together are {len(out):,} bytes, over a classic TIFF's 4 GB")
    return bytes(out)


def _move_ifds(data: bytearray, order: str, offset: int, base: int, seen: set[int]) -> int:
    """Move by ``base`` every offset in the chain of IFDs of ``data`` that starts at ``offset`` (and in the
    directories they point to), in place; the position of the last IFD's next-IFD offset, which is 0."""
    link = 4
    while offset:
        if offset in seen or offset + 2 > len(data):
            raise ValueError(f"a damaged TIFF directory chain (an IFD at {offset})")
        seen.add(offset)
        (count,) = struct.unpack_from(order + "H", data, offset)
        for entry in range(offset + 2, offset + 2 + 12 * count, 12):
            tag, kind, n = struct.unpack_from(order + "HHI", data, entry)
            if kind not in _TIFF_TYPE_SIZES:
                raise ValueError(f"TIFF tag {tag} has an unknown field type {kind}")
            size = _TIFF_TYPE_SIZES[kind] * n
            values = entry + 8
            if size > 4:
                (values,) = struct.unpack_from(order + "I", data, entry + 8)
                struct.pack_into(order + "I", data, entry + 8, values + base)
            if tag in _TIFF_OFFSET_TAGS | _TIFF_IFD_TAGS and kind in (3, 4, 13):
                code = order + ("H" if kind == 3 else "I")
                step = _TIFF_TYPE_SIZES[kind]
                for at in range(values, values + step * n, step):
                    (value,) = struct.unpack_from(code, data, at)
                    if tag in _TIFF_IFD_TAGS:
                        _move_ifds(data, order, value, base, seen)
                    if kind == 3 and value + base > 0xFFFF:
                        raise ValueError(f"TIFF tag {tag} holds its offsets as SHORTs, too small to move them")
                    struct.pack_into(code, data, at, value + base)
        link = offset + 2 + 12 * count
        (offset,) = struct.unpack_from(order + "I", data, link)
    return link


def _add_exif_directories(tiff: io.BytesIO, directories: dict[int, dict[int, Any]]) -> bool:
    """Append ``directories`` (pointer tag -> tags) to a classic TIFF whose first IFD has a LONG placeholder tag
    numbered pointer + 1 for each (tifffile will not write tags 34665 and 34853; the next numbers keep the IFD in tag
    order), word-aligned, and make each placeholder that pointer to its directory. False, leaving ``tiff`` as it is,
    if it is not a classic TIFF or would pass 4 GB."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    tiff.seek(0)
    header = tiff.read(8)
    if header[:4] not in (b"II*\x00", b"MM\x00*"):
        return False
    endian = "<" if header[:2] == b"II" else ">"
    (first,) = struct.unpack(endian + "I", header[4:])
    tiff.seek(first)
    (count,) = struct.unpack(endian + "H", tiff.read(2))
    entries = tiff.read(12 * count)
    entry_at = {struct.unpack_from(endian + "H", entries, 12 * i)[0]: first + 2 + 12 * i for i in range(count)}
    end = tiff.seek(0, io.SEEK_END)
    appended = bytearray()
    pointers = []
    for pointer, tags in directories.items():
        if pointer + 1 not in entry_at:
            return False
        directory = ImageFileDirectory_v2(header, group=pointer)
        for tag, value in tags.items():
            directory[tag] = value
        appended += b"\x00" * ((end + len(appended)) % 2)
        offset = end + len(appended)
        appended += directory.tobytes(offset)
        pointers.append((entry_at[pointer + 1], pointer, offset))
    if end + len(appended) > 0xFFFFFFFF:
        return False
    tiff.write(appended)
    for entry, pointer, offset in pointers:
        tiff.seek(entry)
        tiff.write(struct.pack(endian + "HHII", pointer, 4, 1, offset))  # tag, type LONG, count 1, value
    return True


def _encode_heif(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: _Meta, quality: int) -> None:
    """RGB(A) HEIC through pillow-heif (libheif, x265; 4:2:0 chroma), 8-bit, or 10-bit from 16-bit codes (rounded
    to 10 bits), with the ICC profile, EXIF and XMP, the colour code points as its ``nclx`` box (else
    pillow-heif's sRGB ones) and thumbnails of ``meta.thumbnails`` sizes made from it."""
    import pillow_heif

    data = rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)
    mode = "RGB" if alpha is None else "RGBA"
    if data.dtype == np.uint16:
        data, mode = _narrow(data, 1023).astype("<u2", copy=False), mode + ";10"
    options: dict[str, Any] = {k: v for k, v in (("icc_profile", meta.icc), ("exif", meta.exif), ("xmp", meta.xmp))
                               if v}
    if meta.cicp is not None:
        options.update(color_primaries=meta.cicp.primaries, transfer_characteristics=meta.cicp.transfer,
                       matrix_coefficients=meta.cicp.matrix, full_range_flag=int(meta.cicp.full_range))
    pillow_heif.encode(mode, (data.shape[1], data.shape[0]), np.ascontiguousarray(data).tobytes(), fh,
                       quality=quality, bit_depth=10, thumbnails=list(meta.thumbnails), **options)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_cicp_body(cicp: Cicp) -> bytes:
    """A ``cICP`` chunk's body: primaries, transfer, matrix 0 (PNG holds RGB) and full range (the pixels written are
    full-range RGB, whatever the range of the picture they were decoded from)."""
    return bytes([cicp.primaries, cicp.transfer, 0, 1])


def _png_xmp(xmp: bytes) -> bytes:
    """The body of an uncompressed iTXt chunk holding an XMP packet."""
    return _PNG_XMP_KEYWORD + b"\x00\x00\x00\x00" + xmp  # compression flag and method, no language, no translation


def _png_profile_chunks(icc: bytes | None, exif: bytes | None, xmp: bytes | None) -> bytes:
    """The ``iCCP``, ``eXIf`` and ``iTXt`` (XMP) chunks of the PNGs written here without Pillow, for those given."""
    out = b""
    if icc:
        out += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        out += _png_chunk(b"eXIf", exif[len(_EXIF_HEADER):] if exif.startswith(_EXIF_HEADER) else exif)
    if xmp:
        out += _png_chunk(b"iTXt", _png_xmp(xmp))
    return out


def _encode_png16(fh: IO[bytes], rgb: np.ndarray, alpha: np.ndarray | None, meta: _Meta) -> None:
    """16-bit RGB(A) or gray(+alpha) PNG (Pillow cannot write one): IHDR, iCCP, eXIf, iTXt (XMP), cICP, pHYs (as
    Pillow writes it), IDAT with the Sub filter, IEND."""
    icc, exif = meta.icc, meta.exif
    data = rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)
    height, width, channels = data.shape
    fh.write(_PNG_SIGNATURE)
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]  # gray, gray + alpha, RGB, RGBA
    fh.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)))
    fh.write(_png_profile_chunks(icc, exif, meta.xmp))
    for kind, body in _png_text_chunks(meta.notes):
        fh.write(_png_chunk(kind, body))
    if meta.cicp:
        fh.write(_png_chunk(b"cICP", _png_cicp_body(meta.cicp)))
    if meta.dpi:
        fh.write(_png_chunk(b"pHYs", struct.pack(">IIB", *(int(d / 0.0254 + 0.5) for d in meta.dpi), 1)))
    bpp = 2 * channels
    compressor = zlib.compressobj(6)
    pending = bytearray()
    rows_per_block = max(1, (4 << 20) // (width * bpp + 1))
    for top in range(0, height, rows_per_block):
        raw = data[top:top + rows_per_block].astype(">u2", order="C").view(np.uint8).reshape(-1, width * bpp)
        rows = np.empty((raw.shape[0], width * bpp + 1), dtype=np.uint8)
        rows[:, 0] = 1  # filter type 1 (Sub): byte minus the same byte of the previous pixel
        rows[:, 1:bpp + 1] = raw[:, :bpp]
        np.subtract(raw[:, bpp:], raw[:, :-bpp], out=rows[:, bpp + 1:])
        pending += compressor.compress(rows.tobytes())
        while len(pending) >= 1 << 20:
            fh.write(_png_chunk(b"IDAT", bytes(pending[:1 << 20])))
            del pending[:1 << 20]
    pending += compressor.flush()
    fh.write(_png_chunk(b"IDAT", bytes(pending)))
    fh.write(_png_chunk(b"IEND", b""))
