import json
import math

import pytest
import torch

from conftest import random_image
from deepexpose.data.unseen import (
    UNSEEN_ERRORS,
    crosstalk,
    crosstalk_matrix,
    falloff,
    falloff_stops,
    highlight_rolloff,
    unseen_error,
)
from deepexpose.filters import luminance, srgb_to_linear


def _chroma(x):
    return (x - luminance(x)).abs().mean()


# --------------------------------------------------------------------------------------------- crosstalk


def test_crosstalk_matrix_rows_sum_to_one_and_mix_neighbours_more():
    m = crosstalk_matrix(torch.tensor([0.3]), torch.tensor([0.8]))[0]
    torch.testing.assert_close(m.sum(dim=1), torch.ones(3))
    assert m[0, 0] == pytest.approx(0.7) and m[0, 1] == pytest.approx(0.24) and m[0, 2] == pytest.approx(0.06)
    assert m[1, 0] == pytest.approx(0.15) and m[1, 2] == pytest.approx(0.15)


def test_crosstalk_keeps_grey_and_mixes_colours():
    grey = torch.linspace(0, 1, 12).view(1, 1, 1, 12).expand(1, 3, 2, 12).contiguous()
    out, rec = crosstalk(grey, 0.4)
    torch.testing.assert_close(out, grey, atol=1e-5, rtol=0)
    red = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    mixed = crosstalk(red, 0.3)[0][0, :, 0, 0]
    assert mixed[0] < 0.9 and mixed[1] > 0.1 and mixed[2] > 0.1 and mixed[1] > mixed[2]  # green is red's neighbour
    colour = random_image(b=1, low=0.1, high=0.9)
    washed = crosstalk(colour, 0.3)[0]
    assert _chroma(washed) < 0.8 * _chroma(colour)
    # linear light is mixed by the recorded matrix
    out, rec = crosstalk(colour, 0.3, 0.6)
    m = torch.tensor(rec["matrix"])
    torch.testing.assert_close(srgb_to_linear(out), torch.einsum("ij,bjhw->bihw", m, srgb_to_linear(colour)),
                               atol=1e-4, rtol=0)
    assert json.loads(json.dumps(rec)) == rec and rec["error"] == "crosstalk"


def test_crosstalk_per_image_amounts():
    x = random_image(b=2, low=0.1, high=0.9)
    out, rec = crosstalk(x, torch.tensor([0.0, 0.3]))
    assert torch.equal(out[0], x[0]) and not torch.equal(out[1], x[1])
    assert rec["amount"] == pytest.approx([0.0, 0.3]) and len(rec["matrix"]) == 2


# --------------------------------------------------------------------------------------------- roll-off


def test_rolloff_keeps_shadows_and_lowers_highlights():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, 101).expand(1, 3, 1, 101).contiguous()
    out, rec = highlight_rolloff(x, 0.6, 2.0)
    below = x <= 0.6
    assert torch.equal(out[below], x[below])
    assert (out[~below] < x[~below]).all()
    white = 0.6 + 0.4 * (1 - math.exp(-2.0)) / 2.0
    assert float(out[0, 0, 0, -1]) == pytest.approx(white, abs=1e-6)
    assert (out.diff(dim=-1) > 0).all()  # still monotonic: a shoulder, not a clip
    # smooth at the knee: the slope just above it is ~1 (no kink)
    near = torch.full((1, 3, 1, 1), 0.6 + 1e-4, requires_grad=True)
    highlight_rolloff(near, 0.6, 2.0)[0].sum().backward()
    torch.testing.assert_close(near.grad, torch.ones_like(near), atol=1e-3, rtol=0)
    assert rec == {"error": "highlight_rolloff", "knee": 0.6, "strength": 2.0}


def test_rolloff_stronger_lowers_more():
    x = random_image(b=1)
    d = [(x - highlight_rolloff(x, 0.5, s)[0]).mean() for s in (0.5, 1.0, 3.0)]
    assert 0 < d[0] < d[1] < d[2]


# --------------------------------------------------------------------------------------------- falloff


def test_falloff_keeps_centre_and_darkens_corners_by_the_stops():
    x = torch.full((1, 3, 41, 61), 0.5)
    out, rec = falloff(x, 1.5)
    lin_in, lin_out = srgb_to_linear(x), srgb_to_linear(out)
    ratio = torch.log2(lin_out / lin_in)
    assert float(ratio[0, 0, 20, 30]) == pytest.approx(0.0, abs=1e-3)
    loss = falloff_stops(x, 1.5)
    for yy, xx in ((0, 0), (0, 60), (40, 0), (40, 60)):
        assert float(ratio[0, 0, yy, xx]) == pytest.approx(-float(loss[0, 0, yy, xx]), abs=1e-3)
        assert float(loss[0, 0, yy, xx]) == pytest.approx(1.5, abs=0.1)  # pixel centres, nearly the corner
    assert rec == {"error": "falloff", "stops": 1.5, "centre_x": 0.0, "centre_y": 0.0}


def test_falloff_offset_centre_moves_the_brightest_point():
    x = torch.full((1, 3, 20, 40), 0.5)
    out, _ = falloff(x, 1.0, centre_x=0.5, centre_y=-0.5)
    yy, xx = divmod(int(out[0, 0].argmax()), 40)
    assert (yy, xx) in {(4, 29), (4, 30), (5, 29), (5, 30)}
    assert out[0, 0, -1, 0] < out[0, 0, 0, -1]  # the far corner loses most


# --------------------------------------------------------------------------------------------- shared


@pytest.mark.parametrize("call", [
    lambda x: crosstalk(x, 0.0),
    lambda x: crosstalk(x, 0.0, 0.2),
    lambda x: highlight_rolloff(x, 0.3, 0.0),
    lambda x: falloff(x, 0.0, 0.4, -0.2),
])
def test_zero_strength_is_the_identity(call):
    x = random_image(b=2)
    out, _ = call(x)
    assert torch.equal(out, x)


@pytest.mark.parametrize("call", [
    lambda x: crosstalk(x, -0.1),
    lambda x: crosstalk(x, 0.6),
    lambda x: crosstalk(x, 0.2, 1.5),
    lambda x: crosstalk(x, float("nan")),
    lambda x: crosstalk(x, torch.tensor([0.1, 0.2, 0.3])),  # 3 values for 2 images
    lambda x: highlight_rolloff(x, 1.0, 1.0),
    lambda x: highlight_rolloff(x, -0.1, 1.0),
    lambda x: highlight_rolloff(x, 0.5, -1.0),
    lambda x: falloff(x, -1.0),
    lambda x: falloff(x, 1.0, centre_x=1.5),
    lambda x: falloff(x, float("inf")),
])
def test_bad_parameters_raise(call):
    with pytest.raises(ValueError):
        call(random_image(b=2))


@pytest.mark.parametrize("name", list(UNSEEN_ERRORS))
def test_bad_images_raise(name):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError):
        unseen_error(torch.rand(1, 4, 4, 4), name, g)
    with pytest.raises(TypeError):
        unseen_error(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), name, g)


@pytest.mark.parametrize("name", list(UNSEEN_ERRORS))
def test_unseen_error_draws_in_range_and_is_reproducible(name, device):
    x = random_image(b=2, h=12, w=16, device=device)
    out, rec = unseen_error(x, name, torch.Generator().manual_seed(3))
    again, rec2 = unseen_error(x, name, torch.Generator().manual_seed(3))
    assert torch.equal(out, again) and rec == rec2
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert 0 <= float(out.min()) and float(out.max()) <= 1 and (out - x).abs().max() > 1e-3
    assert rec["error"] == name and json.loads(json.dumps(rec)) == rec
    err = UNSEEN_ERRORS[name]
    params = {p: rec[p] for p in err.ranges}
    for p, (lo, hi) in err.ranges.items():
        assert lo <= params[p] <= hi
    torch.testing.assert_close(err.apply(x, **params)[0], out)  # the record reproduces the edit


def test_unknown_error_raises():
    with pytest.raises(ValueError, match="unknown unseen error"):
        unseen_error(random_image(b=1), "blur", torch.Generator())


@pytest.mark.parametrize("name", list(UNSEEN_ERRORS))
def test_gradients_flow(name):
    x = random_image(b=1, h=6, w=6, low=0.05, high=0.95).requires_grad_(True)
    out, _ = unseen_error(x, name, torch.Generator().manual_seed(1))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
