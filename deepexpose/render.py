"""Render an edit chosen on a low-resolution view onto a photo of any size: in row tiles, bounded memory.

The result equals :func:`deepexpose.apply.apply_edit` on the float photo within 1/255 (tested), computed
without ever holding the photo as floats:

1. The view (:func:`make_view`) is torch's separable antialiased bilinear filter, applied down the columns by
   a compiled kernel (weighted sums of whole rows of codes) and then across the small result by torch; it is
   within 1e-6 of ``to_view`` of the whole float image (the sums are taken in another order). A view made by
   Pillow's 8-bit resize instead (0.7/255 off) moved the masks enough to put strong edits 3/255 away from
   ``apply_edit``.
2. The sub-image masks are segmented on the view; their guided-upsampling coefficients (the fast guided
   filter, He & Sun 2015, of the guided filter of He et al., ECCV 2010: ``q = a * I + b`` with ``a, b``
   fitted at low resolution) are computed once, as in :func:`deepexpose.fusion.guided_upsample`, and
   interpolated along the width once per image (:class:`RowUpsampler`, equal to
   ``F.interpolate(bilinear, align_corners=False)``); each output row blends two of those rows.
3. The gain map ``1 + sum_k m_k (2^ev_k - 1)`` is applied in linear light per pixel. For integer input the
   gained value ``srgb(clip(lin * g))`` and the shaper curves after it are one table indexed by
   ``sqrt(lin * g) = sqrt(lin) * sqrt(g)`` (65536 entries, nearest; ``sqrt(lin)`` itself a table of the
   codes), so no power function is evaluated per pixel. The local step is skipped when every EV is 0.
4. The global filters are a :class:`deepexpose.lut.ColorLUT` (shaper curves exact at every code, then the
   cross-channel 3D stage: a 3 x 4 matrix for saturation; a stage that is no clipped affine map runs its
   filter code on the tile); ``strength`` blends the result toward the input per pixel; the output is rounded
   to the input's dtype.

For integer input, steps 3 and 4 are one compiled pass per row tile (:func:`deepexpose.kernels.code_tile`),
run by ``threads`` Python threads (the kernels release the GIL); the LUT and its tables are built on a side
thread while the masks are made (:func:`prepare_edit`, which needs no pixels once the view is known, so a caller
can run it while the photo decodes). Float input goes through the filter code's own torch functions per tile.
Cost on a 2-core machine, 15 MP, 8-bit: about 10 ms of wall time for the view, 20 ms for the masks and
tables and 70 ms for the kernel with local exposures; about 40 ms in all without (``scripts/bench_enhance.py``).

Alpha is not touched here: the caller passes it through.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline
from .filters.base import LUMA_709, apply_linear_gain, linear_to_srgb, luminance, srgb_to_linear
from .fusion import guided_coefficients, refine_masks
from .kernels import STAGE_AFFINE, STAGE_NONE, STAGE_SHAPED, code_tile, view_down
from .lut import ColorLUT, bake_pipeline, quantize_codes, torch_single_threaded
from .segment import segment

__all__ = ["PreparedEdit", "RowUpsampler", "crop_views", "guided_coefficients", "make_view", "prepare_edit",
           "render_edit", "upsample_rows"]

GAIN_LEVELS = 65536
"""Entries of the table indexed by ``sqrt(lin * gain)`` (nearest entry; the error is below 0.05/255)."""

_TILE_PIXELS = 1 << 17  # default tile: about this many pixels (float photos: a few MB of temporaries per worker)


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"pixels must be H x W x 3, got shape {a.shape}")
    if a.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise TypeError(f"pixels must be uint8, uint16 or float32, got {a.dtype}")
    return a


def _top(dtype: np.dtype) -> int | None:
    return {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(np.dtype(dtype))


def _rows_per_tile(width: int, tile_rows: int | None) -> int:
    if tile_rows is not None:
        if isinstance(tile_rows, bool) or not isinstance(tile_rows, (int, np.integer)) or tile_rows < 1:
            raise ValueError(f"tile_rows must be a positive integer, got {tile_rows!r}")
        return int(tile_rows)
    return max(8, _TILE_PIXELS // max(width, 1))


def _tile_tensor(tile: np.ndarray, top: int | None) -> Tensor:
    """``R x W x 3`` pixels to a contiguous ``1 x 3 x R x W`` float32 tensor in [0, 1] (codes divided by
    ``top``, as :func:`deepexpose.io.read_image` does)."""
    f = tile.astype(np.float32)  # always a new, writable array
    if top is not None:
        f /= np.float32(top)
    return torch.from_numpy(f).permute(2, 0, 1)[None].contiguous()


def _run(fn, starts: list[int], threads: int) -> None:
    if threads <= 1 or len(starts) <= 1:
        for s in starts:
            fn(s)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(fn, starts):
            pass


def make_view(pixels: np.ndarray, size: int = 64, *, threads: int | None = None) -> Tensor:
    """The ``1 x 3 x size x size`` view of ``H x W x 3`` pixels (uint8, uint16 or float in [0, 1]) that
    :func:`deepexpose.apply.to_view` makes of the float photo (within 1e-6), without a float copy of the photo.

    Torch's antialiased bilinear filter is separable; it is applied here down the columns first
    (:func:`deepexpose.kernels.view_down`: ``size`` weighted sums of whole rows, the columns split between
    ``threads`` threads), then across the ``size x W`` result with torch itself.
    """
    a = _check_pixels(pixels)
    top = _top(a.dtype)
    h, w = a.shape[:2]
    if (h, w) == (size, size):
        return _tile_tensor(a, top)
    flat = np.ascontiguousarray(a).reshape(h, w * 3)
    start, weights = _antialias_weights(h, size)
    acc = np.empty((size, w * 3), np.float32)
    threads = min(_threads(threads), w)
    edges = [w * t // threads * 3 for t in range(threads + 1)]
    _run(lambda t: view_down(flat, start, weights, acc, edges[t], edges[t + 1]), list(range(threads)), threads)
    if top is not None:
        acc /= np.float32(top)
    down = torch.from_numpy(acc).view(1, size, w, 3).permute(0, 3, 1, 2)
    with torch_single_threaded():
        return F.interpolate(down, size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False).clamp(0, 1).contiguous()


def crop_views(pixels: np.ndarray, size: int, fraction: float) -> Tensor:
    """``5 x 3 x size x size``: the views of five crops of the photo, its four corners and its centre, each
    ``fraction`` of the photo's height and width (so of its aspect, squashed as :func:`make_view` squashes the
    whole photo).

    The crops are cut from one ``4 size x 4 size`` view of the photo and resized as ``to_view`` resizes, so a
    photo of any size costs one pass over its pixels.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    base = make_view(pixels, 4 * size)
    n = base.shape[-1]
    c = max(1, round(fraction * n))
    corners = [(0, 0), (0, n - c), (n - c, 0), (n - c, n - c), ((n - c) // 2, (n - c) // 2)]
    crops = torch.cat([base[..., t:t + c, l:l + c] for t, l in corners])
    with torch_single_threaded():
        return F.interpolate(crops, size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False).clamp(0, 1)


def _antialias_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Torch's weights for ``F.interpolate(mode="bilinear", antialias=True, align_corners=False)`` along one
    axis of ``n_in`` samples to ``n_out``: output ``i`` is ``sum_j weights[i, j] x[start[i] + j]`` (a triangle
    filter as wide as the scale, normalised; ``_compute_indices_min_size_weights_aa`` in ATen)."""
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    centre = scale * (np.arange(n_out, dtype=np.float64) + 0.5)
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)  # C's int(): toward zero, as ATen
    hi = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    taps = lo[:, None] + np.arange(max(int((hi - lo).max()), 1))[None, :]
    w = np.maximum(0.0, 1.0 - np.abs((taps - centre[:, None] + 0.5) * inv))
    w[taps >= hi[:, None]] = 0.0
    total = w.sum(axis=1, keepdims=True)
    np.divide(w, total, out=w, where=total != 0)
    return lo, w.astype(np.float32)


def _threads(threads: int | None) -> int:
    if threads is None:
        return max(1, torch.get_num_threads())
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


class RowUpsampler:
    """Rows ``r0:r1`` of ``F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)`` of a small
    ``C x h x w`` array, without making the full-size result.

    Bilinear interpolation is separable: the ``h`` low-resolution rows are interpolated to width ``W`` once
    (``C x h x W``, by torch itself), then each output row is the two-tap blend of two of them with torch's
    source index ``max(0, (y + 1/2) h / H - 1/2)`` and weights, computed in float32 as torch does (equal to
    within one rounding, about 6e-8).
    """

    def __init__(self, low: Tensor | np.ndarray, size: tuple[int, int]) -> None:
        x = torch.as_tensor(low, dtype=torch.float32)
        if x.ndim == 4:
            if x.shape[0] != 1:
                raise ValueError(f"expected one C x h x w array, got {tuple(x.shape)}")
            x = x[0]
        if x.ndim != 3:
            raise ValueError(f"expected a C x h x w array, got {tuple(x.shape)}")
        h = x.shape[1]
        out_h, out_w = int(size[0]), int(size[1])
        self.size = (out_h, out_w)
        self.wide = np.ascontiguousarray(
            F.interpolate(x[None], size=(h, out_w), mode="bilinear", align_corners=False)[0].numpy())
        scale = np.float32(h) / np.float32(out_h)
        # torch's float source index scale * (y + 1/2) - 1/2, rounded once (as its fused multiply-add does)
        src = (np.float64(scale) * (np.arange(out_h, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
        src = np.maximum(src, np.float32(0.0))
        self.y0 = src.astype(np.int64)
        self.y1 = self.y0 + (self.y0 < h - 1)
        self.l1 = np.clip(src - self.y0.astype(np.float32), 0.0, 1.0).astype(np.float32)
        self.l0 = (np.float32(1.0) - self.l1).astype(np.float32)

    def rows(self, r0: int, r1: int, channel: int | None = None) -> np.ndarray:
        """Output rows ``r0:r1`` as ``C x R x W`` float32 (``R x W`` for one ``channel``)."""
        wide = self.wide if channel is None else self.wide[channel]
        y0, y1 = self.y0[r0:r1], self.y1[r0:r1]
        l0, l1 = self.l0[r0:r1, None], self.l1[r0:r1, None]
        top = np.take(wide, y0, axis=-2)
        top *= l0
        bottom = np.take(wide, y1, axis=-2)
        bottom *= l1
        top += bottom
        return top


def upsample_rows(low: Tensor | np.ndarray, size: tuple[int, int], r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of the bilinear upsampling of ``C x h x w`` ``low`` to ``size`` (see :class:`RowUpsampler`)."""
    return RowUpsampler(low, size).rows(r0, r1)


class _Gain:
    """The local-exposure gain ``1 + sum_k c_k m_k`` (``c_k = 2^ev_k - 1``), ``m = normalise(up(a) * Y + up(b))``.

    ``up(a) = A0 + l1 (A1 - A0)`` with the rows ``A0, A1`` interpolated along the width once per image
    (``a_step = A1 - A0`` for the kernel). :meth:`rows` (float photos) handles rows in *bands* that share
    ``A0, A1`` (:meth:`tiles`); the kernel looks them up per row.
    """

    def __init__(self, a: Tensor, b: Tensor, ev: Sequence[float], size: tuple[int, int]) -> None:
        self.k = a.shape[1]
        up = RowUpsampler(torch.cat([a[0], b[0]]), size)
        self.a, self.b = up.wide[:self.k], up.wide[self.k:]
        self.y0, self.y1, self.l1 = up.y0, up.y1, up.l1
        # the change to the next low-resolution row (0 after the last): up(a) = a[y0] + l1 * a_step[y0]
        self.a_step, self.b_step = (_row_steps(w) for w in (self.a, self.b))
        ev32 = torch.tensor(list(ev), dtype=torch.float32)
        self.c = (2.0 ** ev32 - 1.0).tolist()

    def tiles(self, h: int, rows: int) -> list[tuple[int, int]]:
        """Row ranges of at most ``rows`` rows, each inside one band."""
        change = np.flatnonzero((np.diff(self.y0) != 0) | (np.diff(self.y1) != 0)) + 1
        edges = [0, *change.tolist(), h]
        return [(s, min(s + rows, e)) for b, e in zip(edges[:-1], edges[1:]) for s in range(b, e, rows)]

    def rows(self, y: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """The gain of rows ``r0:r1`` (one band) given their luminance ``y`` (``R x W``), for float photos
        (integer photos: :func:`deepexpose.kernels.code_tile`)."""
        i0, i1 = self.y0[r0], self.y1[r0]
        l1 = self.l1[r0:r1, None]
        num = np.empty_like(y)
        den = np.empty_like(y)
        z = np.empty_like(y)
        u = np.empty_like(y)
        num[...] = 0.0
        first = True
        for k in range(self.k):
            a0, b0 = self.a[k, i0], self.b[k, i0]
            np.multiply(y, a0, out=z)
            z += b0
            if i1 != i0:
                np.multiply(y, self.a[k, i1] - a0, out=u)
                u += self.b[k, i1] - b0
                u *= l1
                z += u
            np.maximum(z, np.float32(0.0), out=z)
            if first:
                den[...] = z
                first = False
            else:
                den += z
            if self.c[k] != 0.0:
                z *= np.float32(self.c[k])
                num += z
        np.maximum(den, np.float32(1e-6), out=den)
        num /= den
        num += np.float32(1.0)
        return num


def _row_steps(w: np.ndarray) -> np.ndarray:
    """``w[:, i + 1] - w[:, i]`` of a ``K x h x W`` array, 0 for the last row (``np.diff`` with the last row
    appended, without copying the array first)."""
    step = np.empty_like(w)
    np.subtract(w[:, 1:], w[:, :-1], out=step[:, :-1])
    step[:, -1] = 0.0
    return step


class _CodeTables:
    """Per-image tables for ``uint8`` / ``uint16`` input (``top`` = 255 or 65535).

    Local edits: ``sqrt_lin``, ``sqrt(srgb_to_linear(code / top))``, and ``values[c]``, the shaper of
    ``srgb(u^2)`` at the centres ``u = (j + 1/2) / (L - 1)`` of the u grid (the last entry at ``u = 1``), so
    that ``floor(u * (L - 1))`` picks the nearest; otherwise ``values[c]`` is the shaper at every code. With no
    3D stage the values already hold ``value * top + 1/2`` (ready to floor).
    """

    def __init__(self, lut: ColorLUT, top: int, local: bool) -> None:
        self.top = top
        codes = torch.arange(top + 1, dtype=torch.float32) / top
        self.final = lut.affine is None and lut.table is None  # tables give output codes + 1/2
        if local:
            self.sqrt_lin = srgb_to_linear(codes).clamp(min=0).sqrt().numpy()
            j = torch.arange(GAIN_LEVELS, dtype=torch.float64)
            u = ((j + 0.5) / (GAIN_LEVELS - 1)).clamp(max=1.0)
            values = lut.shape_values(linear_to_srgb((u * u).to(torch.float32)))
        else:
            values = lut.curves(top + 1)
        if self.final:
            values = values * np.float32(top) + np.float32(0.5)
        self.values = np.ascontiguousarray(np.stack(list(values)), dtype=np.float32)  # 3 x entries


@dataclass
class PreparedEdit:
    """What :func:`render_edit` works out for an edit before it touches a pixel (:func:`prepare_edit`): the
    filters' LUT, the integer tables and the local-exposure gain of a photo of one size and dtype."""

    shape: tuple[int, int]
    dtype: np.dtype
    lut: ColorLUT
    gain: _Gain | None
    tables: _CodeTables | None

    def fits(self, pixels: np.ndarray) -> bool:
        return pixels.shape[:2] == self.shape and pixels.dtype == self.dtype


def prepare_edit(shape: tuple[int, int], dtype: np.dtype | type, edit: dict, *, view: int = 64,
                 segmentation: str = "luminosity", refine_radius: int = 0,
                 filters: Sequence[str] = DEFAULT_GLOBAL_FILTERS, lut_size: int = 33,
                 view_image: Tensor | None = None, pixels: np.ndarray | None = None,
                 threads: int | None = None) -> PreparedEdit:
    """The per-photo work of :func:`render_edit` for ``edit`` on ``H x W`` pixels of ``dtype``, which needs no
    pixels when ``view_image`` (the photo's ``1 x 3 x view x view`` view) is given, so it can be done while the
    photo is still being decoded; otherwise the view is made of ``pixels``. The tables are built on a side
    thread while the masks are made."""
    h, w = int(shape[0]), int(shape[1])
    dtype = np.dtype(dtype)
    top = _top(dtype)
    ev = _local_ev(edit)
    pipeline = FilterPipeline(filters)
    action = pipeline.action_from_description({k: v for k, v in edit.items() if k != "local_exposure"})
    local = any(e != 0.0 for e in ev)
    if local and view_image is not None and tuple(view_image.shape) != (1, 3, view, view):
        raise ValueError(f"view_image must be 1 x 3 x {view} x {view}, got {tuple(view_image.shape)}")
    if local and view_image is None and (pixels is None or pixels.shape[:2] != (h, w)):
        raise ValueError("local exposures need the photo's view_image or its pixels")

    def tables() -> tuple[ColorLUT, _CodeTables | None]:  # on a side thread, beside the masks
        with torch.no_grad():
            lut = bake_pipeline(pipeline, action, lut_size)
            return lut, (_CodeTables(lut, top, local) if top is not None else None)

    gain = None
    with torch.no_grad(), torch_single_threaded(), ThreadPoolExecutor(1) as side:
        pending = side.submit(tables)
        if local:
            small = make_view(pixels, view, threads=threads) if view_image is None \
                else view_image.detach().to("cpu", torch.float32)
            masks = segment(small, len(ev), segmentation)
            if refine_radius > 0:
                masks = refine_masks(masks, small, radius=refine_radius)
            gain = _Gain(*guided_coefficients(masks, small), ev, (h, w))
        lut, code_tables = pending.result()
    return PreparedEdit((h, w), dtype, lut, gain, code_tables)


def _local_ev(edit: dict) -> list[float]:
    ev = [float(e) for e in edit.get("local_exposure", {}).get("ev", [])]
    if not ev:
        raise ValueError("the edit has no local exposures ('local_exposure': {'ev': [...]})")
    return ev


def render_edit(pixels: np.ndarray, edit: dict, *, view: int = 64, segmentation: str = "luminosity",
                refine_radius: int = 0, filters: Sequence[str] = DEFAULT_GLOBAL_FILTERS, strength: float = 1.0,
                tile_rows: int | None = None, lut_size: int = 33, threads: int | None = None,
                out: np.ndarray | None = None, view_image: Tensor | None = None,
                prepared: PreparedEdit | None = None) -> np.ndarray:
    """Apply ``edit`` (as :func:`deepexpose.apply.apply_edit`) to ``H x W x 3`` pixels of any size.

    ``pixels`` are ``uint8`` / ``uint16`` codes or floats in [0, 1]; the result has the same dtype (codes
    rounded to nearest). ``view``, ``segmentation``, ``refine_radius`` and ``filters`` must match the episodes
    the edit was chosen in. ``strength`` in [0, 1] blends the result toward the input (0: unchanged).
    ``tile_rows`` rows are processed at a time (default: about 128k pixels per tile) by ``threads`` worker
    threads (default: torch's thread count); ``lut_size`` is the side of the 3D LUT of the cross-channel
    filters. ``out`` may receive the result (it may be ``pixels`` itself, for an in-place edit).
    ``view_image`` is the view the sub-image masks are segmented on: :func:`make_view` of these pixels
    (made here when not given; the caller may have made it to choose the edit, one pass over the photo
    fewer), or the view of another copy of the same photo the edit was chosen on. ``prepared`` is
    :func:`prepare_edit` of this edit for pixels of this size and dtype (with the same settings), if done
    already; it is not checked against the edit.
    """
    a = _check_pixels(pixels)
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    _local_ev(edit)
    h, w = a.shape[:2]
    if out is None:
        out = np.empty_like(a)
    elif out.shape != a.shape or out.dtype != a.dtype:
        raise ValueError(f"out must be {a.shape} {a.dtype}, got {out.shape} {out.dtype}")
    if strength == 0.0:
        if out is not a:
            np.copyto(out, a)
        return out
    threads = _threads(threads)
    rows = _rows_per_tile(w, tile_rows)
    top = _top(a.dtype)

    if h * w <= view * view:  # no bigger than the view: the reference code itself
        photo = _tile_tensor(a, top)
        with torch.no_grad():
            edited = _blend(photo, _apply_edit_direct(photo, edit, view, segmentation, refine_radius, filters),
                            strength)
        res = edited[0].permute(1, 2, 0).numpy()
        out[...] = quantize_codes(res, a.dtype) if top else res
        return out

    if prepared is not None and not prepared.fits(a):
        raise ValueError(f"prepared is for {prepared.shape} {prepared.dtype} pixels, not {a.shape[:2]} {a.dtype}")
    if prepared is None:
        prepared = prepare_edit((h, w), a.dtype, edit, view=view, segmentation=segmentation,
                                refine_radius=refine_radius, filters=filters, lut_size=lut_size,
                                view_image=view_image, pixels=a, threads=threads)
    lut, gain = prepared.lut, prepared.gain
    if lut.is_identity and gain is None:
        if out is not a:
            np.copyto(out, a)
        return out
    with torch.no_grad(), torch_single_threaded():
        if top is None:
            step = _float_tile(a, out, lut, gain, strength)
        else:
            step = _code_tile(a, out, lut, gain, strength, prepared.tables)
        banded = gain is not None and top is None  # the float path's gain works band by band
        tiles = gain.tiles(h, rows) if banded else [(r, min(r + rows, h)) for r in range(0, h, rows)]
        _run(step, tiles, threads)
    return out


def _apply_edit_direct(photo: Tensor, edit: dict, view: int, segmentation: str, refine_radius: int,
                       filters: Sequence[str]) -> Tensor:
    from .apply import apply_edit

    return apply_edit(photo, edit, view=view, segmentation=segmentation, refine_radius=refine_radius,
                      filters=filters)


def _blend(photo: Tensor, edited: Tensor, strength: float) -> Tensor:
    return edited if strength == 1.0 else torch.lerp(photo, edited, strength)


def _code_tile(a: np.ndarray, out: np.ndarray, lut: ColorLUT, gain: _Gain | None, strength: float,
               tables: _CodeTables):
    """One row tile of integer input, written into ``out``: :func:`deepexpose.kernels.code_tile` (tables,
    3 x 4 matrix, strength, rounding), or its shaper values and then the cross-channel filter code."""
    top = tables.top
    luma = (np.asarray(LUMA_709, np.float64) / top).astype(np.float32)
    affine = np.zeros((3, 4), np.float32)
    if lut.affine is not None:  # output = clip(M s + t) * top + 1/2, folded into one matrix
        stage = STAGE_AFFINE
        affine[...] = lut.affine * top + np.array([[0, 0, 0, 0.5]] * 3)
    elif tables.final:
        stage = STAGE_NONE
    else:
        stage = STAGE_SHAPED
    if gain is not None:
        scale = float(GAIN_LEVELS - 1) ** 2
        a_wide, a_step, b_wide, b_step, y0, l1 = gain.a, gain.a_step, gain.b, gain.b_step, gain.y0, gain.l1
        c = np.asarray(gain.c, np.float64) * scale
        sqrt_lin = tables.sqrt_lin
    else:
        scale = 0.0
        a_wide = a_step = b_wide = b_step = np.zeros((1, 1, 1), np.float32)
        y0 = np.zeros(1, np.int64)
        l1 = np.zeros(1, np.float32)
        c = np.zeros(0, np.float64)
        sqrt_lin = np.zeros(1, np.float32)
    no_planes = np.empty((3, 1, 1), np.float32)

    def step(span: tuple[int, int]) -> None:
        r0, r1 = span
        codes = a[r0:r1]
        shaped = np.empty((3, r1 - r0, a.shape[1]), np.float32) if stage == STAGE_SHAPED else no_planes
        code_tile(codes, out[r0:r1], shaped, r0, gain is not None, stage, luma, a_wide, a_step, b_wide, b_step,
                  y0, l1, c, scale, sqrt_lin, tables.values, affine, strength, top)
        if stage != STAGE_SHAPED:
            return
        with torch.no_grad():  # a cross-channel part that is no clipped affine map: its filter code
            result = lut.cross(torch.from_numpy(shaped)[None])[0].clamp_(0.0, 1.0).numpy()
        result *= np.float32(top)
        result += np.float32(0.5)
        if strength != 1.0:
            result *= np.float32(strength)
            result += (codes.transpose(2, 0, 1) + np.float32(0.5)) * np.float32(1.0 - strength)
        out[r0:r1] = result.transpose(1, 2, 0)  # float -> integer truncates: floor(value * top + 1/2)

    return step


def _float_tile(a: np.ndarray, out: np.ndarray, lut: ColorLUT, gain: _Gain | None, strength: float):
    """One row tile of float input, with the filter code's own functions (``apply_linear_gain``, ColorLUT)."""
    def step(span: tuple[int, int]) -> None:
        r0, r1 = span
        photo = _tile_tensor(a[r0:r1], None)
        x = photo
        if gain is not None:
            y = luminance(photo.clamp(0.0, 1.0))[0, 0].numpy()
            x = apply_linear_gain(photo, torch.from_numpy(gain.rows(y, r0, r1))[None, None])
        edited = _blend(photo, lut.apply(x, exact=True), strength)
        out[r0:r1] = edited[0].permute(1, 2, 0).numpy()

    return step
