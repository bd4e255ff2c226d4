"""Colour look-up tables: the per-pixel part of an edit baked into shaper curves plus a 3D LUT.

A :class:`ColorLUT` applies ``stage3d(shaper(x))``: three per-channel 1D *shaper* curves (the edit's leading
filters that act on each channel alone, :attr:`deepexpose.filters.Filter.per_channel`) followed by a 3D LUT
of the remaining, cross-channel filters (saturation), every table computed by calling the filter code itself.
A plain 65^3 LUT of a whole edit is off by up to 5/255 (moderate edits; 13/255 at the ends of the
parameter ranges) next to the clipping kinks of the curves; the curves are therefore tabulated *exactly* at
every 8-bit (256) or 16-bit (65536) code, and on a fine grid spaced in ``sqrt(x)`` (65536 entries, linear
interpolation) for float input. The 3D stage interpolates trilinearly,
except that a table which is the clip of an affine map (saturation is ``clip(Y + f (x - Y))``) is recognised
when baked and applied as that 3 x 4 matrix: trilinear interpolation of such a table is exact only away
from its clipping planes (33^3: 3/255 off near them, 65^3: 2/255), the matrix is exact everywhere.

``.cube`` files follow the Adobe Cube LUT Specification 1.0 (``TITLE``, ``LUT_3D_SIZE``, ``DOMAIN_MIN`` /
``DOMAIN_MAX``, then N^3 lines ``r g b`` with red varying fastest), which DaVinci Resolve and other graders
load; plain graders have no shaper, so :func:`write_cube` samples the *whole* per-pixel function directly
with the filter code at the grid points.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .filters import FilterPipeline
from .io import atomic_write_bytes

__all__ = ["ColorLUT", "CubeError", "bake_function", "bake_pipeline", "identity_grid", "quantize_codes",
           "read_cube", "torch_single_threaded", "toward_identity", "write_cube"]

FINE_LEVELS = 65536
"""Entries of the sqrt-spaced shaper table used for float input (``x_i = (i / 65535) ** 2``)."""

_AFFINE_TOL = 1e-5  # a table within this of clip(affine) (at grid points and cell centres) is taken as affine
_CHUNK = 1 << 20  # pixels per slice when applying to large arrays

Fn = Callable[[Tensor], Tensor]
"""A colour mapping on ``B x 3 x H x W`` float tensors in [0, 1]."""


class CubeError(ValueError):
    """A malformed ``.cube`` file (``.path`` and ``.line`` say where) or an unwritable table."""

    def __init__(self, path: str | os.PathLike[str] | None, reason: str, line: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.reason = reason
        where = f"'{self.path}'" + (f", line {line}" if line is not None else "")
        super().__init__(f"bad .cube file {where}: {reason}")


@contextlib.contextmanager
def torch_single_threaded() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block (restored afterwards).

    The tables here are small, and on a shared machine torch's OpenMP workers can wait on each other for a
    scheduler time slice per operation (measured: 0.1 s for a 36k-point saturation with 2 threads on 2 busy
    cores, 1 ms with one); callers that want parallelism split the work into their own threads.
    """
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def identity_grid(size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``size^3`` lattice points as a ``1 x 3 x 1 x size^3`` tensor, red varying fastest, then green."""
    v = torch.linspace(0.0, 1.0, size, dtype=torch.float64).to(dtype)
    out = torch.empty(3, size, size, size, dtype=dtype)
    out[0], out[1], out[2] = v.view(1, 1, size), v.view(1, size, 1), v.view(size, 1, 1)
    return out.view(1, 3, 1, -1)


def toward_identity(table: np.ndarray, strength: float) -> np.ndarray:
    """``grid + strength * (table - grid)`` at every lattice point of an ``N x N x N x 3`` table (``[b, g, r]``):
    the LUT of ``deepexpose enhance --strength``, which blends each output pixel toward its input the same way,
    so the blended table is exact wherever the table is (trilinear interpolation is linear too)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    n = table.shape[0]
    v = np.linspace(0.0, 1.0, n)
    grid = np.empty(table.shape, dtype=np.float64)
    grid[..., 0], grid[..., 1], grid[..., 2] = v[None, None, :], v[None, :, None], v[:, None, None]
    return (grid + strength * (table.astype(np.float64) - grid)).astype(table.dtype)


def _lattice(fn: Fn, size: int) -> np.ndarray:
    """``fn`` at the ``size^3`` lattice as a ``size x size x size x 3`` float32 table ``[b, g, r]``, a few
    blue planes at a time (bounded memory)."""
    v = torch.linspace(0.0, 1.0, size, dtype=torch.float64).to(torch.float32)
    table = np.empty((size, size, size, 3), np.float32)
    step = max(1, _CHUNK // (size * size))
    for b0 in range(0, size, step):
        nb = min(step, size - b0)
        pts = torch.empty(3, nb, size, size)
        pts[0], pts[1], pts[2] = v.view(1, 1, size), v.view(1, size, 1), v[b0:b0 + nb].view(nb, 1, 1)
        table[b0:b0 + nb] = _evaluate(fn, pts.view(1, 3, 1, -1)).reshape(nb, size, size, 3)
    return table


def _evaluate(fn: Fn, points: Tensor) -> np.ndarray:
    """``fn`` at ``1 x 3 x 1 x P`` points, as a ``P x 3`` float32 array, in slices of bounded size."""
    out = []
    with torch.no_grad():
        for i in range(0, points.shape[-1], _CHUNK):
            y = fn(points[..., i:i + _CHUNK])
            if not isinstance(y, Tensor) or y.shape != points[..., i:i + _CHUNK].shape:
                raise ValueError(f"the colour function must return a 1 x 3 x 1 x P tensor like its input, got "
                                 f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}")
            out.append(y[0, :, 0].T.to(torch.float32))
    return torch.cat(out).numpy()


@dataclass(eq=False)
class ColorLUT:
    """``stage3d(shaper(x))`` on RGB in [0, 1]: per-channel shaper curves, then a 3D LUT (see the module notes).

    ``table`` is ``N x N x N x 3`` float32 indexed ``[b, g, r]`` (so ``table.reshape(-1, 3)`` lists the lattice
    with red varying fastest, the ``.cube`` order), the samples of ``cross`` at the lattice points, or ``None``
    when the 3D stage is the identity. ``shaper`` and ``cross`` are the exact functions (filter code) the
    tables were computed from; a LUT read from a file has neither. ``affine`` (3 x 4, set when baking) means
    ``stage3d(s) = clip(affine[:, :3] @ s + affine[:, 3], 0, 1)`` exactly. Input is clamped to the domain.
    """

    size: int
    table: np.ndarray | None = None
    shaper: Fn | None = None
    cross: Fn | None = None
    affine: np.ndarray | None = None
    title: str = ""
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    _curves: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------------------------------- tables

    def curves(self, levels: int) -> np.ndarray:
        """The shaper at the ``levels`` codes ``i / (levels - 1)`` (256 or 65536: exact at every 8- or 16-bit
        code), as a ``3 x levels`` float32 array; computed once, with the filter code."""
        if levels not in self._curves:
            x = torch.arange(levels, dtype=torch.float32) / (levels - 1)  # the floats read_image makes
            self._curves[levels] = self.shape_values(x)
        return self._curves[levels]

    def fine_curves(self) -> np.ndarray:
        """The shaper on the sqrt-spaced grid ``x_i = (i / 65535) ** 2`` (``3 x 65536`` float32), for float
        input: linear interpolation in ``sqrt(x)`` keeps power curves near black (gamma) accurate."""
        key = -FINE_LEVELS
        if key not in self._curves:
            u = torch.linspace(0.0, 1.0, FINE_LEVELS, dtype=torch.float64)
            self._curves[key] = self.shape_values((u * u).to(torch.float32))
        return self._curves[key]

    def shape_values(self, x: Tensor) -> np.ndarray:
        """The shaper curves at the float values ``x`` (1D tensor of n values): ``3 x n`` float32."""
        x = x.to(torch.float32).reshape(-1)
        if self.shaper is None:
            return np.repeat(x.numpy()[None], 3, axis=0)
        with torch.no_grad(), torch_single_threaded():
            y = self.shaper(x.view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous())
        return np.ascontiguousarray(y[0, :, 0].to(torch.float32).numpy())

    @property
    def is_identity(self) -> bool:
        """True when both stages are the identity (the LUT changes nothing)."""
        return self.shaper is None and self.table is None and self.cross is None

    # ----------------------------------------------------------------------------------------- applying

    def __call__(self, x):
        return self.apply(x)

    def apply(self, x, *, exact: bool = False):
        """Apply to a float tensor ``B x 3 x H x W`` in [0, 1] (same dtype back) or to a numpy ``... x 3``
        array: ``uint8`` / ``uint16`` codes (same dtype back, rounded to nearest) or floats in [0, 1]. A float
        pixel with a NaN channel comes back NaN in every channel.

        ``exact`` evaluates a 3D stage that is not a clipped affine map with its own function (the filter
        code) instead of interpolating the table, where the function is known.
        """
        if isinstance(x, Tensor):
            return self._apply_tensor(x, exact)
        a = np.asarray(x)
        if a.ndim < 1 or a.shape[-1] != 3:
            raise ValueError(f"expected ... x 3 pixels, got shape {a.shape}")
        if a.dtype in (np.uint8, np.uint16):
            return self._apply_codes(a, exact)
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"pixels must be uint8, uint16 or floating point, got {a.dtype}")
        flat = a.reshape(-1, 3)
        out = np.empty(flat.shape, a.dtype)
        for i in range(0, flat.shape[0], _CHUNK):
            t = torch.from_numpy(np.ascontiguousarray(flat[i:i + _CHUNK].T, dtype=np.float32))[None, :, None]
            out[i:i + _CHUNK] = self._apply_tensor(t, exact)[0, :, 0].T.numpy()
        return out.reshape(a.shape)

    def _normalise_domain(self, x: Tensor) -> Tensor:
        if self._unit_domain:
            return x.clamp(0.0, 1.0)
        lo = torch.tensor(self.domain_min, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        hi = torch.tensor(self.domain_max, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    def _apply_tensor(self, x: Tensor, exact: bool = False) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(f"expected a float B x 3 x H x W tensor, got {tuple(x.shape)} {x.dtype}")
        nan = torch.isnan(x).any(dim=1, keepdim=True)  # such a pixel is passed through, as the filters do
        if has_nan := bool(nan.any()):
            x = torch.where(nan, torch.zeros_like(x), x)
        s = self._normalise_domain(x)
        if self.shaper is not None:
            fine = torch.from_numpy(self.fine_curves()).to(device=x.device, dtype=torch.float32)
            pos = s.to(torch.float32).sqrt() * (FINE_LEVELS - 1)
            i0 = pos.floor().clamp(max=FINE_LEVELS - 2)
            frac = pos - i0
            i0 = i0.long()
            lo = torch.stack([fine[c][i0[:, c]] for c in range(3)], dim=1)
            hi = torch.stack([fine[c][i0[:, c] + 1] for c in range(3)], dim=1)
            s = torch.lerp(lo, hi, frac)
        out = self._stage3d_tensor(s, exact).to(x.dtype)
        return torch.where(nan, torch.full_like(out, float("nan")), out) if has_nan else out

    def _stage3d_tensor(self, s: Tensor, exact: bool = False) -> Tensor:
        if exact and self.affine is None and self.cross is not None:
            with torch.no_grad():
                return self.cross(s.to(torch.float32)).clamp(0.0, 1.0).to(s.dtype)
        if self.affine is not None:
            m = torch.from_numpy(self.affine).to(device=s.device, dtype=torch.float64)
            sd = s.double()
            y = m[:, 3].view(1, 3, 1, 1) + sum(m[:, j].view(1, 3, 1, 1) * sd[:, j:j + 1] for j in range(3))
            return y.clamp(0.0, 1.0).to(s.dtype)
        if self.table is None:
            return s
        lut = torch.from_numpy(self.table).to(device=s.device, dtype=torch.float32).permute(3, 0, 1, 2)[None]
        b, _, h, w = s.shape
        grid = (s.to(torch.float32).permute(0, 2, 3, 1).reshape(b, 1, 1, h * w, 3) * 2.0 - 1.0)
        out = F.grid_sample(lut.expand(b, -1, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                            align_corners=True)
        return out.reshape(b, 3, h, w).to(s.dtype)

    def stage3d(self, values: np.ndarray, *, exact: bool = False) -> np.ndarray:
        """The 3D stage on shaped float32 values ``... x 3`` (a new float32 array; an affine stage or none is
        clipped to [0, 1], a table's values are interpolated as they are); ``exact`` as in :meth:`apply`."""
        flat = np.asarray(values, dtype=np.float32).reshape(-1, 3)
        if self.affine is not None:  # elementwise: no BLAS call (whose threads misbehave on busy machines)
            m = self.affine.astype(np.float32)
            out = np.empty_like(flat)
            for c in range(3):
                col = out[:, c]
                np.multiply(flat[:, 0], m[c, 0], out=col)
                col += flat[:, 1] * m[c, 1]
                col += flat[:, 2] * m[c, 2]
                col += m[c, 3]
            np.clip(out, 0.0, 1.0, out=out)
            return out.reshape(np.shape(values))
        if self.table is None:
            return np.clip(flat, 0.0, 1.0).reshape(np.shape(values))
        out = np.empty_like(flat)
        for i in range(0, flat.shape[0], _CHUNK):
            t = torch.from_numpy(np.ascontiguousarray(flat[i:i + _CHUNK].T))[None, :, None]
            out[i:i + _CHUNK] = self._stage3d_tensor(t, exact)[0, :, 0].T.numpy()
        return out.reshape(np.shape(values))

    def _apply_codes(self, a: np.ndarray, exact: bool = False) -> np.ndarray:
        top = 255 if a.dtype == np.uint8 else 65535
        if not self._unit_domain:
            return quantize_codes(self.apply(a.astype(np.float32) / np.float32(top)), a.dtype)
        curves = self.curves(top + 1)
        flat = a.reshape(-1, 3)
        out = np.empty_like(flat)
        if self.affine is None and self.table is None:  # curves only: one lookup of the output code
            for c in range(3):
                codes_out = quantize_codes(curves[c], a.dtype)
                for i in range(0, flat.shape[0], _CHUNK):
                    out[i:i + _CHUNK, c] = np.take(codes_out, flat[i:i + _CHUNK, c])
            return out.reshape(a.shape)
        for i in range(0, flat.shape[0], _CHUNK):
            codes = flat[i:i + _CHUNK]
            s = np.empty(codes.shape, np.float32)
            for c in range(3):
                s[:, c] = curves[c][codes[:, c]]
            out[i:i + _CHUNK] = quantize_codes(self.stage3d(s, exact=exact), a.dtype)
        return out.reshape(a.shape)

    # ----------------------------------------------------------------------------------------- sampling

    def sample(self, size: int | None = None) -> np.ndarray:
        """The whole per-pixel function at the ``size^3`` lattice (``size x size x size x 3`` float32,
        ``[b, g, r]``), evaluated directly with the filter code when known (no shaper needed by the reader)."""
        size = self.size if size is None else _check_size(size)
        if self.table is not None and self.cross is None:  # read from a file: only the table is known
            if size == self.size and self._unit_domain:
                return self.table.copy()
            return _lattice(lambda x: self._apply_tensor(x), size)

        def whole(x: Tensor) -> Tensor:
            y = self.shaper(x) if self.shaper is not None else x
            return self.cross(y) if self.cross is not None else y

        with torch_single_threaded():
            return _lattice(whole, size)

    @property
    def _unit_domain(self) -> bool:
        return tuple(self.domain_min) == (0.0, 0.0, 0.0) and tuple(self.domain_max) == (1.0, 1.0, 1.0)


def quantize_codes(values: np.ndarray, dtype) -> np.ndarray:
    """Floats in [0, 1] to ``uint8`` / ``uint16`` codes, ``floor(clip(v) * top + 0.5)`` (as io.quantize)."""
    top = 255 if np.dtype(dtype) == np.uint8 else 65535
    v = np.multiply(values, np.float32(top), dtype=np.float32)
    v += np.float32(0.5)
    np.clip(v, 0.0, top + 0.5, out=v)
    return v.astype(dtype)


# --------------------------------------------------------------------------------------------- baking


def _clip_affine(table: np.ndarray, fn: Fn | None) -> np.ndarray | None:
    """A 3 x 4 ``M`` with ``table == clip(M [x; 1], 0, 1)`` at every lattice point (and ``fn`` between them),
    else None. Each output channel is fitted by least squares where it is not clipped, on a sub-lattice of at
    most 17^3 points, then checked everywhere (plane by plane: bounded memory, no BLAS threads)."""
    size = table.shape[0]
    v = np.linspace(0.0, 1.0, size)
    sub = np.unique(np.linspace(0, size - 1, min(size, 17)).round().astype(int))
    b, g, r = np.meshgrid(v[sub], v[sub], v[sub], indexing="ij")
    xs = np.stack([r.ravel(), g.ravel(), b.ravel(), np.ones(r.size)], axis=1)
    t = table[np.ix_(sub, sub, sub)].reshape(-1, 3).astype(np.float64)
    m = np.zeros((3, 4))
    for c in range(3):
        inside = (t[:, c] > 1e-6) & (t[:, c] < 1 - 1e-6)
        if inside.sum() >= 4:
            m[c], *_ = np.linalg.lstsq(xs[inside], t[inside, c], rcond=None)
        elif np.ptp(table[..., c]) < 1e-7:
            m[c, 3] = table[0, 0, 0, c]
        else:
            return None

    def fits(rv: np.ndarray, gv: np.ndarray, bv: float, got: np.ndarray) -> bool:
        pred = rv[None, :, None] * m[:, 0] + gv[:, None, None] * m[:, 1] + (bv * m[:, 2] + m[:, 3])
        return bool(np.abs(np.clip(pred, 0.0, 1.0) - got).max() <= _AFFINE_TOL)

    if not all(fits(v, v, v[i], table[i]) for i in range(size)):
        return None
    if fn is not None:  # and at the centres of the sub-lattice's cells
        mid = (v[sub][:-1] + v[sub][1:]) / 2
        n = mid.size
        points = torch.empty(3, n, n, n, dtype=torch.float32)
        c32 = torch.from_numpy(mid).to(torch.float32)
        points[0], points[1], points[2] = c32.view(1, 1, n), c32.view(1, n, 1), c32.view(n, 1, 1)
        got = _evaluate(fn, points.view(1, 3, 1, -1)).reshape(n, n, n, 3).astype(np.float64)
        if not all(fits(mid, mid, mid[i], got[i]) for i in range(n)):
            return None
    return m


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= 256:
        raise ValueError(f"LUT size must be an integer in 2..256, got {size!r}")
    return int(size)


def bake_function(fn: Fn, size: int = 33, *, title: str = "", per_channel: bool = False) -> ColorLUT:
    """A plain 3D LUT (no shaper) of any colour mapping ``fn`` on ``B x 3 x H x W`` tensors in [0, 1].

    ``table`` holds ``fn`` at the ``size^3`` lattice; maps that are the clip of an affine map (e.g. a colour
    transfer of means and deviations) are recognised and applied exactly. ``per_channel=True`` declares that
    ``fn`` maps each channel on its own (three curves, e.g. a histogram transfer): it becomes the shaper,
    tabulated exactly at every code, with no 3D stage (``table`` is then ``None``; :meth:`ColorLUT.sample`
    still gives the lattice for a ``.cube``).
    """
    size = _check_size(size)
    if per_channel:
        return ColorLUT(size=size, shaper=fn, title=title)
    with torch_single_threaded():
        table = _lattice(fn, size)
        affine = _clip_affine(table, fn)
    return ColorLUT(size=size, table=table, cross=fn, affine=affine, title=title)


def _chain(filters, blocks) -> Fn | None:
    steps = [(f, a) for f, a in zip(filters, blocks, strict=True) if bool((a != 0).any())]
    if not steps:
        return None

    def run(x: Tensor) -> Tensor:
        for f, a in steps:
            x = f(x, a.to(x).expand(x.shape[0], -1))
        return x

    return run


def bake_pipeline(pipeline: FilterPipeline | Sequence[str], action: Tensor | dict, size: int = 33, *,
                  title: str = "") -> ColorLUT:
    """Bake ``pipeline`` at one ``1 x A`` action (or its :meth:`~FilterPipeline.describe` dict) into a ColorLUT.

    The leading :attr:`~deepexpose.filters.Filter.per_channel` filters become the shaper, the rest (from the
    first cross-channel filter on) the ``size^3`` 3D LUT. Filters at action 0 are left out (they are exactly
    the identity), so an identity edit gives an identity LUT.
    """
    size = _check_size(size)
    if not isinstance(pipeline, FilterPipeline):
        pipeline = FilterPipeline(pipeline)
    if isinstance(action, dict):
        action = pipeline.action_from_description(action)
    action = torch.as_tensor(action, dtype=torch.float32)
    if action.ndim == 1:
        action = action[None]
    if action.shape[0] != 1:
        raise ValueError(f"bake_pipeline takes one action (1 x A), got {tuple(action.shape)}")
    blocks = pipeline.split(action)
    lead = 0
    while lead < len(pipeline.filters) and pipeline.filters[lead].per_channel:
        lead += 1
    shaper = _chain(pipeline.filters[:lead], blocks[:lead])
    cross = _chain(pipeline.filters[lead:], blocks[lead:])
    if cross is None:
        return ColorLUT(size=size, shaper=shaper, title=title)
    with torch_single_threaded():
        table = _lattice(cross, size)
        affine = _clip_affine(table, cross)
    return ColorLUT(size=size, table=table, shaper=shaper, cross=cross, affine=affine, title=title)


# --------------------------------------------------------------------------------------------- .cube files


def _cube_table(lut_or_table: ColorLUT | np.ndarray, size: int | None) -> np.ndarray:
    if isinstance(lut_or_table, ColorLUT):
        return lut_or_table.sample(size)
    t = np.asarray(lut_or_table, dtype=np.float64)
    if t.ndim == 2 and t.shape[1] == 3:
        n = round(t.shape[0] ** (1 / 3))
        if n ** 3 != t.shape[0]:
            raise CubeError(None, f"a table of {t.shape[0]} rows is not N^3 x 3")
        t = t.reshape(n, n, n, 3)
    if t.ndim != 4 or t.shape[3] != 3 or not t.shape[0] == t.shape[1] == t.shape[2]:
        raise CubeError(None, f"expected an N x N x N x 3 or N^3 x 3 table, got shape {t.shape}")
    if size is not None and size != t.shape[0]:
        raise CubeError(None, f"size {size} given for a table of size {t.shape[0]}")
    return t


def write_cube(path: str | os.PathLike[str], lut_or_table: ColorLUT | np.ndarray, *, title: str | None = None,
               size: int | None = None, overwrite: bool = True) -> Path:
    """Write a ``.cube`` 3D LUT (Adobe Cube LUT Specification 1.0) atomically; returns ``path``.

    ``lut_or_table`` is a :class:`ColorLUT` (its whole function sampled directly at ``size``, default its own
    size) or a table ``N x N x N x 3`` (``[b, g, r]``) or ``N^3 x 3`` (red fastest). ``title`` defaults to the
    LUT's; the file is ASCII, so a character of it that is not becomes its ASCII letter (``é`` -> ``e``) or
    ``?`` (:func:`_ascii`). Written through :func:`deepexpose.io.atomic_write_bytes` (an existing file is replaced
    unless ``overwrite=False``).
    """
    table = _cube_table(lut_or_table, size)
    n = table.shape[0]
    if not 2 <= n <= 256:
        raise CubeError(path, f"LUT_3D_SIZE must be in 2..256, got {n}")
    if not np.isfinite(table).all():
        raise CubeError(path, "the table contains NaN or infinite values")
    if title is None:
        title = lut_or_table.title if isinstance(lut_or_table, ColorLUT) else ""
    clean = re.sub(r'[\x00-\x1f\x7f"]', " ", _ascii(title)).strip()
    head = [f'TITLE "{clean}"'] if clean else []
    head += [f"LUT_3D_SIZE {n}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]  # sample() covers [0, 1]
    flat = table.reshape(-1, 3).astype(np.float64) + 0.0  # + 0.0: no "-0.000000"
    body = ("%.6f %.6f %.6f\n" * flat.shape[0]) % tuple(flat.ravel().tolist())
    data = ("\n".join(head) + "\n" + body).encode("ascii")
    return atomic_write_bytes(path, data, overwrite=overwrite)


def _ascii(text: str) -> str:
    """``text`` in ASCII: each other character as the ASCII letters of its compatibility decomposition (NFKD: ``é``
    -> ``e``, ``ﬁ`` -> ``fi``), or ``?`` where it has none (``日``, the escaped bytes of a file name that is not
    UTF-8)."""
    return "".join(c if c.isascii() else
                   unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or "?" for c in text)


_KEYWORD = re.compile(r"[A-Z][A-Z0-9_]*$")


def read_cube(path: str | os.PathLike[str]) -> ColorLUT:
    """Read a 3D ``.cube`` LUT into a table-only :class:`ColorLUT` (trilinear; domain from ``DOMAIN_MIN`` /
    ``DOMAIN_MAX`` or Resolve's ``LUT_3D_INPUT_RANGE``; other keywords are ignored). Raises
    :class:`CubeError` naming the line at fault."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")  # a byte-order mark, as some editors write, is not a keyword
    except FileNotFoundError:
        raise CubeError(p, "file not found") from None
    except OSError as e:
        raise CubeError(p, f"cannot read the file ({e.strerror or e})") from e
    except UnicodeDecodeError:
        raise CubeError(p, "not a text file") from None
    size = None
    title = ""
    lo, hi = [0.0] * 3, [1.0] * 3
    lines = text.splitlines()
    first = len(lines)  # index of the first table line
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, rest = (line.split(None, 1) + [""])[:2]  # a keyword ends at any white space (a tab too)
        if not _KEYWORD.match(word):
            first = index
            break
        number = index + 1
        args = rest.split()
        if word == "LUT_1D_SIZE":
            raise CubeError(p, "1D LUTs (LUT_1D_SIZE) are not supported; expected a 3D LUT", number)
        if word == "LUT_3D_SIZE" and size is not None:
            raise CubeError(p, "a second LUT_3D_SIZE line", number)
        try:
            if word == "TITLE":
                title = rest.strip().strip('"')
            elif word == "LUT_3D_SIZE":
                size = int(rest)
            elif word in ("DOMAIN_MIN", "DOMAIN_MAX"):
                if len(args) != 3:
                    raise ValueError
                (lo if word == "DOMAIN_MIN" else hi)[:] = [float(v) for v in args]
            elif word == "LUT_3D_INPUT_RANGE":
                if len(args) != 2:
                    raise ValueError
                lo, hi = [float(args[0])] * 3, [float(args[1])] * 3
            # other keywords (LUT_IN_VIDEO_RANGE, ...) carry nothing a 3D lookup needs
        except ValueError:
            raise CubeError(p, f"cannot parse {line!r}", number) from None
        if word == "LUT_3D_SIZE" and not 2 <= size <= 256:
            raise CubeError(p, f"LUT_3D_SIZE must be in 2..256, got {size}", number)
    if size is None:
        raise CubeError(p, "no LUT_3D_SIZE line")
    if not all(math.isfinite(v) for v in lo + hi):
        raise CubeError(p, f"the domain {lo}..{hi} must be finite")
    if not all(a < b for a, b in zip(lo, hi)):
        raise CubeError(p, f"DOMAIN_MIN {lo} must be below DOMAIN_MAX {hi}")
    try:  # the fast path; any problem is located line by line below
        values = np.loadtxt(lines[first:], dtype=np.float64, comments="#", ndmin=2)
        ok = values.shape == (size ** 3, 3) and bool(np.isfinite(values).all()) and _fits_float32(values)
    except ValueError:
        ok = False
    if not ok:
        values = _parse_rows(p, lines, first, size)
    table = values.astype(np.float32).reshape(size, size, size, 3)
    return ColorLUT(size=size, table=table, title=title, domain_min=tuple(lo), domain_max=tuple(hi))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _fits_float32(values: np.ndarray) -> bool:
    """Whether every value survives the float32 table (1e300 would become infinite)."""
    return bool((np.abs(values) <= _FLOAT32_MAX).all())


def _parse_rows(p: Path, lines: list[str], first: int, size: int) -> np.ndarray:
    """The table lines one by one, for a precise error."""
    rows = []
    for index in range(first, len(lines)):
        line = lines[index].strip()
        number = index + 1
        if not line or line.startswith("#"):
            continue
        if _KEYWORD.match(line.split()[0]):
            raise CubeError(p, f"keyword {line.split()[0]} after the table data began (line {first + 1})", number)
        parts = line.split()
        if len(parts) != 3:
            raise CubeError(p, f"expected three numbers 'r g b', got {line!r}", number)
        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise CubeError(p, f"not a number in {line!r}", number) from None
        if not all(math.isfinite(v) for v in values):
            raise CubeError(p, f"non-finite value in {line!r}", number)
        if not _fits_float32(np.asarray(values)):
            raise CubeError(p, f"a value too large for a LUT in {line!r}", number)
        rows.append(values)
    if len(rows) != size ** 3:
        raise CubeError(p, f"LUT_3D_SIZE {size} needs {size ** 3} table lines, found {len(rows)}")
    return np.asarray(rows, dtype=np.float64)
