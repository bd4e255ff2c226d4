"""Tests for deepexpose.metrics: hand-computed values and agreement with scikit-image."""

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deepexpose.metrics import (
    do_no_harm,
    PSNR_CAP,
    capped_psnr,
    delta_e76,
    delta_e2000,
    capped_pair,
    evaluate_pair,
    mean_metrics,
    psnr,
    ssim,
)


def _rand_pair(seed, shape=(24, 31, 3), noise=25):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return a, b


def _uniform(rgb, shape=(16, 20)):
    return np.broadcast_to(np.asarray(rgb, np.uint8), (*shape, 3)).copy()


# ---------------------------------------------------------------- hand-computed values


def test_psnr_one_level_offset_is_20log10_255():
    target = _uniform((10, 120, 250))
    pred = target + 1
    assert psnr(pred, target) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr(pred, target) == pytest.approx(48.1308036, abs=1e-6)
    # same on [0, 1] floats
    assert psnr(pred / 255.0, target / 255.0) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_capped_psnr():
    target = _uniform((10, 120, 250))
    assert math.isinf(psnr(target, target)) and capped_psnr(target, target) == PSNR_CAP == 100.0
    assert capped_psnr(target + 1, target) == psnr(target + 1, target) < PSNR_CAP
    floats = target.astype(np.float64) / 255
    assert capped_psnr(floats + 0.2 / 255, floats, quantize=False) == psnr(floats + 0.2 / 255, floats, quantize=False)
    assert capped_psnr(floats + 0.2 / 255, floats) == PSNR_CAP  # quantised to the same codes


def test_psnr_hand_mse():
    target = np.zeros((10, 10, 3), np.uint8)
    pred = target.copy()
    pred[:5] = 2  # half the values off by 2 -> MSE = 2
    assert psnr(pred, target) == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-9)


def test_ssim_uniform_images_hand_formula():
    a, b = _uniform((100, 100, 100)), _uniform((110, 110, 110))
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)  # variances are 0
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def _srgb_to_lab_by_hand(rgb8):
    c = np.asarray(rgb8, float) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
    )
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_delta_e76_uniform_colours_by_hand():
    c1, c2 = (200, 100, 50), (190, 110, 60)
    expected = float(np.linalg.norm(_srgb_to_lab_by_hand(c1) - _srgb_to_lab_by_hand(c2)))
    assert delta_e76(_uniform(c1), _uniform(c2)) == pytest.approx(expected, abs=1e-3)
    # black vs white: L 0 -> 100, a = b = 0
    assert delta_e76(_uniform((0, 0, 0)), _uniform((255, 255, 255))) == pytest.approx(100, abs=1e-2)


def test_delta_e2000_greys_by_hand():
    # neutral greys: only the lightness term remains, dE00 = |dL| / S_L
    g1, g2 = 90, 140
    l1, l2 = _srgb_to_lab_by_hand((g1,) * 3)[0], _srgb_to_lab_by_hand((g2,) * 3)[0]
    lbar = (l1 + l2) / 2
    s_l = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    assert delta_e2000(_uniform((g1,) * 3), _uniform((g2,) * 3)) == pytest.approx(abs(l2 - l1) / s_l, abs=1e-3)
    assert delta_e2000(_uniform((0, 0, 0)), _uniform((255, 255, 255))) == pytest.approx(100, abs=1e-2)


# ---------------------------------------------------------------- agreement with skimage


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_skimage(seed):
    a, b = _rand_pair(seed, shape=(23 + seed, 37, 3), noise=10 + 20 * seed)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    ref = structural_similarity(
        a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)
    la, lb = rgb2lab(a), rgb2lab(b)
    assert delta_e76(a, b) == pytest.approx(float(deltaE_cie76(la, lb).mean()), abs=1e-9)
    assert delta_e2000(a, b) == pytest.approx(float(deltaE_ciede2000(la, lb).mean()), abs=1e-9)


def test_float_inputs_are_quantised_like_the_protocol():
    rng = np.random.default_rng(5)
    a = rng.random((20, 20, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    a8, b8 = (np.round(x * 255).astype(np.uint8) for x in (a, b))
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b8, a8, data_range=255), abs=1e-9)
    assert ssim(a, b) == pytest.approx(ssim(a8, b8), abs=1e-12)
    assert delta_e2000(a, b) == pytest.approx(delta_e2000(a8, b8), abs=1e-12)


# ---------------------------------------------------------------- identity and quantisation


def test_identity():
    a, _ = _rand_pair(3)
    m = evaluate_pair(a, a)
    assert m["psnr"] == math.inf
    assert m["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert m["delta_e76"] == 0.0 and m["delta_e2000"] == 0.0
    assert capped_pair(a, a) == {**m, "psnr": PSNR_CAP}  # what means average: finite


def test_sub_level_offset_vanishes_after_quantisation():
    target = np.round(np.random.default_rng(4).random((16, 16, 3)) * 250) / 255
    pred = target + 0.4 / 255
    assert psnr(pred, target) == math.inf
    assert ssim(pred, target) == pytest.approx(1.0, abs=1e-12)
    assert delta_e76(pred, target) == 0.0
    # without quantisation the offset is measured: PSNR = 20 log10(255 / 0.4)
    assert psnr(pred, target, quantize=False) == pytest.approx(20 * math.log10(255 / 0.4), abs=1e-6)


def test_out_of_range_floats_are_clipped_when_quantising():
    target = np.ones((12, 12, 3))
    assert psnr(target * 1.3, target) == math.inf
    assert psnr(-0.2 * target, 0 * target) == math.inf


# ---------------------------------------------------------------- input formats and errors


def test_floats_on_another_scale_and_non_finite_values_are_refused():
    a, b = _rand_pair(8)
    with pytest.raises(ValueError, match="span 0..2.*pass uint8, or divide by 255"):
        psnr(a.astype(np.float64), b)  # 0..255 floats used to score as white: about 5.8 dB
    nan = b / 255.0
    nan[1, 2, 0] = np.nan
    for metric in (psnr, ssim, delta_e76, delta_e2000):
        with pytest.raises(ValueError, match="NaN or infinite"):
            metric(a, nan)
    assert psnr(np.full((8, 8, 3), 1.9), np.ones((8, 8, 3))) == math.inf  # slightly out of range: clipped
    with pytest.raises(ValueError, match="empty image"):  # still the shape's message, not numpy's min() error
        psnr(np.zeros((0, 4, 3), np.float32), np.zeros((0, 4, 3), np.float32))
    ta = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    got = evaluate_pair(ta.bfloat16(), b)  # bfloat16 has no numpy dtype
    assert got["psnr"] == pytest.approx(evaluate_pair(ta.bfloat16().float(), b)["psnr"])


def test_torch_layouts_match_numpy():
    a, b = _rand_pair(6)
    ta = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1).float() / 255
    ref = evaluate_pair(a, b)
    for x, y in [(ta, tb), (ta[None], tb[None]), (ta, b), (ta.requires_grad_(), tb)]:
        got = evaluate_pair(x, y)
        for k in ref:
            assert got[k] == pytest.approx(ref[k], abs=1e-9)


def test_bad_shapes_raise_value_error():
    a, b = _rand_pair(7)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, b[:-1])
    with pytest.raises(ValueError, match="HxWx3"):
        psnr(np.zeros((12, 12, 4)), np.zeros((12, 12, 4)))
    with pytest.raises(ValueError, match="HxWx3"):
        ssim(np.zeros((3, 12, 12)), np.zeros((3, 12, 12)))  # numpy must be channels-last
    with pytest.raises(ValueError, match="3xHxW"):
        psnr(torch.zeros(4, 12, 12), torch.zeros(4, 12, 12))
    with pytest.raises(ValueError, match="batch"):
        psnr(torch.zeros(2, 3, 12, 12), torch.zeros(2, 3, 12, 12))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 30, 3)), np.zeros((8, 30, 3)))
    with pytest.raises(ValueError, match="uint8"):
        psnr(np.zeros((12, 12, 3), np.uint16), np.zeros((12, 12, 3), np.uint16))


def test_mean_metrics():
    rows = [
        {"psnr": 30.0, "ssim": 0.9, "delta_e76": 2.0, "delta_e2000": 1.0},
        {"psnr": 20.0, "ssim": 0.7, "delta_e76": 4.0, "delta_e2000": 3.0},
    ]
    assert mean_metrics(rows) == pytest.approx({"psnr": 25.0, "ssim": 0.8, "delta_e76": 3.0, "delta_e2000": 2.0})
    assert mean_metrics(iter(rows)) == mean_metrics(rows)
    with pytest.raises(ValueError):
        mean_metrics([])
    with pytest.raises(ValueError, match="keys"):
        mean_metrics([rows[0], {"psnr": 1.0}])


def test_evaluate_pair_keys_and_values():
    a, b = _rand_pair(8)
    m = evaluate_pair(a, b)
    assert set(m) == {"psnr", "ssim", "delta_e76", "delta_e2000"}
    assert m["psnr"] == psnr(a, b) and m["ssim"] == ssim(a, b)
    assert all(isinstance(v, float) for v in m.values())


def test_do_no_harm_charges_each_photo_below_38_db():
    # one photo ruined at 20 dB beside three copies at 100 dB: the mean (80 dB) is far above 38, the shortfall is not
    r = do_no_harm([100.0, 100.0, 100.0, 20.0])
    assert r["good_psnr"] == pytest.approx(80.0)
    assert r["good_shortfall"] == pytest.approx(18.0 / 4) and r["good_within"] == pytest.approx(0.75)
    r = do_no_harm([38.0, 40.0])  # at the threshold counts as within, with no shortfall
    assert r == {"good_psnr": 39.0, "good_shortfall": 0.0, "good_within": 1.0}
    r = do_no_harm([30.0, 35.0])
    assert r["good_shortfall"] == pytest.approx((8.0 + 3.0) / 2) and r["good_within"] == 0.0
    for bad in ([], [math.inf], [float("nan")]):
        with pytest.raises(ValueError):
            do_no_harm(bad)
