"""Openly licensed real photographs from Debian packages, fetched with apt and unpacked into a local cache.

Training needs many diverse real photographs, and nothing may be downloaded at run time except through package
registries. The Debian bookworm packages in :data:`PHOTO_PACKAGES` ship such photos (the survey is
``docs/photo-sources.md``). Each record says what the package holds, its licence, and how to get the photos
out: ``paths`` (globs inside the unpacked package) and, for container formats, an ``extractor``.

:func:`fetch_photos` handles each package that is not cached yet: ``apt-get download NAME`` into a temporary
folder (if that fails because apt's package lists are missing, ``apt-get update`` is run once and the download
retried), ``dpkg-deb -x``, then the photos go to ``CACHE/<package>/`` together with the package's
``copyright`` file and a ``manifest.json`` (records, licences, package version, sha256 of each photo); the .deb
and the unpacked tree are deleted. Everything is written into a hidden temporary folder inside ``CACHE`` that is
renamed into place at the end, so a package folder either is complete or does not exist. A package that has a
manifest is skipped. ``apt-get download`` and ``dpkg-deb -x`` work without root once the package lists exist;
only ``apt-get update`` needs root. :func:`load_library` reads the manifests (no network) and
:func:`split_records` splits by scene group. The cache is :func:`default_cache_dir` unless given.

Licences come from each package's ``usr/share/doc/<package>/copyright``. Machine-readable (DEP-5) files are
parsed and the last ``Files:`` paragraph matching the photo's path in the source tree applies; where that is
only ``Files: *`` the licence says so. For free-text copyright files the registry states the licence and a
phrase that must appear in the file. Where the package also ships an upstream credit file (gcompris' resource
``README`` files, palapeli's ``.desktop`` files, lxqt's ``wallpapers/License``), its statement is added as
"upstream: ..." and its author goes into the credit. gcompris-qt-data 3.1's Debian copyright file still
describes older ``.jpg``/``.png`` resources: the ``.webp`` photos in its ``.rcc`` files match no per-file
paragraph (entries with the same stem describe other photos), so they get ``Files: *`` (GPL-3+), or GPL-3 for
the ``details`` and ``explore_farm_animals`` folders, which a folder-wide paragraph covers.

Left out (see :data:`EXCLUDED`): renders, illustrations, paintings, textures and screenshots, a non-commercial
photo, files of unclear rights, and the two packages in :data:`RESERVED_PACKAGES`, which are kept for
independent evaluation and are never downloaded or opened here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from PIL import Image

from ..io import jpeg_end

__all__ = [
    "CACHE_ENV",
    "EXCLUDED",
    "MANIFEST",
    "PHOTO_PACKAGES",
    "RESERVED_PACKAGES",
    "AptUnpacker",
    "Photo",
    "PhotoFetchError",
    "PhotoPackage",
    "PhotoRecord",
    "default_cache_dir",
    "edj_largest_jpeg",
    "fetch_photos",
    "find_webp",
    "jpeg_end",
    "kphotoalbum_angles",
    "load_library",
    "parse_copyright",
    "pzl_photo",
    "rcc_files",
    "split_records",
]

log = logging.getLogger(__name__)

CACHE_ENV = "DEEPEXPOSE_PHOTOS"
"""Environment variable naming the photo cache folder (default ``~/.cache/deepexpose/photos``)."""

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

RESERVED_PACKAGES = frozenset({"mate-backgrounds", "plasma-workspace-wallpapers"})
"""Kept for independent evaluation: never downloaded, opened or used for training, tuning or checks."""

MIN_SIZE = (400, 300)
"""Smallest photo taken out of a container (long side, short side)."""


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PhotoRecord:
    """A photo in the cache: its file, source package, name, licence, credit and scene group.

    ``group`` is a scene key (``package:key``); near-duplicates share it and :func:`split_records` keeps a
    group on one side of a split.
    """

    path: Path
    package: str
    name: str
    licence: str
    credit: str
    group: str


@dataclass
class Photo:
    """A photo taken out of an unpacked package, before it is written to the cache."""

    name: str  # unique within the package; the cache file is name + ext
    data: bytes  # the file's bytes (the original bytes where the photo is a plain file)
    ext: str  # ".jpg", ".png" or ".webp"
    source: str  # where it is inside the package (container members as "container:member")
    copyright_path: str  # path to match against the Files: paragraphs of debian/copyright
    group: str = ""  # scene key within the package (default: name)
    credit: str = ""  # upstream credit, when more specific than debian/copyright
    upstream_licence: str = ""  # licence stated by an upstream credit file shipped in the package
    licence: str = ""  # the licence, where debian/copyright's last matching paragraph is known to be wrong


Extractor = Callable[["PhotoPackage", Path, list[Path]], list[Photo]]


@dataclass(frozen=True)
class PhotoPackage:
    """One Debian package that ships photos, and how to take them out.

    ``paths`` are globs relative to the unpacked package; every glob must match. Without an ``extractor``
    each matched file is a photo, kept byte for byte; an extractor turns the matched files (containers, or
    files that need a fix such as a rotation) into :class:`Photo` objects. ``source_prefix`` maps the
    installed folder to the source-tree folder used by ``Files:`` in debian/copyright. ``licence_evidence``
    (free-text copyright files only) must appear in the copyright file, and ``licence``/``credit`` are used.
    """

    name: str
    version: str  # the bookworm version surveyed
    contents: str
    licence: str  # summary of what debian/copyright says about the photos
    paths: tuple[str, ...]
    extractor: Extractor | None = None
    exclude: tuple[str, ...] = ()  # file names matched by paths but left out (reasons in EXCLUDED)
    source_prefix: tuple[str, str] = ("", "")  # (installed folder, folder in debian/copyright's Files:)
    groups: Mapping[str, str] = field(default_factory=dict)  # photo name -> scene key (default: name)
    name_with_dir: bool = False  # plain files: name photos "<folder>-<stem>" (same stems in several folders)
    credit: str = ""  # free-text copyright files: whom to credit
    licence_evidence: str = ""  # free-text copyright files: phrase that must be present
    expected: int = 0  # photos found in the surveyed version (a different count is logged as a warning)
    large: bool = False  # only with include_large / --with-large

    def copyright_path(self, rel: str) -> str:
        """The path of installed file ``rel`` as ``Files:`` paragraphs in debian/copyright name it."""
        installed, source = self.source_prefix
        return source + rel[len(installed):] if installed and rel.startswith(installed) else rel


# --------------------------------------------------------------------------------------------- copyright


@dataclass(frozen=True)
class CopyrightParagraph:
    """A ``Files:`` paragraph of a machine-readable debian/copyright file."""

    patterns: tuple[str, ...]
    copyright: str
    licence: str  # the short name (first line of License:)


def parse_copyright(text: str) -> list[CopyrightParagraph] | None:
    """The ``Files:`` paragraphs of a DEP-5 debian/copyright file, in order; ``None`` for a free-text file."""
    if not text.lstrip().startswith("Format:"):
        return None
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                fields[key] = [m.group(2).strip()]
            elif key and line[:1] in (" ", "\t"):
                fields[key].append(line.strip())
        if "files" in fields and "license" in fields:
            patterns = tuple(p for part in fields["files"] for p in part.split())
            holders = [c for c in fields.get("copyright", []) if c]
            paragraphs.append(CopyrightParagraph(patterns, "; ".join(holders), fields["license"][0]))
    return paragraphs


def _match_copyright(paragraphs: list[CopyrightParagraph], path: str) -> CopyrightParagraph:
    """The last paragraph whose ``Files:`` patterns match ``path`` (DEP-5 rule: ``*`` also matches ``/``)."""
    found = None
    for p in paragraphs:
        if any(fnmatch.fnmatchcase(path, pat) for pat in p.patterns):
            found = p
    if found is None:
        raise ValueError(f"no Files: paragraph of debian/copyright matches {path!r}")
    return found


def _short_credit(holders: str) -> str:
    parts = [h for h in holders.split("; ") if h]
    return "; ".join(parts) if len(parts) <= 3 else f"{parts[0]} and others"


def _licence_and_credit(pkg: PhotoPackage, copyright_text: str, photo: Photo) -> tuple[str, str]:
    paragraphs = parse_copyright(copyright_text)
    notes = []
    if paragraphs is None:
        if not pkg.licence_evidence or pkg.licence_evidence not in " ".join(copyright_text.split()):
            raise ValueError(f"{pkg.name}: copyright file does not state {pkg.licence_evidence!r}; "
                             "check the licence by hand and update the registry")
        licence, credit = pkg.licence, pkg.credit
    else:
        para = _match_copyright(paragraphs, photo.copyright_path)
        licence, credit = para.licence, _short_credit(para.copyright)
        if para.patterns == ("*",):
            notes.append("debian/copyright: only 'Files: *' applies")
    if photo.licence:
        notes.insert(0, f"debian/copyright's last matching paragraph says {licence}")
        licence = photo.licence
    if photo.upstream_licence:
        notes.append(f"upstream: {photo.upstream_licence}")
    if notes:
        licence = f"{licence} ({'; '.join(notes)})"
    return licence, photo.credit or credit


# --------------------------------------------------------------------------------------------- containers


def _jpegs(data: bytes) -> list[bytes]:
    """Every complete JPEG embedded in ``data``, outermost only (thumbnails inside a JPEG are skipped)."""
    out, pos = [], 0
    while (start := data.find(b"\xff\xd8\xff", pos)) >= 0:
        end = jpeg_end(data, start)
        if end is None:
            pos = start + 3
            continue
        out.append(data[start:end])
        pos = end
    return out


def _pixels(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return im.size[0] * im.size[1]


def edj_largest_jpeg(data: bytes) -> bytes:
    """The JPEG with the most pixels among those embedded in an Edje ``.edj`` file (its full-size image)."""
    jpegs = [j for j in _jpegs(data) if _decodable(j)]
    if not jpegs:
        raise ValueError("no JPEG image found")
    return max(jpegs, key=lambda j: (_pixels(j), len(j)))


def _decodable(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.size  # noqa: B018 - header parsed
        return True
    except Exception:
        return False


def find_webp(data: bytes) -> list[tuple[int, bytes]]:
    """``(offset, bytes)`` of every WebP file in ``data``: ``RIFF`` + 4-byte little-endian size + ``WEBP``."""
    out, pos = [], 0
    while (i := data.find(b"RIFF", pos)) >= 0:
        if data[i + 8:i + 12] == b"WEBP":
            size = struct.unpack("<I", data[i + 4:i + 8])[0]
            end = i + 8 + size
            if end <= len(data):
                out.append((i, data[i:end]))
                pos = end
                continue
        pos = i + 4
    return out


def rcc_files(data: bytes) -> dict[int, tuple[str, bytes]]:
    """Files in a Qt resource (``.rcc``) file: payload offset -> (resource path, bytes, zlib-decompressed).

    Reads the ``qres`` header (format 1-3) and walks the tree; zstd-compressed entries are skipped. Raises
    ``ValueError`` when ``data`` is not a readable rcc file.
    """
    if data[:4] != b"qres" or len(data) < 20:
        raise ValueError("not a Qt resource file (no qres header)")
    version, tree, payloads, names = struct.unpack(">IIII", data[4:20])
    node = 22 if version >= 2 else 14
    out: dict[int, tuple[str, bytes]] = {}

    def name_at(off: int) -> str:
        (length,) = struct.unpack(">H", data[names + off:names + off + 2])
        return data[names + off + 6:names + off + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, parent: str, depth: int) -> None:
        if depth > 64:
            raise ValueError("rcc tree too deep")
        o = tree + index * node
        name_off, flags = struct.unpack(">IH", data[o:o + 6])
        path = f"{parent}/{name_at(name_off)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[o + 6:o + 14])
            for child in range(first, first + count):
                walk(child, path, depth + 1)
            return
        (offset,) = struct.unpack(">I", data[o + 10:o + 14])
        start = payloads + offset
        (size,) = struct.unpack(">I", data[start:start + 4])
        blob = data[start + 4:start + 4 + size]
        if flags & 4:  # zstd
            return
        if flags & 1:  # zlib, after a 4-byte uncompressed size
            blob = zlib.decompress(blob[4:])
        out[start + 4] = (path, blob)

    try:
        walk(0, "", 0)
    except (struct.error, UnicodeDecodeError, zlib.error) as e:
        raise ValueError(f"cannot read the rcc tree: {e}") from e
    return out


def pzl_entries(data: bytes) -> list[tuple[str, bytes]]:
    """Members of a jigzo ``.pzl`` puzzle: 4 header lines, then ``name\\nsize\\n<size bytes>`` entries."""
    lines = data.split(b"\n", 4)
    if len(lines) < 5 or lines[0] != b"PzlF":
        raise ValueError("not a jigzo .pzl file (no PzlF header)")
    pos, entries = len(b"\n".join(lines[:4])) + 1, []
    while pos < len(data):
        nl = data.index(b"\n", pos)
        nl2 = data.index(b"\n", nl + 1)
        name, size = data[pos:nl].decode(), int(data[nl + 1:nl2])
        entries.append((name, data[nl2 + 1:nl2 + 1 + size]))
        pos = nl2 + 1 + size
    return entries


PZL_FRAME = 1
"""Width of the black frame jigzo draws around the picture inside its ``image x y w h`` rectangle."""


def pzl_photo(data: bytes) -> Image.Image:
    """The photo of a jigzo puzzle: its second JPEG cropped to the ``image x y w h`` line, frame removed."""
    entries = pzl_entries(data)
    jpegs = [blob for _, blob in entries if blob.startswith(b"\xff\xd8\xff")]
    if len(jpegs) < 2:
        raise ValueError(f"expected 2 JPEGs in the .pzl file, found {len(jpegs)}")
    text = b"\n".join(blob for _, blob in entries if not blob.startswith((b"\xff\xd8", b"\x89PNG")))
    m = re.search(rb"^image\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M)
    if m is None:
        raise ValueError("no 'image x y w h' line in the .pzl file")
    x, y, w, h = (int(v) for v in m.groups())
    f = PZL_FRAME
    with Image.open(io.BytesIO(jpegs[1])) as im:
        if x + w > im.width or y + h > im.height:
            raise ValueError(f"image rectangle {x} {y} {w} {h} outside the {im.width}x{im.height} texture")
        return im.convert("RGB").crop((x + f, y + f, x + w - f, y + h - f))


def kphotoalbum_angles(index_xml: str | bytes) -> dict[str, int]:
    """Clockwise rotations (0, 90, 180, 270) by file name from a KPhotoAlbum ``index.xml``."""
    root = ElementTree.fromstring(index_xml)
    angles = {}
    for img in root.iter("image"):
        angle = int(img.get("angle", "0")) % 360
        if angle not in (0, 90, 180, 270):
            raise ValueError(f"unsupported angle {angle} for {img.get('file')}")
        angles[img.get("file", "")] = angle
    return angles


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _parse_credit_file(text: str) -> dict[str, dict[str, str]]:
    """Per-file fields of an upstream credit file in DEP-5-like paragraphs (gcompris resource READMEs).

    Lines ``Key: value`` set fields; other lines without spaces (and names after ``Files:``) are file names.
    """
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        files: list[str] = []
        key = None
        for line in block.splitlines():
            m = re.match(r"^(Copyright|License|Source|Files|Comments?):\s*(.*)$", line.strip())
            if m:
                key = m.group(1).lower().rstrip("s")
                if key == "file":
                    files += m.group(2).split()
                else:
                    fields[key] = m.group(2).strip()
            elif line.strip() and " " not in line.strip():
                files.append(line.strip())
            elif line.strip() and key and key != "file":
                fields[key] = f"{fields.get(key, '')} {line.strip()}".strip()
        for f in files:
            out[f] = fields
    return out


# --------------------------------------------------------------------------------------------- extractors


def _plain_files(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """Each file is a photo, kept byte for byte."""
    photos = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        name = f"{f.parent.name}-{f.stem}" if pkg.name_with_dir else f.stem
        photos.append(Photo(name, f.read_bytes(), f.suffix.lower(), rel, pkg.copyright_path(rel)))
    return photos


ENDLESS_SKY_MORGUEFILE = ("images/land/*",)
"""The ``Files:`` patterns of endless-sky-data's paragraph for its morgueFile photos, which are left out."""


def _endless_sky(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """Endless Sky's landscape photos, but those whose licence is that of the morgueFile paragraph (the last
    ``Files:`` paragraph to match them is :data:`ENDLESS_SKY_MORGUEFILE`): morgueFile's own licence is not an open
    licence, whatever the copyright file calls it. A photo named for its author (``*-sfiera*`` and so on) that a
    later, broader pattern of the copyright file also matches (``fields1*`` matches ``fields10-sfiera``) gets its
    author's licence and credit; the later paragraph's licence is noted beside it."""
    paragraphs = parse_copyright((root / "usr/share/doc" / pkg.name / "copyright").read_text(encoding="utf-8"))
    if paragraphs is None:
        raise ValueError(f"{pkg.name}: expected a machine-readable copyright file")
    photos = []
    for photo in _plain_files(pkg, root, files):
        matching = [q for q in paragraphs if any(fnmatch.fnmatchcase(photo.copyright_path, pat) for pat in q.patterns)]
        if not matching or matching[-1].patterns == ENDLESS_SKY_MORGUEFILE:  # the last match is its licence
            continue
        authors = [q for q in matching if all(pat.startswith("images/land/*-") for pat in q.patterns)]
        if authors and authors[-1] is not matching[-1]:
            photo.credit = _short_credit(authors[-1].copyright)
            photo.licence = authors[-1].licence
        photos.append(photo)
    return photos


def _kphotoalbum(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """Demo album photos; those with an ``angle=`` in ``index.xml`` are rotated and stored as PNG."""
    angles = kphotoalbum_angles((root / KPA_DEMO / "index.xml").read_bytes())
    rotate = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    photos = []
    for p in _plain_files(pkg, root, files):
        with Image.open(io.BytesIO(p.data)) as im:
            if max(im.size) <= 128:  # category thumbnails
                continue
            angle = angles.get(Path(p.source).name, 0)
            if angle:
                p.data, p.ext = _png(im.convert("RGB").transpose(rotate[angle])), ".png"
                p.source += f" (rotated {angle} degrees clockwise, index.xml)"
        photos.append(p)
    return photos


def _palapeli(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """Collection puzzles; author, licence and source from the ``.desktop`` file beside each image."""
    photos = _plain_files(pkg, root, files)
    for p in photos:
        desktop = (root / p.source).with_suffix(".desktop")
        info = {}
        if desktop.is_file():
            for line in desktop.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                info.setdefault(key.strip(), value.strip())
        author, site = info.get("X-KDE-PluginInfo-Author", ""), info.get("X-KDE-PluginInfo-Website", "")
        p.credit = ", ".join(v for v in (author, site) if v)
        if info.get("X-KDE-PluginInfo-License"):
            p.upstream_licence = f"{info['X-KDE-PluginInfo-License']} (.desktop file)"
    return photos


def _lxqt(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """Photo wallpapers; ``wallpapers/License`` (shipped with them) states CC-BY-SA-3.0 and the credits."""
    text = (root / LXQT_WALLPAPERS / "License").read_text(encoding="utf-8")
    if "by-sa/3.0" not in text or "stefonarch" not in text:
        raise ValueError("lxqt wallpapers/License changed: check the licence and credits by hand")
    photos = _plain_files(pkg, root, files)
    for p in photos:
        p.upstream_licence = "CC-BY-SA-3.0 (wallpapers/License)"
        p.credit = "stefonarch (standreas@riseup.net)" if p.name in LXQT_STEFONARCH else "LXQt Project Team"
    return photos


def _jigzo(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """The picture of each puzzle (see :func:`pzl_photo`), stored as PNG."""
    photos = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        im = pzl_photo(f.read_bytes())
        name = f.stem.rsplit("-", 1)[0]  # "heli-4x3" -> "heli"
        photos.append(Photo(name, _png(im), ".png", rel, pkg.copyright_path(rel)))
    return photos


def _enlightenment(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """The full-size JPEG inside each photo background ``.edj``, kept byte for byte."""
    photos = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        jpeg = edj_largest_jpeg(f.read_bytes())
        photos.append(Photo(f.stem, jpeg, ".jpg", f"{rel}:largest JPEG", pkg.copyright_path(rel)))
    return photos


def _gcompris(pkg: PhotoPackage, root: Path, files: list[Path]) -> list[Photo]:
    """WebP photos inside the activities' ``.rcc`` files, kept byte for byte (see :data:`GCOMPRIS_PHOTOS`)."""
    photos = []
    for f in files:
        data = f.read_bytes()
        try:
            tree = rcc_files(data)  # the names tell photos from drawings
        except ValueError as e:
            raise ValueError(f"{f.name}: {e}") from e
        readmes = {os.path.dirname(path): _parse_credit_file(blob.decode("utf-8", "replace"))
                   for path, blob in tree.values() if path.endswith("/README")}
        for offset, webp in find_webp(data):
            path = tree.get(offset, ("", b""))[0]
            if not any(fnmatch.fnmatchcase(path, pat) for pat in GCOMPRIS_PHOTOS[f.name]):
                continue
            with Image.open(io.BytesIO(webp)) as im:
                if max(im.size) < MIN_SIZE[0] or min(im.size) < MIN_SIZE[1]:
                    continue
            activity = path.split("/")[4]  # /gcompris/src/activities/<activity>/resource/...
            stem = Path(path).stem.removesuffix("_background")
            name = f"{activity}-{stem}"
            fields = _credit_for(readmes, path)
            comment = fields.get("comment", "")
            credit = "; ".join(v for v in (fields.get("copyright", ""),
                                           comment if comment.startswith("based on") else "",
                                           fields.get("source", "")) if v)
            upstream = f"{fields['license']} (resource README)" if fields.get("license") else ""
            group = GCOMPRIS_LANDMARKS.get(name, name)
            photos.append(Photo(name, webp, ".webp", f"{f.relative_to(root).as_posix()}:{path}",
                                path.removeprefix("/gcompris/"), group, credit, upstream))
    return photos


def _credit_for(readmes: dict[str, dict[str, dict[str, str]]], path: str) -> dict[str, str]:
    """Credit fields for ``path`` from the nearest README above it (names relative to the README's folder)."""
    folder = os.path.dirname(path)
    while folder.count("/") >= 4:
        if folder in readmes:
            rel = path[len(folder) + 1:]
            return readmes[folder].get(GCOMPRIS_README_TYPOS.get(rel, rel), {})
        folder = os.path.dirname(folder)
    return {}


# --------------------------------------------------------------------------------------------- registry

KPA_DEMO = "usr/share/kphotoalbum/demo"
LXQT_WALLPAPERS = "usr/share/lxqt/wallpapers"
LXQT_PHOTOS = ("after-the-rain.jpg", "appleflower.png", "beam.png", "butterfly.png", "cloud.png", "drop.png",
               "flowers.png", "fog.jpg", "this-is-not-windows.jpg")
LXQT_STEFONARCH = {"beam", "flowers", "butterfly", "fog", "this-is-not-windows", "appleflower", "after-the-rain",
                   "drop"}  # credited to stefonarch in wallpapers/License ("not-windows", "appleflowers")
ENLIGHTENMENT_PHOTOS = ("Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks",
                        "Red-Maple", "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds",
                        "White-Flower", "Yellow-Flower")
GCOMPRIS_DETAILS_PHOTOS = (  # the other "details" pictures are paintings; Louvre and TourEiffel are < 400x300
    "Chenonceau", "EgeskovSlotSpejling", "EilanDonanCastle", "FanoeWindmill", "GizahPyramids",
    "Louvre_2007_02_24_c", "NDP", "Nagoya", "Neuschwanstein", "OperaSidney", "TajMahal", "TourEiffel",
    "TowerBridgeLondon")
GCOMPRIS_PHOTOS = {  # rcc file -> resource paths that are photographs
    "erase.rcc": ("/gcompris/src/activities/erase/resource/*.webp",),
    "explore_world_animals.rcc": ("/gcompris/src/activities/explore_world_animals/resource/animals/*.webp",),
    "explore_farm_animals.rcc": ("/gcompris/src/activities/explore_farm_animals/resource/animals/*.webp",),
    "explore_monuments.rcc": ("/gcompris/src/activities/explore_monuments/resource/*/*.webp",),
    "explore_world_music.rcc": ("/gcompris/src/activities/explore_world_music/resource/music/*.webp",),
    "clickgame.rcc": ("/gcompris/src/activities/clickgame/resource/sea*.webp",),  # underwater photos
    "details.rcc": tuple(f"/gcompris/src/activities/details/resource/image/{n}_background.webp"
                         for n in GCOMPRIS_DETAILS_PHOTOS),
}
GCOMPRIS_README_TYPOS = {"germany/aulaPalatina.webp": "germany/audaPalatina.webp"}  # as spelt in the README
GCOMPRIS_LANDMARKS = {  # the same landmark in two activities -> one scene group
    "details-TourEiffel": "landmark-eiffelTower", "explore_monuments-eiffelTower": "landmark-eiffelTower",
    "details-TajMahal": "landmark-tajMahal", "explore_monuments-tajMahal": "landmark-tajMahal",
    "details-Chenonceau": "landmark-chenonceau", "explore_monuments-chateaudeChenonceau": "landmark-chenonceau",
    "details-Neuschwanstein": "landmark-neuschwanstein",
    "explore_monuments-neuschwansteinCastle": "landmark-neuschwanstein",
    "details-GizahPyramids": "landmark-giza", "explore_monuments-greatPyramidOfGiza": "landmark-giza",
}

ENDLESS_SKY_LEFT_OUT = ("nasa8", "nasa9", "space6", "earthrise", "water6", "hills4", "valley7", "sky6", "lava1",
                        "hills3")
"""Endless Sky photos that are not natural photographs: Jupiter in enhanced colour, light streaks, a composite,
false-colour "alien" recolourings and heavy colour grading."""
ENDLESS_SKY_UNCLEAR = ("canyon01", "canyon02", "canyon03", "canyon04", "canyon05")
"""Endless Sky photos whose source is unclear: only the broad pattern ``canyon0*`` of the unsplash paragraph,
written for ``canyon0``, covers them."""
SCRATCH_LEFT_OUT = ("chalkboard", "party-room", "room1", "room2", "room3", "spotlight-stage", "woods-and-bench",
                    "school2", "brick-wall1", "brick-wall2", "graffiti", "moon")
"""Scratch backgrounds that are drawings or partly drawn, a washed-out painting, and a photo with a black band."""

PHOTO_PACKAGES: dict[str, PhotoPackage] = {p.name: p for p in [
    PhotoPackage(
        name="lomiri-wallpapers-16.04", version="20.04.0-2",
        contents="Lomiri 16.04 wallpapers: mountains, stream, sunset, dogs, dragonfly, interiors, still life",
        licence="per file: CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0",
        paths=("usr/share/backgrounds/*.jpg",),
        exclude=("umang_by_Abhishek_Mudgal.jpg", "analogpattern_by_Peter_Nerlich.jpg"),
        source_prefix=("usr/share/backgrounds/", "16.04/"), expected=13),
    PhotoPackage(
        name="lomiri-wallpapers-20.04", version="20.04.0-2",
        contents="Lomiri 20.04 wallpapers; the only photo is Kleiber (a nuthatch on a tree trunk)",
        licence="CC-BY-SA-3.0 (Lukas Baubkus)",
        paths=("usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",),
        source_prefix=("usr/share/backgrounds/", "20.04/"), expected=1),
    PhotoPackage(
        name="kphotoalbum", version="5.9.1-1",
        contents="KPhotoAlbum demo album: portraits, bar at night, pool hall, pets, canyon, beach, sea, snow",
        licence="GPL-2+ (Jesper K. Pedersen; free-text copyright file)",
        paths=(f"{KPA_DEMO}/*.jpg",), extractor=_kphotoalbum,
        groups={"bar55_2": "bar55", "grand_canyon_2": "grand_canyon_1", "grand_canyon_3": "grand_canyon_1",
                "pool_2": "pool"},
        credit="Jesper K. Pedersen (KPhotoAlbum demo album)",
        licence_evidence="either version 2 of the License, or (at your option) any later version",
        expected=24),
    PhotoPackage(
        name="palapeli-data", version="4:22.12.3-1",
        contents="Palapeli puzzles: castle, bridge at night, citrus slices, bee, chameleon",
        licence="GPL-2+ (Files: *); the .desktop files credit Wikimedia authors (FDL, public domain, ...)",
        paths=("usr/share/palapeli/collection/*.jpg",), extractor=_palapeli, expected=5),
    PhotoPackage(
        name="scribus-template", version="1.2.4.1-6",
        contents="photos in Riku Leino's templates: eclipse, moon (two photos), slot canyon, city sunset, pizza",
        licence="public domain (Riku Leino; free-text copyright file)",
        paths=("usr/share/scribus/templates/br2/*.jpg", "usr/share/scribus/templates/cal2/*.jpg",
               "usr/share/scribus/templates/menu2/*.jpg"),
        name_with_dir=True,
        groups={"br2-moon": "moon", "cal2-moon": "moon", "br2-brightness": "eclipse", "br2-halfmoon": "eclipse"},
        credit="Riku Leino",
        licence_evidence="by Riku Leino listed above and distributed in the scribus-template package have been "
                         "placed into public domain by their author",
        expected=7),
    PhotoPackage(
        name="sddm-theme-maldives", version="0.19.0-5",
        contents="SDDM Maldives theme background: jetty and beach",
        licence="CC-BY-3.0 (Nevit Dilmen)",
        paths=("usr/share/sddm/themes/maldives/background.jpg",),
        source_prefix=("usr/share/sddm/themes/maldives/", "data/themes/maldives/"), expected=1),
    PhotoPackage(
        name="lxqt-themes", version="1.2.0-1",
        contents="LXQt photo wallpapers: clouds, fog, hills, blossom, butterfly, dew drop, meadow flowers",
        licence="LGPL-2.1+ (Files: *); wallpapers/License says CC-BY-SA-3.0, credits stefonarch",
        paths=tuple(f"{LXQT_WALLPAPERS}/{n}" for n in LXQT_PHOTOS), extractor=_lxqt,
        source_prefix=("usr/share/lxqt/", ""), expected=9),
    PhotoPackage(
        name="jigzo-data", version="0.6.1-7.1",
        contents="jigzo puzzles: bike, kookaburra, blackberries, castle, clouds, gorilla, helicopter, horse, "
                 "slide, toy train, windmill",
        licence="GPL-2+ (Maarten de Boer); heli: GPL-2 (Joana Clotet)",
        paths=("usr/share/games/jigzo/puzzles/*/*.pzl",), extractor=_jigzo, exclude=("penguin-3x2.pzl",),
        source_prefix=("usr/share/games/jigzo/", ""), expected=11),
    PhotoPackage(
        name="gcompris-qt-data", version="3.1-2",
        contents="GCompris activity photos: animals (erase, explore world/farm animals), monuments, musicians, "
                 "underwater scenes, landmarks (details)",
        licence="GPL-3+ (Files: *; GPL-3 for details and farm animals); resource READMEs credit Wikimedia "
                "authors (CC-BY-SA, CC-BY, CC0, public domain)",
        paths=tuple(f"usr/share/gcompris-qt/rcc/{n}" for n in GCOMPRIS_PHOTOS), extractor=_gcompris,
        expected=132),
    PhotoPackage(
        name="enlightenment-data", version="0.25.4-2",
        contents="Enlightenment photo backgrounds (3840x2160): bamboo, fog, sun rays, maples, lichen, mountains, "
                 "lanterns, snow, spruce, clouds, flowers",
        licence="BSD-2-clause (Carsten Haitzler and various contributors)",
        paths=tuple(f"usr/share/enlightenment/data/backgrounds/{n}.edj" for n in ENLIGHTENMENT_PHOTOS),
        extractor=_enlightenment, source_prefix=("usr/share/enlightenment/", ""), expected=14, large=True),
    PhotoPackage(
        name="endless-sky-data", version="0.9.8-1.2",
        contents="Endless Sky's landing-screen photos (720x360): landscapes, coasts, cities, deserts, snow, skies",
        licence="per file: public-domain (unsplash, NASA, USGS), CC-BY-SA-3.0 (Wikimedia authors), CC-BY-SA-4.0; "
                "the morgueFile photos are left out",
        paths=("usr/share/games/endless-sky/images/land/*.jpg",), extractor=_endless_sky,
        exclude=tuple(f"{n}.jpg" for n in ENDLESS_SKY_LEFT_OUT + ENDLESS_SKY_UNCLEAR),
        source_prefix=("usr/share/games/endless-sky/", ""), expected=177),
    PhotoPackage(
        name="scratch", version="1.4.0.6~dfsg1-6.1",
        contents="Scratch stage backgrounds (480x360): streets, buildings, murals, parks, sports fields, nature",
        licence="CC-BY-SA-3.0 (Files: Help/* Media/* Projects; Massachusetts Institute of Technology)",
        paths=("usr/share/scratch/Media/Backgrounds/*/*.jpg",),
        exclude=tuple(f"{n}.jpg" for n in SCRATCH_LEFT_OUT),
        groups={"basketball-court1-a": "basketball-court1", "basketball-court1-b": "basketball-court1",
                "city-with-water": "city-with-water", "city-with-water2": "city-with-water"},
        source_prefix=("usr/share/scratch/", ""), expected=49),
    PhotoPackage(
        name="tuxpaint-data", version="1:0.9.28-sdl2-1",
        contents="Tux Paint's photo templates: cliff, corn maze, jellyfish, lighthouse, sheep, trees, waves, "
                 "bark and rock close-ups, a wool mill",
        licence="GPL-2+ (Files: *; Bill Kendrick, whom AUTHORS.txt credits with the templates)",
        paths=("usr/share/tuxpaint/templates/*.jpg",), exclude=("mossy_bark.jpg",), expected=18),
]}

EXCLUDED: dict[str, str] = {
    "mate-backgrounds": "reserved for independent evaluation: never downloaded or opened",
    "plasma-workspace-wallpapers": "reserved for independent evaluation: never downloaded or opened",
    "opencv-doc": "classic test images of unclear re-use rights",
    "lomiri-wallpapers-16.04:umang_by_Abhishek_Mudgal.jpg": "a render, not a photograph",
    "lomiri-wallpapers-16.04:analogpattern_by_Peter_Nerlich.jpg": "a tinted close-up texture, no scene",
    "lomiri-wallpapers-20.04:Fossa, Infinite-Sea, Painting-Colors": "renders and illustrations",
    "kphotoalbum:demo/CategoryImages/*": "128 px thumbnails of the demo photos",
    "lxqt-themes:Butterfly-Kenneth-Wimer.jpg, Valendas.png": "KDE-side origin, could overlap the reserved set",
    "lxqt-themes:other wallpapers": "renders and logos",
    "jigzo-data:penguin-3x2.pzl": "CC-BY-NC-SA-1.0 (non-commercial)",
    "sddm-theme-maldives:maldives.jpg": "screenshot of the login screen",
    "scribus-template:other templates": "thumbnails, drawings and small or grey pictures",
    "gcompris-qt-data:details paintings": "Van Gogh paintings (Night Cafe, Pere Tanguy, Auvers church, ...)",
    "gcompris-qt-data:other activities": "drawings, clip art, planets, cut-out paintings, photos under 400x300",
    "enlightenment-data:Dunes, Flat-Fan, Flat-Stone-Pattern, Paper-Flower, Squiggle*, Sunset-Hills":
        "illustrations and textures",
    "endless-sky-data:morgueFile photos": "the files only 'Files: images/land/*' covers, 'taken from "
                                          "morgue-file.com': morgueFile's licence is not an open licence",
    "endless-sky-data:" + ", ".join(ENDLESS_SKY_LEFT_OUT): "not natural photographs or heavily graded "
                                                          "(ENDLESS_SKY_LEFT_OUT)",
    "endless-sky-data:" + ", ".join(ENDLESS_SKY_UNCLEAR): "source unclear: only the broad pattern canyon0* covers "
                                                          "them (ENDLESS_SKY_UNCLEAR)",
    "scratch:" + ", ".join(SCRATCH_LEFT_OUT): "drawings, partly drawn, a painting, a black band (SCRATCH_LEFT_OUT)",
    "scratch:*.gif": "drawn backgrounds",
    "tuxpaint-data:mossy_bark.jpg": "black bars above and below the photo",
    "tuxpaint-data:starters/*": "line art; two small NOAA photos (448x376)",
}
"""What is left out of the registry, and why."""


# --------------------------------------------------------------------------------------------- fetching


def default_cache_dir() -> Path:
    """``$DEEPEXPOSE_PHOTOS`` if set, else ``~/.cache/deepexpose/photos``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deepexpose" / "photos"


class PhotoFetchError(RuntimeError):
    """Some packages could not be fetched. ``failures`` maps package -> reason; ``records`` holds the
    photos that are available (from the packages that worked and from the cache)."""

    def __init__(self, failures: Mapping[str, str], records: list[PhotoRecord]) -> None:
        self.failures = dict(failures)
        self.records = records
        lines = "\n".join(f"  {name}: {reason}" for name, reason in self.failures.items())
        super().__init__(f"{len(self.failures)} package(s) could not be fetched:\n{lines}")


Unpacker = Callable[[str, Path], tuple[Path, str]]
"""``unpack(package, workdir) -> (root of the unpacked package, version)``; ``workdir`` is empty."""


class AptUnpacker:
    """``apt-get download`` + ``dpkg-deb -x`` into ``workdir``; the .deb is deleted after unpacking.

    If a download fails because apt does not know the package (no package lists yet), ``apt-get update`` is
    run once (needs root) and the download retried.
    """

    def __init__(self) -> None:
        self.updated = False

    def __call__(self, package: str, workdir: Path) -> tuple[Path, str]:
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found: fetching {package} needs a Debian or Ubuntu system "
                                   "with apt")
        result = self._download(package, workdir)
        if result.returncode != 0 and not self.updated and re.search(
                r"Unable to locate package|has no installation candidate|Can't select", result.stderr):
            self.updated = True
            log.info("apt does not know %s: running apt-get update once", package)
            update = _run(["apt-get", "update"], workdir)
            if update.returncode != 0:
                log.warning("apt-get update failed (root needed?): %s", _tail(update.stderr))
            result = self._download(package, workdir)
        if result.returncode != 0:
            raise RuntimeError(f"apt-get download {package} failed: {_tail(result.stderr or result.stdout)}")
        debs = sorted(workdir.glob("*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"apt-get download {package} left {len(debs)} .deb files")
        version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], workdir, check=True).stdout.strip()
        root = workdir / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], workdir, check=True)
        debs[0].unlink()
        return root, version

    @staticmethod
    def _download(package: str, workdir: Path) -> subprocess.CompletedProcess[str]:
        log.info("apt-get download %s", package)
        return _run(["apt-get", "download", package], workdir)


def _run(cmd: list[str], cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {_tail(result.stderr)}")
    return result


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _selected(packages: Iterable[str] | None, include_large: bool) -> list[PhotoPackage]:
    if packages is None:
        return [p for p in PHOTO_PACKAGES.values() if include_large or not p.large]
    names = [n.strip() for n in packages if n.strip()]
    reserved = sorted(set(names) & RESERVED_PACKAGES)
    if reserved:
        raise ValueError(f"{', '.join(reserved)}: reserved for independent evaluation, never fetched")
    unknown = [n for n in names if n not in PHOTO_PACKAGES]
    if unknown:
        raise ValueError(f"unknown photo package(s) {', '.join(unknown)}; known: {', '.join(PHOTO_PACKAGES)}")
    return [PHOTO_PACKAGES[n] for n in dict.fromkeys(names)]


def fetch_photos(cache_dir: str | os.PathLike[str] | None = None, packages: Iterable[str] | None = None,
                 include_large: bool = False, *, unpack: Unpacker | None = None) -> list[PhotoRecord]:
    """Fetch the photos of ``packages`` (default: every registered package, the large ones only with
    ``include_large``) into ``cache_dir`` and return the records of all of them, cached ones included.

    Packages with a manifest are skipped. Each failing package is named, the others still run, and a
    :class:`PhotoFetchError` listing the failures (and holding the available records) is raised at the end.
    ``unpack`` replaces ``apt-get download`` + ``dpkg-deb -x`` (see :data:`Unpacker`), e.g. in tests.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    selected = _selected(packages, include_large)
    unpack = unpack or AptUnpacker()
    cache.mkdir(parents=True, exist_ok=True)
    failures = {}
    for pkg in selected:
        if (cache / pkg.name / MANIFEST).is_file():
            log.info("%s: cached", pkg.name)
            continue
        try:
            _fetch_one(pkg, cache, unpack)
        except Exception as e:  # noqa: BLE001 - reported per package, the others continue
            log.error("%s: %s", pkg.name, e)
            failures[pkg.name] = f"{type(e).__name__}: {e}"
    records = load_library(cache, packages=[p.name for p in selected if p.name not in failures])
    if failures:
        raise PhotoFetchError(failures, records)
    return records


def _fetch_one(pkg: PhotoPackage, cache: Path, unpack: Unpacker) -> None:
    """Unpack ``pkg``, write its photos and manifest into a temporary folder, then rename it into place."""
    target = cache / pkg.name
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{pkg.name}-", dir=cache))
    try:
        work, out = tmp / "work", tmp / "out"
        work.mkdir()
        out.mkdir()
        root, version = unpack(pkg.name, work)
        if version != pkg.version:
            log.warning("%s: version %s, surveyed %s: check the photos", pkg.name, version, pkg.version)
        copyright_file = root / "usr/share/doc" / pkg.name / "copyright"
        if not copyright_file.is_file():
            raise FileNotFoundError(f"no {copyright_file.relative_to(root)} in the package")
        copyright_text = copyright_file.read_text(encoding="utf-8", errors="replace")
        photos = _extract(pkg, root)
        entries = [_write_photo(pkg, photo, copyright_text, out) for photo in photos]
        (out / "copyright").write_text(copyright_text, encoding="utf-8")
        manifest = {
            "format": MANIFEST_FORMAT, "package": pkg.name, "version": version, "contents": pkg.contents,
            "licence_summary": pkg.licence, "copyright_file": "copyright", "photos": entries,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if target.exists():  # a folder without manifest: left by hand or an older layout
            log.warning("%s: replacing %s, which has no manifest", pkg.name, target)
            shutil.rmtree(target)
        os.rename(out, target)
        log.info("%s %s: %d photos", pkg.name, version, len(entries))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(pkg: PhotoPackage, root: Path) -> list[Photo]:
    files = []
    for pattern in pkg.paths:
        found = sorted(p for p in root.glob(pattern) if p.is_file() and p.name not in pkg.exclude)
        if not found and not any(fnmatch.fnmatchcase(Path(pattern).name, e) for e in pkg.exclude):
            raise FileNotFoundError(f"{pattern} matches nothing in the package")
        files += found
    photos = (pkg.extractor or _plain_files)(pkg, root, files)
    if not photos:
        raise ValueError("no photos extracted")
    names = [p.name for p in photos]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate photo names: {sorted({n for n in names if names.count(n) > 1})}")
    if pkg.expected and len(photos) != pkg.expected:
        log.warning("%s: %d photos, %d expected from the survey", pkg.name, len(photos), pkg.expected)
    return photos


def _write_photo(pkg: PhotoPackage, photo: Photo, copyright_text: str, out: Path) -> dict:
    licence, credit = _licence_and_credit(pkg, copyright_text, photo)
    with Image.open(io.BytesIO(photo.data)) as im:
        im.load()  # a corrupt photo fails here, before anything is cached
        width, height = im.size
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", photo.name) + photo.ext
    (out / filename).write_bytes(photo.data)
    return {
        "file": filename, "name": photo.name, "licence": licence, "credit": credit,
        "group": f"{pkg.name}:{pkg.groups.get(photo.name, photo.group or photo.name)}",
        "source": photo.source, "width": width, "height": height,
        "sha256": hashlib.sha256(photo.data).hexdigest(),
    }


# --------------------------------------------------------------------------------------------- library


def load_library(cache_dir: str | os.PathLike[str] | None = None, packages: Iterable[str] | None = None,
                 verify: bool = False) -> list[PhotoRecord]:
    """Records of the cached photos (all packages, or only ``packages``), sorted; reads manifests only.

    A listed file that is missing raises ``FileNotFoundError``; ``verify`` also checks every sha256.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    wanted = None if packages is None else set(packages)
    records = []
    for manifest in sorted(cache.glob(f"*/{MANIFEST}")):
        folder = manifest.parent
        if folder.name.startswith(".") or (wanted is not None and folder.name not in wanted):
            continue
        data = json.loads(manifest.read_text(encoding="utf-8"))
        for e in data["photos"]:
            path = folder / e["file"]
            if not path.is_file():
                raise FileNotFoundError(f"{path} is listed in {manifest} but missing")
            if verify and hashlib.sha256(path.read_bytes()).hexdigest() != e["sha256"]:
                raise ValueError(f"{path}: sha256 differs from {manifest}")
            records.append(PhotoRecord(path, data["package"], e["name"], e["licence"], e["credit"], e["group"]))
    return sorted(records, key=lambda r: (r.package, r.name))


def split_records(records: Sequence[PhotoRecord], holdout_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[PhotoRecord], list[PhotoRecord]]:
    """Split into ``(train, holdout)`` by scene group; about ``holdout_fraction`` of the photos are held out.

    Groups are ordered by a hash of ``seed`` and the group key, and taken into the held-out set until it has
    at least ``round(fraction * n)`` photos (never all groups when there are two or more). Depends only on the
    records' groups, not on their order, and adding a package moves few groups.
    """
    if not 0.0 <= holdout_fraction <= 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1], got {holdout_fraction}")
    groups = sorted({r.group for r in records},
                    key=lambda g: (hashlib.sha256(f"{seed}:{g}".encode()).hexdigest(), g))
    sizes = {g: 0 for g in groups}
    for r in records:
        sizes[r.group] += 1
    want = round(holdout_fraction * len(records))
    held: set[str] = set()
    count = 0
    for g in groups:
        if count >= want or (len(groups) > 1 and len(held) == len(groups) - 1):
            break
        held.add(g)
        count += sizes[g]
    key = lambda r: (r.package, r.name, str(r.path))  # noqa: E731
    train = sorted((r for r in records if r.group not in held), key=key)
    holdout = sorted((r for r in records if r.group in held), key=key)
    return train, holdout
