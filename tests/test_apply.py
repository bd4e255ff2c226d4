import pytest
import torch

from deepexpose.agents.networks import ActorCritic
from deepexpose.agents.train import run_policy
from deepexpose.apply import apply_edit, to_view
from deepexpose.envs import EditCore


def smooth_photo(h=96, w=128):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([0.2 + 0.6 * xx, 0.15 + 0.5 * yy, 0.1 + 0.3 * (xx + yy) / 2]).unsqueeze(0)


def an_edit(k=3):
    torch.manual_seed(0)
    core = EditCore(k=k, reward=None)
    model = ActorCritic(core.steps, core.action_dim, use_cnn=False)
    torch.nn.init.normal_(model.actor.weight, std=0.3)  # a policy that actually edits
    return core, model


def test_at_view_size_equals_the_episode():
    core, model = an_edit()
    photo = smooth_photo(64, 64)
    out, edits = run_policy(model, core, photo)
    torch.testing.assert_close(apply_edit(photo, edits[0]), out, atol=1e-5, rtol=0)


def test_full_resolution_matches_the_view():
    core, model = an_edit()
    photo = smooth_photo()
    view = to_view(photo, 64)
    out_view, edits = run_policy(model, core, view)
    full = apply_edit(photo, edits[0])
    assert full.shape == photo.shape
    torch.testing.assert_close(to_view(full, 64), out_view, atol=0.03, rtol=0)


def test_identity_edit_and_errors():
    photo = smooth_photo(40, 50)
    assert torch.equal(apply_edit(photo, {"local_exposure": {"ev": [0.0, 0.0]}}), photo)
    with pytest.raises(ValueError, match="local"):
        apply_edit(photo, {"exposure": {"ev": 1.0}})
    with pytest.raises(ValueError, match="one photo"):
        apply_edit(torch.cat([photo, photo]), {"local_exposure": {"ev": [0.0]}})
    with pytest.raises(ValueError, match="unknown filters"):
        apply_edit(photo, {"local_exposure": {"ev": [0.0]}, "vignette": {"amount": 1.0}})
