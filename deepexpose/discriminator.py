"""The discriminator (critic) that tells good photos from the agent's edits; its score is the agent's reward.

As in DeepExposure (seed 003) and the Exposure/White-box project (Hu et al. 2018), it sees the RGB image
concatenated with luminance, local contrast and saturation feature channels. It is trained with the WGAN-GP
objective (Gulrajani et al., "Improved Training of Wasserstein GANs", 2017): the critic maximises
``D(real) - D(fake)`` with a penalty ``lambda (||grad D(x_hat)|| - 1)^2`` on random interpolates ``x_hat``.
No batch normalisation (it would break the per-sample gradient penalty).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .filters.base import check_image, luminance


def feature_channels(image: Tensor) -> Tensor:
    """RGB plus luminance, local contrast (|Y - blur(Y)|) and saturation (max - min of RGB): ``B x 6 x H x W``."""
    check_image(image)
    x = image.clamp(0.0, 1.0)
    y = luminance(x)
    contrast = (y - F.avg_pool2d(F.pad(y, (2, 2, 2, 2), mode="replicate"), 5, stride=1)).abs()
    saturation = x.amax(dim=1, keepdim=True) - x.amin(dim=1, keepdim=True)
    return torch.cat([x, y, contrast, saturation], dim=1)


class Critic(nn.Module):
    """A small convolutional WGAN critic on any image size (global average pooling at the end)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        layers, c = [], 6
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, image: Tensor) -> Tensor:
        """Scores ``B`` (larger: more like the good photos)."""
        return self.head(self.body(feature_channels(image)).mean(dim=(2, 3))).view(-1)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's ``mean((||grad D(x_hat)||_2 - 1)^2)`` on random interpolates of real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, gp_weight: float = 10.0,
                generator: torch.Generator | None = None) -> Tensor:
    """The WGAN-GP critic loss ``D(fake) - D(real) + gp_weight * penalty`` (to minimise)."""
    fake = fake.detach()
    return critic(fake).mean() - critic(real).mean() + gp_weight * gradient_penalty(critic, real, fake, generator)
