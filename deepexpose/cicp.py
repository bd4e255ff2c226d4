"""Colour described by code points (ITU-T H.273 "CICP": colour primaries, transfer characteristics, matrix
coefficients, full-range flag), as HEIF and AVIF files store it in an ``nclx`` colour box instead of an ICC
profile, and the ICC profile that describes the same colours.

:func:`icc_profile` writes an ICC v4 display profile (ICC.1:2022, a matrix/TRC profile as Apple's Display P3
profile is): the primaries' RGB-to-XYZ matrix (SMPTE RP 177) adapted to the D50 connection space by Bradford's
transform (ICC.1 Annex E, recorded in a ``chad`` tag), and the transfer as a parametric curve. Transfers given
for a camera (BT.709, BT.601, BT.2020) are described by their inverse OETF, as browsers (skcms) read them.
No profile is made for sRGB (the default every reader assumes), for unspecified values, for code points not
listed here, or for HDR transfers (PQ, HLG), which a matrix/TRC profile cannot hold.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import NamedTuple

import numpy as np

__all__ = ["HDR_TRANSFERS", "Chromaticities", "Cicp", "gamma_profile", "icc_profile", "plausible",
           "rgb_profile_from_gray", "rgb_to_xyz"]

HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
"""H.273 transfer characteristics of high dynamic range: SMPTE ST 2084 (PQ) and ARIB STD-B67 (HLG)."""

_UNSPECIFIED = 2
_SRGB_PRIMARIES, _SRGB_TRANSFER = 1, 13
_D65, _ILLUMINANT_C = (0.3127, 0.3290), (0.310, 0.316)
Chromaticities = tuple[tuple[tuple[float, float], tuple[float, float], tuple[float, float]], tuple[float, float]]
"""Red, green and blue (x, y) and the white point's (x, y)."""
# H.273 table 2: red, green and blue (x, y) and the white point.
_PRIMARIES = {
    1: ("BT.709", ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)), _D65),
    4: ("BT.470 System M", ((0.670, 0.330), (0.210, 0.710), (0.140, 0.080)), _ILLUMINANT_C),
    5: ("BT.601 625", ((0.640, 0.330), (0.290, 0.600), (0.150, 0.060)), _D65),
    6: ("BT.601 525", ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)), _D65),
    7: ("SMPTE 240M", ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070)), _D65),
    8: ("Generic film", ((0.681, 0.319), (0.243, 0.692), (0.145, 0.049)), _ILLUMINANT_C),
    9: ("BT.2020", ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), _D65),
    11: ("DCI-P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), (0.314, 0.351)),
    12: ("Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), _D65),
    22: ("EBU 3213", ((0.630, 0.340), (0.295, 0.605), (0.155, 0.077)), _D65),
}
# H.273 table 3 as ICC parametric curves (function type, parameters): type 0 is Y = X^g, type 3 is
# Y = (aX + b)^g for X >= d, else cX.
_BT709 = (3, (1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081))
_TRANSFERS = {
    1: ("BT.709", _BT709),
    4: ("gamma 2.2", (0, (2.2,))),
    5: ("gamma 2.8", (0, (2.8,))),
    6: ("BT.601", _BT709),
    7: ("SMPTE 240M", (3, (1 / 0.45, 1 / 1.1115, 0.1115 / 1.1115, 1 / 4.0, 0.0913))),
    8: ("linear", (0, (1.0,))),
    13: ("sRGB", (3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))),
    14: ("BT.2020", _BT709),
    15: ("BT.2020", _BT709),
}
_D50 = np.array([0.9642, 1.0, 0.8249])  # the ICC connection space's white (ICC.1 7.2.16)
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


class Cicp(NamedTuple):
    """H.273 code points: ``primaries`` (1 BT.709, 9 BT.2020, 12 Display P3...), ``transfer`` (13 sRGB, 1 BT.709,
    16 PQ, 18 HLG...), ``matrix`` (the YCbCr matrix of the coded picture; 0 for RGB) and ``full_range``."""

    primaries: int
    transfer: int
    matrix: int
    full_range: bool

    @property
    def hdr(self) -> str | None:
        """``"PQ"`` or ``"HLG"`` for an HDR transfer, else ``None``."""
        return HDR_TRANSFERS.get(self.transfer)

    def describe(self) -> str:
        """The primaries and transfer in words, e.g. ``"Display P3 primaries, sRGB transfer"``."""
        primaries = _PRIMARIES[self.primaries][0] + " primaries" if self.primaries in _PRIMARIES else \
            f"primaries {self.primaries}"
        transfer = HDR_TRANSFERS.get(self.transfer) or _TRANSFERS.get(self.transfer, (None,))[0]
        return f"{primaries}, {f'{transfer} transfer' if transfer else f'transfer {self.transfer}'}"


def icc_profile(cicp: Cicp | None, grey: bool = False) -> bytes | None:
    """An ICC v4 profile describing RGB (or, ``grey``, gray: the transfer only) coded as ``cicp`` says; ``None``
    where none is needed or possible (see the module notes)."""
    if cicp is None:
        return None
    primaries = _SRGB_PRIMARIES if cicp.primaries == _UNSPECIFIED else cicp.primaries
    transfer = _SRGB_TRANSFER if cicp.transfer == _UNSPECIFIED else cicp.transfer
    if transfer not in _TRANSFERS or (not grey and primaries not in _PRIMARIES):
        return None
    if transfer == _SRGB_TRANSFER and (grey or primaries == _SRGB_PRIMARIES):
        return None
    return _build(None if grey else primaries, transfer)


def rgb_to_xyz(primaries: int | Chromaticities) -> np.ndarray:
    """The 3 x 3 matrix from linear RGB with these H.273 primaries (or these chromaticities) to CIE XYZ (white
    Y = 1), SMPTE RP 177."""
    (r, g, b), white = _PRIMARIES[primaries][1:] if isinstance(primaries, int) else primaries
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in (r, g, b)]).T
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return xyz * np.linalg.solve(xyz, w)


def _adaptation(white: tuple[float, float]) -> np.ndarray:
    """Bradford's chromatic adaptation from ``white`` (x, y) to D50."""
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    scale = (_BRADFORD @ _D50) / (_BRADFORD @ w)
    return np.linalg.inv(_BRADFORD) @ np.diag(scale) @ _BRADFORD


def _s15(values: np.ndarray | tuple[float, ...]) -> bytes:
    """s15Fixed16Number values (ICC.1 4.6), big-endian."""
    return b"".join(struct.pack(">i", int(round(float(v) * 65536))) for v in np.ravel(values))


def _mluc(text: str) -> bytes:
    """A ``multiLocalizedUnicodeType`` with one en-US record."""
    body = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(body), 28) + body


@functools.cache
def _build(primaries: int | None, transfer: int) -> bytes:
    """The profile bytes: an RGB matrix/TRC profile, or with ``primaries`` ``None`` a gray TRC one."""
    function, params = _TRANSFERS[transfer][1]
    curve = b"para" + bytes(4) + struct.pack(">HH", function, 0) + _s15(params)
    name = f"{_TRANSFERS[transfer][0]} gray" if primaries is None else Cicp(primaries, transfer, 0, True).describe()
    return _assemble(f"deepexpose: {name} (from H.273 code points)", primaries, curve)


def rgb_profile_from_gray(gray: bytes) -> bytes | None:
    """An RGB ICC profile under which ``R = G = B = v`` is the colour the gray ICC profile ``gray`` gives ``v``
    (its ``kTRC`` curve for all three channels, sRGB's colorants adapted to D50, which add up to the D50 white):
    for a gray photo written as RGB (WebP, HEIC), where its own profile cannot go. ``None`` when ``gray`` is not a
    gray profile with a ``kTRC`` tag and the XYZ connection space (in a Lab one the curve gives L*, not Y)."""
    if len(gray) < 132 or gray[16:20] != b"GRAY" or gray[20:24] != b"XYZ ":
        return None
    count = struct.unpack(">I", gray[128:132])[0]
    for k in range(min(count, (len(gray) - 132) // 12)):
        sig, offset, size = struct.unpack(">4sII", gray[132 + 12 * k:144 + 12 * k])
        if sig == b"kTRC" and offset + size <= len(gray):
            return _assemble("deepexpose: RGB with the curve of a gray profile", _SRGB_PRIMARIES,
                             gray[offset:offset + size])
    return None


def gamma_profile(exponent: float, grey: bool = False, chromaticities: Chromaticities | None = None) -> bytes:
    """An RGB ICC profile with sRGB's primaries, or ``chromaticities`` (or, ``grey``, a gray profile), and the pure
    power curve ``light = code ** exponent``: what a PNG's ``gAMA`` chunk (its value ``1 / exponent``) and ``cHRM``
    chunk say where it has no profile, ``sRGB`` or ``cICP`` chunk (PNG 3rd edition, 11.3.2.2 and 11.3.2.3).
    ``ValueError`` for an exponent or chromaticities that describe no display (see :func:`plausible`)."""
    if not 0.1 <= exponent <= 10:
        raise ValueError(f"a gamma exponent of {exponent} describes no display")
    curve = b"para" + bytes(4) + struct.pack(">HH", 0, 0) + _s15((exponent,))
    if grey or chromaticities is None:
        what = "gray" if grey else "sRGB primaries"
        return _assemble(f"deepexpose: {what}, gamma {exponent:.3g} (from a PNG gAMA chunk)",
                         None if grey else _SRGB_PRIMARIES, curve)
    if not plausible(chromaticities):
        raise ValueError(f"chromaticities {chromaticities} describe no display")
    return _assemble(f"deepexpose: gamma {exponent:.3g} with the primaries of a PNG cHRM chunk", chromaticities,
                     curve)


def plausible(chromaticities: Chromaticities) -> bool:
    """Whether red, green, blue and white (x, y) can describe a display: each in the chromaticity diagram's
    triangle (x, y > 0, x + y < 1), the white inside the primaries' triangle, so that every colorant comes out
    positive."""
    (r, g, b), white = chromaticities
    points = (r, g, b, white)
    if not all(x > 0 and y > 0 and x + y < 1 for x, y in points):
        return False
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in (r, g, b)]).T
    if abs(np.linalg.det(xyz)) < 1e-6:
        return False
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return bool((np.linalg.solve(xyz, w) > 0).all())


def _assemble(description: str, primaries: int | Chromaticities | None, curve: bytes) -> bytes:
    """An ICC v4 display profile: RGB matrix/TRC with the colorants of ``primaries`` (H.273 code point or
    chromaticities; adapted to D50) and ``curve`` for each channel, or with ``primaries`` ``None`` gray with
    ``curve`` as its ``kTRC``."""
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _mluc(description)),
        (b"cprt", _mluc("No copyright, use freely")),
        (b"wtpt", b"XYZ " + bytes(4) + _s15(_D50)),
    ]
    if primaries is None:
        tags.append((b"kTRC", curve))
    else:
        white = _PRIMARIES[primaries][2] if isinstance(primaries, int) else primaries[1]
        adapt = _adaptation(white)
        matrix = adapt @ rgb_to_xyz(primaries)
        tags.append((b"chad", b"sf32" + bytes(4) + _s15(adapt)))
        tags += [(sig, b"XYZ " + bytes(4) + _s15(matrix[:, i])) for i, sig in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
        tags += [(sig, curve) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    table, data, offsets = b"", b"", {}
    start = 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        if body not in offsets:  # the three TRC tags share one curve
            offsets[body] = start + len(data)
            data += body + bytes(-len(body) % 4)
        table += struct.pack(">4sII", sig, offsets[body], len(body))
    size = start + len(data)
    header = struct.pack(">I4sI4s4s4s6H4s4sIII8sI", size, b"", 0x04300000, b"mntr", b"GRAY" if primaries is None
                         else b"RGB ", b"XYZ ", 2026, 1, 1, 0, 0, 0, b"acsp", b"", 0, 0, 0, bytes(8), 0)
    header += _s15(_D50) + bytes(4)  # the connection space's illuminant; creator
    profile = header + bytes(16) + bytes(28) + struct.pack(">I", len(tags)) + table + data
    # the profile ID: MD5 of the profile with its flags, rendering intent and ID set to zero (ICC.1 7.2.18)
    digest = hashlib.md5(profile).digest()
    return profile[:84] + digest + profile[100:]
