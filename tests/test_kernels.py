"""The compiled kernels against the formulas they implement, on hand-made inputs (render_edit and make_view
are held to apply_edit and to_view in test_render.py)."""

from __future__ import annotations

import numpy as np
import pytest

import deepexpose.kernels as kernels
from deepexpose.kernels import STAGE_AFFINE, STAGE_NONE, STAGE_SHAPED, code_tile, view_down

RNG = np.random.default_rng(0)


def test_view_down_is_a_weighted_sum_of_rows():
    flat = RNG.integers(0, 256, (9, 12), dtype=np.uint8)
    start = np.array([0, 3, 6], np.int64)
    weights = np.array([[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0], [0.2, 0.3, 0.5, 0.7]], np.float32)
    expected = np.stack([0.5 * flat[0] + 0.25 * flat[1] + 0.25 * flat[2], flat[3].astype(np.float64),
                         0.2 * flat[6] + 0.3 * flat[7] + 0.5 * flat[8]])  # the last window runs off the end
    whole = np.full((3, 12), np.nan, np.float32)
    view_down(flat, start, weights, whole, 0, 12)
    np.testing.assert_allclose(whole, expected, rtol=1e-6)
    split = np.full((3, 12), np.nan, np.float32)
    view_down(flat, start, weights, split, 0, 6)
    view_down(flat, start, weights, split, 6, 12)
    np.testing.assert_array_equal(split, whole)


def _planes(values, top):
    """Arguments of code_tile for an edit without local exposures."""
    zero = np.zeros((1, 1, 1), np.float32)
    return dict(luma=np.zeros(3, np.float32), a_wide=zero, a_step=zero, b_wide=zero, b_step=zero,
                y0=np.zeros(1, np.int64), l1=np.zeros(1, np.float32), c=np.zeros(0), scale=0.0,
                sqrt_lin=np.zeros(1, np.float32), values=values, top=top)


def _run(codes, *, local=False, stage=STAGE_NONE, affine=None, strength=1.0, r0=0, **planes):
    out = np.zeros_like(codes)
    shaped = np.zeros((3, *codes.shape[:2]), np.float32) if stage == STAGE_SHAPED else np.zeros((3, 1, 1), np.float32)
    affine = np.zeros((3, 4), np.float32) if affine is None else affine
    code_tile(codes, out, shaped, r0, local, stage, planes["luma"], planes["a_wide"], planes["a_step"],
              planes["b_wide"], planes["b_step"], planes["y0"], planes["l1"], planes["c"], planes["scale"],
              planes["sqrt_lin"], planes["values"], affine, strength, planes["top"])
    return out, shaped


def test_code_tile_curves_matrix_strength_and_rounding():
    codes = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    curve = np.stack([np.arange(256) * 0.5, 255 - np.arange(256), np.full(256, 300.0)]).astype(np.float32)
    planes = _planes(curve + np.float32(0.5), 255)  # STAGE_NONE: values hold output * top + 1/2
    out, _ = _run(codes, **planes)
    expected = np.stack([np.floor(codes[..., 0] * 0.5 + 0.5), 255 - codes[..., 1], np.full(codes.shape[:2], 255)],
                        axis=-1)
    np.testing.assert_array_equal(out, expected)  # rounded to nearest and clipped at the top

    blended, _ = _run(codes, strength=0.25, **planes)
    np.testing.assert_array_equal(blended, np.floor(0.25 * np.minimum(curve[[0, 1, 2], codes] + 0.5, 255.5)
                                                    + 0.75 * (codes + 0.5)))

    identity = np.tile(np.arange(256, dtype=np.float32) / 255, (3, 1))  # shaper values in [0, 1]
    m = np.array([[1.2, -0.1, -0.1, 0.0], [-0.1, 1.2, -0.1, 0.0], [0.0, 0.0, 1.0, 0.1]], np.float32)
    scaled = (m * 255 + np.array([[0, 0, 0, 0.5]] * 3)).astype(np.float32)
    out, _ = _run(codes, stage=STAGE_AFFINE, affine=scaled, **_planes(identity, 255))
    x = codes.astype(np.float64) / 255
    expected = np.floor(np.clip(x @ m[:, :3].T.astype(np.float64) + m[:, 3], 0, 1) * 255 + 0.5)
    assert np.abs(out.astype(int) - expected).max() <= 1 and (out == expected).mean() > 0.95

    _, shaped = _run(codes, stage=STAGE_SHAPED, **_planes(identity, 255))
    np.testing.assert_array_equal(shaped, codes.transpose(2, 0, 1).astype(np.float32) / np.float32(255))


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_code_tile_local_gain(dtype, top):
    """Two masks from guided coefficients, m0 = Y and m1 = 1 - Y at low-resolution row 0, swapped at row 1; the
    first three rows blend from row 0 toward row 1 (weights l1), the last three are row 1's. The gain
    1 + m0 (2^1 - 1) + m1 (2^-1 - 1) multiplies linear light (here linear = code / top), then the table
    indexed by sqrt(lin * gain) gives the output."""
    h, w = 6, 7
    codes = RNG.integers(0, top + 1, (h, w, 3)).astype(dtype)
    luma = np.array([0.25, 0.5, 0.25], np.float32)
    levels = 1024
    scale = float(levels - 1) ** 2
    a = np.zeros((2, 2, w), np.float32)
    b = np.zeros((2, 2, w), np.float32)
    a[0, 0], a[1, 0], b[1, 0] = 1.0, -1.0, 1.0  # low row 0: m0 = Y, m1 = 1 - Y
    a[1, 1], a[0, 1], b[0, 1] = 1.0, -1.0, 1.0  # low row 1: swapped
    y0 = np.array([0, 0, 0, 1, 1, 1], np.int64)
    l1 = np.array([0.0, 0.25, 0.75, 0.0, 0.5, 1.0], np.float32)
    a_step, b_step = np.zeros_like(a), np.zeros_like(b)  # the change to the next low row (none after the last)
    a_step[:, 0], b_step[:, 0] = a[:, 1] - a[:, 0], b[:, 1] - b[:, 0]
    planes = dict(luma=luma / np.float32(top), a_wide=a, a_step=a_step, b_wide=b, b_step=b_step,
                  y0=y0, l1=l1, c=np.array([1.0, -0.5]) * scale, scale=scale,
                  sqrt_lin=np.sqrt(np.arange(top + 1) / top).astype(np.float32),
                  values=np.tile(np.linspace(0.0, 1.0, levels, dtype=np.float32) * top + np.float32(0.5), (3, 1)),
                  top=top)
    out, _ = _run(codes, local=True, **planes)
    x = codes.astype(np.float64) / top
    y = (x * luma).sum(-1, keepdims=True)
    t = np.where(y0 == 0, l1, 1.0)[:, None, None]  # how far each row is from low row 0 toward low row 1
    m0 = (1 - t) * y + t * (1 - y)
    gain = 1 + m0 * 1.0 + (1 - m0) * -0.5
    j = np.minimum(np.floor(np.sqrt(x * gain) * (levels - 1)), levels - 1)  # the table's entry
    expected = np.floor(j / (levels - 1) * top + 0.5)  # it holds t * top + 1/2 at t = j / (levels - 1)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1
    assert (out == expected).mean() > 0.9

    lower, _ = _run(codes[3:], local=True, r0=3, **planes)
    np.testing.assert_array_equal(lower, out[3:])  # a tile's rows index the whole image's coefficient rows


def test_uncacheable_kernels_still_compile(monkeypatch):
    calls = []

    def fake_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return lambda fn: fn

    monkeypatch.setattr(kernels, "njit", fake_njit)
    fn = kernels._compiled()(lambda: 1)
    assert fn() == 1 and calls == [{"nogil": True, "cache": True}, {"nogil": True}]
