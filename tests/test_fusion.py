import pytest
import torch
import torch.nn.functional as F

from conftest import random_image
from deepexpose.filters import adjust_exposure
from deepexpose.fusion import blend_exposures, guided_upsample, refine_masks
from deepexpose.segment import luminosity_masks


def step_image(h=32, w=32, edge=16):
    """A sharp vertical edge between a dark and a bright region."""
    x = torch.full((1, 3, h, w), 0.1)
    x[..., edge:] = 0.9
    return x


def test_zero_exposures_return_the_input_exactly():
    x = random_image(b=2, h=24, w=20)
    m = luminosity_masks(x, 4)
    assert torch.equal(blend_exposures(x, m, torch.zeros(2, 4)), x)
    assert torch.equal(blend_exposures(x, m, torch.zeros(2, 4), refine=False), x)


def test_equal_exposures_equal_a_global_exposure():
    x = random_image(b=1, h=16, w=16)
    m = luminosity_masks(x, 3)
    torch.testing.assert_close(blend_exposures(x, m, torch.full((1, 3), 0.7)), adjust_exposure(x, 0.7))


def test_each_band_gets_its_own_exposure():
    x = step_image()
    m = luminosity_masks(x, 2)
    out = blend_exposures(x, m, torch.tensor([[1.0, -1.0]]))
    torch.testing.assert_close(out[..., :, 2], adjust_exposure(x, 1.0)[..., :, 2])
    torch.testing.assert_close(out[..., :, -2], adjust_exposure(x, -1.0)[..., :, -2])


def test_refined_masks_smooth_texture_but_keep_edges():
    """The guided filter removes mask noise from texture inside a region but not the step at an edge."""
    x = step_image()
    x = x + 0.04 * (torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) - 0.5)
    masks = luminosity_masks(x, 4)
    refined = refine_masks(masks, x, radius=4, eps=1e-2)
    torch.testing.assert_close(refined.sum(1), torch.ones(1, 32, 32))
    # texture: the masks inside the dark half are much smoother after refinement
    assert refined[0, :, :, 2:12].std(dim=(1, 2)).max() < 0.5 * masks[0, :, :, 2:12].std(dim=(1, 2)).max()
    # edge: dark-band weight (bands 0+1) still drops from ~1 to ~0 within one pixel, unlike a box blur
    dark = refined[0, :2].sum(0).mean(0)
    boxed = F.avg_pool2d(F.pad(masks, (4, 4, 4, 4), mode="replicate"), 9, stride=1)[0, :2].sum(0).mean(0)
    assert dark[15] > 0.9 and dark[16] < 0.1
    assert 0.2 < boxed[15] < 0.8


def test_guided_upsample_is_edge_aware():
    hi = step_image(128, 128, edge=67)  # the edge is not on the low-resolution grid
    lo = F.interpolate(hi, size=(32, 32), mode="area")
    masks = luminosity_masks(lo, 2)
    up = guided_upsample(masks, lo, hi, radius=2, eps=1e-4)
    assert up.shape == (1, 2, 128, 128)
    torch.testing.assert_close(up.sum(1), torch.ones(1, 128, 128))
    truth = luminosity_masks(hi, 2)
    bilinear = F.interpolate(masks, size=(128, 128), mode="bilinear", align_corners=False)
    assert (up - truth).abs().mean() < 0.3 * (bilinear - truth).abs().mean()
    # full-resolution blend with upsampled masks: zero exposures still change nothing
    assert torch.equal(blend_exposures(hi, up, torch.zeros(1, 2), refine=False), hi)


def test_same_result_on_view_and_full_resolution():
    """A smooth photo: blending at 64x64 then resizing ~= blending at full size with upsampled masks."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 256), indexing="ij")
    hi = torch.stack([0.2 + 0.6 * xx, 0.2 + 0.5 * yy, 0.5 * (xx + yy) / 2 + 0.1]).unsqueeze(0)
    lo = F.interpolate(hi, size=(64, 64), mode="area")
    ev = torch.tensor([[1.0, 0.0, -1.0]])
    m_lo = luminosity_masks(lo, 3)
    out_lo = blend_exposures(lo, m_lo, ev, refine=False)
    out_hi = blend_exposures(hi, guided_upsample(m_lo, lo, hi), ev, refine=False)
    torch.testing.assert_close(F.interpolate(out_hi, size=(64, 64), mode="area"), out_lo, atol=0.02, rtol=0)


def test_fusion_gradients_and_errors():
    x = random_image(b=1, h=12, w=12, low=0.2, high=0.8)
    m = luminosity_masks(x, 3)
    ev = torch.zeros(1, 3, requires_grad=True)
    blend_exposures(x, m, ev).sum().backward()
    assert torch.isfinite(ev.grad).all() and (ev.grad > 0).all()
    with pytest.raises(ValueError):
        refine_masks(m[..., :6], x)
    with pytest.raises(ValueError):
        guided_upsample(m, x[..., :6, :6], x)
    with pytest.raises(ValueError):
        blend_exposures(x, m, torch.zeros(1, 2))
