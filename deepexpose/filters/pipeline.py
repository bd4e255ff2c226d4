"""An ordered chain of registered filters driven by one flat action vector, and its white-box description."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .base import Filter, check_image, encode_gained, srgb_to_linear
from .registry import FILTERS, get_filter

# The order a raw converter would use: colour balance and exposure in linear light, then tone, then colour.
DEFAULT_GLOBAL_FILTERS = ("white_balance", "exposure", "levels", "gamma", "contrast", "tone_curve", "saturation")


class FilterPipeline:
    """Apply ``filters`` in order; the action is the concatenation of each filter's actions (``B x A``)."""

    def __init__(self, filters: Sequence[str | Filter] = DEFAULT_GLOBAL_FILTERS) -> None:
        self.filters: tuple[Filter, ...] = tuple(get_filter(f) if isinstance(f, str) else f for f in filters)
        if not self.filters:
            raise ValueError("a filter pipeline needs at least one filter")
        if twice := sorted({f.name for f in self.filters if self.names.count(f.name) > 1}):
            raise ValueError(f"a pipeline takes each filter once (its parameters are described under its name): "
                             f"{', '.join(twice)} given twice")
        if any(f.per_mask for f in self.filters):
            raise ValueError("per-mask filters (local exposure) are applied with masks, not in a pipeline")
        self.num_params = sum(f.num_params for f in self.filters)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.filters)

    def split(self, action: Tensor) -> list[Tensor]:
        """Cut a ``B x A`` action into one ``B x P`` block per filter."""
        if action.ndim != 2 or action.shape[1] != self.num_params:
            raise ValueError(f"action must be B x {self.num_params} for filters {self.names}, "
                             f"got {tuple(action.shape)}")
        return list(torch.split(action, [f.num_params for f in self.filters], dim=1))

    def __call__(self, image: Tensor, action: Tensor, linear: Tensor | None = None) -> Tensor:
        """Apply the filters in order.

        Without gradient recording, each run of consecutive ``gain`` filters (white balance, exposure) is
        fused into one sRGB decode and one encode (equal to float rounding); ``linear`` may then pass a cached
        ``srgb_to_linear(image)`` for a run at the start. With gradients every filter runs on its own.
        """
        check_image(image)
        fuse = not torch.is_grad_enabled()
        gains: list[Tensor] = []
        for f, a in zip(self.filters, self.split(action.to(image)), strict=True):
            if fuse and f.gain is not None:
                gains.append(f.gain(image, f.values(a)))
                continue
            image, linear, gains = _apply_gains(image, gains, linear), None, []
            image = f(image, a)
        return _apply_gains(image, gains, linear)

    def describe(self, action: Tensor) -> list[dict[str, dict[str, float]]]:
        """The physical parameter values chosen for each image, readable by a person (JSON-ready)."""
        parts = zip(self.filters, self.split(action), strict=True)
        per_filter = [f.values(a).detach().cpu().tolist() for f, a in parts]
        return [
            {f.name: {p.name: round(v[b][i], 6) for i, p in enumerate(f.params)}
             for f, v in zip(self.filters, per_filter, strict=True)}
            for b in range(action.shape[0])
        ]

    def action_from_description(self, description: dict[str, dict[str, float]]) -> Tensor:
        """Inverse of :meth:`describe` for one image (missing filters or parameters mean identity): ``1 x A``."""
        unknown = set(description) - set(self.names)
        if unknown:
            raise ValueError(f"unknown filters {sorted(unknown)}; this pipeline has {self.names}")
        blocks = []
        for f in self.filters:
            given = description.get(f.name, {})
            bad = set(given) - {p.name for p in f.params}
            if bad:
                raise ValueError(f"{f.name}: unknown parameters {sorted(bad)}")
            values = torch.tensor([[float(given.get(p.name, p.identity)) for p in f.params]])
            blocks.append(f.actions(values))
        return torch.cat(blocks, dim=1)


def _apply_gains(image: Tensor, gains: list[Tensor], linear: Tensor | None) -> Tensor:
    """``apply_linear_gain`` of each gain in turn, decoded and encoded once (no gradient recorded)."""
    if not gains:
        return image
    gained = (srgb_to_linear(image) if linear is None else linear) * gains[0]
    gained.clamp_(0.0, 1.0)
    identity = gains[0] == 1
    for gain in gains[1:]:
        gained.mul_(gain).clamp_(0.0, 1.0)
        identity = identity & (gain == 1)
    return encode_gained(image, identity, gained)


__all__ = ["DEFAULT_GLOBAL_FILTERS", "FILTERS", "FilterPipeline"]
