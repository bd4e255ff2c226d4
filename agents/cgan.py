"""The pix2pix cGAN baseline of seeds 001 and 004: a network that paints the corrected photo pixel by pixel.

After Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix, CVPR 2017):

- generator: a U-Net, stride-2 4x4 convolutions down to a 1 x 1 bottleneck for an input of ``2^depth`` pixels
  (seed 004: 256 x 256 down to 1 x 1 and back), with a skip connection from every encoder level to the decoder
  level of the same size; ``width`` channels at the first level, doubling per level up to ``8 * width``;
  instance normalisation by default (pix2pix's batch normalisation keeps running statistics of the small
  training views, which do not fit a photo several times larger: outputs collapse there);
- discriminator: a PatchGAN that classifies overlapping patches of the pair (input, output) as real or fake;
  ``patch`` is its receptive field (16, 34, 70 = pix2pix, 142 or 286; seed 001 "looked at very large patches");
- losses (``loss``): ``bce`` = pix2pix, ``G* = arg min_G max_D L_cGAN(G, D) + lambda L1(G)``, lambda = 100
  (seed 004); ``lsgan`` = the least-squares adversarial loss (Mao et al. 2017) + lambda L1; ``mse`` = seed 001,
  the BCE adversarial loss with a heavily weighted mean squared error in place of L1 ("to more drastically
  penalize rogue pixels", at the price of softer images);
- augmentations of seed 004: a horizontal flip (input and target together, else the pairs would no longer be
  aligned) and colour jitter on the input only.

Inference works at any resolution the way the seeds run it: fully convolutional at the photo's own size (seed
001 ran on 456 x 256 frames and on images "larger than those it is trained on"), the input reflect-padded to a
multiple of ``2^depth`` and the output cropped back. On a photo much larger than the training views the
generator meets content at a scale it was not trained on (``size`` and ``crop_scale`` set what it sees). Seed
001's *oversampling* fights the softness of the pixel loss: the photo is enlarged 2x (bicubic) before the
network and the output reduced back to the photo's size (area average), "a distinct sharpening of edge detail".

Video (seed 001): ``frames`` > 1 trains on stacks of consecutive frames, the generator seeing the current frame
and its neighbours stacked on the channels (the current frame in the middle); training sequences are made from
stills by a small simulated camera pan with one detuning for the whole shot. :func:`blend_frames` is seed 001's
post-hoc frame blending, an average over a window of frames.

Training data are pairs: good photos (demo, library, folder) cropped and detuned by a seeded scheme of
:mod:`deepexpose.data.detune`, some left untouched, or paired layouts (pairs, fivek, afifi), all cut into one
large seeded pool of ``size x size`` views. At the end the generator is scored on held-out views (the same
views as the agents' evaluation in :mod:`deepexpose.agents.train`) and on held-out photos at their own
resolution, both detuned with the ``basic`` scheme, 8-bit quantised (:mod:`deepexpose.metrics`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepexpose import DeepExposeWarning
from deepexpose.apply import to_view
from deepexpose.data.detune import SCHEMES, detune
from deepexpose.device import resolve_device
from deepexpose.envs.pool import PairPool, random_crop
from deepexpose.filters.base import luminance

from .checkpoint import load_checkpoint, read_meta, save_checkpoint
from .train import AUTO_DATA, GOOD_PHOTO_DATA, PhotoSplit, good_photos, resolve_data

PAIRED_DATA = ("pairs", "fivek", "afifi")
LOSSES = ("bce", "lsgan", "mse")
NORMS = ("batch", "instance", "none")
PATCHES = {16: 1, 34: 2, 70: 3, 142: 4, 286: 5}  # PatchGAN receptive field -> number of stride-2 layers
MAX_MULT = 8  # channels stop doubling at 8 * width (pix2pix: ngf * 8)
KIND = "deepexpose-cgan"


@dataclass
class CganConfig(PhotoSplit):
    data: str = "auto"
    """auto (library when scripts/get_photos.py has fetched it into --root or its cache; else folder with a --root,
    else demo), demo (bundled photos, detuned), library (the demo photos plus the Debian photo library of
    scripts/get_photos.py, detuned), folder (good photos under --root, detuned), pairs (--root/input and
    --root/target), fivek (FiveK 480p layout under --root), afifi (Afifi et al. layout under --root)"""
    root: str = ""
    """dataset folder (not used for demo)"""
    scheme: str = "mixed"
    """detuning of the training photos: mixed, basic, single (seed 001's 24 classes) or afifi (EV offsets)"""
    identity_fraction: float = 0.15
    """share of training views left untouched, so the generator learns to leave good photos alone"""
    pool_size: int = 2048
    """number of training views (or frame stacks) cut from the data once, seeded"""
    size: int = 64
    """side of the square training views; the U-Net is deep enough to reach 1 x 1 at this size"""
    crop_scale: float = 0.25
    """smallest share of a photo's area that a training crop covers (drawn up to all of it); small values also
    show the generator photos near their own resolution, the resolution it runs at"""
    frames: int = 1
    """odd number of consecutive frames the generator sees (the current one in the middle; seed 001); 1: stills,
    the only models deepexpose enhance and evaluate run"""
    motion: int = 2
    """frames > 1: largest shift in pixels of a neighbour frame in the simulated camera pan"""
    width: int = 8
    """channels of the generator's first level (doubling per level up to 8x); pix2pix uses 64"""
    depth: int = 0
    """generator levels (0: log2(size), down to 1 x 1 as in seed 004)"""
    norm: str = "instance"
    """normalisation in both networks: instance (the same at training and at any inference size), batch
    (pix2pix; its running statistics of small training views do not fit large photos) or none"""
    dropout: float = 0.0
    """dropout in the three decoder levels after the bottleneck during training (pix2pix: 0.5)"""
    residual: bool = True
    """generator predicts a correction added to the input frame, zero at the start (the identity); False:
    pix2pix's tanh image"""
    patch: int = 70
    """receptive field of the PatchGAN discriminator in pixels: 16, 34, 70 (pix2pix), 142 or 286 (seed 001:
    larger patches)"""
    d_width: int = 16
    """channels of the discriminator's first layer (pix2pix uses 64)"""
    loss: str = "bce"
    """bce (pix2pix: BCE adversarial + lambda L1), lsgan (least-squares adversarial + lambda L1), mse (seed 001:
    BCE adversarial + lambda MSE)"""
    pixel_weight: float = 100.0
    """lambda, the weight of the pixel loss (L1, or MSE for --loss mse) on images scaled to [-1, 1]"""
    gan_weight: float = 1.0
    """weight of the generator's adversarial loss (0: plain regression)"""
    lr: float = 1e-3
    """Adam learning rate of both networks (pix2pix: 2e-4, seed 004: 1e-4 for long runs); betas (0.5, 0.999);
    constant for the first half of the budget, then decayed linearly to 0 as in pix2pix"""
    batch: int = 16
    """views per update"""
    steps: int = 1200
    """training budget in updates"""
    minutes: float = 0.0
    """wall-clock budget in minutes (0: none); training stops at whichever budget ends first, and never before the
    first update"""
    flip: float = 0.5
    """probability of a horizontal flip of a view (input and target together; seed 004)"""
    jitter: float = 0.2
    """probability of colour jitter on the input only (seed 004)"""
    jitter_strength: float = 0.1
    """largest relative change of brightness, contrast and saturation in the colour jitter"""
    neighbour_flip: float = 0.0
    """frames > 1: probability of flipping each neighbour frame alone (seed 001 found random flips within a
    sequence helped)"""
    eval_size: int = 64
    """number of held-out views evaluated (the agents' evaluation views for the same size and seed)"""
    eval_photos: int = 4
    """number of held-out photos evaluated at their own resolution (0: none)"""
    oversample: int = 1
    """oversampling factor used in the final evaluation (seed 001: 2)"""
    seed: int = 0
    """random seed of the data, the networks and the batches"""
    out: str = "runs/cgan"
    """output folder: cgan.safetensors with its JSON, eval.json"""
    overwrite: bool = False
    """replace the model an earlier run left in --out (otherwise such a folder is refused)"""
    device: str = "cpu"
    """cpu, cuda or auto"""
    threads: int = 0
    """CPU threads torch may use while training (0: leave torch's setting, by default every core; on an idle
    2-core machine that trained 22-28 % faster than 1, which can be faster on a busy shared machine, where small
    operations on several threads wait on each other)"""
    progress: bool = True
    """show a progress bar (on a terminal: none is drawn into a log or a pipe)"""


def check_config(cfg: CganConfig) -> None:
    """Raise ``ValueError`` naming the first bad field."""
    from .train import check_common_options

    check_common_options(cfg)
    choices = {"data": (AUTO_DATA, *GOOD_PHOTO_DATA, *PAIRED_DATA), "scheme": SCHEMES, "loss": LOSSES, "norm": NORMS}
    for name, valid in choices.items():
        if getattr(cfg, name) not in valid:
            raise ValueError(f"--{name} {getattr(cfg, name)!r} is not one of {', '.join(valid)}")
    if cfg.data in PAIRED_DATA and cfg.train_fraction != 1.0:
        raise ValueError(f"--train-fraction applies to good photos, not to --data {cfg.data}")
    if cfg.patch not in PATCHES:
        raise ValueError(f"--patch {cfg.patch} is not a PatchGAN receptive field; choose from "
                         f"{', '.join(map(str, PATCHES))}")
    if cfg.frames < 1 or cfg.frames % 2 == 0:
        raise ValueError(f"--frames must be odd and >= 1 (the current frame and as many neighbours on each "
                         f"side), got {cfg.frames}")
    if cfg.size < 2 or cfg.size & (cfg.size - 1):
        raise ValueError(f"--size must be a power of two >= 2 (the U-Net halves it down to 1 x 1), got {cfg.size}")
    if cfg.depth > unet_depth(cfg.size):  # deeper, every view and photo is padded to a multiple of 2^depth
        raise ValueError(f"--depth must be at most {unet_depth(cfg.size)}, log2(--size {cfg.size}): the U-Net is at "
                         f"1 x 1 there (0: that depth), got {cfg.depth}")
    if cfg.size < smallest_size(cfg.patch):
        fits = [f"--patch {p} from --size {smallest_size(p)}" for p in PATCHES if smallest_size(p) <= cfg.size]
        raise ValueError(f"--size {cfg.size} is too small for --patch {cfg.patch}: its PatchGAN needs views of at "
                         f"least {smallest_size(cfg.patch)} pixels" + (f" ({', '.join(fits)})" if fits else ""))
    positive = {"width": cfg.width, "d_width": cfg.d_width, "batch": cfg.batch, "pool_size": cfg.pool_size,
                "oversample": cfg.oversample, "eval_size": cfg.eval_size, "lr": cfg.lr}
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not 0.0 < cfg.crop_scale <= 1.0:
        raise ValueError(f"--crop-scale must be in (0, 1], got {cfg.crop_scale}")
    for name in ("identity_fraction", "dropout", "flip", "jitter", "neighbour_flip"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(cfg, name)}")
    for name in ("depth", "motion", "threads", "eval_photos", "minutes", "pixel_weight", "gan_weight",
                 "jitter_strength"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")


# ---------------------------------------------------------------------------------------------------------
# networks


def smallest_size(patch: int) -> int:
    """Smallest view the PatchGAN of receptive field ``patch`` takes: ``4 x 2^layers`` (its layers halve it, and the
    two stride-1 convolutions after them need 3 x 3 or more, its normalisation more than one value)."""
    return 4 * 2 ** PATCHES[patch]


def unet_depth(size: int) -> int:
    """Levels a U-Net needs to bring a ``size x size`` input down to 1 x 1: ``log2(size)`` (256 -> 8)."""
    if size < 2 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 2, got {size}")
    return size.bit_length() - 1


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r} is not one of {', '.join(NORMS)}")


def _pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right of ``x`` to a multiple of ``multiple`` (replicate where too small)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net (Isola et al. 2017, after Ronneberger et al. 2015) on ``B x 3F x H x W`` in [-1, 1].

    Encoder level ``i`` is ``LeakyReLU(0.2) -> Conv 4x4 stride 2 -> norm`` (no activation or norm at the first,
    no norm at the innermost); decoder level ``i`` is ``ReLU -> ConvTranspose 4x4 stride 2 -> norm`` on the
    concatenation of the level below's output and encoder level ``i``'s features (the skip connection).
    Any ``H x W`` works: the input is padded to a multiple of ``2^depth`` and the output cropped back.
    Output: ``B x 3 x H x W``, the corrected current (middle) frame, in [-1, 1] for ``residual=False`` (tanh),
    the middle frame plus a correction for ``residual=True`` (not clamped).
    """

    def __init__(self, frames: int = 1, *, depth: int = 6, width: int = 8, norm: str = "instance",
                 dropout: float = 0.0, residual: bool = True) -> None:
        super().__init__()
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be odd and >= 1, got {frames}")
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
        self.frames, self.depth, self.width, self.norm = frames, depth, width, norm
        self.dropout, self.residual = dropout, residual
        ch = [width * min(2 ** i, MAX_MULT) for i in range(depth)]
        bias = norm != "batch"
        self.downs = nn.ModuleList()
        for i in range(depth):
            conv = nn.Conv2d(3 * frames if i == 0 else ch[i - 1], ch[i], 4, stride=2, padding=1, bias=bias or i == 0)
            if i == 0:
                self.downs.append(conv)
            else:
                innermost = i == depth - 1
                self.downs.append(nn.Sequential(nn.LeakyReLU(0.2), conv,
                                                nn.Identity() if innermost else _norm(norm, ch[i])))
        self.ups = nn.ModuleList()
        for i in range(depth):
            c_in = ch[i] if i == depth - 1 else 2 * ch[i]
            if i == 0:
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, 3, 4, stride=2, padding=1)))
            else:
                drop = dropout > 0 and depth - 4 <= i < depth - 1  # the three levels after the bottleneck
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=bias),
                                              _norm(norm, ch[i - 1]),
                                              nn.Dropout(dropout) if drop else nn.Identity()))
        self.apply(_init_weights)
        if residual:  # start as the identity: the correction is zero until the generator learns one
            nn.init.zeros_(self.ups[0][1].weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 * self.frames:
            raise ValueError(f"expected B x {3 * self.frames} x H x W ({self.frames} frame(s) of RGB), "
                             f"got {tuple(x.shape)}")
        padded, (h, w) = _pad_to_multiple(x, 2 ** self.depth)
        skips, feat = [], padded
        for down in self.downs:
            feat = down(feat)
            skips.append(feat)
        out = self.ups[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            out = self.ups[i](torch.cat([out, skips[i]], dim=1))
        out = out[..., :h, :w]
        if self.residual:
            c = 3 * (self.frames // 2)
            return x[:, c:c + 3] + out
        return torch.tanh(out)


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN ("NLayerDiscriminator") on the pair (input, output) stacked on channels.

    ``layers`` stride-2 4x4 convolutions, then two stride-1 4x4 convolutions; every output logit judges one
    ``receptive_field(layers)`` square patch of the input (16, 34, 70, 142, 286 for 1..5 layers; pix2pix: 3).
    """

    def __init__(self, in_channels: int, *, layers: int = 3, width: int = 16, norm: str = "instance") -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"a PatchGAN needs at least one stride-2 layer, got {layers}")
        self.layers = layers
        bias = norm != "batch"
        mods: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = width
        for n in range(1, layers + 1):
            out = width * min(2 ** n, MAX_MULT)
            stride = 2 if n < layers else 1
            mods += [nn.Conv2d(c, out, 4, stride=stride, padding=1, bias=bias), _norm(norm, out), nn.LeakyReLU(0.2)]
            c = out
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*mods)
        self.apply(_init_weights)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layers)

    def forward(self, condition: Tensor, image: Tensor) -> Tensor:
        """Logits ``B x 1 x h x w``, one per patch (larger: more like a real pair)."""
        return self.body(torch.cat([condition, image], dim=1))


def receptive_field(layers: int) -> int:
    """Side of the input patch one PatchGAN logit sees: ``r <- (r - 1) * stride + 4`` back through the convs."""
    strides = [2] * layers + [1, 1]
    r = 1
    for s in reversed(strides):
        r = (r - 1) * s + 4
    return r


def _init_weights(m: nn.Module) -> None:
    """pix2pix's initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_generator(cfg: CganConfig) -> UNetGenerator:
    return UNetGenerator(cfg.frames, depth=cfg.depth or unet_depth(cfg.size), width=cfg.width, norm=cfg.norm,
                         dropout=cfg.dropout, residual=cfg.residual)


def build_discriminator(cfg: CganConfig) -> PatchDiscriminator:
    return PatchDiscriminator(3 * cfg.frames + 3, layers=PATCHES[cfg.patch], width=cfg.d_width, norm=cfg.norm)


# ---------------------------------------------------------------------------------------------------------
# losses


def adversarial_loss(logits: Tensor, real: bool, loss: str = "bce") -> Tensor:
    """The GAN loss of every patch against the label real (1) or fake (0): BCE with logits (pix2pix, and seed
    001's ``mse``) or least squares ``(D - label)^2`` (LSGAN)."""
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if loss == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def pixel_loss(output: Tensor, target: Tensor, loss: str = "bce") -> Tensor:
    """L1 distance (pix2pix: "less blurring than L2"), or the mean squared error for seed 001's ``mse``."""
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    return F.mse_loss(output, target) if loss == "mse" else F.l1_loss(output, target)


# ---------------------------------------------------------------------------------------------------------
# data: a seeded pool of (stack of frames, target) views, augmented per batch


Pool = tuple[Tensor, Tensor, list[dict]]  # inputs N x 3F x S x S, targets N x 3 x S x S (uint8), records
Held = list[tuple[Tensor, Tensor, dict]]  # (input, target, record), each 1 x 3 x H x W


def _to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _pan_offsets(frames: int, motion: int, g: torch.Generator) -> list[tuple[int, int]]:
    """Offsets of a straight camera pan: frame ``k`` moved ``(k - middle) * velocity``, at most ``motion`` px."""
    c = frames // 2
    if c == 0 or motion == 0:
        return [(0, 0)] * frames
    v = (torch.rand(2, generator=g) * 2 - 1) * motion / c
    return [(round(float(v[0]) * (k - c)), round(float(v[1]) * (k - c))) for k in range(frames)]


def _cut_frames(big: Tensor, size: int, motion: int, offsets: Sequence[tuple[int, int]]) -> Tensor:
    """``F x C x size x size`` crops of ``big`` (``C x (size + 2 motion)^2``) at the given offsets."""
    return torch.stack([big[:, motion + dy:motion + dy + size, motion + dx:motion + dx + size] for dy, dx in offsets])


def make_pool(items: Sequence[Tensor], count: int, *, size: int, frames: int = 1, motion: int = 2,
              scheme: str | None = "mixed", identity_fraction: float = 0.15, seed: int = 0,
              crop_scale: float = 0.25) -> Pool:
    """``count`` training examples: inputs ``N x 3F x S x S`` and targets ``N x 3 x S x S``, uint8, and records.

    Example ``i`` takes item ``i % len(items)``, a random crop of it covering ``crop_scale`` to all of its area
    (:func:`~deepexpose.envs.pool.random_crop`, maybe flipped) made a ``(S + 2 motion)`` square view, and cuts
    ``frames`` views from it along a simulated pan. ``items`` are good photos ``3 x H x W`` detuned by ``scheme``
    (one edit for the whole sequence), or, with ``scheme=None``, pairs stacked on channels (``6 x H x W``: input
    then target). The target is the middle frame.
    """
    if not items:
        raise ValueError("make_pool needs at least one photo or pair")
    m = motion if frames > 1 else 0
    inputs, targets, records = [], [], []
    for i in range(count):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        crop = random_crop(items[i % len(items)], g, (crop_scale, 1.0))
        big = _to_uint8(to_view(crop.unsqueeze(0), size + 2 * m)).float() / 255
        if scheme is None:
            x, t, record = big[:, :3], big[:, 3:], {}
        else:
            x, record = detune(big, scheme, g, identity_fraction=identity_fraction)
            t = big
        offsets = _pan_offsets(frames, m, g)
        stack = _cut_frames(x[0], size, m, offsets)  # F x 3 x S x S
        inputs.append(_to_uint8(stack.reshape(1, 3 * frames, size, size)))
        targets.append(_to_uint8(_cut_frames(t[0], size, m, offsets[frames // 2:frames // 2 + 1])))
        records.append(record)
    return torch.cat(inputs), torch.cat(targets), records


def colour_jitter(x: Tensor, g: torch.Generator, p: float = 0.2, strength: float = 0.1) -> Tensor:
    """Seed 004's colour jitter of ``B x 3F x H x W`` inputs in [0, 1]: with probability ``p`` per sample, one
    random brightness, contrast and saturation factor in ``[1 - strength, 1 + strength]`` for all its frames."""
    b, c, h, w = x.shape
    frames = x.reshape(b, c // 3, 3, h, w)
    on = (torch.rand(b, generator=g) < p).float().view(b, 1, 1, 1, 1)
    bright, contrast, sat = (1 + strength * (2 * torch.rand(3, b, generator=g) - 1)).view(3, b, 1, 1, 1, 1)
    y = frames * bright
    mean = luminance(y.flatten(0, 1)).view(b, -1, 1, h, w).mean(dim=(-2, -1), keepdim=True)
    y = (y - mean) * contrast + mean
    grey = luminance(y.flatten(0, 1)).view(b, -1, 1, h, w)
    y = ((y - grey) * sat + grey).clamp(0, 1)
    return (on * y + (1 - on) * frames).reshape(b, c, h, w)


def augment(x: Tensor, t: Tensor, g: torch.Generator, cfg: CganConfig) -> tuple[Tensor, Tensor]:
    """Horizontal flip of input and target together, seed 001's flips of single neighbour frames, colour jitter
    of the input only."""
    b = x.shape[0]
    flip = (torch.rand(b, generator=g) < cfg.flip).view(b, 1, 1, 1)
    x, t = torch.where(flip, x.flip(-1), x), torch.where(flip, t.flip(-1), t)
    if cfg.frames > 1 and cfg.neighbour_flip > 0:
        per_frame = torch.rand(b, cfg.frames, generator=g) < cfg.neighbour_flip
        per_frame[:, cfg.frames // 2] = False  # the current frame stays aligned with its target
        mask = per_frame.repeat_interleave(3, dim=1).view(b, 3 * cfg.frames, 1, 1)
        x = torch.where(mask, x.flip(-1), x)
    if cfg.jitter > 0:
        x = colour_jitter(x, g, cfg.jitter, cfg.jitter_strength)
    return x, t


def _paired_data(cfg: CganConfig) -> tuple[Pool, list[tuple[Tensor, Tensor]]]:
    """The training pool and the held-out ``(input, target)`` pairs of a paired layout (pairs, fivek, afifi).

    Pairs are read one at a time and cut into their share of the pool at once, so memory holds one photo, not
    the data set; a pool smaller than the data takes one crop of each of the first pairs of a seeded order. Inputs
    without a target and unreadable pairs are left out and named in a warning, as the agent leaves them out
    (:func:`~deepexpose.agents.train.paired_dataset`); the share of one left out goes to the pairs read after it
    (the last pair's share is lost with it).
    """
    from deepexpose.data.folders import shrink_short_side

    from .train import PHOTO_SHORT_SIDE, paired_dataset, readable_items

    if cfg.data == "pairs":
        train_ds = held_ds = paired_dataset("pairs", root=cfg.root)
        n_held = max(1, len(train_ds) // 10)
        train_idx, held_idx = list(range(n_held, len(train_ds))), list(range(n_held))
    else:
        split_train, split_test = ("train", "test") if cfg.data == "fivek" else ("training", "validation")
        train_ds = paired_dataset(cfg.data, root=cfg.root, split=split_train)
        held_ds = paired_dataset(cfg.data, root=cfg.root, split=split_test)
        train_idx, held_idx = list(range(len(train_ds))), list(range(len(held_ds)))
    if not train_idx or not held_idx:
        raise ValueError(f"--data {cfg.data} under {cfg.root}: need pairs both for training and for the held-out "
                         f"evaluation, found {len(train_idx)} and {len(held_idx)}")

    def pair(item: dict) -> Tensor:  # input and target stacked on channels, 6 x H x W
        return shrink_short_side(torch.cat([item["input"], item["target"]]), PHOTO_SHORT_SIDE)

    order = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    place = {train_idx[j]: (k, (cfg.seed * 7919 + j) % 2 ** 32) for k, j in enumerate(order)}  # place, seed
    parts, made = [], 0
    wanted = (train_idx[j] for j in order if made < cfg.pool_size)  # asked for one by one: none once the pool is full
    for i, item in readable_items(train_ds, wanted, indexed=True):
        k, seed = place[i]
        count = -(-(cfg.pool_size - made) // (len(order) - k))  # the rest shared out over the pairs still to read
        parts.append(make_pool([pair(item)], count, size=cfg.size, frames=cfg.frames, motion=cfg.motion,
                               scheme=None, seed=seed, crop_scale=cfg.crop_scale))
        made += count
    held = [pair(item) for item in readable_items(held_ds, held_idx[:max(cfg.eval_size, cfg.eval_photos)])]
    if not parts or not held:
        raise ValueError(f"--data {cfg.data} under {cfg.root}: no {'training' if not parts else 'held-out'} pair "
                         "could be read (the warnings say why)")
    pool = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), [r for p in parts for r in p[2]])
    return pool, [(s[:3], s[3:]) for s in held]


def build_data(cfg: CganConfig) -> tuple[Pool, PairPool, Held]:
    """The training pool, the held-out views and the held-out photos ``(input, target, record)`` at full size.

    Held-out views of good photos are the agents' evaluation views (:func:`~deepexpose.agents.train.build_pools`
    with ``eval_scheme="basic"``); the held-out photos are detuned with the ``basic`` scheme too.
    """
    cfg = resolve_data(cfg)
    if cfg.data in GOOD_PHOTO_DATA:
        train, held = good_photos(cfg)  # type: ignore[arg-type]  # duck-typed: data, root, holdout, library_holdout
        if not train or not held:
            raise ValueError("need photos both for training and for the held-out evaluation")
        pool = make_pool(train, cfg.pool_size, size=cfg.size, frames=cfg.frames, motion=cfg.motion,
                         scheme=cfg.scheme, identity_fraction=cfg.identity_fraction, seed=cfg.seed,
                         crop_scale=cfg.crop_scale)
        views = PairPool.from_photos(held, cfg.eval_size, size=cfg.size, scheme="basic",
                                     identity_fraction=cfg.identity_fraction, seed=cfg.seed + 7919)
        photos = []
        for i in range(cfg.eval_photos):
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 104729 + i)
            target = _to_uint8(held[i % len(held)]).float().unsqueeze(0) / 255
            x, record = detune(target, "basic", g)
            photos.append((x, target, record))
        return pool, views, photos
    pool, held_pairs = _paired_data(cfg)
    views = PairPool.from_pairs(held_pairs[:cfg.eval_size], size=cfg.size)
    photos = [(x.unsqueeze(0), t.unsqueeze(0), {}) for x, t in held_pairs[:cfg.eval_photos]]
    return pool, views, photos


# ---------------------------------------------------------------------------------------------------------
# inference: any size, oversampling, sequences, frame blending


def run_oversampled(fn: Callable[[Tensor], Tensor], x: Tensor, factor: int = 2) -> Tensor:
    """Seed 001's oversampling: enlarge ``x`` ``factor`` times (bicubic), apply ``fn``, reduce the result back to
    ``x``'s size (area average of each ``factor x factor`` block). ``factor=1`` is ``fn(x)``."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"oversample must be an integer >= 1, got {factor!r}")
    if factor == 1:
        return fn(x)
    big = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False).clamp(0, 1)
    return F.interpolate(fn(big), size=x.shape[-2:], mode="area")


def blend_frames(frames: Tensor | Sequence[Tensor], radius: int = 1) -> Tensor | list[Tensor]:
    """Seed 001's post-hoc frame blending: frame ``t`` becomes the mean of frames ``t - radius .. t + radius``
    (the window cut at the ends of the sequence). A ``T x ...`` tensor gives a tensor, a list gives a list."""
    if not isinstance(radius, int) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
    as_list = not isinstance(frames, Tensor)
    if len(frames) == 0:
        raise ValueError("blend_frames needs at least one frame")
    seq = torch.stack(list(frames)) if as_list else frames
    cum = torch.cat([torch.zeros_like(seq[:1]), seq.cumsum(dim=0)])  # prefix sums: a box filter along time
    t = torch.arange(seq.shape[0], device=seq.device)
    lo, hi = (t - radius).clamp(min=0), (t + radius + 1).clamp(max=seq.shape[0])
    shape = (-1,) + (1,) * (seq.ndim - 1)
    out = (cum[hi] - cum[lo]) / (hi - lo).view(shape).to(seq.dtype)
    return list(out.unbind(0)) if as_list else out


def frame_flicker(frames: Tensor) -> float:
    """Flicker of a ``T x 3 x H x W`` sequence (as :func:`deepexpose.video.flicker`): mean absolute frame-to-frame
    change of the per-channel means."""
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"expected T x C x H x W with T >= 2, got {tuple(frames.shape)}")
    means = frames.mean(dim=(-2, -1))
    return float((means[1:] - means[:-1]).abs().mean())


def _check_photo(photo: Tensor) -> None:
    if not isinstance(photo, Tensor) or photo.ndim != 4 or photo.shape[1] != 3 or not photo.is_floating_point():
        shape = tuple(photo.shape) if isinstance(photo, Tensor) else type(photo).__name__
        raise ValueError(f"expected a float B x 3 x H x W photo in [0, 1], got {shape}")


class CganCorrector:
    """A trained generator as a corrector: ``enhance(photo) -> (output, info)`` at any resolution."""

    def __init__(self, generator: UNetGenerator, meta: dict | None = None) -> None:
        self.generator = generator.eval()
        self.meta = meta or {}

    @property
    def frames(self) -> int:
        return self.generator.frames

    def _run(self, stack: Tensor) -> Tensor:
        return (self.generator(stack * 2 - 1) + 1) / 2

    @torch.no_grad()
    def enhance(self, photo: Tensor, *, oversample: int = 1) -> tuple[Tensor, dict]:
        """Correct ``B x 3 x H x W`` photos in [0, 1] at their own size; a still is a sequence of ``frames`` equal
        frames. ``oversample``: seed 001's factor (:func:`run_oversampled`)."""
        _check_photo(photo)
        dev = next(self.generator.parameters()).device
        stack = photo.to(dev).repeat(1, self.frames, 1, 1)
        out = run_oversampled(self._run, stack, oversample).clamp(0, 1).to(photo.device, photo.dtype)
        return out, self._info(photo, oversample)

    @torch.no_grad()
    def enhance_sequence(self, frames: Tensor, *, oversample: int = 1, blend: int = 0) -> tuple[Tensor, dict]:
        """Correct a ``T x 3 x H x W`` sequence frame by frame, each seeing its ``frames - 1`` neighbours (the
        ends repeated), then blend ``blend`` frames on each side (:func:`blend_frames`; 0: none)."""
        _check_photo(frames)
        dev = next(self.generator.parameters()).device
        n, c = frames.shape[0], self.frames // 2
        outs = []
        for t in range(n):
            idx = [min(max(t + k, 0), n - 1) for k in range(-c, c + 1)]
            stack = frames[idx].to(dev).reshape(1, 3 * self.frames, *frames.shape[-2:])
            outs.append(run_oversampled(self._run, stack, oversample).clamp(0, 1).to(frames.device, frames.dtype))
        out = blend_frames(torch.cat(outs), blend)
        return out, {**self._info(frames[:1], oversample), "sequence": n, "blend": blend}  # type: ignore[return-value]

    def _info(self, photo: Tensor, oversample: int) -> dict:
        h, w = photo.shape[-2:]
        m = 2 ** self.generator.depth
        ph, pw = h * oversample, w * oversample
        return {"method": "cgan", "size": [h, w], "processed": [ph, pw],
                "padded": [math.ceil(ph / m) * m, math.ceil(pw / m) * m], "oversample": oversample,
                "frames": self.frames, "trained_size": self.meta.get("config", {}).get("size")}


def generator_meta(g: UNetGenerator) -> dict:
    return {"frames": g.frames, "depth": g.depth, "width": g.width, "norm": g.norm, "dropout": g.dropout,
            "residual": g.residual}


def load_cgan(path: str | Path, device: str | torch.device = "cpu") -> CganCorrector:
    """The corrector saved by :func:`train_cgan` (``cgan.safetensors`` and its JSON; needs nothing else)."""
    meta = read_meta(path)
    if meta.get("kind") != KIND:
        raise ValueError(f"{path} is not a cGAN checkpoint (kind {meta.get('kind')!r}, expected {KIND!r})")
    g = meta["generator"]
    generator = UNetGenerator(g["frames"], depth=g["depth"], width=g["width"], norm=g["norm"],
                              dropout=g["dropout"], residual=g["residual"])
    load_checkpoint(path, modules={"generator": generator})
    return CganCorrector(generator.to(device), meta)


# ---------------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate_cgan(corrector: CganCorrector, pairs: Sequence[tuple[Tensor, Tensor, dict]], *,
                  oversample: int = 1) -> dict[str, float]:
    """PSNR and CIEDE2000 (8-bit, :mod:`deepexpose.metrics`) of outputs and inputs against the targets over
    ``(input, target, record)`` pairs (``1 x 3 x H x W``), as :func:`deepexpose.agents.train.evaluate` reports
    them; untouched inputs (class ``correct``) give ``good_psnr``, the PSNR of the output to the input."""
    from deepexpose.metrics import capped_psnr, delta_e2000

    detuned, good = [], []
    for x, t, record in pairs:
        out, _ = corrector.enhance(x, oversample=oversample)
        if record.get("class") == "correct":
            good.append(capped_psnr(out, x))
        else:
            detuned.append((capped_psnr(out, t), delta_e2000(out, t), capped_psnr(x, t), delta_e2000(x, t)))
    result: dict[str, float] = {}
    if detuned:
        keys = ("psnr", "delta_e2000", "input_psnr", "input_delta_e2000")
        result.update({k: sum(col) / len(col) for k, col in zip(keys, zip(*detuned, strict=True), strict=True)})
        result["count"] = len(detuned)
    if good:
        result["good_psnr"] = sum(good) / len(good)
    return result


def _view_pairs(pool: PairPool) -> list[tuple[Tensor, Tensor, dict]]:
    x, t = pool.get(range(len(pool)))
    return [(x[i:i + 1], t[i:i + 1], pool.records[i]) for i in range(len(pool))]


# ---------------------------------------------------------------------------------------------------------
# training


def train_cgan(cfg: CganConfig) -> dict:
    """Train the pix2pix cGAN; writes ``out/cgan.safetensors`` (+ JSON with the config and the evaluation) and
    ``out/eval.json``, and returns the evaluation: held-out views (``view``) and photos (``photo``)."""
    check_config(cfg)
    from deepexpose.io import writable_folder

    from .train import refuse_earlier_run, torch_threads, warn_unused_data_options

    refuse_earlier_run(cfg.out, "cgan.safetensors", cfg.overwrite)

    given, cfg = cfg.data, resolve_data(cfg)
    warn_unused_data_options(cfg, given)
    writable_folder(cfg.out, "--out")  # its model is written at the end: not after the whole budget
    if cfg.frames > 1:
        warnings.warn(f"--frames {cfg.frames}: deepexpose enhance and evaluate run single-frame cGANs only; this "
                      "model is for CganCorrector.enhance on stacks of frames (seed 001's study of flicker)",
                      DeepExposeWarning, stacklevel=2)
    with torch_threads(cfg.threads):
        return _train(cfg)


def _train(cfg: CganConfig) -> dict:
    from deepexpose.io import atomic_write_bytes

    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    (pool_x, pool_t, _), eval_views, eval_photos = build_data(cfg)
    G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(cfg.seed + 1)

    start = time.time()
    deadline = start + cfg.minutes * 60 if cfg.minutes > 0 else math.inf
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, disable=None)
    step, stats = 0, {}
    G.train(), D.train()
    while step < cfg.steps and (step == 0 or time.time() < deadline):  # the time budget ends after an update
        done = max(step / cfg.steps, (time.time() - start) / (cfg.minutes * 60) if cfg.minutes > 0 else 0.0)
        done = done if step else 0.0  # the first update, made whatever the clock says, at the schedule's start
        for opt in (opt_g, opt_d):  # pix2pix's schedule: constant, then linear decay to 0 over the second half
            opt.param_groups[0]["lr"] = cfg.lr * min(1.0, 2.0 * (1.0 - done))
        idx = torch.randint(len(pool_x), (cfg.batch,), generator=g)
        x, t = augment(pool_x[idx].float() / 255, pool_t[idx].float() / 255, g, cfg)
        x, t = (x * 2 - 1).to(device), (t * 2 - 1).to(device)  # pix2pix works on [-1, 1]
        fake = G(x)

        # discriminator: real pairs (x, t) -> 1, generated pairs (x, G(x)) -> 0; halved as in pix2pix
        loss_d = fake.new_zeros(())
        if cfg.gan_weight > 0:
            loss_d = 0.5 * (adversarial_loss(D(x, t), True, cfg.loss)
                            + adversarial_loss(D(x, fake.detach()), False, cfg.loss))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

        # generator: fool D, stay near the target pixel by pixel
        loss_gan = adversarial_loss(D(x, fake), True, cfg.loss) if cfg.gan_weight > 0 else fake.new_zeros(())
        loss_pix = pixel_loss(fake, t, cfg.loss)
        loss_g = cfg.gan_weight * loss_gan + cfg.pixel_weight * loss_pix
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        step += 1
        stats = {"loss_d": loss_d.item(), "loss_gan": loss_gan.item(), "loss_pixel": loss_pix.item()}
        if bar is not None:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})
    if bar is not None:
        bar.close()
    train_minutes = (time.time() - start) / 60

    corrector = CganCorrector(G, {"config": dataclasses.asdict(cfg)})
    result = {"steps": step, "train_minutes": train_minutes, "final_losses": stats, "oversample": cfg.oversample,
              "view": evaluate_cgan(corrector, _view_pairs(eval_views), oversample=cfg.oversample)}
    if eval_photos:
        result["photo"] = evaluate_cgan(corrector, eval_photos, oversample=cfg.oversample)
    meta = {"kind": KIND, "config": dataclasses.asdict(cfg), "generator": generator_meta(G), "steps": step,
            "eval": result}
    save_checkpoint(out_dir / "cgan.safetensors", modules={"generator": G}, meta=meta)
    atomic_write_bytes(out_dir / "eval.json", json.dumps(result, indent=2).encode(), overwrite=True)
    return result
