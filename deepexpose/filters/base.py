"""The pieces every filter shares: parameter specs, the action-to-value mapping and colour helpers.

A filter is a pure tensor function ``apply(image, values)`` on a batch ``B x 3 x H x W`` of sRGB images in
[0, 1] with per-sample parameter values ``B x P`` (kornia's ``enhance`` style). Policies never see the
physical units: they emit actions in [-1, 1] and :meth:`ParamSpec.to_value` maps each action into its
documented range, piecewise linearly through the identity value, so that action 0 is always "change nothing".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# Rec. 709 / sRGB luminance weights for linear-light RGB.
LUMA_709 = (0.2126, 0.7152, 0.0722)


@dataclass(frozen=True)
class ParamSpec:
    """One filter parameter: its name, its range ``[low, high]`` and the value that changes nothing.

    Action ``a`` in [-1, 1] maps to ``identity + a * (high - identity)`` for ``a >= 0`` and to
    ``identity + a * (identity - low)`` for ``a < 0``: monotone, exact identity at ``a = 0``, the range ends at
    ``a = +-1``. Actions outside [-1, 1] are clamped.
    """

    name: str
    low: float
    identity: float
    high: float
    unit: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.low < self.identity < self.high:
            raise ValueError(f"ParamSpec {self.name!r}: need low < identity < high, got "
                             f"{self.low}, {self.identity}, {self.high}")

    def to_value(self, action: Tensor) -> Tensor:
        """Map actions in [-1, 1] (any shape) to parameter values."""
        a = action.clamp(-1.0, 1.0)
        up = self.high - self.identity
        down = self.identity - self.low
        return self.identity + torch.where(a >= 0, a * up, a * down)

    def to_action(self, value: Tensor) -> Tensor:
        """Inverse of :meth:`to_value`; values outside the range are clamped to it first."""
        v = value.clamp(self.low, self.high) - self.identity
        return torch.where(v >= 0, v / (self.high - self.identity), v / (self.identity - self.low))


@dataclass(frozen=True)
class Columns:
    """``fn(image, values[:, 0], values[:, 1], ...)``: a filter function of one value per parameter, called with a
    ``B x P`` block of values (a lambda did this, which made the filters and the environments that hold them
    impossible to pickle)."""

    fn: Callable[..., Tensor]

    def __call__(self, image: Tensor, values: Tensor) -> Tensor:
        return self.fn(image, *values.unbind(1))


@dataclass(frozen=True)
class Filter:
    """A registered filter: ``apply(image B x 3 x H x W, values B x P, **context) -> image``.

    ``per_mask`` filters (local exposure) take one column of values per sub-image mask, all with the single
    :class:`ParamSpec` in ``params``; they need ``masks=`` (``B x K x H x W``) in the context.
    ``per_channel`` filters map each colour channel of each pixel on its own (``out_c = f_c(x_c)``), so a chain
    of them is three 1D curves (the shaper of :class:`deepexpose.lut.ColorLUT`).
    ``gain`` filters are ``apply_linear_gain(image, gain(image, values))`` (``B x C x 1 x 1`` gains), which lets
    :class:`~deepexpose.filters.pipeline.FilterPipeline` fuse a run of them into one decode and one encode.
    """

    name: str
    params: tuple[ParamSpec, ...]
    apply: Callable[..., Tensor]
    doc: str = ""
    per_mask: bool = False
    per_channel: bool = False
    gain: Callable[[Tensor, Tensor], Tensor] | None = None

    @property
    def num_params(self) -> int:
        return len(self.params)

    def values(self, action: Tensor) -> Tensor:
        """Map a ``B x P`` action (``B x K`` for per-mask filters) to parameter values."""
        if self.per_mask:
            return self.params[0].to_value(action)
        check_params(action, self.num_params, self.name)
        return torch.stack([p.to_value(action[:, i]) for i, p in enumerate(self.params)], dim=1)

    def actions(self, values: Tensor) -> Tensor:
        """Inverse of :meth:`values`."""
        if self.per_mask:
            return self.params[0].to_action(values)
        check_params(values, self.num_params, self.name)
        return torch.stack([p.to_action(values[:, i]) for i, p in enumerate(self.params)], dim=1)

    def __call__(self, image: Tensor, action: Tensor, **context) -> Tensor:
        """Apply the filter with parameters given as actions in [-1, 1]."""
        return self.apply(image, self.values(action), **context)


def check_image(image: Tensor) -> None:
    """Raise a clear error unless ``image`` is a floating ``B x 3 x H x W`` tensor."""
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape B x 3 x H x W, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a floating tensor in [0, 1], got {image.dtype}")


def check_params(values: Tensor, count: int, name: str) -> None:
    if not isinstance(values, Tensor) or values.ndim != 2 or values.shape[1] != count:
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(f"{name}: parameters must be a B x {count} tensor, got {shape}")


def per_sample(value: Tensor | float, image: Tensor, name: str = "parameter") -> Tensor:
    """Turn a scalar or a length-B vector into a ``B x 1 x 1 x 1`` tensor on the image's device and dtype."""
    v = torch.as_tensor(value, dtype=image.dtype, device=image.device)
    if v.ndim == 0:
        v = v.expand(image.shape[0])
    if v.ndim != 1 or v.shape[0] != image.shape[0]:
        raise ValueError(f"{name} must be a scalar or have one value per image ({image.shape[0]}), "
                         f"got shape {tuple(v.shape)}")
    return v.view(-1, 1, 1, 1)


def _power(x: Tensor, p: float) -> Tensor:
    """``x ** p`` for ``x > 0`` as ``exp(p log x)``: equal to float precision, about twice as fast as
    ``torch.pow`` on the CPU (the sRGB and CIELAB transfer functions dominate the environment's step time)."""
    return torch.exp(p * torch.log(x))


def _in_place(*tensors: Tensor) -> bool:
    """Whether intermediate results may be overwritten: no gradient is being recorded through ``tensors``.

    The transfer functions then run the very same operations in place on their own temporaries, which saves
    the CPU most of its time (fresh multi-megabyte buffers are page-faulted in on every allocation).
    """
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def srgb_to_linear(image: Tensor) -> Tensor:
    """IEC 61966-2-1 sRGB decoding, as kornia's ``rgb_to_linear_rgb`` (power written with :func:`_power`)."""
    low = (0.04045 + 0.055) / 1.055
    if not _in_place(image):
        curve = _power(((image + 0.055) / 1.055).clamp(min=low), 2.4)
        return torch.where(image > 0.04045, curve, image / 12.92)
    curve = torch.add(image, 0.055).div_(1.055).clamp_(min=low).log_().mul_(2.4).exp_()
    return torch.where(image > 0.04045, curve, image / 12.92, out=curve)


def linear_to_srgb(image: Tensor) -> Tensor:
    """IEC 61966-2-1 sRGB encoding, as kornia's ``linear_rgb_to_rgb``; negative input is clamped to 0."""
    image = image.clamp(min=0.0)
    if not _in_place(image):
        curve = 1.055 * _power(image.clamp(min=0.0031308), 1 / 2.4) - 0.055
        return torch.where(image > 0.0031308, curve, 12.92 * image)
    # the concave curve lies below the line 12.92 x above the threshold and its clamped value above it below
    # the threshold, so the minimum selects the same piece as the comparison (up to rounding at the threshold)
    curve = image.clamp(min=0.0031308).log_().mul_(1 / 2.4).exp_().mul_(1.055).sub_(0.055)
    return torch.minimum(curve, image.mul_(12.92), out=curve)


# sRGB (linear) to CIE XYZ, D65, and the D65 white point: the constants of kornia's rgb_to_xyz / rgb_to_lab.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
# f(X), f(Y), f(Z) to L*, a*, b* (plus -16 on L*).
_XYZ_TO_LAB = ((0.0, 116.0, 0.0), (500.0, -500.0, 0.0), (0.0, 200.0, -200.0))


def rgb_to_lab(image: Tensor) -> Tensor:
    """CIELAB (D65, 2°) of ``B x 3 x H x W`` sRGB images, as kornia's ``rgb_to_lab`` (faster powers)."""
    return linear_to_lab(srgb_to_linear(image))


def linear_to_lab(linear: Tensor) -> Tensor:
    """CIELAB (D65, 2°) of ``B x 3 x H x W`` linear-light sRGB: :func:`rgb_to_lab` after the decoding.

    Both 3 x 3 maps are one batched matrix product each (the white point folded into the first).
    """
    b, _, h, w = linear.shape
    m = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64) / torch.tensor(_WHITE_D65, dtype=torch.float64).view(3, 1)
    xyz = m.to(linear) @ linear.reshape(b, 3, h * w)
    threshold = 0.008856
    if not _in_place(xyz):
        f = torch.where(xyz > threshold, _power(xyz.clamp(min=threshold), 1 / 3), 7.787 * xyz + 4.0 / 29.0)
    else:
        # the line is the cube root's tangent at the threshold: the minimum selects as the comparison would
        curve = xyz.clamp(min=threshold).log_().mul_(1 / 3).exp_()
        f = torch.minimum(curve, xyz.mul_(7.787).add_(4.0 / 29.0), out=curve)
    lab = torch.tensor(_XYZ_TO_LAB, dtype=linear.dtype, device=linear.device) @ f
    return lab.add_(torch.tensor((-16.0, 0.0, 0.0), dtype=linear.dtype, device=linear.device).view(3, 1)
                    ).view(b, 3, h, w)


def stops_to_gain(ev: Tensor) -> Tensor:
    """The linear gain ``2**ev`` of ``ev`` stops, ``ev`` held within +-64 (less for float16, whose largest value
    is 2**16): beyond that every code is already black or white, and the gain would overflow to infinity, making
    images NaN or black and gradients non-finite."""
    top = min(64.0, math.floor(math.log2(torch.finfo(ev.dtype).max)) - 1.0) if ev.is_floating_point() else 64.0
    return 2.0 ** ev.clamp(-top, top)


def apply_linear_gain(image: Tensor, gain: Tensor, linear: Tensor | None = None) -> Tensor:
    """Multiply linear-light RGB by ``gain`` (broadcast), clip to [0, 1] and re-encode to sRGB.

    Where the gain is exactly 1 the value is the input bit for bit (decoding and re-encoding would otherwise
    change it by float rounding), so "change nothing" is exact; the gradient is that of the encoded result
    everywhere, identity included (a straight-through swap of values only). ``linear`` may pass a cached
    ``srgb_to_linear(image)``.
    """
    lin = srgb_to_linear(image) if linear is None else linear
    return encode_gained(image, gain == 1, (lin * gain).clamp(0.0, 1.0))


def encode_gained(image: Tensor, identity: Tensor, gained: Tensor) -> Tensor:
    """sRGB of ``gained = clip(srgb_to_linear(image) * gain, 0, 1)``, exactly ``image`` where the boolean
    ``identity`` (broadcast; ``gain == 1``) holds: the second half of :func:`apply_linear_gain`, for callers
    that keep ``gained`` (it is not modified)."""
    out = linear_to_srgb(gained)
    if not out.requires_grad:
        return torch.where(identity, image.detach(), out, out=out)
    exact = torch.where(identity, image.detach(), out.detach())
    return exact + (out - out.detach())


def luminance(image: Tensor) -> Tensor:
    """Rec. 709 luminance ``B x 1 x H x W`` of the image's values (``Y = 0.2126 R + 0.7152 G + 0.0722 B``)."""
    w = torch.tensor(LUMA_709, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image * w).sum(dim=1, keepdim=True)
