"""What a JPEG holds after its own photo, and writing it back after an edited photo.

Phone and camera JPEGs often carry more than one picture. After the photo's end-of-image marker come:

- further pictures listed by the photo's Multi-Picture Format index (CIPA DC-007 "MPF", an APP2 segment): a
  camera's large preview (Nikon, Canon, Sony, Pentax), the second view of a stereo camera, the HDR gain map of
  an Ultra HDR (Android) or Apple HDR photo;
- other data: a Google motion photo's video (an item of the GContainer listed in the photo's XMP), a depth map,
  Samsung's trailer, or padding.

:func:`read_trailer` splits these into :class:`Part` s, in file order; :func:`join` puts them after a new photo,
with the index's sizes and offsets made to fit (the rest of the index, attribute directories included, as it
was), and :func:`xmp_with_lengths` updates GContainer's ``Item:Length`` of a picture whose size changed. This
module works on bytes only; :mod:`deepexpose.io` decodes, turns and re-encodes the pictures.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

GAIN_MAP = "gain map"
PREVIEW = "preview"
VIEW = "view"
PICTURE = "picture"
DATA = "data"

_MP_KINDS = {0x010001: PREVIEW, 0x010002: PREVIEW,  # large thumbnails: VGA and full-HD equivalent
             0x020001: VIEW, 0x020002: VIEW, 0x020003: VIEW}  # multi-frame: panorama, disparity, multi-angle
_MPF = b"MPF\x00"
_MP_ENTRY = 0xB002
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_ISO_GAIN_MAP = b"urn:iso:std:iso:ts:21496:-1"  # ISO 21496-1 gain map metadata (APP2)
_GAIN_MAP_XMP = (b"hdrgm:", b"HDRGainMap")  # Adobe/Google Ultra HDR, Apple's HDR gain map


@dataclass(frozen=True)
class Part:
    """A piece of what follows the photo: ``kind`` is :data:`GAIN_MAP`, :data:`PREVIEW`, :data:`VIEW` (another
    view of the scene), :data:`PICTURE` (another picture of the index) or :data:`DATA` (bytes of no picture of the
    index). ``entry`` is a picture's number in the index (the photo is 0); ``orientation`` the EXIF orientation
    its pixels still need to stand upright, as the photo's did (1 once turned)."""

    kind: str
    data: bytes
    entry: int | None = None
    orientation: int = 1


@dataclass(frozen=True)
class Trailer:
    """Everything after a JPEG photo's end of image, in order (``parts``), the photo's MPF segment body (``mpf``,
    from ``MPF\\0``; ``None`` when the pictures are not indexed), and the photo's own marker segments that go with
    its pictures (``photo_segments``: ISO 21496-1's APP2, which announces a gain map), whole."""

    parts: tuple[Part, ...]
    mpf: bytes | None = None
    photo_segments: bytes = b""

    @property
    def pictures(self) -> tuple[Part, ...]:
        return tuple(p for p in self.parts if p.kind != DATA)

    def replace(self, part: Part, new: Part) -> Trailer:
        """The trailer with ``part`` (one of ``parts``, by identity) replaced by ``new``."""
        return Trailer(tuple(new if p is part else p for p in self.parts), self.mpf, self.photo_segments)

    def describe(self) -> list[str]:
        """A line per part, for a person: ``gain map (1.2 kB)``."""
        return [f"{p.kind} ({_size(len(p.data))})" for p in self.parts]


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1000 else f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"


def jpeg_end(data: bytes, start: int) -> int | None:
    """End offset (exclusive) of the JPEG that starts at ``start`` (its end-of-image marker), found by walking
    its markers and skipping each scan's entropy-coded data (ITU-T T.81 B.1.1); ``None`` if it has none."""
    i, n = start + 2, len(data)
    while i + 2 <= n:  # an end-of-image marker may be the last two bytes
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            return i + 2
        if marker == 0xD8:  # a second start of image: not one JPEG
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:  # start of scan: skip entropy-coded data up to the next real marker
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return None
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    i = j + 2
                elif nxt == 0xFF:
                    i = j + 1
                else:
                    i = j
                    break
    return None


def segments(data: bytes, start: int = 0) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each marker segment of the JPEG at ``start`` from its SOI up to and including
    its start of scan (SOI itself not given)."""
    i = start + 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        yield marker, i, end
        if marker == 0xDA:
            return
        i = end


def _mp_index(body: bytes) -> tuple[str, int, list[tuple[int, int, int]]] | None:
    """An MPF segment body's byte order, where its MP entries start in the body, and each entry's
    ``(attribute, size, offset)``; ``None`` when it is not a readable index."""
    tiff = body[4:]
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(tiff[:4])
    if order is None or len(tiff) < 10:
        return None
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return None
    for k in range(struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]):
        at = ifd + 2 + 12 * k
        if at + 12 > len(tiff):
            return None
        tag, _, count, value = struct.unpack(order + "HHII", tiff[at:at + 12])
        if tag == _MP_ENTRY:
            if count % 16 or value + count > len(tiff) or count < 16:
                return None
            entries = [struct.unpack(order + "III", tiff[value + j:value + j + 12]) for j in range(0, count, 16)]
            return order, 4 + value, entries
    return None


def _kind(entry: tuple[int, int, int], picture: bytes) -> str:
    kind = _MP_KINDS.get(entry[0] & 0xFFFFFF)
    if kind:
        return kind
    return GAIN_MAP if is_gain_map(picture) else PICTURE


def is_gain_map(picture: bytes) -> bool:
    """True for a JPEG that describes itself as an HDR gain map: XMP of Ultra HDR (``hdrgm:``) or Apple
    (``HDRGainMap``), or ISO 21496-1 metadata."""
    for marker, start, end in segments(picture):
        body = picture[start + 4:end]
        if marker == 0xE1 and body.startswith(_XMP) and any(k in body for k in _GAIN_MAP_XMP):
            return True
        if marker == 0xE2 and body.startswith(_ISO_GAIN_MAP):
            return True
    return False


def read_trailer(data: bytes, end: int, orientation: int = 1) -> Trailer | None:
    """What follows the JPEG photo that ends at ``end`` in ``data`` (:func:`jpeg_end`); ``None`` when nothing does,
    or only zero bytes (padding). Pictures of the photo's MPF index become parts of their own (their
    ``orientation`` that of the photo); a picture whose size does not end it where it ends (Pillow's MPO writer
    gets the sizes wrong from the third picture on) is measured by its markers; an index whose pictures are not
    all whole JPEGs after the photo is dropped, and everything after the photo is kept as data."""
    if not data[end:].strip(b"\x00"):
        return None
    iso = b"".join(data[s:e] for m, s, e in segments(data) if m == 0xE2 and data[s + 4:e].startswith(_ISO_GAIN_MAP))
    at, mpf = next(((s, data[s + 4:e]) for m, s, e in segments(data) if m == 0xE2 and data[s + 4:s + 8] == _MPF),
                   (0, None))
    index = _mp_index(mpf) if mpf is not None else None
    if index is not None:
        base = at + 8  # the index's TIFF header, after the marker, the length and "MPF\0": offsets count from it
        spans = sorted((base + off, base + off + size, k) for k, (_, size, off) in enumerate(index[2])
                       if k and size)
        parts: list[Part] = []
        at = end
        for start, stop, k in spans:
            if stop > len(data) or data[stop - 2:stop] != b"\xff\xd9":
                stop = jpeg_end(data, start) or stop
            if start < at or stop > len(data) or data[start:start + 2] != b"\xff\xd8":
                parts = []
                break
            if start > at:
                parts.append(Part(DATA, data[at:start]))
            picture = data[start:stop]
            parts.append(Part(_kind(index[2][k], picture), picture, k, orientation))
            at = stop
        else:
            if at < len(data):
                parts.append(Part(DATA, data[at:]))
            return Trailer(tuple(parts), mpf, iso)
    return Trailer((Part(DATA, data[end:]),))


def join(photo: bytes, trailer: Trailer) -> bytes:
    """A JPEG ``photo`` (without an MPF segment of its own) followed by ``trailer``: with its MPF index, placed
    after the photo's APPn and COM segments (after ``trailer.photo_segments``), each picture's size and offset and
    the photo's size made to fit."""
    tail = b"".join(p.data for p in trailer.parts)
    index = _mp_index(trailer.mpf) if trailer.mpf is not None else None
    if index is None:
        return photo + tail
    order, entries_at, entries = index
    at = 2
    for marker, start, end in segments(photo):
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            break
        at = end
    body = bytearray(trailer.mpf)
    extra = trailer.photo_segments
    size = len(photo) + len(extra) + 4 + len(body)
    base = at + len(extra) + 8  # the index's TIFF header
    places = {0: (size, 0)}
    pos = size
    for p in trailer.parts:
        if p.entry is not None:
            places[p.entry] = (len(p.data), pos - base)
        pos += len(p.data)
    for k, (_, old_size, old_offset) in enumerate(entries):
        new_size, new_offset = places.get(k, (old_size, old_offset))
        struct.pack_into(order + "II", body, entries_at + 16 * k + 4, new_size, new_offset)
    segment = b"\xff\xe2" + struct.pack(">H", len(body) + 2) + bytes(body)
    return photo[:at] + extra + segment + photo[at:] + tail


def xmp_with_lengths(xmp: bytes | None, changes: Sequence[tuple[int, int]]) -> bytes | None:
    """``xmp`` with GContainer's ``Item:Length`` (Google's container of an Ultra HDR or motion photo: how many
    bytes each appended item has) changed from ``old`` to ``new`` for each ``(old, new)`` of ``changes``, where
    exactly one item has the old length."""
    if not xmp:
        return xmp
    for old, new in changes:
        if old == new:
            continue
        pattern = re.compile(rb"(Item:Length\s*=\s*[\"']|<Item:Length>\s*)%d(?=[\"'<\s])" % old)
        if len(pattern.findall(xmp)) == 1:
            xmp = pattern.sub(lambda m: m.group(1) + b"%d" % new, xmp)
    return xmp
