"""Colour distribution transfer by iterative 1D marginal matching (Pitié, Kokaram & Dahyot).

F. Pitié, A. Kokaram, R. Dahyot, "N-dimensional probability density function transfer and its application to
colour transfer", ICCV 2005, and "Automated colour grading using colour distribution transfer", CVIU 2007.

The source colours ``x`` move towards the target distribution one rotation at a time: for rotation ``R_k``
(orthonormal, ``3 x 3``) both point sets are projected on its three axes, each projected source marginal is
matched to the target's by 1D histogram (CDF) matching, ``t_j = C_target_j^{-1} o C_source_j``, and the move is
rotated back,

    x <- x + R_k^T (t(R_k x) - R_k x).

After a few tens of rotations every 1D marginal (and so the 3D distribution) matches the target's.

The result is a :class:`PdfTransfer`, a reusable colour mapping: it stores the rotations and each iteration's
three monotone piecewise-linear maps as knots ``(xp, fp)``, so it can be fitted on a low-resolution view and
applied to any other colours (a full-resolution photo in tiles, or the grid of a 3D LUT). Outside the knots the
maps continue with slope 1. The grain-reducing regularisation of the CVIU paper is not implemented.

Targets are point sets (``M x 3``, optionally weighted) or 3D RGB histograms (``n x n x n`` bin weights, as
made by :func:`rgb_histogram`), which :func:`histogram_points` turns into weighted points spread uniformly
inside their bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PdfTransfer", "fit_pdf_transfer", "pdf_transfer", "transfer_image", "rgb_histogram",
           "smooth_histogram", "histogram_points", "random_rotations"]

_EPS = 1e-6      # regularises the 1D densities so that their CDFs are strictly increasing (invertible)
_CHUNK = 1 << 20  # colours mapped per chunk by PdfTransfer.__call__ (bounds the memory of big photos)


def random_rotations(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
    """``n x 3 x 3`` random rotations, uniform on SO(3) (QR of Gaussian matrices with the sign fix of Mezzadri)."""
    a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    det = torch.linalg.det(q)
    q[:, :, 0] *= det.sign().unsqueeze(-1)  # proper rotations (det = +1)
    return q.to(dtype)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear ``fp(xp)`` at ``x`` per row (``C x N``, knots ``C x K`` increasing); slope 1 outside."""
    k = xp.shape[-1]
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, k - 1)
    x0, x1 = xp.gather(-1, i - 1), xp.gather(-1, i)
    y0, y1 = fp.gather(-1, i - 1), fp.gather(-1, i)
    w = (x - x0) / (x1 - x0).clamp(min=torch.finfo(x.dtype).tiny)
    inside = y0 + w.clamp(0, 1) * (y1 - y0)
    below = fp[..., :1] + (x - xp[..., :1])
    above = fp[..., -1:] + (x - xp[..., -1:])
    return torch.where(x < xp[..., :1], below, torch.where(x > xp[..., -1:], above, inside))


def _step(x: Tensor, rotation: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """One Pitié iteration on ``N x 3`` colours: project, map each axis, move back along the rotation."""
    p = x @ rotation.T                                    # N x 3 coordinates on the rotated axes
    t = _interp(p.T, xp, fp).T
    return x + (t - p) @ rotation


def _marginal_map(src: Tensor, src_w: Tensor, tgt: Tensor, tgt_w: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    """Knots ``(xp, fp)`` (``3 x (bins + 1)``) of the 1D maps ``C_t^{-1} o C_s`` for each of 3 projected axes.

    ``src`` (``3 x N``) and ``tgt`` (``3 x M``) are projections with weights; the densities are ``bins``-bin
    histograms over a common range (piecewise uniform, so the CDFs are piecewise linear between bin edges).
    """
    lo = torch.minimum(src.amin(1), tgt.amin(1))
    hi = torch.maximum(src.amax(1), tgt.amax(1))
    span = (hi - lo).clamp(min=1e-6)
    lo, hi = lo - 1e-3 * span, hi + 1e-3 * span
    steps = torch.linspace(0, 1, bins + 1, dtype=src.dtype, device=src.device)
    edges = lo[:, None] + (hi - lo)[:, None] * steps      # 3 x (bins + 1)

    def cdf(v: Tensor, w: Tensor) -> Tensor:
        idx = ((v - lo[:, None]) / (hi - lo)[:, None] * bins).long().clamp(0, bins - 1)
        h = torch.zeros(3, bins, dtype=v.dtype, device=v.device).scatter_add_(1, idx, w.expand_as(v).contiguous())
        h = h / h.sum(1, keepdim=True) + _EPS
        c = torch.cat([torch.zeros(3, 1, dtype=v.dtype, device=v.device), h.cumsum(1)], dim=1)
        return c / c[:, -1:]

    cs, ct = cdf(src, src_w), cdf(tgt, tgt_w)
    fp = _interp(cs, ct, edges)                          # C_t^{-1}(C_s(edges)); C_t is strictly increasing
    return edges, fp


@dataclass
class PdfTransfer:
    """A fitted Pitié transfer: ``rotations`` (``K x 3 x 3``) and per iteration and axis the knots of a
    monotone piecewise-linear map, ``xp`` and ``fp`` (``K x 3 x P``). Call it on any ``... x 3`` colours."""

    rotations: Tensor
    xp: Tensor
    fp: Tensor

    def __post_init__(self) -> None:
        k = self.rotations.shape[0]
        if self.rotations.shape != (k, 3, 3) or self.xp.ndim != 3 or self.xp.shape[:2] != (k, 3) \
                or self.fp.shape != self.xp.shape:
            raise ValueError(f"inconsistent PdfTransfer tensors: rotations {tuple(self.rotations.shape)}, "
                             f"xp {tuple(self.xp.shape)}, fp {tuple(self.fp.shape)}; expected K x 3 x 3, K x 3 x P")

    @property
    def iterations(self) -> int:
        return int(self.rotations.shape[0])

    def __call__(self, rgb: Tensor) -> Tensor:
        """Map colours ``... x 3`` (not clamped: the caller clamps to its range)."""
        if rgb.shape[-1] != 3 or not rgb.is_floating_point():
            raise ValueError(f"expected float colours with 3 channels last (... x 3), got shape {tuple(rgb.shape)} "
                             f"{rgb.dtype}")
        flat = rgb.reshape(-1, 3)
        r, xp, fp = (t.to(flat) for t in (self.rotations, self.xp, self.fp))
        out = torch.empty_like(flat)
        for s in range(0, flat.shape[0], _CHUNK):
            x = flat[s:s + _CHUNK]
            for k in range(self.iterations):
                x = _step(x, r[k], xp[k], fp[k])
            out[s:s + _CHUNK] = x
        return out.reshape(rgb.shape)

    def apply_image(self, image: Tensor) -> Tensor:
        """The mapping on a ``B x 3 x H x W`` image, clamped to [0, 1]."""
        return self(image.movedim(1, -1)).movedim(-1, 1).clamp(0, 1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> PdfTransfer:
        return PdfTransfer(*(t.to(device=device, dtype=dtype) for t in (self.rotations, self.xp, self.fp)))

    def to_dict(self) -> dict[str, Tensor]:
        """The tensors, for :func:`deepexpose.agents.checkpoint.save_checkpoint` (``tensors=``) or safetensors."""
        return {"rotations": self.rotations, "xp": self.xp, "fp": self.fp}

    @classmethod
    def from_dict(cls, tensors: dict[str, Tensor]) -> PdfTransfer:
        missing = {"rotations", "xp", "fp"} - set(tensors)
        if missing:
            raise ValueError(f"PdfTransfer tensors missing: {', '.join(sorted(missing))}")
        return cls(tensors["rotations"], tensors["xp"], tensors["fp"])


def _points(t: Tensor, weights: Tensor | None, per_bin: int, seed: int, name: str) -> tuple[Tensor, Tensor]:
    """``(M x 3 points, M weights)`` of a point set or of an ``n x n x n`` histogram (offsets seeded by ``seed``)."""
    if t.ndim == 3:
        if weights is not None:
            raise ValueError(f"{name} is a histogram; its weights are its bins, do not pass {name}_weights")
        return histogram_points(t, per_bin=per_bin, generator=torch.Generator().manual_seed(seed))
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] == 0:
        raise ValueError(f"{name} must be M x 3 colours or an n x n x n histogram, got shape {tuple(t.shape)}")
    if weights is None:
        weights = torch.ones(t.shape[0], dtype=t.dtype, device=t.device)
    if weights.shape != (t.shape[0],) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise ValueError(f"{name}_weights must be {t.shape[0]} non-negative weights with a positive sum")
    return t, weights


def _fit(source: Tensor, target: Tensor, *, source_weights: Tensor | None, target_weights: Tensor | None,
         iterations: int, bins: int, seed: int, per_bin: int) -> tuple[PdfTransfer, Tensor]:
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if not source.is_floating_point() or not target.is_floating_point():
        raise ValueError("source and target must be floating-point tensors")
    dtype = source.dtype
    # histograms get the same in-bin offsets, so that equal histograms give exactly the identity
    src, src_w = _points(source, source_weights, per_bin, seed, "source")
    tgt, tgt_w = _points(target.to(source.device), target_weights, per_bin, seed, "target")
    src, tgt = src.to(dtype), tgt.to(dtype)
    src_w, tgt_w = src_w.to(torch.float64), tgt_w.to(torch.float64).to(source.device)
    rotations = random_rotations(iterations, torch.Generator().manual_seed(seed), dtype).to(source.device)
    x, y = src, tgt
    xps, fps = [], []
    for k in range(iterations):
        r = rotations[k]
        # CDFs in float64 (small arrays), knots in the working dtype so that fitting and calling agree exactly
        xp, fp = _marginal_map((x @ r.T).T.double(), src_w, (y @ r.T).T.double(), tgt_w, bins)
        xp, fp = xp.to(dtype), fp.to(dtype)
        x = _step(x, r, xp, fp)
        xps.append(xp)
        fps.append(fp)
    return PdfTransfer(rotations, torch.stack(xps), torch.stack(fps)), x


def fit_pdf_transfer(source: Tensor, target: Tensor, *, source_weights: Tensor | None = None,
                     target_weights: Tensor | None = None, iterations: int = 20, bins: int = 256, seed: int = 0,
                     per_bin: int = 8) -> PdfTransfer:
    """Fit Pitié's iterative distribution transfer from ``source`` to ``target`` colours.

    ``source`` and ``target``: ``N x 3`` / ``M x 3`` colours (optionally weighted by ``*_weights``) or ``n x n x n``
    histograms (bin weights over [0, 1]^3; each bin becomes ``per_bin`` points spread uniformly in it, at the
    same offsets for source and target, so that equal histograms give exactly the identity).
    ``iterations`` random rotations (seeded by ``seed``), ``bins``-bin 1D histograms per projected axis.
    The source's points are what the mapping is fitted on; apply the returned :class:`PdfTransfer` to any colours.
    """
    return _fit(source, target, source_weights=source_weights, target_weights=target_weights,
                iterations=iterations, bins=bins, seed=seed, per_bin=per_bin)[0]


def pdf_transfer(source: Tensor, target: Tensor, **kwargs) -> Tensor:
    """The transferred ``source`` points (``N x 3``) of :func:`fit_pdf_transfer` (same keywords)."""
    if source.ndim != 2:
        raise ValueError(f"pdf_transfer moves M x 3 colours, got shape {tuple(source.shape)}")
    kw = dict(source_weights=None, target_weights=None, iterations=20, bins=256, seed=0, per_bin=8)
    kw.update(kwargs)
    return _fit(source, target, **kw)[1]


def rgb_histogram(image: Tensor, bins: int) -> Tensor:
    """Normalised 3D RGB histograms ``B x bins x bins x bins`` (indexed ``[r, g, b]``) of ``B x 3 x H x W`` images
    in [0, 1]; bin ``i`` of a channel covers ``[i / bins, (i + 1) / bins)``, 1.0 falls in the last bin."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected B x 3 x H x W images, got shape {tuple(image.shape)}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    q = (image.clamp(0, 1) * bins).long().clamp(max=bins - 1).flatten(2)       # B x 3 x N
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = torch.zeros(image.shape[0], bins ** 3, dtype=image.dtype, device=image.device)
    h.scatter_add_(1, idx, torch.ones_like(idx, dtype=image.dtype))
    return (h / idx.shape[1]).view(-1, bins, bins, bins)


def smooth_histogram(hist: Tensor, sigma: float) -> Tensor:
    """Gaussian kernel density of ``... x n x n x n`` histograms over [0, 1]^3: each bin's mass spread by a
    Gaussian of ``sigma`` bins (integrated over the bins, the cube's faces reflecting), so the mass is kept. The
    kernel is separable and is applied one axis at a time (one contraction of all three made an ``n^6`` array:
    256 GB at 64 bins)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    n = hist.shape[-1]
    if hist.ndim < 3 or hist.shape[-3:] != (n, n, n):
        raise ValueError(f"expected ... x n x n x n histograms, got shape {tuple(hist.shape)}")
    if sigma == 0:
        return hist
    c = torch.arange(n, dtype=torch.float64) + 0.5                       # bin centres, in bins
    images = torch.stack([c, -c, 2 * n - c])                               # each centre and its mirrors
    edges = torch.arange(n + 1, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf((edges[:, None, None] - images) / (sigma * 2 ** 0.5)))   # (n + 1) x 3 x n
    k = (cdf[1:] - cdf[:-1]).sum(1)                                        # k[i, j]: mass of bin j landing in i
    k = (k / k.sum(0, keepdim=True)).to(hist)
    hist = torch.einsum("ck,...ijk->...ijc", k, hist)
    hist = torch.einsum("bj,...ijc->...ibc", k, hist)
    return torch.einsum("ai,...ibc->...abc", k, hist)


def histogram_points(hist: Tensor, per_bin: int = 8, generator: torch.Generator | None = None
                     ) -> tuple[Tensor, Tensor]:
    """Weighted points of an ``n x n x n`` histogram over [0, 1]^3: ``per_bin`` points per bin at uniform
    random offsets inside it (the same offsets in every bin), each weighing ``hist[bin] / per_bin``."""
    n = hist.shape[0]
    if hist.ndim != 3 or hist.shape != (n, n, n):
        raise ValueError(f"expected an n x n x n histogram, got shape {tuple(hist.shape)}")
    if per_bin < 1:
        raise ValueError(f"per_bin must be >= 1, got {per_bin}")
    if bool((hist < 0).any()) or float(hist.sum()) <= 0:
        raise ValueError("a histogram needs non-negative weights with a positive sum")
    dtype = hist.dtype if hist.is_floating_point() else torch.float32
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    offsets = torch.rand(per_bin, 3, generator=g, dtype=torch.float64).to(device=hist.device, dtype=dtype)
    i = torch.arange(n, device=hist.device, dtype=dtype)
    corners = torch.stack(torch.meshgrid(i, i, i, indexing="ij"), dim=-1).reshape(-1, 1, 3)
    points = ((corners + offsets) / n).reshape(-1, 3)
    weights = (hist.reshape(-1, 1).to(dtype) / per_bin).expand(-1, per_bin).reshape(-1)
    keep = weights > 0
    return points[keep], weights[keep]


def transfer_image(image: Tensor, target: Tensor, *, fit_size: int | None = 64, **kwargs) -> Tensor:
    """Give each image of a ``B x 3 x H x W`` batch the colour distribution of its target, clamped to [0, 1].

    ``target``: ``B x 3 x h x w`` images or ``B x n x n x n`` histograms (one per image). The mapping is fitted on
    the image resized to ``fit_size x fit_size`` (all pixels when ``None``) and applied to every pixel;
    ``kwargs`` go to :func:`fit_pdf_transfer`.
    """
    from .apply import to_view

    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected B x 3 x H x W images, got shape {tuple(image.shape)}")
    if target.ndim != 4 or target.shape[0] != image.shape[0]:
        raise ValueError(f"target must be B x 3 x h x w images or B x n x n x n histograms with B = "
                         f"{image.shape[0]}, got shape {tuple(target.shape)}")
    is_hist = target.shape[1] == target.shape[2] == target.shape[3] and target.shape[1] != 3
    out = []
    for b in range(image.shape[0]):
        x = image[b:b + 1]
        small = to_view(x, fit_size) if fit_size else x
        src = small[0].flatten(1).T
        tgt = target[b] if is_hist else target[b].flatten(1).T
        out.append(fit_pdf_transfer(src, tgt, **kwargs).apply_image(x))
    return torch.cat(out)
