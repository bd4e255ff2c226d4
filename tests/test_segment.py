import pytest
import torch

from conftest import random_image
from deepexpose.filters import luminance
from deepexpose.segment import SEGMENTERS, band_centres, hat_masks, luminosity_masks, segment, superpixel_masks


def two_region_image(h=24, w=32):
    """Dark left half with a little texture, bright right half."""
    x = torch.full((1, 3, h, w), 0.15)
    x[..., w // 2:] = 0.85
    x += 0.03 * torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    return x


@pytest.mark.parametrize("method", list(SEGMENTERS))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_masks_are_a_partition_of_unity(method, k):
    x = random_image(b=2, h=20, w=24)
    m = segment(x, k, method)
    assert m.shape == (2, k, 20, 24) and m.dtype == x.dtype
    assert m.min() >= 0 and m.max() <= 1
    torch.testing.assert_close(m.sum(1), torch.ones(2, 20, 24))


def test_band_centres_follow_the_images_quantiles():
    lum = torch.linspace(0, 1, 1001).view(1, 1, 1, -1)
    torch.testing.assert_close(band_centres(lum, 4), torch.tensor([[0.125, 0.375, 0.625, 0.875]]))
    # a flat image still gets strictly increasing centres
    c = band_centres(torch.full((1, 1, 4, 4), 0.5), 3)
    assert (c.diff(dim=1) > 0).all()
    with pytest.raises(ValueError):
        band_centres(lum, 0)


def test_hat_masks_at_and_between_centres():
    centres = torch.tensor([[0.2, 0.5, 0.8]])
    lum = torch.tensor([0.0, 0.2, 0.35, 0.5, 0.8, 1.0]).view(1, 1, 1, 6)
    m = hat_masks(lum, centres)[0, :, 0]
    expected = torch.tensor([[1, 1, 0.5, 0, 0, 0], [0, 0, 0.5, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=m.dtype)
    torch.testing.assert_close(m, expected)


def test_dark_pixels_go_to_the_first_band():
    x = two_region_image()
    m = luminosity_masks(x, 2)
    assert m[0, 0, :, :10].mean() > 0.9 and m[0, 1, :, -10:].mean() > 0.9


def test_superpixel_masks_are_constant_within_regions():
    x = two_region_image()
    for method in ("slic", "felzenszwalb"):
        m = superpixel_masks(x, 2, method=method, n_segments=8)
        # texture inside each half no longer changes the mask: per-pixel luminosity masks vary, these do not
        assert m[0, 0, :, :12].std() < 0.05 < luminosity_masks(x, 4)[0, 1, :, :12].std() + 0.05
        assert m[0, 0, :, :12].mean() > 0.9 and m[0, 1, :, -12:].mean() > 0.9


def test_masks_follow_device(device):
    x = random_image(device=device)
    assert segment(x, 3).device == x.device
    assert superpixel_masks(x, 3).device == x.device


def test_lum_override_and_errors():
    x = random_image(b=1)
    flat = torch.full((1, 1, 8, 10), 0.3)
    m = luminosity_masks(x, 3, lum=flat)
    assert torch.allclose(m[:, 0], torch.ones(1, 8, 10))  # everything sits at the lowest centre
    with pytest.raises(ValueError, match="segmentation"):
        segment(x, 3, "kmeans")
    with pytest.raises(ValueError, match="superpixel"):
        superpixel_masks(x, 3, method="quickshift")
    with pytest.raises(ValueError):
        luminosity_masks(torch.rand(3, 8, 8), 2)


def test_luminance_weights():
    x = torch.zeros(1, 3, 1, 1)
    x[0, 1] = 1.0
    assert float(luminance(x)) == pytest.approx(0.7152)
