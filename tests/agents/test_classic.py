import torch

from deepexpose.agents.classic import MIDDLE_GREY, classic_act, classic_parameters
from deepexpose.agents.train import run_policy
from deepexpose.envs import EditCore
from deepexpose.filters import adjust_white_balance, srgb_to_linear


def test_grey_world_and_middle_grey():
    grey = torch.full((1, 3, 8, 8), 0.46)
    cast = adjust_white_balance(grey, 0.8, -0.4)  # a warm, green cast on a grey card
    p = classic_parameters(cast)[0]
    assert p["white_balance"]["temperature"] < 0 and p["white_balance"]["tint"] > 0
    core = EditCore(k=2, reward=None)
    out, edits = run_policy(classic_act(core), core, cast)
    lin = srgb_to_linear(out)[0, :, 0, 0]
    torch.testing.assert_close(lin, torch.full((3,), MIDDLE_GREY), atol=2e-3, rtol=0)  # neutral, middle grey
    assert edits[0]["local_exposure"]["ev"] == [0.0, 0.0]


def test_already_neutral_middle_grey_is_left_alone():
    x = torch.full((2, 3, 4, 4), 0.4613)  # sRGB of linear 0.18
    core = EditCore(k=1, reward=None)
    out, _ = run_policy(classic_act(core), core, x)
    torch.testing.assert_close(out, x, atol=2e-3, rtol=0)
