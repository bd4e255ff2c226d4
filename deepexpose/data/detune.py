"""Synthetic detuning of good photos, seeded and recorded, with the project's own filters.

Three schemes, each returning the edited image and a JSON-ready record of exactly what was done:

- :func:`detune_single` — the 24 single-error classes of Gibbs, "Video Color Grading via Deep Neural
  Networks" (seed 001): eight attributes, each detuned by 33 %, 66 % or 100 % of a fixed maximum, one error per
  image (:data:`SINGLE_ERROR_CLASSES`; ``"correct"`` is the 25th, untouched class).
- :func:`random_edit` — the random mixed edits of the histogram-network project (seed 002): non-linear
  brightness (exposure, gamma, tone curve), colour spill (temperature and tint), saturation, contrast and noise.
- :func:`afifi_exposures` — the relative exposures {-1.5, -1, 0, +1, +1.5} EV of Afifi et al., "Learning
  Multi-Scale Photo Exposure Correction" (CVPR 2021), applied in linear light.

:class:`Detuned` wraps any dataset of good photos into (detuned input, original target) pairs; a fraction of
the samples is left untouched so that a model also learns to leave good photos alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..filters import FilterPipeline, get_filter
from ..filters.base import check_image

LEVELS = (0.33, 0.66, 1.0)
AFIFI_EV = (-1.5, -1.0, 0.0, 1.0, 1.5)


@dataclass(frozen=True)
class Attribute:
    """One detuning attribute of seed 001: which filter parameter moves, and its value at 100 %."""

    name: str
    filter: str
    param: str
    full: float  # the parameter value at 100 %; 33 % and 66 % interpolate from the identity

    def value(self, level: float) -> float:
        spec = next(p for p in get_filter(self.filter).params if p.name == self.param)
        return spec.identity + level * (self.full - spec.identity)


# Eight attributes x three levels = the 24 single-error classes of seed 001.
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("too_dark", "exposure", "ev", -1.5),
    Attribute("black_point_too_high", "levels", "black", 0.15),
    Attribute("white_point_too_low", "levels", "white", 0.8),
    Attribute("contrast_too_high", "contrast", "amount", 0.75),
    Attribute("saturation_too_low", "saturation", "factor", 0.5),
    Attribute("too_green", "white_balance", "tint", -1.0),
    Attribute("too_orange", "white_balance", "temperature", 1.0),
    Attribute("too_blue", "white_balance", "temperature", -1.0),
)
SINGLE_ERROR_CLASSES: tuple[str, ...] = tuple(f"{a.name}_{round(lv * 100)}" for a in ATTRIBUTES for lv in LEVELS)
CORRECT = "correct"


def detune_single(image: Tensor, cls: str) -> tuple[Tensor, dict]:
    """Apply one of :data:`SINGLE_ERROR_CLASSES` (or ``"correct"``) to a ``B x 3 x H x W`` batch."""
    check_image(image)
    if cls == CORRECT:
        return image.clone(), {"scheme": "single", "class": CORRECT, "edits": {}}
    if cls not in SINGLE_ERROR_CLASSES:
        raise ValueError(f"unknown detuning class {cls!r}; expected one of {CORRECT!r} or "
                         f"{', '.join(SINGLE_ERROR_CLASSES)}")
    name, pct = cls.rsplit("_", 1)
    attr = next(a for a in ATTRIBUTES if a.name == name)
    level = int(pct) / 100
    edits = {attr.filter: {attr.param: attr.value(level)}}
    pipe = FilterPipeline([attr.filter])
    action = pipe.action_from_description(edits).to(image.device).expand(image.shape[0], -1)
    record = {"scheme": "single", "class": cls, "attribute": attr.name, "level": level, "edits": edits}
    return pipe(image, action), record


# Ranges of the random mixed edits (seed 002): (filter, parameter, low, high).
MIXED_RANGES: tuple[tuple[str, str, float, float], ...] = (
    ("white_balance", "temperature", -1.0, 1.0),
    ("white_balance", "tint", -0.7, 0.7),
    ("exposure", "ev", -1.5, 1.5),
    ("gamma", "gamma", 0.7, 1.4),
    ("contrast", "amount", -0.6, 0.6),
    ("saturation", "factor", 0.5, 1.6),
)
MIXED_FILTERS = ("white_balance", "exposure", "gamma", "contrast", "tone_curve", "saturation")


def random_edit(image: Tensor, generator: torch.Generator, *, p_each: float = 0.6, max_curve: float = 0.5,
                noise: float = 0.01, ranges: Sequence[tuple[str, str, float, float]] = MIXED_RANGES,
                label: str = "mixed") -> tuple[Tensor, dict]:
    """Random mixed edit of one image (``1 x 3 x H x W``), seed 002 style; returns the image and the record.

    Each adjustment of ``ranges`` is drawn with probability ``p_each`` (uniform in its range), the tone curve
    gets random log2 slopes in ``[-max_curve, max_curve]`` with the same probability (none when 0), and
    Gaussian noise of a standard deviation drawn up to ``noise`` is added last.
    """
    check_image(image)
    if image.shape[0] != 1:
        raise ValueError("random_edit takes one image (1 x 3 x H x W); call it per image")

    def rand() -> float:
        return float(torch.rand((), generator=generator))

    edits: dict[str, dict[str, float]] = {}
    for filt, param, low, high in ranges:
        if rand() < p_each:
            edits.setdefault(filt, {})[param] = low + (high - low) * rand()
    if max_curve > 0 and rand() < p_each:
        curve = get_filter("tone_curve")
        edits["tone_curve"] = {p.name: (2 * rand() - 1) * max_curve for p in curve.params}
    edits = {f: edits[f] for f in MIXED_FILTERS if f in edits}  # in the order they are applied
    pipe = FilterPipeline(MIXED_FILTERS)
    out = pipe(image, pipe.action_from_description(edits).to(image.device))
    sigma = noise * rand() if noise > 0 else 0.0
    if sigma > 0:
        g = torch.randn(image.shape, generator=generator).to(image)
        out = (out + sigma * g).clamp(0.0, 1.0)
    return out, {"scheme": label, "class": label, "edits": edits, "noise_sigma": sigma}


# The four errors of the quality target: exposure, white balance, contrast, saturation.
BASIC_RANGES: tuple[tuple[str, str, float, float], ...] = tuple(
    r for r in MIXED_RANGES if r[0] in ("white_balance", "exposure", "contrast", "saturation"))


def basic_edit(image: Tensor, generator: torch.Generator) -> tuple[Tensor, dict]:
    """Exposure, white-balance, contrast and saturation errors only (each with probability 0.75), no noise."""
    return random_edit(image, generator, p_each=0.75, max_curve=0.0, noise=0.0, ranges=BASIC_RANGES, label="basic")


def afifi_exposures(image: Tensor, evs: Sequence[float] = AFIFI_EV) -> tuple[Tensor, list[dict]]:
    """The image at each relative exposure of Afifi et al.: ``len(evs) x B`` images stacked along batch."""
    check_image(image)
    exposure = get_filter("exposure")
    outs, records = [], []
    for ev in evs:
        value = torch.full((image.shape[0], 1), float(ev), dtype=image.dtype, device=image.device)
        outs.append(exposure.apply(image, value))
        records.append({"scheme": "afifi", "class": f"ev{float(ev):+g}", "edits": {"exposure": {"ev": float(ev)}}})
    return torch.cat(outs), records


SCHEMES = ("single", "mixed", "basic", "afifi")


def detune(image: Tensor, scheme: str, generator: torch.Generator, *,
           identity_fraction: float = 0.0) -> tuple[Tensor, dict]:
    """Detune one ``1 x 3 x H x W`` image by ``scheme`` with draws from ``generator``; returns image and record.

    ``"single"`` draws a class of :data:`SINGLE_ERROR_CLASSES`, ``"mixed"`` calls :func:`random_edit`,
    ``"basic"`` :func:`basic_edit`, ``"afifi"`` draws an offset of :data:`AFIFI_EV`; with probability
    ``identity_fraction`` the image is returned untouched (class ``"correct"``).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown detuning scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    if float(torch.rand((), generator=generator)) < identity_fraction:
        return image.clone(), {"scheme": scheme, "class": CORRECT, "edits": {}}
    if scheme == "single":
        cls = SINGLE_ERROR_CLASSES[int(torch.randint(len(SINGLE_ERROR_CLASSES), (), generator=generator))]
        return detune_single(image, cls)
    if scheme == "mixed":
        return random_edit(image, generator)
    if scheme == "basic":
        return basic_edit(image, generator)
    out, (record,) = afifi_exposures(image, [AFIFI_EV[int(torch.randint(len(AFIFI_EV), (), generator=generator))]])
    return out, record


class Detuned(Dataset):
    """Pairs (detuned input, original target) made from a dataset of good photos, reproducible per index.

    ``base[i]`` must return a ``3 x H x W`` tensor or a dict with ``"image"``. Sample ``i`` is detuned with a
    generator seeded from ``(seed, i)``, so the same index always gives the same pair and the record says what
    was done. ``scheme`` is ``"single"`` (a uniformly drawn class of :data:`SINGLE_ERROR_CLASSES`),
    ``"mixed"`` (:func:`random_edit`) or ``"afifi"`` (a uniformly drawn offset of :data:`AFIFI_EV`). A fraction
    ``identity_fraction`` of the samples is returned untouched (class ``"correct"``).
    """

    SCHEMES = SCHEMES

    def __init__(self, base: Dataset, scheme: str = "mixed", *, seed: int = 0, identity_fraction: float = 0.1,
                 repeats: int = 1) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown detuning scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
        if not 0.0 <= identity_fraction <= 1.0:
            raise ValueError(f"identity_fraction must be in [0, 1], got {identity_fraction}")
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.base, self.scheme, self.seed = base, scheme, seed
        self.identity_fraction, self.repeats = identity_fraction, repeats

    def __len__(self) -> int:
        return len(self.base) * self.repeats

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        item = self.base[index % len(self.base)]
        target = item["image"] if isinstance(item, dict) else item
        name = item.get("name", str(index)) if isinstance(item, dict) else str(index)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        out, record = detune(target.unsqueeze(0), self.scheme, g, identity_fraction=self.identity_fraction)
        record = {**record, "seed": self.seed, "index": index}
        return {"input": out[0], "target": target, "name": name, "detuning": record}
