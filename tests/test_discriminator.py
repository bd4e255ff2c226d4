import torch

from conftest import random_image
from deepexpose.discriminator import Critic, critic_loss, feature_channels, gradient_penalty


def test_feature_channels():
    x = random_image(b=2, h=12, w=12)
    f = feature_channels(x)
    assert f.shape == (2, 6, 12, 12)
    torch.testing.assert_close(f[:, :3], x)
    grey = torch.full((1, 3, 8, 8), 0.5)
    g = feature_channels(grey)
    assert g[:, 4].abs().max() < 1e-6 and g[:, 5].abs().max() < 1e-6  # flat grey: no contrast, no saturation


def test_critic_any_size_and_penalty():
    c = Critic(width=8)
    assert c(random_image(b=3, h=16, w=16)).shape == (3,)
    assert c(random_image(b=1, h=40, w=24)).shape == (1,)
    gp = gradient_penalty(c, random_image(b=2, h=16, w=16), random_image(b=2, h=16, w=16, seed=1))
    assert gp.ndim == 0 and gp >= 0


def test_critic_learns_to_separate_good_from_bad():
    """A few WGAN-GP steps: the critic scores bright, colourful images above dark, grey ones."""
    torch.manual_seed(0)
    c = Critic(width=8)
    opt = torch.optim.Adam(c.parameters(), lr=1e-3, betas=(0.5, 0.9))
    real = random_image(b=16, h=16, w=16, low=0.3, high=1.0)
    fake = real.mean(1, keepdim=True).expand_as(real) * 0.3
    for _ in range(60):
        loss = critic_loss(c, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert c(real).mean() > c(fake).mean() + 0.5
