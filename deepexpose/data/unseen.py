"""Errors the agent was never trained on, for checking how it generalises (the issue's "unseen errors").

The training detuning (:mod:`deepexpose.data.detune`) moves the project's own global filters: exposure, white
balance, gamma, contrast, tone curve, saturation. The three errors here are of other kinds, each one a defect
a camera, a lens or a scanner really produces, and none of them exactly undone by the agent's filters:

- :func:`crosstalk` — colour crosstalk between channels: a 3x3 mixing matrix in linear light, as when a
  sensor's colour filters overlap spectrally and its colour matrix is missing or too weak (or a scanner's
  channels bleed). Rows sum to one, so a white-balanced camera keeps neutral greys neutral: the error is
  washed-out, shifted colour, not a cast that white balance could remove.
- :func:`highlight_rolloff` — a film-like soft shoulder: values above a knee are compressed exponentially,
  per channel, so bright areas lose brightness and contrast (and saturated highlights drift in hue) while the
  shadows and mid-tones below the knee are untouched.
- :func:`falloff` — light falling off across the frame (lens vignetting): a radial loss in stops, in linear
  light, growing with the squared distance from an optical centre that may sit off the frame's centre.

Each function takes ``B x 3 x H x W`` sRGB tensors in [0, 1] and parameters as floats or one value per image,
and returns ``(image, record)``: the record is JSON-ready and names the error and its parameters. Parameter
zero (``amount``, ``strength``, ``stops``) returns the input bit for bit. :data:`UNSEEN_ERRORS` lists the
errors with the ranges that :func:`unseen_error` draws their parameters from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..filters.base import apply_linear_gain, check_image, linear_to_srgb, per_sample, srgb_to_linear

__all__ = ["UNSEEN_ERRORS", "UnseenError", "crosstalk", "crosstalk_matrix", "falloff", "falloff_stops",
           "highlight_rolloff", "unseen_error"]


def _value(v: Tensor) -> float | list[float]:
    """A ``B x 1 x 1 x 1`` parameter as a JSON value: one float when all images share it, else a list
    (single-precision values to 7 significant digits, so that 0.6 reads 0.6)."""
    flat = [float(x) for x in v.detach().flatten().cpu().double()]
    if v.dtype != torch.float64:
        flat = [float(f"{x:.7g}") for x in flat]
    return flat[0] if all(x == flat[0] for x in flat) else flat


def _check_range(v: Tensor, name: str, low: float, high: float, *, high_open: bool = False) -> None:
    bad = ~torch.isfinite(v) | (v < low) | ((v >= high) if high_open else (v > high))
    if bool(bad.any()):
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {_value(v)}")


# --------------------------------------------------------------------------------------------- crosstalk


def crosstalk_matrix(amount: Tensor, neighbour: Tensor) -> Tensor:
    """The ``B x 3 x 3`` linear-light mixing matrices of :func:`crosstalk` (rows sum to one).

    Each output channel keeps ``1 - amount`` of itself and takes ``amount`` from the other two: red and blue
    take the share ``neighbour`` of it from green (their spectral neighbour) and the rest from each other;
    green takes half from red and half from blue.
    """
    a, n = amount.reshape(-1), neighbour.reshape(-1)
    one = torch.ones_like(a)
    zero = torch.zeros_like(a)
    # leak[i][j]: share of the leakage into channel i that comes from channel j
    leak = torch.stack([
        torch.stack([zero, n, 1 - n], dim=-1),
        torch.stack([0.5 * one, zero, 0.5 * one], dim=-1),
        torch.stack([1 - n, n, zero], dim=-1),
    ], dim=-2)
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    return (1 - a).view(-1, 1, 1) * eye + a.view(-1, 1, 1) * leak


def crosstalk(image: Tensor, amount: Tensor | float, neighbour: Tensor | float = 0.75) -> tuple[Tensor, dict]:
    """Colour crosstalk between channels: linear RGB multiplied by :func:`crosstalk_matrix`.

    Models a sensor whose colour filters overlap (or a scanner whose channels bleed) without the colour
    matrix that should undo it. ``amount`` in [0, 0.5] is the share of each channel replaced by the others
    (0: unchanged); ``neighbour`` in [0, 1] is the share of red's and blue's leakage that comes from green.
    Rows sum to one: greys stay grey, colours lose saturation and shift in hue. Results are clipped to [0, 1].
    """
    check_image(image)
    a = per_sample(amount, image, "amount")
    n = per_sample(neighbour, image, "neighbour")
    _check_range(a, "amount", 0.0, 0.5)
    _check_range(n, "neighbour", 0.0, 1.0)
    m = crosstalk_matrix(a, n)
    mixed = torch.einsum("bij,bjhw->bihw", m, srgb_to_linear(image))
    out = linear_to_srgb(mixed.clamp(0.0, 1.0))
    out = torch.where(a == 0, image, out)  # "no crosstalk" is the input bit for bit
    matrices = [[[round(float(x), 6) for x in row] for row in mi] for mi in m.detach().cpu()]
    shared = all(mi == matrices[0] for mi in matrices)
    record = {"error": "crosstalk", "amount": _value(a), "neighbour": _value(n),
              "matrix": matrices[0] if shared else matrices}
    return out, record


# --------------------------------------------------------------------------------------------- roll-off


def highlight_rolloff(image: Tensor, knee: Tensor | float, strength: Tensor | float) -> tuple[Tensor, dict]:
    """Highlight roll-off: a film-like soft shoulder above ``knee``, per channel on the sRGB values.

    Above the knee, ``t = (x - knee) / (1 - knee)`` becomes ``(1 - exp(-strength * t)) / strength``: the
    curve leaves the knee with slope one (no kink) and flattens toward white, which ends at
    ``knee + (1 - knee) * (1 - exp(-strength)) / strength``. Values at or below the knee are unchanged.
    ``knee`` in [0, 1); ``strength`` >= 0 (0: unchanged; 2 puts white at 43 % of the headroom above the knee).
    """
    check_image(image)
    k = per_sample(knee, image, "knee")
    s = per_sample(strength, image, "strength")
    _check_range(k, "knee", 0.0, 1.0, high_open=True)
    _check_range(s, "strength", 0.0, math.inf, high_open=True)
    t = ((image - k) / (1 - k)).clamp(min=0.0)
    safe = s.clamp(min=1e-6)
    shoulder = -torch.expm1(-safe * t) / safe
    rolled = k + (1 - k) * torch.where(s == 0, t, shoulder)
    out = torch.where((image > k) & (s > 0), rolled, image)
    return out, {"error": "highlight_rolloff", "knee": _value(k), "strength": _value(s)}


# --------------------------------------------------------------------------------------------- falloff


def falloff_stops(image: Tensor, stops: Tensor | float, centre_x: Tensor | float = 0.0,
                  centre_y: Tensor | float = 0.0) -> Tensor:
    """The ``B x 1 x H x W`` loss in stops of :func:`falloff` (0 at the optical centre, positive outward)."""
    check_image(image)
    st = per_sample(stops, image, "stops")
    cx = per_sample(centre_x, image, "centre_x")
    cy = per_sample(centre_y, image, "centre_y")
    _check_range(st, "stops", 0.0, math.inf, high_open=True)
    _check_range(cx, "centre_x", -1.0, 1.0)
    _check_range(cy, "centre_y", -1.0, 1.0)
    _, _, h, w = image.shape
    half_diag = math.hypot(h, w) / 2
    y = (torch.arange(h, dtype=image.dtype, device=image.device) + 0.5 - h / 2).view(1, 1, h, 1)
    x = (torch.arange(w, dtype=image.dtype, device=image.device) + 0.5 - w / 2).view(1, 1, 1, w)
    r2 = ((x - cx * (w / 2)) ** 2 + (y - cy * (h / 2)) ** 2) / half_diag ** 2
    return st * r2


def falloff(image: Tensor, stops: Tensor | float, centre_x: Tensor | float = 0.0,
            centre_y: Tensor | float = 0.0) -> tuple[Tensor, dict]:
    """Light falling off across the frame (lens vignetting), applied as a gain in linear light.

    The loss is ``stops * r**2`` stops, ``r`` being the distance from the optical centre in units of half the
    frame's diagonal, so with a centred optical axis the corners lose ``stops`` and the centre nothing; the
    falloff is circular whatever the aspect ratio. ``centre_x`` and ``centre_y`` in [-1, 1] move the optical
    centre off the frame's centre, in units of half the width and half the height (an off-axis lens or a
    cropped photo). ``stops`` >= 0 (0: unchanged).
    """
    loss = falloff_stops(image, stops, centre_x, centre_y)
    out = apply_linear_gain(image, torch.exp2(-loss))
    record = {"error": "falloff", "stops": _value(per_sample(stops, image)),
              "centre_x": _value(per_sample(centre_x, image)), "centre_y": _value(per_sample(centre_y, image))}
    return out, record


# --------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class UnseenError:
    """One unseen error: the function and the uniform ranges :func:`unseen_error` draws its parameters from."""

    name: str
    apply: Callable[..., tuple[Tensor, dict]]
    ranges: Mapping[str, tuple[float, float]]
    description: str

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        """Parameters drawn uniformly in :attr:`ranges` (in their order) with ``generator``."""
        return {p: lo + (hi - lo) * float(torch.rand((), generator=generator)) for p, (lo, hi) in self.ranges.items()}


UNSEEN_ERRORS: dict[str, UnseenError] = {
    "crosstalk": UnseenError("crosstalk", crosstalk, {"amount": (0.15, 0.4), "neighbour": (0.5, 1.0)},
                             "colour crosstalk between channels (overlapping colour filters, no colour matrix)"),
    "highlight_rolloff": UnseenError("highlight_rolloff", highlight_rolloff,
                                     {"knee": (0.5, 0.75), "strength": (1.5, 3.5)},
                                     "film-like soft shoulder compressing the highlights"),
    "falloff": UnseenError("falloff", falloff, {"stops": (0.7, 2.0), "centre_x": (-0.3, 0.3),
                                                "centre_y": (-0.3, 0.3)},
                           "light falling off toward the corners around an off-centre optical axis"),
}


def unseen_error(image: Tensor, name: str, generator: torch.Generator) -> tuple[Tensor, dict]:
    """Apply the error ``name`` of :data:`UNSEEN_ERRORS` with parameters drawn from ``generator``.

    One parameter set is drawn for the whole batch (uniform in the error's :attr:`UnseenError.ranges`); the
    record holds them, so the edit can be reproduced by calling the error's function with them.
    """
    if name not in UNSEEN_ERRORS:
        raise ValueError(f"unknown unseen error {name!r}; choose from {', '.join(UNSEEN_ERRORS)}")
    err = UNSEEN_ERRORS[name]
    return err.apply(image, **err.draw(generator))
