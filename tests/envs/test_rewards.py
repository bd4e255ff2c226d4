import math

import pytest
import torch

from deepexpose.envs.rewards import REWARDS, critic_score, delta_e_score, get_reward, lab, mixed_score, psnr_score


def test_psnr_score_values_and_cap():
    t = torch.full((2, 3, 4, 4), 0.5)
    x = t.clone()
    x[0] += 0.1
    s = psnr_score(x, t)
    assert s[0].item() == pytest.approx(20.0, abs=0.01)   # mse 0.01 -> 20 dB
    assert s[1].item() == pytest.approx(50.0)             # a perfect match is capped


def test_delta_e_score_against_hand_computed_lab():
    t = torch.zeros(1, 3, 2, 2)                    # black: L = 0
    x = torch.ones(1, 3, 2, 2)                     # white: L = 100, a = b = 0
    assert delta_e_score(x, lab(t)).item() == pytest.approx(-100.0, abs=1e-2)
    assert delta_e_score(t, lab(t)).item() == pytest.approx(-0.01, abs=1e-6)  # sqrt(1e-4) at a perfect match
    y = x.clone().requires_grad_()
    delta_e_score(y, lab(x)).sum().backward()
    assert torch.isfinite(y.grad).all()            # finite slope at a perfect match


def test_registry():
    assert set(REWARDS) == {"paired", "psnr", "adversarial", "mixed"}
    t = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(get_reward("paired").reference(t), lab(t))
    assert get_reward("psnr").reference(t) is t and get_reward("paired").reference(None) is None
    with pytest.raises(ValueError, match="needs targets"):
        psnr_score(t, None)
    with pytest.raises(ValueError, match="reward"):
        get_reward("nope")
    assert math.isclose(get_reward("paired").scale, 0.1)


def test_critic_and_mixed_scores():
    class Brightness(torch.nn.Module):  # a stand-in critic: the mean level, one score per image
        def forward(self, image):
            return image.mean(dim=(1, 2, 3), keepdim=True)

    t = torch.zeros(2, 3, 2, 2)
    x = torch.ones(2, 3, 2, 2)
    x[1] = 0.5
    torch.testing.assert_close(critic_score(x, None, Brightness()), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="needs a critic"):
        critic_score(x)
    with pytest.raises(ValueError, match="needs a critic"):
        mixed_score(x, lab(t))
    expected = 0.5 * delta_e_score(x, lab(t)) / 10 + 0.5 * torch.tensor([1.0, 0.5])
    torch.testing.assert_close(mixed_score(x, lab(t), Brightness()), expected)
    assert mixed_score(x, lab(t), Brightness())[0].item() == pytest.approx(0.5 * -100 / 10 + 0.5, abs=1e-3)
    mixed = get_reward("mixed")  # its reference is the target's CIELAB, as for the paired reward
    torch.testing.assert_close(mixed.reference(t), lab(t))
    assert get_reward("adversarial").reference(t) is t
