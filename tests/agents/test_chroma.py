import dataclasses
import math

import pytest
import torch

from deepexpose.agents.chroma import (
    CHROMA_BINS,
    CHROMA_RANGE,
    EDGE_LEVELS,
    HISTOGRAM_VERSION,
    ChromaNet,
    bin_centres,
    correction_from_shift,
    log_chroma_histogram,
    srgb_level,
)
from deepexpose.agents.networks import ActorCritic, obs_to_float
from deepexpose.filters.base import linear_to_srgb, srgb_to_linear
from deepexpose.filters.white_balance import adjust_white_balance

BIN = 2 * CHROMA_RANGE / CHROMA_BINS


def chroma_image(u: torch.Tensor, v: torch.Tensor, green: float = 0.2) -> torch.Tensor:
    """A 1 x 3 x H x W sRGB image whose linear pixels have log-chroma (u, v) (H x W each)."""
    g = torch.full_like(u, green)
    return linear_to_srgb(torch.stack([g * torch.exp(-u), g, g * torch.exp(-v)]).unsqueeze(0).double()).float()


def test_histogram_of_a_grey_image_is_the_centre_bin_and_no_edges():
    h = log_chroma_histogram(torch.full((2, 3, 8, 8), 0.5))
    assert h.shape == (2, 2, CHROMA_BINS, CHROMA_BINS)
    mid = CHROMA_BINS // 2
    assert bin_centres()[mid] == 0.0  # neutral is the centre of the middle bin
    assert h[:, 0, mid, mid].tolist() == [1.0, 1.0] and h[:, 0].sum().item() == 2.0
    assert h[:, 1].sum().item() == 0.0  # a flat image has no contrast to count, in no bin


def test_srgb_level_is_one_8_bit_step_of_the_decoding():
    s = torch.tensor([0.02, 0.1, 0.3, 0.5, 0.8, 0.95], dtype=torch.float64)
    step = srgb_to_linear(s + 0.5 / 255) - srgb_to_linear(s - 0.5 / 255)
    torch.testing.assert_close(srgb_level(srgb_to_linear(s)), step, rtol=1e-4, atol=0)


def checkerboard(colour: torch.Tensor, levels: float, size: int = 12) -> torch.Tensor:
    """An sRGB checkerboard ``colour * (1 +- a)`` in linear light, ``a`` set so that every channel's contrast from
    the 3 x 3 mean (``8 a / 9`` of the colour inside, ``a`` along the border) is about ``levels`` 8-bit levels in the
    channel with the fewest."""
    a = levels * (srgb_level(colour) / colour).max().item() * 9 / 8
    sign = (torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2 * 2 - 1
    return linear_to_srgb(colour.view(1, 3, 1, 1) * (1 + a * sign)).float()


def test_edge_channel_counts_only_pixels_with_contrast_in_every_channel():
    """A texture in R and G over a flat B has an infinite log G/B at every pixel: none is counted. A checkerboard of
    one colour has edges of that colour's log-chroma: all counted in its bin at 4 levels of contrast, none at 2."""
    g = torch.Generator().manual_seed(5)
    x = 0.3 + 0.4 * torch.rand(1, 3, 12, 12, generator=g)
    x[:, 2] = 0.5
    assert log_chroma_histogram(x)[0, 1].sum() == 0.0
    colour = torch.tensor([0.2, 0.25, 0.15], dtype=torch.float64)
    u, v = math.log(0.25 / 0.2), math.log(0.25 / 0.15)
    iu, iv = int((u + CHROMA_RANGE) // BIN), int((v + CHROMA_RANGE) // BIN)
    assert EDGE_LEVELS == 3.0
    h = log_chroma_histogram(checkerboard(colour, 4.0))[0, 1] ** 2
    assert h[iu, iv].item() == pytest.approx(1.0)
    assert log_chroma_histogram(checkerboard(colour, 2.0))[0, 1].sum() == 0.0


def test_histogram_leaves_out_dark_and_clipped_pixels_and_counts_the_rest():
    x = torch.full((1, 3, 4, 4), 0.5)
    x[..., 0, :] = 0.0   # black: no chroma
    x[..., 1, :] = 1.0   # clipped
    x[:, 0, 2, :] = 0.8  # a reddish row: u = log G/R < 0
    h = log_chroma_histogram(x)[0, 0] ** 2  # shares of the kept pixels
    u = math.log(srgb_to_linear(torch.tensor(0.5)) / srgb_to_linear(torch.tensor(0.8)))
    row = int((u + CHROMA_RANGE) // BIN)
    mid = CHROMA_BINS // 2
    torch.testing.assert_close(h[row, mid], torch.tensor(0.5))
    torch.testing.assert_close(h[mid, mid], torch.tensor(0.5))
    assert h.sum().item() == pytest.approx(1.0)


def test_a_white_balance_cast_translates_the_histogram():
    """FFCC's premise: a cast moves the histogram without changing its shape (here by exactly -2 bins in u and +2
    in v: temperature t = 2 BIN * 2 / ln 2 moves u by -t ln 2 / 2 and v by +t ln 2 / 2), for the pixels and for
    their local contrast alike."""
    g = torch.Generator().manual_seed(0)
    centres = bin_centres()
    iu, iv = torch.randint(8, 24, (16, 16), generator=g), torch.randint(8, 24, (16, 16), generator=g)
    x = chroma_image(centres[iu], centres[iv])
    t = 2 * BIN * 2 / math.log(2)
    cast = adjust_white_balance(x.double(), t, 0.0).float()
    before, after = log_chroma_histogram(x)[0], log_chroma_histogram(cast)[0]
    torch.testing.assert_close(after[0], torch.roll(before[0], shifts=(-2, 2), dims=(0, 1)))
    # a texture of coloured patches: its edges translate the same way, but for the few pixels whose contrast the
    # cast moves across the threshold (a level grows slower than the light), which the tolerance allows for
    colour = 0.2 + 0.6 * torch.rand(1, 3, 4, 4, generator=g, dtype=torch.float64)  # 6 x 6 patches of colour
    texture = colour.repeat_interleave(6, 2).repeat_interleave(6, 3) * (0.3 + 0.7 * torch.rand(24, 24, generator=g))
    x = linear_to_srgb(texture)
    cast = adjust_white_balance(x, t, 0.0)
    before, after = log_chroma_histogram(x.float())[0, 1], log_chroma_histogram(cast.float())[0, 1]
    assert before.sum() > 0
    moved = torch.roll(before, shifts=(-2, 2), dims=(0, 1))
    assert (after ** 2 - moved ** 2).abs().sum() < 0.1  # counted mass in the right bins (a few cross a bin edge)


@pytest.mark.parametrize("t,m", [(0.8, 0.0), (0.0, -0.5), (-0.6, 0.4)])
def test_correction_from_shift_undoes_the_white_balance_filter(t, m):
    grey = torch.full((1, 3, 2, 2), 0.4)
    lin = srgb_to_linear(adjust_white_balance(grey.double(), t, m))[0, :, 0, 0]
    du, dv = torch.log(lin[1] / lin[0]), torch.log(lin[1] / lin[2])
    torch.testing.assert_close(correction_from_shift(du, dv), torch.tensor([-t, -m], dtype=torch.float64))


def test_chroma_net_starts_at_no_correction_and_reads_its_softmax_as_a_position():
    net = ChromaNet()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert net(x).abs().max() < 1e-6
    i, j = 20, 11  # all the mass on one bin: the correction of that bin's log-chroma
    with torch.no_grad():
        net.prior[0, i * CHROMA_BINS + j] = 100.0
    centres = bin_centres()
    torch.testing.assert_close(net(x), correction_from_shift(centres[i], centres[j]).expand(3, 2))


def test_chroma_net_learns_a_cast_from_the_histogram():
    """A few hundred steps of regression on grey-world scenes with random casts: the estimate follows the cast."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    net = ChromaNet()
    opt = torch.optim.Adam(net.parameters(), 3e-3)

    def batch(n):
        scene = linear_to_srgb(0.05 + 0.4 * torch.rand(n, 3, 12, 12, generator=g))
        tm = (torch.rand(n, 2, generator=g) - 0.5) * 1.6
        return adjust_white_balance(scene, tm[:, 0], tm[:, 1]), -tm

    for _ in range(150):
        x, y = batch(32)
        loss = (net(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(256)
    with torch.no_grad():
        residual = (net(x) - y).pow(2).mean() / y.pow(2).mean()
    assert residual < 0.2  # from 1.0 (no correction)


def final_obs(b=2, steps=4, final=True):
    step = torch.zeros(b, steps)
    step[:, -1 if final else 0] = 1
    g = torch.Generator().manual_seed(3)
    x = torch.rand(b, 3, 16, 16, generator=g)
    return {"image": x, "input": x, "mask": torch.ones(b, 1, 16, 16), "step": step}


def test_actor_adds_the_correction_to_the_white_balance_at_the_final_step_only():
    torch.manual_seed(0)
    model = ActorCritic(steps=4, action_dim=16, hidden=16, chroma=[3, 5], chroma_scale=1.5)
    torch.nn.init.normal_(model.encoder.chroma_net.prior, std=2.0)
    o = final_obs()
    correction = model.encoder.chroma_net(o["input"])
    assert correction.abs().min() > 0.01
    assert torch.equal(model(final_obs(final=False))[0], torch.zeros(2, 16))
    action = model(o)[0]
    torch.testing.assert_close(action[:, [3, 5]], torch.tanh(correction / 1.5))
    assert torch.equal(action[:, [0, 1, 2, 4] + list(range(6, 16))], torch.zeros(2, 14))
    action.sum().backward()  # the correction learns through the actor's loss
    assert model.encoder.chroma_net.prior.grad.abs().sum() > 0


def test_actor_config_round_trip_and_refusals():
    torch.manual_seed(0)
    model = ActorCritic(steps=4, action_dim=16, hidden=16, chroma=[0, 1], chroma_scale=1.5)
    torch.nn.init.normal_(model.actor.weight, std=0.3)
    torch.nn.init.normal_(model.encoder.chroma_net.prior, std=2.0)
    again = ActorCritic(**model.config())
    again.load_state_dict(model.state_dict())
    o = final_obs()
    assert model(o)[0][:, :2].abs().min() > 0.01  # the correction takes part, so the equality means something
    assert torch.equal(again(o)[0], model(o)[0])
    other = ActorCritic(**{**model.config(), "chroma_scale": 3.0})
    other.load_state_dict(model.state_dict())
    assert not torch.equal(other(o)[0][:, :2], model(o)[0][:, :2])  # the scale is part of the config
    assert "chroma" not in ActorCritic(steps=4, action_dim=16).config()  # older models' configs stay as they were
    assert ActorCritic.from_config(ActorCritic(steps=4, action_dim=16).config()).chroma is None
    assert model.config()["chroma_histogram"] == HISTOGRAM_VERSION == 2
    first = {k: v for k, v in model.config().items() if k != "chroma_histogram"}  # as saved before versions
    with pytest.raises(ValueError, match="version 1"):
        ActorCritic.from_config(first)
    assert ActorCritic.from_config(model.config()).config() == model.config()
    for bad in ([0], [0, 16], [-1, 2], [1, 1], [0, 1, 2]):
        with pytest.raises(ValueError, match="chroma"):
            ActorCritic(steps=4, action_dim=16, chroma=bad)
    with pytest.raises(ValueError, match="chroma_scale"):
        ActorCritic(steps=4, action_dim=16, chroma=[0, 1], chroma_scale=0)


def test_make_model_finds_the_white_balance_dimensions_and_their_scale(monkeypatch):
    from deepexpose.agents.train import TrainConfig, chroma_action, make_core, make_model
    from deepexpose.envs.core import EditCore

    cfg = TrainConfig(chroma=True, hidden=16)
    core = make_core(cfg)
    model = make_model(cfg, core)
    names = [f"{f.name}.{p.name}" for f in core.pipeline.filters for p in f.params]
    assert [names[d] for d in model.chroma] == ["white_balance.temperature", "white_balance.tint"]
    assert model.chroma_scale == 1.5  # the filter's +-1.5 stops per unit of action
    assert make_model(TrainConfig(hidden=16), core).chroma is None
    two = EditCore(k=2, filters=("exposure", "white_balance"), reward=None)
    assert chroma_action(two) == ([1, 2], 1.5)
    with pytest.raises(ValueError, match="white_balance"):
        chroma_action(EditCore(k=2, filters=("exposure", "contrast"), reward=None))
    exposure, wb = two.pipeline.filters
    wide = tuple(dataclasses.replace(p, low=-2.0, high=2.0) for p in wb.params)
    monkeypatch.setattr(two.pipeline, "filters", (exposure, dataclasses.replace(wb, params=wide)))
    assert chroma_action(two) == ([1, 2], 2.0)  # the scale follows the ranges
    lopsided = (wide[0], dataclasses.replace(wide[1], high=1.0))
    monkeypatch.setattr(two.pipeline, "filters", (exposure, dataclasses.replace(wb, params=lopsided)))
    with pytest.raises(ValueError, match="symmetric"):
        chroma_action(two)


def test_episode_with_chroma_equals_the_model():
    from deepexpose.envs.core import EditCore

    model = ActorCritic(steps=4, action_dim=16, hidden=16, chroma=[0, 1], chroma_scale=1.5)
    torch.nn.init.normal_(model.encoder.chroma_net.net[-1].weight, std=0.5)
    core = EditCore(k=3, reward=None)
    core.begin(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)))
    episode, done = model.episode(), False
    while not done:
        o = core.observation()
        action = episode(o)[0]
        assert torch.equal(action, model(obs_to_float(o))[0])
        _, done = core.step(action.detach())
    assert core.global_action[:, :2].abs().sum() > 0
