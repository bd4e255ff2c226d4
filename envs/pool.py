"""A pool of low-resolution (input, target) views that episodes draw their photo from.

Episodes are cheap (a few filter passes on a 64 x 64 view) while decoding photos and detuning them is not, so
the views are made once: random crops of good photos (random scale, aspect and flip), resized to the view
size, detuned by a seeded scheme of :mod:`deepexpose.data.detune`. Stored as uint8 to keep large pools small.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deepexpose.apply import to_view
from deepexpose.data.detune import SCHEMES, detune


def random_crop(photo: Tensor, g: torch.Generator, scale: tuple[float, float] = (0.25, 1.0)) -> Tensor:
    """A random crop of a ``3 x H x W`` photo covering a fraction of its area drawn from ``scale``, maybe flipped."""
    _, h, w = photo.shape
    area = scale[0] + (scale[1] - scale[0]) * float(torch.rand((), generator=g))
    aspect = float(torch.empty(()).uniform_(0.75, 1.333, generator=g))
    ch = min(h, max(8, round((area * h * w / aspect) ** 0.5)))
    cw = min(w, max(8, round((area * h * w * aspect) ** 0.5)))
    top = int(torch.randint(h - ch + 1, (), generator=g))
    left = int(torch.randint(w - cw + 1, (), generator=g))
    crop = photo[:, top:top + ch, left:left + cw]
    return crop.flip(-1) if float(torch.rand((), generator=g)) < 0.5 else crop


def _to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _check_photo(photo: Tensor, what: str) -> None:
    """A ``3 x H x W`` float photo in [0, 1], finite; ``what`` names it in the error (uint8 or 0-255 photos came
    out white, NaN ones black, without a word)."""
    if photo.ndim != 3 or photo.shape[0] != 3:
        raise ValueError(f"{what} must be 3 x H x W, got shape {tuple(photo.shape)}")
    if not photo.is_floating_point():
        raise TypeError(f"{what} is {photo.dtype}: photos are floats in [0, 1] (divide by 255)")
    if not bool(torch.isfinite(photo).all()):
        raise ValueError(f"{what} has values that are not finite (NaN or inf)")
    if photo.numel() and float(photo.max()) > 2.0:
        raise ValueError(f"{what} reaches {float(photo.max()):g}: photos are in [0, 1] (divide by 255)")


class PairPool:
    """``N`` view pairs: ``inputs`` and ``targets`` as ``N x 3 x S x S`` uint8, ``targets`` may be ``None``.

    ``records[i]`` says how input ``i`` was made (the detuning record), when known.
    """

    def __init__(self, inputs: Tensor, targets: Tensor | None = None, records: Sequence[dict] | None = None) -> None:
        square = inputs.ndim == 4 and inputs.shape[2] == inputs.shape[3]
        if not square or inputs.shape[1] != 3 or inputs.dtype != torch.uint8:
            raise ValueError(f"inputs must be an N x 3 x S x S uint8 tensor (square views), got "
                             f"{tuple(inputs.shape)} {inputs.dtype}")
        if targets is not None and (targets.shape != inputs.shape or targets.dtype != torch.uint8):
            raise ValueError(f"targets must match inputs {tuple(inputs.shape)} uint8, got {tuple(targets.shape)}")
        if len(inputs) == 0:
            raise ValueError("a PairPool needs at least one view")
        self.inputs, self.targets = inputs, targets
        self.records = list(records) if records is not None else [{} for _ in range(len(inputs))]

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def size(self) -> int:
        return int(self.inputs.shape[-1])

    @property
    def paired(self) -> bool:
        return self.targets is not None

    def get(self, index: Tensor | Sequence[int], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor | None]:
        """Float ``B x 3 x S x S`` inputs (and targets) in [0, 1] for the given indices."""
        idx = torch.as_tensor(index, dtype=torch.long)
        x = self.inputs.index_select(0, idx).to(device).float().div_(255)
        t = None if self.targets is None else self.targets.index_select(0, idx).to(device).float().div_(255)
        return x, t

    @classmethod
    def from_photos(cls, photos: Sequence[Tensor], count: int, *, size: int = 64, scheme: str = "mixed",
                    identity_fraction: float = 0.15, seed: int = 0,
                    crop_scale: tuple[float, float] = (0.25, 1.0)) -> PairPool:
        """``count`` views: photo ``i % len(photos)``, a random crop, resized, then detuned by ``scheme``.

        ``photos`` are good ``3 x H x W`` photos in [0, 1]; each view's generator is seeded by ``(seed, i)``.
        """
        if not photos:
            raise ValueError("from_photos needs at least one photo")
        for i, photo in enumerate(photos):
            _check_photo(photo, f"from_photos: photo {i}")
        if count < 1 or size < 1:
            raise ValueError(f"from_photos: count and size must be >= 1, got {count} and {size}")
        if not 0 <= identity_fraction <= 1:
            raise ValueError(f"from_photos: identity_fraction must be in [0, 1], got {identity_fraction}")
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"from_photos: crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale}")
        if scheme not in SCHEMES:
            raise ValueError(f"unknown detuning scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
        inputs, targets, records = [], [], []
        for i in range(count):
            g = torch.Generator().manual_seed(seed * 1_000_003 + i)
            target = to_view(random_crop(photos[i % len(photos)], g, crop_scale).unsqueeze(0), size)
            target = _to_uint8(target).float() / 255  # the target is what is stored
            x, record = detune(target, scheme, g, identity_fraction=identity_fraction)
            inputs.append(_to_uint8(x))
            targets.append(_to_uint8(target))
            records.append(record)
        return cls(torch.cat(inputs), torch.cat(targets), records)

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[Tensor, Tensor | None]], *, size: int = 64) -> PairPool:
        """Views of given ``(input, target)`` photo pairs (``3 x H x W``; targets all present or all ``None``)."""
        if not pairs:
            raise ValueError("from_pairs needs at least one pair")
        if size < 1:
            raise ValueError(f"from_pairs: size must be >= 1, got {size}")
        has_target = [t is not None for _, t in pairs]
        if any(has_target) and not all(has_target):
            raise ValueError("either every pair has a target or none has")
        for i, (x, t) in enumerate(pairs):
            _check_photo(x, f"from_pairs: input {i}")
            if t is not None:
                _check_photo(t, f"from_pairs: target {i}")
                if t.shape != x.shape:
                    raise ValueError(f"from_pairs: pair {i}'s input is {x.shape[2]}x{x.shape[1]} and its target "
                                     f"{t.shape[2]}x{t.shape[1]} (width x height): a pair shows one scene")
        inputs = torch.cat([_to_uint8(to_view(x.unsqueeze(0), size)) for x, _ in pairs])
        targets = torch.cat([_to_uint8(to_view(t.unsqueeze(0), size)) for _, t in pairs]) if all(has_target) else None
        return cls(inputs, targets)
