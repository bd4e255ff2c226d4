import pytest
import torch

from conftest import random_image
from deepexpose.agents.networks import (
    HIST_BINS,
    CHANNEL_BINS,
    COLOUR_STATS_DIM,
    ActorCritic,
    ObservationEncoder,
    colour_stats,
    image_stats,
    masked_stats,
    obs_to_float,
    order_statistics,
    quantiles,
    sort_rows,
)


def obs(b=2, size=16, steps=4):
    step = torch.zeros(b, steps)
    step[:, 0] = 1
    return {"image": random_image(b=b, h=size, w=size), "input": random_image(b=b, h=size, w=size, seed=1),
            "mask": torch.rand(b, 1, size, size), "step": step}


def test_image_stats_values():
    x = torch.zeros(1, 3, 4, 4)
    x[:, 0] = 1.0  # pure red
    s = image_stats(x)
    assert s.shape == (1, 32)
    torch.testing.assert_close(s[0, :3], torch.tensor([1.0, 0.0, 0.0]))  # channel means
    hist = s[0, -HIST_BINS:]
    assert hist.sum() == 1 and hist[int(0.2126 * HIST_BINS)] == 1  # all pixels in the red luminance bin


def test_colour_stats_values():
    x = torch.zeros(2, 3, 8, 8)
    x[:, 0] = 1.0  # pure red
    x[1, 1, :4] = 0.5  # half of image 1 has some green
    s = colour_stats(x)
    assert s.shape == (2, COLOUR_STATS_DIM)
    q = s[:, :33].view(2, 3, 11)
    assert torch.equal(q[0, 0], torch.ones(11)) and torch.equal(q[0, 1], torch.zeros(11))
    assert q[1, 1, 0] == 0 and q[1, 1, -1] == 0.5 and q[1, 1, 5] in (0.0, 0.5)
    log_mean = s[:, 33:36]
    assert log_mean[0, 0] == 0 and log_mean[0, 1] == torch.tensor(1e-4).log()
    clipped = s[:, 36:42]
    torch.testing.assert_close(clipped[0], torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(clipped[1, 1], torch.tensor(0.5))
    assert torch.equal(s[0, 42:46], torch.ones(4))  # fully saturated everywhere
    hist = s[:, 46:].view(2, 3, CHANNEL_BINS)
    torch.testing.assert_close(hist.sum(2), torch.ones(2, 3))
    assert hist[0, 0, -1] == 1 and hist[0, 1, 0] == 1 and hist[1, 1, CHANNEL_BINS // 2] == 0.5


def test_masked_stats():
    x = torch.zeros(1, 3, 2, 2)
    x[..., 0, :] = 1.0
    m = torch.zeros(1, 1, 2, 2)
    m[..., 0, :] = 1.0
    torch.testing.assert_close(masked_stats(x, m)[0], torch.tensor([0.5, 1.0, 1.0, 1.0, 1.0]))


def test_actor_starts_at_identity_and_has_gradients():
    model = ActorCritic(steps=4, action_dim=16)
    action, value = model(obs())
    assert action.shape == (2, 16) and value.shape == (2,)
    assert torch.equal(action, torch.zeros(2, 16))  # "change nothing" first
    (action.sum() + value.sum()).backward()
    assert model.actor.weight.grad.abs().sum() > 0


def test_encoder_with_and_without_cnn_and_uint8():
    for use_cnn in (True, False):
        for colour in (True, False):
            enc = ObservationEncoder(steps=4, features_dim=32, use_cnn=use_cnn, colour=colour)
            assert enc(obs()).shape == (2, 32)
    assert ActorCritic(4, 16, colour=True).config()["colour"] is True
    o = {k: (v * 255).round().to(torch.uint8) if k != "step" else v for k, v in obs().items()}
    f = obs_to_float(o)
    assert f["image"].dtype == torch.float32 and f["image"].max() <= 1 and f["step"].max() == 1


def test_episode_reuses_input_features_and_equals_the_model():
    from deepexpose.envs.core import EditCore

    for colour in (False, True):
        torch.manual_seed(0)
        model = ActorCritic(steps=4, action_dim=16, hidden=32, colour=colour)
        torch.nn.init.normal_(model.actor.weight, std=0.3)
        core = EditCore(k=3, reward=None)
        core.begin(random_image(b=3, h=16, w=16, seed=4))
        episode, calls = model.episode(), []
        real = model.encoder.input_features
        model.encoder.input_features = lambda inp: calls.append(1) or real(inp)
        done = False
        while not done:
            o = core.observation()
            expected_action, expected_value = model(obs_to_float(o))
            calls.clear()
            action, value = episode(o)
            assert torch.equal(action, expected_action) and torch.equal(value, expected_value)
            assert calls == ([1] if core.t == 0 else [])  # the input's statistics: at the first step only
            _, done = core.step(action.detach())
        assert expected_action.abs().sum() > 0  # a policy that does something, so the equality means something
        features = real(obs_to_float(o)["input"])
        assert features.shape == (3, 32 + (COLOUR_STATS_DIM if colour else 0))
        core.begin(random_image(b=3, h=16, w=16, seed=5))  # the same callable on a new batch: recomputed
        o = core.observation()
        expected_action = model(obs_to_float(o))[0]
        calls.clear()
        assert torch.equal(episode(o)[0], expected_action) and calls == [1]


def test_shrink_dead_zone_and_straight_through_gradient():
    from deepexpose.agents.networks import shrink

    a = torch.tensor([-1.0, -0.5, -0.05, 0.0, 0.08, 0.55, 1.0], requires_grad=True)
    out = shrink(a, 0.1)
    torch.testing.assert_close(out.detach(), torch.tensor([-1.0, -0.4 / 0.9, 0.0, 0.0, 0.0, 0.45 / 0.9, 1.0]))
    out.sum().backward()
    assert torch.equal(a.grad, torch.ones(7))  # straight through, dead zone included
    assert shrink(a, 0.0) is a
    model = ActorCritic(4, 16, deadzone=0.2)
    torch.nn.init.constant_(model.actor.bias, 0.15)  # tanh(0.15) < 0.2: inside the dead zone
    assert torch.equal(model(obs())[0], torch.zeros(2, 16))
    torch.nn.init.constant_(model.actor.bias, 1.0)
    assert (model(obs())[0] > 0.6).all()


def test_order_statistics_equal_sorting():
    g = torch.Generator().manual_seed(0)
    ranks = torch.tensor([0, 1, 37, 500, 998, 999])
    levels = torch.randint(0, 256, (4, 3, 1000), generator=g).float() / 255  # 8-bit observations: counted
    assert torch.equal(order_statistics(levels, ranks), levels.sort(-1).values[..., ranks])
    few = torch.full((2, 1000), 7 / 255)
    few[1, ::2] = 1.0  # ties and the top level
    assert torch.equal(order_statistics(few, ranks), few.sort(-1).values[..., ranks])
    for other in (torch.rand(4, 3, 1000, generator=g), levels * 2 - 0.5):  # not 8-bit levels in [0, 1]: sorted
        assert torch.equal(order_statistics(other, ranks), other.sort(-1).values[..., ranks])
    half = (torch.randint(0, 256, (2, 4096), generator=g).float() / 255).half()  # counts beyond float16's 2048
    wide = torch.tensor([0, 2047, 2049, 4095])
    assert torch.equal(order_statistics(half, wide), half.sort(-1).values[..., wide])
    with pytest.raises(ValueError, match="one-dimensional"):
        order_statistics(levels, ranks.view(2, 3))


def test_sort_rows_and_quantiles_equal_torch():
    g = torch.Generator().manual_seed(1)
    q = (0.0, 0.01, 0.3, 0.5, 0.99, 1.0)
    for shape in ((6, 4096), (2, 3, 7), (4, 1)):
        x = torch.rand(*shape, generator=g)
        assert torch.equal(sort_rows(x), x.sort(-1).values)
        expected = torch.quantile(x, torch.tensor(q), dim=-1).movedim(0, -1)
        assert torch.equal(quantiles(x, q), expected)
    holes = torch.rand(3, 20, generator=g)
    holes[1, 4] = float("nan")  # a row holding a NaN: NaN quantiles, as torch.quantile gives
    assert torch.equal(quantiles(holes, q).isnan(), torch.quantile(holes, torch.tensor(q), dim=-1).T.isnan())
    assert torch.equal(sort_rows(torch.tensor([[3.0, 1.0, 2.0]], dtype=torch.bfloat16)),
                       torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.bfloat16))  # a dtype numpy lacks: torch sorts
    leaf = torch.rand(3, 50, generator=g, requires_grad=True)  # with a gradient wanted: torch's sort, which has one
    quantiles(leaf, q).sum().backward()
    assert leaf.grad is not None and leaf.grad.sum().item() == pytest.approx(3 * len(q))
