"""The policy's eyes and heads: global image statistics plus a small CNN, for 64 x 64 views.

Before any code existed the project measured that a CNN on six photos memorised them, while global statistics
(histograms, luminance quantiles, channel means) generalised better. So the features are mostly statistics of
the current result, of the input and of the current sub-image, and the CNN is small and globally pooled (no
position-specific flatten). stable-baselines3's default CNN needs >= 36 x 36 inputs and is far larger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from deepexpose.filters.base import luminance

from .chroma import HISTOGRAM_VERSION, ChromaNet, check_histogram_version

HIST_BINS = 16
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def sort_rows(values: Tensor) -> Tensor:
    """``values.sort(dim=-1).values``. On the CPU, for float32/float64 rows where no gradient is wanted, numpy
    sorts (its vectorised sort is about ten times faster than torch's on rows of a few thousand values); the
    result is the same."""
    if (values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64)
            and not (values.requires_grad and torch.is_grad_enabled())):
        return torch.from_numpy(np.sort(values.detach().numpy(), axis=-1))
    return values.sort(dim=-1).values


def quantiles(values: Tensor, q: Sequence[float]) -> Tensor:
    """``... x len(q)`` quantiles of each row of ``values``, computed exactly as ``torch.quantile`` (linear
    interpolation between the sorted values at ``floor`` and ``ceil`` of ``q (n - 1)``; NaN for a row holding a
    NaN), on :func:`sort_rows`."""
    ranks = torch.tensor(q, dtype=values.dtype, device=values.device) * (values.shape[-1] - 1)
    below = ranks.long()
    ordered = sort_rows(values)
    out = torch.lerp(ordered[..., below], ordered[..., ranks.ceil().long()], ranks - below)
    return torch.where(values.isnan().any(-1, keepdim=True), torch.nan, out)


IMAGE_STATS_DIM = 32


def image_stats(image: Tensor) -> Tensor:
    """``B x 32`` statistics of ``B x 3 x H x W`` images in [0, 1]: channel means and spreads, chroma,
    saturation, luminance quantiles and a 16-bin luminance histogram."""
    flat = image.flatten(2)                                               # B x 3 x N
    y = luminance(image).flatten(1)                                       # B x N
    mean, std = flat.mean(2), flat.std(2)
    chroma = torch.stack([mean[:, 0] - mean[:, 1], mean[:, 2] - mean[:, 1]], dim=1)
    sat = (flat.amax(1) - flat.amin(1)).mean(1, keepdim=True)
    q = quantiles(y, QUANTILES)
    bins = (y * HIST_BINS).long().clamp(0, HIST_BINS - 1)
    hist = torch.zeros(y.shape[0], HIST_BINS, dtype=y.dtype, device=y.device).scatter_add_(1, bins, torch.ones_like(y))
    return torch.cat([mean, std, chroma, sat, q, hist / y.shape[1]], dim=1)


def order_statistics(values: Tensor, ranks: Tensor) -> Tensor:
    """``values.sort(dim=-1).values[..., ranks]``: the values at positions ``ranks`` of each sorted row.

    When every value is an 8-bit level ``k / 255`` in [0, 1] (the policy's observations are), they are found by
    counting instead (a 256-bin histogram per row; the value at sorted position ``r`` is the first level with
    more than ``r`` values at or below it), several times faster than sorting; exactly equal either way.
    """
    if ranks.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional, got shape {tuple(ranks.shape)}")
    codes = (values * 255).round()
    if values.numel() and codes.min() >= 0 and codes.max() <= 255 and torch.equal(codes / 255, values):
        counts = torch.zeros(*values.shape[:-1], 256, dtype=torch.int64, device=values.device)
        at_or_below = counts.scatter_add_(-1, codes.long(), torch.ones_like(codes, dtype=torch.int64)).cumsum(-1)
        level = (at_or_below.unsqueeze(-2) <= ranks.view(-1, 1)).sum(-1)
        return level.to(values.dtype) / 255
    return sort_rows(values)[..., ranks]


COLOUR_QUANTILES = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
CHANNEL_BINS = 16
COLOUR_STATS_DIM = 3 * len(COLOUR_QUANTILES) + 3 + 6 + 4 + 3 * CHANNEL_BINS


def colour_stats(image: Tensor) -> Tensor:
    """``B x 94`` per-channel statistics of ``B x 3 x H x W`` images in [0, 1], for telling colour casts, exposure
    and contrast errors apart: each channel's quantiles (from the darkest to the brightest 0.1 %), the log of
    its mean linear light (grey-world cue), the shares of clipped pixels at 0 and 1, quantiles of the
    saturation ``(max - min) / max``, and a 16-bin histogram per channel."""
    from deepexpose.filters.base import srgb_to_linear

    b, _, h, w = image.shape
    flat = image.flatten(2)                                               # B x 3 x N
    n = flat.shape[2]
    idx = (torch.tensor(COLOUR_QUANTILES, device=image.device) * (n - 1)).round().long()
    q = order_statistics(flat, idx).flatten(1)                            # B x 33
    log_mean = srgb_to_linear(flat).mean(2).clamp(min=1e-4).log()         # B x 3
    clipped = torch.cat([(flat <= 0.5 / 255).float().mean(2), (flat >= 254.5 / 255).float().mean(2)], 1)
    hi, lo = flat.amax(1), flat.amin(1)
    sat = sort_rows((hi - lo) / hi.clamp(min=1e-3))
    sat_q = sat[:, (torch.tensor((0.1, 0.5, 0.9, 0.99), device=image.device) * (n - 1)).round().long()]
    bins = (flat * CHANNEL_BINS).long().clamp(0, CHANNEL_BINS - 1)
    offsets = torch.arange(3, device=image.device).view(1, 3, 1) * CHANNEL_BINS
    hist = torch.zeros(b, 3 * CHANNEL_BINS, dtype=image.dtype, device=image.device)
    hist.scatter_add_(1, (bins + offsets).flatten(1), torch.ones_like(flat.flatten(1)))
    return torch.cat([q, log_mean, clipped, sat_q, hist / n], dim=1)


CHROMA_DIM = 2
"""Columns of the :class:`~deepexpose.agents.chroma.ChromaNet` estimate among the input features."""


def masked_stats(image: Tensor, mask: Tensor) -> Tensor:
    """``B x 5``: the sub-image's share of the picture, its mean luminance and its mean R, G, B."""
    w = mask.flatten(1)
    area = w.mean(1, keepdim=True)
    norm = w.sum(1, keepdim=True).clamp(min=1e-6)
    rgb = (image.flatten(2) * w.unsqueeze(1)).sum(2) / norm
    y = (luminance(image).flatten(1) * w).sum(1, keepdim=True) / norm
    return torch.cat([area, y, rgb], dim=1)


def obs_to_float(obs: dict[str, Tensor]) -> dict[str, Tensor]:
    """uint8 observation tensors to floats in [0, 1] (the step one-hot is already float)."""
    return {k: (v.float() / 255 if v.dtype == torch.uint8 else v.float()) for k, v in obs.items()}


INITIAL_LOG_STD = -1.5
"""Log standard deviation of the exploration noise at the start of training (0.22 action units): the stochastic
policies explore around "change nothing", not over the whole range, where nearly every edit ruins the photo."""


class ObservationEncoder(nn.Module):
    """Observation dict (``image``, ``input``, ``mask`` in [0, 1], ``step`` one-hot) -> ``features_dim`` vector."""

    def __init__(self, steps: int, features_dim: int = 128, cnn_width: int = 16, use_cnn: bool = True,
                 colour: bool = False, chroma: bool = False) -> None:
        super().__init__()
        self.steps, self.features_dim, self.use_cnn, self.colour = steps, features_dim, use_cnn, colour
        self.chroma = chroma
        stats_dim = (2 * IMAGE_STATS_DIM + 5 + steps + (2 * COLOUR_STATS_DIM if colour else 0)
                     + (CHROMA_DIM if chroma else 0))
        if chroma:
            self.chroma_net = ChromaNet()
        cnn_dim = 0
        if use_cnn:
            w = cnn_width
            self.cnn = nn.Sequential(
                nn.Conv2d(7, w, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
            )
            cnn_dim = 2 * w
        self.mlp = nn.Sequential(nn.Linear(stats_dim + cnn_dim, features_dim), nn.ReLU())

    def input_features(self, inp: Tensor) -> Tensor:
        """The statistics of the observation's ``input`` (floats), the same at every step of an episode: computed
        once and passed to :meth:`forward`, they save half the statistics of the later steps. With ``chroma``
        the last two columns are the :class:`~deepexpose.agents.chroma.ChromaNet` white-balance correction."""
        return torch.cat([image_stats(inp), *([colour_stats(inp)] if self.colour else []),
                          *([self.chroma_net(inp)] if self.chroma else [])], dim=1)

    def forward(self, obs: dict[str, Tensor], input_features: Tensor | None = None) -> Tensor:
        image, inp, mask, step = obs["image"], obs["input"], obs["mask"], obs["step"]
        if input_features is None:
            input_features = self.input_features(inp)
        parts = [image_stats(image), input_features[:, :IMAGE_STATS_DIM], masked_stats(image, mask), step]
        if self.colour:
            parts += [colour_stats(image), input_features[:, IMAGE_STATS_DIM:IMAGE_STATS_DIM + COLOUR_STATS_DIM]]
        if self.chroma:
            parts.append(input_features[:, -CHROMA_DIM:])
        if self.use_cnn:
            parts.append(self.cnn(torch.cat([image, inp, mask], dim=1)).mean(dim=(2, 3)))
        return self.mlp(torch.cat(parts, dim=1))


class ActorCritic(nn.Module):
    """Deterministic actor (tanh, zero-initialised so the first edit is "change nothing", optionally with a dead
    zone, :func:`shrink`), value head, and a
    learned log standard deviation for the stochastic (advantage actor-critic) option."""

    def __init__(self, steps: int, action_dim: int, hidden: int = 128, use_cnn: bool = True,
                 colour: bool = False, deadzone: float = 0.0, chroma: Sequence[int] | None = None,
                 chroma_scale: float = 1.0, chroma_histogram: int = HISTOGRAM_VERSION) -> None:
        super().__init__()
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        if chroma is not None and (len(set(chroma)) != CHROMA_DIM or len(chroma) != CHROMA_DIM
                                   or not all(0 <= d < action_dim for d in chroma) or chroma_scale <= 0):
            raise ValueError(f"chroma must name {CHROMA_DIM} different action dimensions below {action_dim} and "
                             f"chroma_scale must be > 0, got {chroma} and {chroma_scale}")
        if chroma is not None:
            check_histogram_version(chroma_histogram)
        self.steps, self.action_dim, self.hidden, self.use_cnn, self.colour = steps, action_dim, hidden, use_cnn, colour
        self.deadzone = deadzone
        self.chroma = None if chroma is None else [int(d) for d in chroma]
        self.chroma_scale = float(chroma_scale)
        self.encoder = ObservationEncoder(steps, hidden, use_cnn=use_cnn, colour=colour, chroma=chroma is not None)
        self.trunk = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.actor = nn.Linear(hidden, action_dim)
        nn.init.zeros_(self.actor.weight)
        nn.init.zeros_(self.actor.bias)
        self.value = nn.Linear(hidden, 1)
        self.log_std = nn.Parameter(torch.full((action_dim,), INITIAL_LOG_STD))

    def config(self) -> dict:
        return {"steps": self.steps, "action_dim": self.action_dim, "hidden": self.hidden, "use_cnn": self.use_cnn,
                "colour": self.colour, "deadzone": self.deadzone,
                **({"chroma": self.chroma, "chroma_scale": self.chroma_scale, "chroma_histogram": HISTOGRAM_VERSION}
                   if self.chroma is not None else {})}

    @classmethod
    def from_config(cls, config: dict) -> ActorCritic:
        """The model of a saved :meth:`config`; one with ``chroma`` but no ``chroma_histogram`` was saved before
        the version was recorded, on version 1 (and is refused)."""
        config = dict(config)
        if config.get("chroma") is not None:
            config.setdefault("chroma_histogram", 1)
        return cls(**config)

    def forward(self, obs: dict[str, Tensor], input_features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean action in [-1, 1] (``B x A``) and value (``B``) of float observations (``input_features``: see
        :meth:`ObservationEncoder.input_features`).

        With ``chroma`` (the white balance's temperature and tint dimensions of the final step's action), the
        :class:`~deepexpose.agents.chroma.ChromaNet` correction, divided by ``chroma_scale`` (stops per action
        unit), is added to those two pre-activations at the final step: the actor learns a residual to it.
        """
        if input_features is None:
            input_features = self.encoder.input_features(obs["input"])
        h = self.trunk(self.encoder(obs, input_features))
        z = self.actor(h)
        if self.chroma is not None:
            final = obs["step"][:, -1:].to(z.dtype)
            offset = torch.zeros_like(z)
            offset[:, self.chroma] = input_features[:, -CHROMA_DIM:] * (final / self.chroma_scale)
            z = z + offset
        return shrink(torch.tanh(z), self.deadzone), self.value(h).view(-1)

    def episode(self) -> Callable[[dict[str, Tensor]], tuple[Tensor, Tensor]]:
        """This model for the steps of one batch of episodes: uint8 observations -> (mean action, value), with
        the input's statistics computed at the first step and reused while the input stays the same (it does
        within an episode; a new batch is noticed and gets its own); the result is exactly that of calling the
        model on ``obs_to_float`` of each observation."""
        cached: list[Tensor] = []  # [the input observation, its statistics]

        def step(obs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            floats = obs_to_float(obs)
            if not cached or not torch.equal(cached[0], obs["input"]):
                cached[:] = [obs["input"].clone(), self.encoder.input_features(floats["input"])]
            return self(floats, cached[1])

        return step


def shrink(action: Tensor, deadzone: float) -> Tensor:
    """Soft shrinkage (Donoho 1995) with a straight-through gradient: ``sign(a) max(|a| - d, 0) / (1 - d)``.

    Actions within ``d`` of 0 become exactly 0, i.e. exactly "change nothing" (every filter is the identity at 0),
    so a policy unsure whether a photo needs a change leaves it alone. The gradient passes as if there were no
    dead zone, so a parameter that sits in it still learns where it should go.
    """
    if deadzone <= 0:
        return action
    shrunk = torch.sign(action) * (action.abs() - deadzone).clamp(min=0) / (1 - deadzone)
    return action + (shrunk - action).detach()
