"""Every registered filter: identity at action 0, shapes, dtypes, devices, per-sample params, ranges, gradients."""

import math

import pytest
import torch

from conftest import random_image
from deepexpose.filters import (
    FILTERS,
    Filter,
    ParamSpec,
    adjust_contrast,
    adjust_exposure,
    adjust_gamma,
    adjust_levels,
    adjust_saturation,
    adjust_white_balance,
    get_filter,
    luminance,
    srgb_to_linear,
    tone_curve,
)

GLOBAL = [name for name, f in FILTERS.items() if not f.per_mask]


def call(f, image, action):
    """Apply a registered filter; per-mask filters get two complementary masks."""
    if f.per_mask:
        m = torch.linspace(0, 1, image.shape[-1], dtype=image.dtype, device=image.device)
        m = m.expand(image.shape[0], 1, image.shape[-2], image.shape[-1])
        return f(image, action, masks=torch.cat([m, 1 - m], dim=1))
    return f(image, action)


def n_actions(f):
    return 2 if f.per_mask else f.num_params


@pytest.mark.parametrize("name", list(FILTERS))
def test_zero_action_is_identity(name, device):
    f = FILTERS[name]
    x = random_image(device=device)
    out = call(f, x, torch.zeros(2, n_actions(f), device=device))
    torch.testing.assert_close(out, x, atol=2e-7, rtol=0)


@pytest.mark.parametrize("name", list(FILTERS))
def test_zero_action_is_exact_identity(name):
    f = FILTERS[name]
    x = random_image(h=16, w=16)
    assert torch.equal(call(f, x, torch.zeros(2, n_actions(f))), x)


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_and_range(name, dtype, device):
    f = FILTERS[name]
    x = random_image(b=3, h=5, w=7, dtype=dtype, device=device)
    a = torch.rand(3, n_actions(f), dtype=dtype, device=device) * 2 - 1
    out = call(f, x, a)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", list(FILTERS))
def test_per_sample_parameters(name):
    """A batch with different parameters equals the images processed one by one."""
    f = FILTERS[name]
    x = random_image(b=3)
    a = torch.tensor([[-0.7], [0.0], [0.9]]).expand(3, n_actions(f)).clone()
    a[:, -1] *= -0.5  # make the columns differ too
    batched = call(f, x, a)
    for i in range(3):
        torch.testing.assert_close(batched[i:i + 1], call(f, x[i:i + 1], a[i:i + 1]))
    assert not torch.allclose(batched[0], call(f, x[0:1], a[2:3])[0])


@pytest.mark.parametrize("name", list(FILTERS))
def test_gradcheck(name):
    """Analytic gradients w.r.t. image and action match finite differences (away from clip points)."""
    f = FILTERS[name]
    x = random_image(b=2, h=3, w=3, dtype=torch.float64, low=0.3, high=0.6).requires_grad_()
    a = (torch.tensor([[0.11], [-0.13]], dtype=torch.float64).expand(2, n_actions(f)).clone()
         * torch.linspace(0.5, 1, n_actions(f), dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda img, act: call(f, img, act), (x, a), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", list(FILTERS))
def test_gradients_finite_on_black_and_white(name):
    f = FILTERS[name]
    x = torch.zeros(4, 3, 4, 4, dtype=torch.float64)
    x[1] = 1.0
    x[2, :, :2] = 1.0
    x[3] = 0.5
    x.requires_grad_()
    a = (torch.rand(4, n_actions(f), dtype=torch.float64) * 2 - 1)
    a[0] = 1.0
    a[1] = -1.0
    a.requires_grad_()
    call(f, x, a).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("name", GLOBAL)
def test_bad_arguments(name):
    f = FILTERS[name]
    good = torch.zeros(1, f.num_params)
    with pytest.raises(ValueError):
        f(torch.rand(1, 4, 5, 5), good)
    with pytest.raises(ValueError):
        f(torch.rand(3, 5, 5), good)
    with pytest.raises(TypeError):
        f(torch.zeros(1, 3, 5, 5, dtype=torch.uint8), good)
    with pytest.raises(ValueError):
        f(torch.rand(1, 3, 5, 5), torch.zeros(1, f.num_params + 1))


def test_local_exposure_needs_masks():
    with pytest.raises(ValueError, match="masks"):
        FILTERS["local_exposure"](torch.rand(1, 3, 4, 4), torch.zeros(1, 2))


# --- what each filter does --------------------------------------------------------------------------------

def test_exposure_doubles_linear_light():
    x = torch.full((1, 3, 2, 2), 0.3)
    out = adjust_exposure(x, 1.0)
    torch.testing.assert_close(srgb_to_linear(out), 2 * srgb_to_linear(x))
    torch.testing.assert_close(adjust_exposure(out, -1.0), x)


def test_huge_exposures_saturate_with_finite_values_and_gradients():
    from deepexpose.filters import exposure_gain_map
    from deepexpose.filters.base import stops_to_gain

    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    ev = torch.tensor([1000.0, -1000.0], requires_grad=True)  # 2**1000 is infinite in float32
    out = adjust_exposure(x, ev)
    out.sum().backward()
    assert torch.isfinite(ev.grad).all() and torch.allclose(out[0], torch.ones_like(out[0]))
    assert out[1].max() < 1e-6
    masks = torch.full((1, 2, 4, 4), 0.5)
    gain = exposure_gain_map(masks, torch.tensor([[1000.0, 0.0]]))
    assert torch.isfinite(gain).all() and gain.min() > 1e18
    assert stops_to_gain(torch.tensor([2.5])).item() == pytest.approx(2.0 ** 2.5, rel=1e-7)  # within: 2**ev
    assert torch.isfinite(stops_to_gain(torch.tensor([100.0], dtype=torch.float16))).all()
    assert stops_to_gain(torch.tensor([-100.0, 100.0])).tolist() == [2.0 ** -64, 2.0 ** 64]


def test_exposure_action_range():
    f = get_filter("exposure")
    x = torch.full((1, 3, 1, 1), 0.1)
    out = f(x, torch.ones(1, 1))
    torch.testing.assert_close(srgb_to_linear(out), 8 * srgb_to_linear(x))


def test_tone_curve_passes_a_nan_pixel_through_and_gamma_must_be_positive():
    img = torch.rand(2, 3, 4, 5)
    img[1, 0, 2, 3] = float("nan")
    for grad in (False, True):  # the in-place path and the differentiable one
        with torch.set_grad_enabled(grad):
            out = tone_curve(img, torch.zeros(2, 8, requires_grad=grad))
        assert out[1, 0, 2, 3].isnan() and out.isnan().sum() == 1  # as the other filters do, not an index error
    with pytest.raises(ValueError, match="at least one segment"):
        tone_curve(img, torch.zeros(2, 0))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="gamma must be > 0"):
            adjust_gamma(img, bad)


def test_white_balance_warms_and_keeps_grey_luminance():
    grey = torch.full((1, 3, 2, 2), 0.4)
    warm = adjust_white_balance(grey, 1.0, 0.0)
    r, g, b = srgb_to_linear(warm)[0, :, 0, 0]
    assert r > g > b
    torch.testing.assert_close(r / b, torch.tensor(2.0))  # one stop of red/blue ratio
    lin = srgb_to_linear(warm)
    y = 0.2126 * lin[:, 0] + 0.7152 * lin[:, 1] + 0.0722 * lin[:, 2]
    torch.testing.assert_close(y, srgb_to_linear(grey)[:, 0])
    magenta = srgb_to_linear(adjust_white_balance(grey, 0.0, 1.0))[0, :, 0, 0]
    assert magenta[1] < magenta[0] and torch.isclose(magenta[0], magenta[2])


def test_gamma_values():
    x = torch.full((1, 3, 1, 1), 0.25)
    torch.testing.assert_close(adjust_gamma(x, 2.0), torch.full_like(x, 0.5))
    torch.testing.assert_close(adjust_gamma(x, 0.5), torch.full_like(x, 0.0625))
    assert adjust_gamma(torch.zeros(1, 3, 1, 1), 2.0).max() < 1e-2


def test_contrast_spreads_or_flattens_a_ramp():
    ramp = torch.linspace(0, 1, 11).expand(1, 3, 1, 11)
    more, less = adjust_contrast(ramp, 1.0), adjust_contrast(ramp, -1.0)
    assert more.std() > ramp.std() > less.std()
    for out in (more, less):  # endpoints and mid-grey stay, curve stays monotone
        torch.testing.assert_close(out[..., [0, 5, 10]], ramp[..., [0, 5, 10]])
        assert (out.diff(dim=-1) > 0).all()


def test_saturation_zero_is_grey_and_two_doubles_chroma():
    x = random_image(b=1, low=0.3, high=0.7)
    grey = adjust_saturation(x, 0.0)
    torch.testing.assert_close(grey, luminance(x).expand_as(x))
    torch.testing.assert_close(adjust_saturation(x, 2.0) - luminance(x), 2 * (x - luminance(x)))


def test_levels_map_black_and_white_points():
    x = torch.tensor([0.1, 0.5, 0.9, 0.0, 1.0]).expand(1, 3, 1, 5)
    out = adjust_levels(x, 0.1, 0.9)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 0.5, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="white"):
        adjust_levels(x, 0.5, 0.5)


def test_tone_curve_is_monotone_with_fixed_ends():
    ramp = torch.linspace(0, 1, 101, dtype=torch.float64).expand(1, 3, 1, 101)
    slopes = torch.tensor([[1.5, 1.0, 0.5, 0.0, 0.0, -0.5, -1.0, -1.5]], dtype=torch.float64)
    out = tone_curve(ramp, slopes)
    assert (out.diff(dim=-1) > 0).all()
    torch.testing.assert_close(out[..., [0, -1]], ramp[..., [0, -1]])
    assert (out[..., 1:-1] > ramp[..., 1:-1]).all()  # steep shadows lift everything in between
    # segment i covers [i/8, (i+1)/8] and rises by 2**p_i / sum_j 2**p_j there
    one = torch.full((1, 8), -1.5, dtype=torch.float64)
    one[0, 3] = 1.5
    knots = torch.linspace(0, 1, 9, dtype=torch.float64).expand(1, 3, 1, 9)
    rises = tone_curve(knots, one)[0, 0, 0].diff()
    expected = torch.full((8,), 2 ** -1.5, dtype=torch.float64)
    expected[3] = 2 ** 1.5
    torch.testing.assert_close(rises, expected / expected.sum())


# --- parameter specs and the registry ---------------------------------------------------------------------

def test_param_spec_mapping_and_inverse():
    p = ParamSpec("x", 0.5, 1.0, 3.0)
    a = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    torch.testing.assert_close(p.to_value(a), torch.tensor([0.5, 0.5, 0.75, 1.0, 2.0, 3.0, 3.0]))
    torch.testing.assert_close(p.to_action(p.to_value(a)), a.clamp(-1, 1))
    with pytest.raises(ValueError):
        ParamSpec("bad", 1.0, 1.0, 2.0)


@pytest.mark.parametrize("name", list(FILTERS))
def test_registered_filters_document_their_ranges(name):
    f = FILTERS[name]
    assert f.name == name and f.doc and f.num_params >= 1
    for p in f.params:
        assert p.low < p.identity < p.high and p.doc
    a = torch.linspace(-1, 1, 5).unsqueeze(1).expand(5, f.num_params)
    v = f.values(a)
    torch.testing.assert_close(v[0], torch.tensor([p.low for p in f.params]))
    torch.testing.assert_close(v[2], torch.tensor([p.identity for p in f.params]))
    torch.testing.assert_close(v[4], torch.tensor([p.high for p in f.params]))
    torch.testing.assert_close(f.actions(v), a)


def test_registry_names_and_unknown():
    assert set(FILTERS) >= {"exposure", "white_balance", "gamma", "contrast", "saturation", "tone_curve",
                            "levels", "local_exposure"}
    with pytest.raises(KeyError, match="exposure"):
        get_filter("expsoure")


def test_a_new_filter_is_one_object():
    invert = Filter("invert", (ParamSpec("amount", -1.0, 0.0, 1.0, doc="d"),),
                    apply=lambda img, v: img + v[:, 0].view(-1, 1, 1, 1).abs() * (1 - 2 * img))
    x = random_image()
    torch.testing.assert_close(invert(x, torch.ones(2, 1)), 1 - x)
    assert math.isclose(float(invert.values(torch.tensor([[0.5]]))), 0.5)


def test_colour_conversions_match_kornia():
    import kornia

    from deepexpose.filters.base import linear_to_srgb, rgb_to_lab

    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    x[0, :, 0, :4] = torch.tensor([0.0, 0.01, 0.04045, 1.0], dtype=torch.float64)
    torch.testing.assert_close(srgb_to_linear(x), kornia.color.rgb_to_linear_rgb(x))
    torch.testing.assert_close(linear_to_srgb(x), kornia.color.linear_rgb_to_rgb(x))
    torch.testing.assert_close(rgb_to_lab(x), kornia.color.rgb_to_lab(x))
    y = x.clone().requires_grad_()
    (srgb_to_linear(y).sum() + linear_to_srgb(y).sum() + rgb_to_lab(y).sum()).backward()
    assert torch.isfinite(y.grad).all()


@pytest.mark.parametrize("name", GLOBAL)
def test_per_channel_flag_is_truthful(name):
    """``per_channel`` filters map each channel on its own: changing the other channels changes nothing in it."""
    f = FILTERS[name]
    x = random_image(b=2, h=6, w=7, seed=1)
    a = torch.rand(2, f.num_params, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = f(x, a)
    for c in range(3):
        y = random_image(b=2, h=6, w=7, seed=10 + c)
        y[:, c] = x[:, c]  # same channel c, other channels different
        same = torch.equal(f(y, a)[:, c], out[:, c])
        assert same == f.per_channel, (name, c)
    expected = {"white_balance", "exposure", "levels", "gamma", "contrast", "tone_curve"}
    assert f.per_channel == (name in expected)
    assert not FILTERS["local_exposure"].per_channel


@pytest.mark.parametrize("name", GLOBAL)
def test_no_grad_branch_matches_gradient_branch(name):
    """Without gradient recording some filters work in place on their temporaries: the same values."""
    f = FILTERS[name]
    x = random_image(b=3, h=9, w=11, seed=4)
    x[0, :, 0, :3] = torch.tensor([0.0, 1e-5, 1.0])  # the linear piece of gamma, and the ends
    a = torch.rand(3, f.num_params, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        fast = f(x, a)
    slow = f(x.clone().requires_grad_(), a)
    assert slow.requires_grad
    torch.testing.assert_close(fast, slow.detach(), atol=1e-6, rtol=1e-5)


def test_colour_conversions_in_place_match_gradient_branch():
    """The in-place transfer functions (no gradient recorded) give the values of the differentiable ones,
    at and around the thresholds of their linear pieces too."""
    from deepexpose.filters.base import linear_to_lab, linear_to_srgb

    x = torch.rand(2, 3, 16, 16)
    edges = torch.tensor([0.0, 0.0031308, 0.0031309, 0.0031307, 0.008856, 0.0088561, 0.0088559, 0.04045, 1.0])
    x[0, :, 0, :9] = edges
    y = x.clone().requires_grad_()
    with torch.no_grad():
        fast = (srgb_to_linear(x), linear_to_srgb(x), linear_to_lab(x))
    slow = (srgb_to_linear(y), linear_to_srgb(y), linear_to_lab(y))
    for f, s, atol in zip(fast, slow, (1e-6, 1e-6, 1e-3), strict=True):  # CIELAB is in units of 0..100
        assert s.requires_grad
        torch.testing.assert_close(f, s.detach(), atol=atol, rtol=1e-5)


def test_exposure_gain_map_no_grad_matches_gradient_branch():
    from deepexpose.filters import exposure_gain_map

    m = torch.rand(3, 4, 5, 6, generator=torch.Generator().manual_seed(7))
    m = m / m.sum(1, keepdim=True)
    ev = torch.rand(3, 4, generator=torch.Generator().manual_seed(8)) * 4 - 2
    ev[0] = 0.0
    with torch.no_grad():
        fast = exposure_gain_map(m, ev)
    slow = exposure_gain_map(m, ev.clone().requires_grad_())
    assert slow.requires_grad and fast.shape == slow.shape == (3, 1, 5, 6)
    torch.testing.assert_close(fast, slow.detach())
    assert torch.equal(fast[0], torch.ones_like(fast[0]))  # all ev 0: exactly 1


def test_columns_calls_its_function_with_one_column_per_parameter_and_pickles():
    import pickle

    from deepexpose.filters.base import Columns
    from deepexpose.filters.white_balance import adjust_white_balance

    image, values = random_image(b=2), torch.tensor([[0.5, -0.2], [-1.0, 0.3]])
    wb = Columns(adjust_white_balance)
    torch.testing.assert_close(wb(image, values), adjust_white_balance(image, values[:, 0], values[:, 1]))
    torch.testing.assert_close(pickle.loads(pickle.dumps(wb))(image, values), wb(image, values))
