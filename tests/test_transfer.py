"""Pitié's iterative distribution transfer: distributions matched, reusable mapping, histograms, images."""

import pytest
import torch

import deepexpose.transfer as transfer_module
from deepexpose.transfer import (
    PdfTransfer,
    fit_pdf_transfer,
    histogram_points,
    pdf_transfer,
    random_rotations,
    rgb_histogram,
    smooth_histogram,
    transfer_image,
)
from conftest import random_image

QS = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster than two busy ones (OpenMP waits) on a shared machine."""
    from deepexpose.agents.train import torch_threads

    with torch_threads(1):
        yield


def clouds(n=4000, m=6000, seed=0, dtype=torch.float32):
    """A uniform source cube and a correlated, shifted, non-Gaussian target (a mixture of two blobs)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(n, 3, generator=g, dtype=torch.float64)
    a = torch.tensor([[0.10, 0.05, 0.0], [0.0, 0.06, 0.03], [0.02, 0.0, 0.12]], dtype=torch.float64)
    tgt = torch.randn(m, 3, generator=g, dtype=torch.float64) @ a + torch.tensor([0.5, 0.3, 0.6],
                                                                                 dtype=torch.float64)
    tgt[: m // 3] += torch.tensor([0.2, -0.1, 0.1], dtype=torch.float64)
    return src.to(dtype), tgt.to(dtype)


def max_marginal_gap(a, b, directions):
    """Largest gap between matching quantiles of the projections of ``a`` and ``b`` on unit ``directions``."""
    pa, pb = (a.double() @ directions.T), (b.double() @ directions.T)
    return float((torch.quantile(pa, QS, dim=0) - torch.quantile(pb, QS, dim=0)).abs().max())


def test_moves_a_cloud_onto_a_different_distribution():
    src, tgt = clouds()
    out = pdf_transfer(src, tgt, iterations=20, seed=3)
    torch.testing.assert_close(out.mean(0), tgt.mean(0), atol=2e-3, rtol=0)
    torch.testing.assert_close(out.std(0), tgt.std(0), atol=3e-3, rtol=0)
    torch.testing.assert_close(torch.cov(out.T), torch.cov(tgt.T), atol=4e-4, rtol=0)
    d = torch.nn.functional.normalize(torch.randn(40, 3, generator=torch.Generator().manual_seed(9),
                                                  dtype=torch.float64), dim=1)
    assert max_marginal_gap(src, tgt, d) > 0.3           # far apart before
    assert max_marginal_gap(out, tgt, d) < 0.015         # every 1D marginal matched after


def test_identity_when_source_equals_target():
    src, _ = clouds()
    torch.testing.assert_close(pdf_transfer(src, src.clone()), src, atol=1e-5, rtol=0)
    # the same histogram as source and target: exactly the same points, the identity
    h = rgb_histogram(random_image(1, 16, 16, seed=2), 8)[0]
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fit_pdf_transfer(h, h.clone(), iterations=5)(x), x, atol=1e-5, rtol=0)


def test_the_fitted_mapping_reproduces_the_fit_and_applies_to_other_colours():
    src, tgt = clouds(dtype=torch.float64)
    t = fit_pdf_transfer(src, tgt, iterations=12, bins=128, seed=1)
    assert isinstance(t, PdfTransfer) and t.iterations == 12
    assert torch.equal(t(src), pdf_transfer(src, tgt, iterations=12, bins=128, seed=1))
    # other colours: a subset and its complement map as they did within the whole set, any leading shape
    other = src[:100].view(10, 10, 3)
    torch.testing.assert_close(t(other), t(src)[:100].view(10, 10, 3))
    # every 1D map is monotone, so the colour order along each rotated axis is kept
    assert bool((t.fp.diff(dim=-1) >= 0).all()) and bool((t.xp.diff(dim=-1) > 0).all())
    # colours far outside the fitted range stay finite (slope-1 continuation)
    assert torch.isfinite(t(torch.tensor([[-5.0, 9.0, 0.5]], dtype=torch.float64))).all()


def test_round_trip_seed_and_chunking(monkeypatch):
    src, tgt = clouds(n=600, m=800)
    t = fit_pdf_transfer(src, tgt, iterations=6, bins=64, seed=5)
    back = PdfTransfer.from_dict({k: v.clone() for k, v in t.to_dict().items()})
    assert torch.equal(back(src), t(src))
    assert torch.equal(fit_pdf_transfer(src, tgt, iterations=6, bins=64, seed=5).rotations, t.rotations)
    assert not torch.equal(fit_pdf_transfer(src, tgt, iterations=6, bins=64, seed=6).rotations, t.rotations)
    monkeypatch.setattr(transfer_module, "_CHUNK", 97)
    assert torch.equal(t(src), back(src))


def test_random_rotations_are_rotations():
    r = random_rotations(16, torch.Generator().manual_seed(0), torch.float64)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(16, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(16, dtype=torch.float64))


def test_rgb_histogram_and_points():
    img = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]], [[0.49, 0.5]]]])   # 1 x 3 x 1 x 2
    h = rgb_histogram(img, 2)
    assert h.shape == (1, 2, 2, 2) and float(h.sum()) == pytest.approx(1.0)
    assert float(h[0, 0, 0, 0]) == 0.5 and float(h[0, 1, 1, 1]) == 0.5          # 1.0 falls in the last bin
    pts, w = histogram_points(h[0], per_bin=4)
    assert pts.shape == (8, 3) and float(w.sum()) == pytest.approx(1.0)
    assert bool(((pts[:4] >= 0) & (pts[:4] < 0.5)).all()) and bool((pts[4:] >= 0.5).all())


def test_smooth_histogram_keeps_the_mass_and_spreads_it_symmetrically():
    h = torch.zeros(2, 8, 8, 8, dtype=torch.float64)
    h[0, 3, 4, 0] = 1.0                      # a corner-touching bin: the faces reflect, no mass is lost
    h[1, 0, 0, 0] = h[1, 7, 7, 7] = 0.5
    s = smooth_histogram(h, 1.0)
    torch.testing.assert_close(s.sum((1, 2, 3)), torch.ones(2, dtype=torch.float64))
    assert float(s[0, 3, 4, 0]) < 0.5 and float(s[0, 3, 5, 0]) == pytest.approx(float(s[0, 3, 3, 0]))
    torch.testing.assert_close(s[1], s[1].flip(0, 1, 2))
    assert smooth_histogram(h, 0.0) is h
    with pytest.raises(ValueError, match="sigma"):
        smooth_histogram(h, -1.0)


def test_smooth_histogram_of_64_bins_is_the_product_of_its_three_axes():
    """One contraction of the three axes made an n^6 array (256 GB at 64 bins: --bins 64 failed in the allocator);
    the kernel is separable, so a single bin's mass spreads as the outer product of its three marginals."""
    h = torch.zeros(2, 64, 64, 64)
    h[0, 10, 20, 63] = 1.0
    h[1, 32, 32, 32] = 1.0
    s = smooth_histogram(h, 1.5)
    torch.testing.assert_close(s.sum((1, 2, 3)), torch.ones(2))
    for one in s:
        a, b, c = one.sum((1, 2)), one.sum((0, 2)), one.sum((0, 1))
        torch.testing.assert_close(one, a[:, None, None] * b[None, :, None] * c[None, None, :], atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(s[1].sum((1, 2)), s[1].sum((0, 2)))  # the same spread along every axis
    assert int(s[0].sum((1, 2)).argmax()) == 10 and int(s[0].sum((0, 1)).argmax()) == 63


def test_transfer_to_a_histogram_matches_it():
    src_img = random_image(1, 48, 48, seed=0) ** 2                          # dark, independent channels
    tgt_img = (random_image(1, 48, 48, seed=1) * 0.5 + 0.4).clamp(0, 1)
    hist = rgb_histogram(tgt_img, 16)[0]
    t = fit_pdf_transfer(src_img[0].flatten(1).T, hist, iterations=20)
    out = t.apply_image(src_img)
    for bins, limit in ((4, 0.12), (8, 0.25)):  # an independent sample of the target's law is 0.09 / 0.24 away
        coarse = rgb_histogram(tgt_img, bins)
        assert float((rgb_histogram(src_img, bins) - coarse).abs().sum()) > 1.5
        assert float((rgb_histogram(out, bins) - coarse).abs().sum()) < limit
    torch.testing.assert_close(out.mean((2, 3)), tgt_img.mean((2, 3)), atol=1e-2, rtol=0)


def test_transfer_image(device):
    x = random_image(2, 20, 30, seed=3, device=device) ** 1.5
    target = random_image(2, 12, 12, seed=4, device=device) * 0.6 + 0.2
    out = transfer_image(x, target, fit_size=None, iterations=15)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(out.mean((2, 3)), target.mean((2, 3)), atol=5e-3, rtol=0)
    torch.testing.assert_close(out.std((2, 3)), target.std((2, 3)), atol=1e-2, rtol=0)
    hist_out = transfer_image(x, rgb_histogram(target, 8), fit_size=16, iterations=5)
    assert hist_out.shape == x.shape


def test_bad_arguments():
    src, tgt = clouds(n=50, m=50)
    with pytest.raises(ValueError, match="iterations"):
        fit_pdf_transfer(src, tgt, iterations=0)
    with pytest.raises(ValueError, match="bins"):
        fit_pdf_transfer(src, tgt, bins=1)
    with pytest.raises(ValueError, match="M x 3"):
        fit_pdf_transfer(src[:, :2], tgt)
    with pytest.raises(ValueError, match="weights"):
        fit_pdf_transfer(src, tgt, target_weights=-torch.ones(50))
    with pytest.raises(ValueError, match="histogram"):
        fit_pdf_transfer(src, torch.rand(4, 4, 4), target_weights=torch.ones(64))
    with pytest.raises(ValueError, match="n x n x n"):
        histogram_points(torch.rand(4, 4, 3))
    with pytest.raises(ValueError, match="3 channels"):
        fit_pdf_transfer(src, tgt)(torch.rand(5, 4))
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        rgb_histogram(torch.rand(3, 4, 4), 8)
    with pytest.raises(ValueError, match="target"):
        transfer_image(torch.rand(2, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="missing"):
        PdfTransfer.from_dict({"rotations": torch.eye(3)[None]})
