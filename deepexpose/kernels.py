"""Compiled per-pixel kernels of :mod:`deepexpose.render` (numba, compiled on first use).

:func:`code_tile` does in one pass over a row tile of an integer photo what the numpy version needed some
forty passes for: the luminance, the sub-image masks from their guided-upsampling coefficients
(``m_k = max(0, up(a_k) Y + up(b_k))``, normalised to sum 1; He et al., ECCV 2010; He & Sun 2015), the
local-exposure gain ``1 + sum_k m_k (2^ev_k - 1)`` applied in linear light through the
``sqrt(lin) * sqrt(gain)`` table, the per-channel shaper curves, the cross-channel 3 x 4 matrix, the blend
toward the input (``strength``) and the rounding to codes, in float32 as the module notes of
:mod:`deepexpose.render` describe; the tests hold the result to :func:`deepexpose.apply.apply_edit` within
1/255. :func:`view_down` is the vertical pass of the policy's antialiased view.

The kernels release the GIL (``nogil``), so the renderer's worker threads run them in parallel, and are
cached on disk after the first compilation (a few seconds per kind of input; ``cache=True``: beside this file, or in
numba's per-user cache when the package folder is read-only). Loops start at 0 and run over plain row
buffers, which lets the compiler vectorise them (an index that might be negative needs a wrap-around check
that stops it: the vertical pass ran 7 times slower with one).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["STAGE_AFFINE", "STAGE_NONE", "STAGE_SHAPED", "code_tile", "view_down"]


def _compiled():
    """``numba.njit`` without the GIL, cached on disk where a cache folder can be written."""
    def wrap(fn):
        try:
            return njit(nogil=True, cache=True)(fn)
        except RuntimeError:  # no writable cache location (read-only install, no home): compile per process
            return njit(nogil=True)(fn)
    return wrap


STAGE_NONE = 0
"""The shaper values are already ``output * top + 1/2``: no 3D stage."""
STAGE_AFFINE = 1
"""The 3D stage is ``clip(M s + t)``, with ``M, t`` given already scaled to ``* top + 1/2``."""
STAGE_SHAPED = 2
"""The 3D stage is something else: write the shaper values to ``shaped`` and stop (the caller goes on)."""


@_compiled()
def view_down(flat, start, weights, acc, q0, q1):  # pragma: no cover - compiled (tests/test_kernels.py)
    """The vertical pass of the antialiased bilinear view, on columns ``q0:q1`` of the ``H x (W * 3)``
    ``flat`` pixels: ``acc[i, q] = sum_j weights[i, j] * flat[start[i] + j, q]`` (torch's weights, see
    :func:`deepexpose.render._antialias_weights`). Each output row is a weighted sum of whole input rows, a
    loop the compiler vectorises."""
    n, m = weights.shape
    h = flat.shape[0]
    width = q1 - q0
    for i in range(n):
        out = acc[i, q0:q1]
        for q in range(width):
            out[q] = np.float32(0.0)
        for j in range(min(m, h - start[i])):
            w = weights[i, j]
            row = flat[start[i] + j, q0:q1]
            for q in range(width):
                out[q] += w * np.float32(row[q])


@_compiled()
def code_tile(codes, out, shaped, r0, local, stage,
              luma, a_wide, a_step, b_wide, b_step, y0, l1, c, scale, sqrt_lin,
              values, affine, strength, top):  # pragma: no cover - compiled (tests/test_kernels.py)
    """Render rows ``r0 : r0 + R`` of an integer photo: ``codes`` (``R x W x 3``) into ``out`` (same shape).

    ``local``: apply the local exposures. Mask ``k`` of whole-image row ``r`` is ``max(0, A Y + B)`` with
    ``A = a_wide[k, y0[r]] + l1[r] * a_step[k, y0[r]]`` (``a_wide``: the ``K x h x W`` coefficients
    interpolated along the width; ``a_step``: the change to the next low-resolution row), ``B`` likewise and
    ``Y = luma . codes``; the masks are normalised to sum 1. The gain, scaled by ``scale = (L - 1)^2``, is
    ``scale + sum_k c[k] m_k`` with ``c[k] = (2^ev_k - 1) * scale``, and the shaper value of a channel is
    ``values[ch, floor(sqrt_lin[code] * sqrt(gain))]``. Otherwise it is ``values[ch, code]``.
    ``stage``: one of ``STAGE_*``; ``affine`` the scaled 3 x 4 matrix for ``STAGE_AFFINE``; ``shaped``
    (``3 x R x W``) receives the shaper values for ``STAGE_SHAPED``. ``strength`` in (0, 1] blends the result
    toward the input; ``top`` is 255 or 65535.

    Each row is done in a few loops over its pixels, each simple enough for the compiler to vectorise.
    """
    rows, width = codes.shape[0], codes.shape[1]
    last = values.shape[1] - 1
    zero = np.float32(0.0)
    tiny = np.float32(1e-6)
    half = np.float32(0.5)
    upper = np.float32(top + 0.5)
    strength = np.float32(strength)
    keep = np.float32(1.0) - strength
    scale = np.float32(scale)
    blend = keep != zero
    num = np.empty(width, np.float32)
    den = np.empty(width, np.float32)
    g = np.empty(width, np.float32)
    s = np.empty((3, width), np.float32)
    v = np.empty((3, width), np.float32)
    j = np.empty((3, width), np.int32)
    for r in range(rows):
        px = codes[r]
        if local:
            row = r0 + r
            t = l1[row]
            for x in range(width):
                p0, p1, p2 = px[x, 0], px[x, 1], px[x, 2]
                s[0, x] = sqrt_lin[p0]
                s[1, x] = sqrt_lin[p1]
                s[2, x] = sqrt_lin[p2]
                g[x] = np.float32(p0) * luma[0] + np.float32(p1) * luma[1] + np.float32(p2) * luma[2]
                num[x] = zero
                den[x] = zero
            for k in range(c.shape[0]):
                ck = np.float32(c[k])
                a0, da = a_wide[k, y0[row]], a_step[k, y0[row]]
                b0, db = b_wide[k, y0[row]], b_step[k, y0[row]]
                for x in range(width):
                    z = (a0[x] + t * da[x]) * g[x] + (b0[x] + t * db[x])
                    z = z if z > zero else zero
                    den[x] += z
                    num[x] += ck * z
            for x in range(width):
                d = den[x] if den[x] > tiny else tiny
                g[x] = np.sqrt(num[x] / d + scale)
            for ch in range(3):
                for x in range(width):
                    i = np.int32(s[ch, x] * g[x])
                    i = i if i > 0 else 0  # (a NaN gain: entry 0, never a read out of bounds)
                    j[ch, x] = i if i < last else last
                for x in range(width):
                    s[ch, x] = values[ch, j[ch, x]]
        else:
            for x in range(width):
                for ch in range(3):
                    s[ch, x] = values[ch, px[x, ch]]
        if stage == STAGE_SHAPED:
            shaped[:, r] = s
            continue
        if stage == STAGE_AFFINE:
            for ch in range(3):
                m0, m1, m2, m3 = affine[ch, 0], affine[ch, 1], affine[ch, 2], affine[ch, 3]
                for x in range(width):
                    v[ch, x] = m0 * s[0, x] + m1 * s[1, x] + m2 * s[2, x] + m3
        else:
            v[:] = s
        for ch in range(3):
            for x in range(width):
                e = v[ch, x]
                e = e if e > half else half
                e = e if e < upper else upper
                if blend:
                    e = e * strength + (np.float32(px[x, ch]) + half) * keep
                j[ch, x] = np.int32(e)  # e >= 1/2: truncation is floor
        for x in range(width):
            for ch in range(3):
                out[r, x, ch] = j[ch, x]
