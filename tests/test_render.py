"""render_edit: the tiled, bounded-memory rendering of an edit equals apply_edit within 1/255."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import deepexpose.render as render_module
from deepexpose.apply import apply_edit, to_view
from deepexpose.filters import FilterPipeline
from deepexpose.fusion import guided_upsample
from deepexpose.io import quantize
from deepexpose.lut import torch_single_threaded
from deepexpose.render import (RowUpsampler, crop_views, guided_coefficients, make_view, prepare_edit, render_edit,
                               upsample_rows)
from deepexpose.segment import segment

PIPE = FilterPipeline()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with torch_single_threaded():
        yield


def photo(h, w, seed=0, name="astronaut"):
    """A natural 8-bit photo (scikit-image's) resized to ``h x w``, with a little noise."""
    import skimage.data

    a = getattr(skimage.data, name)()[..., :3]
    a = np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR), np.float32)
    a += np.random.default_rng(seed).normal(0, 2, a.shape).astype(np.float32)
    return np.clip(a, 0, 255).round().astype(np.uint8)


def an_edit(seed, k=3, scale=1.0, local=True):
    g = torch.Generator().manual_seed(seed)
    edit = PIPE.describe((torch.rand(1, PIPE.num_params, generator=g) * 2 - 1) * scale)[0]
    ev = (torch.rand(k, generator=g) * 6 - 3) * scale if local else torch.zeros(k)
    edit["local_exposure"] = {"ev": [round(float(v), 4) for v in ev]}
    return edit


def reference(pixels, edit, **kw):
    top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(pixels.dtype)
    x = pixels.astype(np.float32) / np.float32(top) if top else pixels
    with torch.no_grad():
        return apply_edit(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None], edit, **kw)[0] \
            .permute(1, 2, 0).numpy()


def max_error(got, ref):
    top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(got.dtype)
    return float(np.abs(got / np.float64(top) - ref).max()) if top else float(np.abs(got - ref).max())


# --------------------------------------------------------------------------------------------- pieces


@pytest.mark.parametrize("low, size", [((3, 8, 8), (45, 61)), ((2, 64, 64), (300, 97)), ((1, 10, 7), (5, 4)),
                                       ((2, 6, 9), (6, 40))])
def test_row_upsampler_equals_interpolate(low, size):
    x = torch.rand(*low, generator=torch.Generator().manual_seed(0))
    full = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
    up = RowUpsampler(x, size)
    for r0, r1 in [(0, size[0]), (0, 1), (size[0] - 1, size[0]), (size[0] // 3, size[0] // 2 + 1)]:
        np.testing.assert_allclose(up.rows(r0, r1), full[:, r0:r1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(up.rows(0, 2, channel=low[0] - 1), full[-1, :2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(upsample_rows(x.numpy(), size, 1, 3), full[:, 1:3], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape, rows", [((129, 250), 7), ((300, 97), 64), ((40, 333), 3), ((64, 64), None)])
def test_make_view_is_to_view(dtype, shape, rows):
    a = photo(*shape)
    if dtype == np.uint16:
        a = a.astype(np.uint16) * 257 + np.uint16(100)
    elif dtype == np.float32:
        a = a.astype(np.float32) / 255
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype)
    x = torch.from_numpy(a.astype(np.float32) / np.float32(top) if top else a).permute(2, 0, 1)[None]
    view = make_view(a, 64, threads=1 + rows % 2 if rows else 2)
    assert view.shape == (1, 3, 64, 64) and view.dtype == torch.float32
    torch.testing.assert_close(view, to_view(x.contiguous(), 64), rtol=0, atol=1e-6)  # same filter, by rows


@pytest.mark.parametrize("n_in", [1, 5, 63, 64, 65, 97, 250, 1001])
def test_antialias_weights_are_torchs(n_in):
    """The weights applied to the identity give torch's own antialiased bilinear resize of the identity."""
    for n_out in (32, 64):
        start, weights = render_module._antialias_weights(n_in, n_out)
        mine = np.zeros((n_out, n_in))
        for i in range(n_out):
            row = weights[i, :n_in - start[i]]
            mine[i, start[i]:start[i] + len(row)] = row
        eye = torch.eye(n_in, dtype=torch.float64)[None, None]
        torchs = F.interpolate(eye, size=(n_out, n_in), mode="bilinear", antialias=True, align_corners=False)[0, 0]
        np.testing.assert_allclose(mine, torchs.numpy(), rtol=0, atol=1e-6)


def test_make_view_of_any_memory_layout():
    a = photo(90, 130)
    view = make_view(a, 64)
    assert view.is_contiguous()
    flipped = a[:, ::-1]  # a view with a negative stride
    torch.testing.assert_close(make_view(flipped, 64), make_view(np.ascontiguousarray(flipped), 64), rtol=0, atol=0)


def test_guided_coefficients_reproduce_guided_upsample():
    small = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    big = F.interpolate(small, size=(70, 45), mode="bilinear", align_corners=False)
    masks = segment(small, 3)
    a, b = guided_coefficients(masks, small)
    up = RowUpsampler(torch.cat([a[0], b[0]]), (70, 45)).rows(0, 70)
    y = (big.clamp(0, 1) * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1)[0].numpy()
    z = np.maximum(up[:3] * y + up[3:], 0)
    mine = z / np.maximum(z.sum(0, keepdims=True), 1e-6)
    np.testing.assert_allclose(mine, guided_upsample(masks, small, big)[0].numpy(), atol=2e-6)
    a0, b0 = guided_coefficients(masks[..., :2, :2], small[..., :2, :2])  # no room for a window
    assert torch.equal(a0, torch.zeros_like(a0)) and torch.equal(b0, masks[..., :2, :2])


# --------------------------------------------------------------------------------------------- whole edits


@pytest.mark.parametrize("shape, seed, rows", [((97, 333), 0, 16), ((150, 211), 1, None), ((257, 190), 2, 5),
                                               ((40, 500), 3, 7), ((201, 201), 4, 64)])
def test_8bit_equals_apply_edit(shape, seed, rows):
    a = photo(*shape, seed=seed, name=("astronaut", "coffee", "chelsea", "rocket", "astronaut")[seed])
    for i, edit in enumerate([an_edit(seed), an_edit(seed + 10, scale=0.4), an_edit(seed + 20, k=5),
                              an_edit(seed + 30, local=False)]):
        got = render_edit(a, edit, tile_rows=rows, threads=1 + i % 2)
        ref = reference(a, edit)
        assert got.dtype == np.uint8 and got.shape == a.shape
        assert max_error(got, ref) <= 0.6 / 255, (shape, i)  # within 1/255: the rounding plus < 0.1/255
        assert np.abs(got.astype(int) - quantize(ref, 8).astype(int)).max() <= 1


def test_16bit_and_float_equal_apply_edit():
    a8 = photo(121, 173, name="coffee")
    a16 = a8.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, a8.shape).astype(np.uint16)
    af = a16.astype(np.float32) / 65535
    for edit in (an_edit(5), an_edit(6, local=False), an_edit(7, k=2, scale=0.5)):
        for a in (a16, af):
            got = render_edit(a, edit, tile_rows=11)
            assert got.dtype == a.dtype
            assert max_error(got, reference(a, edit)) <= 0.2 / 255
    assert max_error(render_edit(af, an_edit(8)), reference(af, an_edit(8))) < 0.05 / 255  # floats: no rounding


def test_refined_and_superpixel_masks():
    a = photo(90, 130, name="chelsea")
    edit = an_edit(9, k=4)
    for kw in (dict(refine_radius=3), dict(segmentation="slic"), dict(view=32)):
        assert max_error(render_edit(a, edit, tile_rows=13, **kw), reference(a, edit, **kw)) <= 1 / 255, kw


def test_small_photos_use_the_reference_directly():
    for shape in ((64, 64), (30, 41)):
        a = photo(*shape)
        edit = an_edit(11)
        np.testing.assert_array_equal(render_edit(a, edit), quantize(reference(a, edit), 8))


def test_no_local_step_when_every_ev_is_zero(monkeypatch):
    a = photo(80, 120)
    edit = an_edit(12, local=False)
    monkeypatch.setattr(render_module, "segment", lambda *a, **k: pytest.fail("segmented"))
    monkeypatch.setattr(render_module, "make_view", lambda *a, **k: pytest.fail("made a view"))
    assert max_error(render_edit(a, edit), reference(a, edit)) <= 1 / 255
    identity = {"local_exposure": {"ev": [0.0, 0.0]}}
    np.testing.assert_array_equal(render_edit(a, identity), a)


def test_strength_blends_toward_the_input():
    a = photo(70, 110, name="rocket")
    np.testing.assert_array_equal(render_edit(a, an_edit(13), strength=0.0), a)
    for edit in (an_edit(13), an_edit(2, local=False)):  # saturation pushes some values below 0 first
        for image in (a, a.astype(np.uint16) * 257):
            x = image / (255.0 if image.dtype == np.uint8 else 65535.0)
            got = render_edit(image, edit, strength=0.7)
            assert max_error(got, 0.3 * x + 0.7 * reference(image, edit)) <= 0.51 / 255
    af = a.astype(np.float32) / 255
    assert max_error(render_edit(af, edit, strength=0.25), 0.75 * af + 0.25 * reference(af, edit)) < 1e-3 / 255


def test_out_argument_and_in_place():
    a = photo(75, 99)
    edit = an_edit(14)
    expected = render_edit(a, edit)
    out = np.zeros_like(a)
    assert render_edit(a, edit, out=out) is out
    np.testing.assert_array_equal(out, expected)
    b = a.copy()
    render_edit(b, edit, out=b, tile_rows=4, threads=2)
    np.testing.assert_array_equal(b, expected)
    ro = a.copy()
    ro.flags.writeable = False  # e.g. pixels straight from a decoder
    np.testing.assert_array_equal(render_edit(ro, edit), expected)


def test_other_filter_chains():
    """A cross-channel part that is no clipped affine map is evaluated with the filter code per tile."""
    a = photo(60, 90, name="coffee")
    edit = {"local_exposure": {"ev": [0.5, -0.5]}, "saturation": {"factor": 1.3}, "gamma": {"gamma": 1.4}}
    filters = ("saturation", "gamma")
    ref = reference(a, edit, filters=filters)
    assert max_error(render_edit(a, edit, filters=filters), ref) <= 1 / 255
    af = a.astype(np.float32) / 255
    assert max_error(render_edit(af, edit, filters=filters), reference(af, edit, filters=filters)) < 0.05 / 255


def test_curves_only_and_other_chains_at_any_strength_and_depth():
    """No cross-channel stage (the tables give output codes directly) and a cross-channel stage that is no
    matrix (its filter code on each tile), for 8- and 16-bit photos, at full strength and blended."""
    a8 = photo(60, 90, name="coffee")
    a16 = a8.astype(np.uint16) * 257
    for filters, edit in ((("exposure", "gamma"), {"local_exposure": {"ev": [0.6, -0.4]}, "exposure": {"ev": 0.3},
                                                   "gamma": {"gamma": 1.3}}),
                          (("saturation", "gamma"), {"local_exposure": {"ev": [0.5, -0.5]},
                                                     "saturation": {"factor": 1.3}, "gamma": {"gamma": 1.4}})):
        for a in (a8, a16):
            top = 255 if a.dtype == np.uint8 else 65535
            ref = reference(a, edit, filters=filters)
            for strength in (1.0, 0.6):
                got = render_edit(a, edit, filters=filters, strength=strength, tile_rows=7, threads=2)
                expected = (1 - strength) * a.astype(np.float64) / top + strength * ref
                assert max_error(got, expected) <= 0.6 / 255, (filters, a.dtype, strength)


def test_bad_arguments():
    a = photo(70, 70)
    with pytest.raises(ValueError, match="local exposures"):
        render_edit(a, {"exposure": {"ev": 1.0}})
    with pytest.raises(ValueError, match="strength"):
        render_edit(a, an_edit(1), strength=1.5)
    with pytest.raises(ValueError, match="H x W x 3"):
        render_edit(a[..., :2], an_edit(1))
    with pytest.raises(TypeError, match="uint8"):
        render_edit(a.astype(np.int32), an_edit(1))
    with pytest.raises(ValueError, match="out"):
        render_edit(a, an_edit(1), out=np.zeros((70, 70, 3), np.uint16))
    with pytest.raises(ValueError, match="unknown filters"):
        render_edit(a, {**an_edit(1), "vignette": {"amount": 1.0}})
    with pytest.raises(ValueError, match="tile_rows"):
        render_edit(a, an_edit(1), tile_rows=0)


def test_a_view_made_beforehand_is_reused(monkeypatch):
    a = photo(90, 140, name="coffee")
    edit = an_edit(15)
    view = make_view(a, 64)
    expected = render_edit(a, edit)
    monkeypatch.setattr(render_module, "make_view", lambda *a, **k: pytest.fail("made the view again"))
    np.testing.assert_array_equal(render_edit(a, edit, view_image=view), expected)
    with pytest.raises(ValueError, match="view_image"):
        render_edit(a, edit, view_image=view[..., :32, :32])


def test_prepared_edit_needs_no_pixels_and_renders_the_same(monkeypatch):
    a = photo(90, 140, name="coffee")
    for dtype, pixels in ((np.uint8, a), (np.float32, a.astype(np.float32) / 255)):
        for local in (True, False):
            edit = an_edit(16, local=local)
            view = make_view(pixels, 64)
            expected = render_edit(pixels, edit, view_image=view)
            prepared = prepare_edit((90, 140), dtype, edit, view_image=view)
            assert prepared.fits(pixels) and (prepared.gain is not None) == local
            with monkeypatch.context() as m:
                m.setattr(render_module, "prepare_edit", lambda *a, **k: pytest.fail("prepared again"))
                np.testing.assert_array_equal(render_edit(pixels, edit, view_image=view, prepared=prepared),
                                              expected)
    other = prepare_edit((90, 141), np.uint8, an_edit(16), view_image=view)
    with pytest.raises(ValueError, match="prepared is for"):
        render_edit(a, an_edit(16), prepared=other)
    with pytest.raises(ValueError, match="view_image or its pixels"):
        prepare_edit((90, 140), np.uint8, an_edit(16))
    assert prepare_edit((90, 140), np.uint8, an_edit(16, local=False)).gain is None  # no view needed


def smooth_photo(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / w * 5) * np.cos(y / h * 3)
    g = 0.2 + 0.6 * x / w
    b = 0.3 + 0.5 * (y / h) ** 2
    return (np.stack([r, g, b], 2) * 255).round().astype(np.uint8)


def test_crop_views_are_views_of_crops():
    px = smooth_photo(300, 420)
    views = crop_views(px, 32, 0.5)
    assert views.shape == (5, 3, 32, 32) and views.dtype == torch.float32
    photo = torch.from_numpy(px).permute(2, 0, 1)[None].float() / 255
    crops = [photo[..., :150, :210], photo[..., :150, 210:], photo[..., 150:, :210], photo[..., 150:, 210:],
             photo[..., 75:225, 105:315]]  # the corners and the centre
    for i, crop in enumerate(crops):
        diff = (views[i] - to_view(crop, 32)[0]).abs()
        assert diff.mean() < 2e-3 and diff.max() < 0.02, i
    others = crop_views(px, 32, 1.0)  # crops as large as the photo: five copies of its view
    assert (others - make_view(px, 32)).abs().max() < 0.02
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            crop_views(px, 32, bad)
