"""A white-balance estimate from the log-chroma histogram, after Fast Fourier Color Constancy (Barron & Tsai 2017)
and Convolutional Color Constancy (Barron 2015).

In linear light a white-balance gain multiplies R, G and B, so it *translates* each pixel's log-chroma
``(u, v) = (log G/R, log G/B)`` by the same amount: a colour cast moves the photo's log-chroma histogram without
changing its shape. A network that is translation-equivariant on that histogram (convolutions, then a softmax
over positions and its expected position, "soft-argmax") learns from every photo at every cast what a natural
histogram looks like and where it sits; its expected position is the estimated cast, and its negative in
:mod:`deepexpose.filters.white_balance` units (temperature and tint in stops) the correction.

Unlike Barron's methods the neutral point here is the photo's own rendering (a published photo, not a camera
raw under a measured illuminant), and the network learns it from detuned views end to end.

The edge channel counts only pixels whose local contrast is at least ``EDGE_LEVELS`` 8-bit sRGB levels in every
channel: flat neighbourhoods (zero contrast in every channel, whatever the cast) and ones flat in a single channel
(an infinite log ratio) would otherwise pile up in fixed bins that do not move with a cast. The contrast threshold
itself does not scale with a gain (one sRGB level grows slower than the light), so a cast can move a pixel across
it. The bin count is odd, so neutral grey lies at the centre of the middle bin, and the logarithm's offset (1e-6)
is far below the darkest pixel counted, so the pixel channel translates exactly up to the binning (and 3e-4 in
log-chroma at the darkest pixels counted).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from deepexpose.filters.base import srgb_to_linear

HISTOGRAM_VERSION = 2
"""What :func:`log_chroma_histogram` computes, recorded with every model that uses it: 1 was the first version
(32 bins, the edge channel unmasked, log offset 1e-3), 2 the present one. A model trained on another version is
refused, since its network reads the histogram differently."""
CHROMA_BINS = 33
CHROMA_RANGE = 2.0
"""The histogram covers ``u, v`` in ``[-CHROMA_RANGE, CHROMA_RANGE]`` (natural log) in ``CHROMA_BINS`` bins each
(odd: ``u = v = 0`` is the centre of the middle bin)."""
DARK, BRIGHT = 0.003, 0.98
"""Pixels whose darkest channel is at most ``DARK`` or brightest at least ``BRIGHT`` (linear light) are left out:
their chroma is noise or clipping."""
EDGE_LEVELS = 3.0
"""The edge channel counts a pixel only where its local contrast is at least this many 8-bit sRGB levels (at its
neighbourhood's brightness) in every channel."""
EPS = 1e-6
"""Offset inside the logarithms, far below ``DARK`` and below any counted local contrast."""


def check_histogram_version(version: int) -> None:
    """Refuse, by name, a model trained on log-chroma histograms of another :data:`HISTOGRAM_VERSION`."""
    if version != HISTOGRAM_VERSION:
        raise ValueError(f"this model's white-balance estimate was trained on log-chroma histograms of version "
                         f"{version}; this deepexpose computes version {HISTOGRAM_VERSION} (agents/chroma.py): "
                         "train it again with --chroma")


def srgb_level(lin: Tensor) -> Tensor:
    """The linear-light size of one 8-bit sRGB level at linear value ``lin``: the derivative of the sRGB decoding
    (IEC 61966-2-1), ``2.4 / 1.055 * lin ** (1.4 / 2.4)`` above its linear toe and ``1 / 12.92`` on it, over 255."""
    curve = 2.4 / 1.055 * lin.clamp(min=0.0031308) ** (1.4 / 2.4)
    return torch.where(lin > 0.0031308, curve, torch.full_like(lin, 1 / 12.92)) / 255


def log_chroma_histogram(image: Tensor, bins: int = CHROMA_BINS, extent: float = CHROMA_RANGE) -> Tensor:
    """``B x 2 x bins x bins`` histograms of ``B x 3 x H x W`` sRGB images in [0, 1]: of the log-chroma of the
    pixels, and of their local contrast (absolute difference from the 3 x 3 mean, Barron's "edge" channel, counted
    where it is at least ``EDGE_LEVELS`` levels in every channel), each normalised to sum 1 over its counted
    well-exposed pixels (all zero when none is) and square-rooted (FFCC's variance stabilisation). Axis 2 is
    ``u = log(G / R)``, axis 3 ``v = log(G / B)``, bin ``i`` centred at :func:`bin_centres` ``[i]``. No gradient
    flows through it."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be B x 3 x H x W, got {tuple(image.shape)}")
    with torch.no_grad():
        lin = srgb_to_linear(image.float().clamp(0, 1))
        local = nn.functional.avg_pool2d(lin, 3, 1, 1, count_include_pad=False)
        edge = (lin - local).abs()
        exposed = (lin.amin(1) > DARK) & (lin.amax(1) < BRIGHT)
        textured = exposed & (edge >= EDGE_LEVELS * srgb_level(local)).all(1)
        out = []
        for plane, keep in ((lin, exposed), (edge, textured)):
            g = torch.log(plane[:, 1] + EPS)
            u, v = g - torch.log(plane[:, 0] + EPS), g - torch.log(plane[:, 2] + EPS)
            iu = ((u + extent) * (bins / (2 * extent))).floor().long().clamp(0, bins - 1)
            iv = ((v + extent) * (bins / (2 * extent))).floor().long().clamp(0, bins - 1)
            counts = torch.zeros(image.shape[0], bins * bins, device=image.device)
            counts.scatter_add_(1, (iu * bins + iv).flatten(1), keep.flatten(1).float())
            out.append((counts / counts.sum(1, keepdim=True).clamp(min=1)).sqrt().view(-1, bins, bins))
        return torch.stack(out, 1)


def bin_centres(bins: int = CHROMA_BINS, extent: float = CHROMA_RANGE) -> Tensor:
    """The log-chroma at the centre of each histogram bin (symmetric about 0)."""
    return (torch.arange(bins, dtype=torch.float64) + 0.5 - bins / 2).mul(2 * extent / bins).float()


class ChromaNet(nn.Module):
    """Log-chroma histogram -> white-balance correction ``B x 2`` (temperature, tint in stops).

    Dilated convolutions (zero padded, so translation-equivariant away from the borders) and a learned bias map
    (FFCC's prior over where the neutral point lies) give a logit per bin; the softmax's expected position
    ``(du, dv)`` is the estimated cast, undone by :func:`correction_from_shift`. The last layer and the bias map
    start at zero: a uniform softmax, whose expected position is the centre, i.e. "change nothing".
    """

    def __init__(self, width: int = 8, bins: int = CHROMA_BINS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 2
        for d in (1, 2, 4):
            layers += [nn.Conv2d(channels, width, 5, padding=2 * d, dilation=d), nn.ReLU()]
            channels = width
        last = nn.Conv2d(width, 1, 5, padding=8, dilation=4)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.bins = bins
        self.prior = nn.Parameter(torch.zeros(1, bins * bins))
        self.register_buffer("centres", bin_centres(bins), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        """The correction for ``B x 3 x H x W`` sRGB images in [0, 1]."""
        return self.from_histogram(log_chroma_histogram(image, self.bins))

    def from_histogram(self, h: Tensor) -> Tensor:
        """The correction for :func:`log_chroma_histogram` ``h`` (to train on histograms computed once)."""
        p = (self.net(h).flatten(1) + self.prior).softmax(1).view(-1, self.bins, self.bins)
        return correction_from_shift((p.sum(2) * self.centres).sum(1), (p.sum(1) * self.centres).sum(1))


def correction_from_shift(du: Tensor, dv: Tensor) -> Tensor:
    """``B x 2`` white balance (temperature, tint in stops) that moves log-chroma ``(du, dv)`` back to ``(0, 0)``.

    The white-balance filter with temperature ``t`` and tint ``m`` moves ``u = log(G / R)`` by
    ``-(t + m) ln 2 / 2`` and ``v = log(G / B)`` by ``(t - m) ln 2 / 2``; solving for a move of ``(-du, -dv)``
    gives ``t = (du - dv) / ln 2``, ``m = (du + dv) / ln 2``."""
    return torch.stack([du - dv, du + dv], -1) / math.log(2)
