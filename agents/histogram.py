"""Baseline of seed 002, "neural photo histogram enhancement": a network maps the 3D RGB histogram of a bad photo
to the histogram of its good version, and Pitié's distribution transfer gives the photo that histogram.

Training (top to bottom in :func:`train_histogram`): random crops of good photos, resized to ``size x size`` and
quantised to 8 bits, are detuned by seed 002's random mixed edits (:func:`deepexpose.data.detune.random_edit`:
brightness, gamma, tone curve, colour spill, saturation, contrast, noise); a share is left untouched so the
network learns to leave good photos alone. Input and target are normalised ``bins^3`` histograms; the network
(a small 3D U-Net over the histogram cube, :class:`HistogramNet`) outputs a softmax over the bins and the loss
is the KL divergence ``KL(good || predicted)``. The pairs live in a pool of which a few are replaced by fresh
ones every step.

Correction (:class:`HistogramCorrector`): predict the good histogram from a low-resolution view, fit Pitié's
iterative distribution transfer (:mod:`deepexpose.transfer`) from the view's colours to the predicted histogram
and apply the fitted colour mapping to the photo at full resolution. With ``source="histogram"`` (default) the
mapping is fitted from the view's own histogram, represented exactly like the prediction (``per_bin`` points
at the same offsets in each bin), so the binning error cancels: a prediction equal to the input histogram gives
the identity. ``source="pixels"`` fits from the view's pixels, as seed 002 describes.

Measured (default settings, 3 minutes on 2 busy cores, 570-730 updates, held-out 64 x 64 views with basic
errors): on the five demo training photos the network memorises them and makes held-out photos worse (PSNR
21.1 -> 18.9 dB, CIEDE2000 8.9 -> 11.9); with ``--data library`` it is about neutral (21.8 -> 21.3 dB,
CIEDE2000 9.85 -> 9.60). With the true good histogram (an oracle) the same transfer reaches 32 dB, so the gap
is the prediction, not the transfer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepexpose.apply import to_view
from deepexpose.data.detune import detune
from deepexpose.envs.pool import PairPool, random_crop
from deepexpose.transfer import PdfTransfer, fit_pdf_transfer, rgb_histogram, smooth_histogram

from .train import PhotoSplit, resolve_data

CHECKPOINT_NAME = "histogram.safetensors"
SOURCES = ("histogram", "pixels")
POOL_CHUNK = 64  # pairs made between two looks at the clock


@dataclass
class HistogramConfig(PhotoSplit):
    data: str = "auto"
    """good photos: auto (library when scripts/get_photos.py has fetched it into --root or its cache; else folder
    with a --root, else demo), demo (bundled photos), library (demo plus the Debian photo library of
    scripts/get_photos.py; --root overrides its cache folder), folder (good photos under --root)"""
    root: str = ""
    """dataset folder (not used for demo)"""
    bins: int = 16
    """histogram bins per channel (a multiple of 8); input and output are bins^3 histograms"""
    width: int = 16
    """channels of the network's first level (doubled at each of the two coarser levels)"""
    size: int = 64
    """side of the square view whose histogram the network sees (training crops and correction alike)"""
    smooth: float = 1.0
    """Gaussian smoothing of every histogram, in bins (network input, training target and transfer source alike:
    the transfer then maps a density estimate to one of the same bandwidth)"""
    identity_fraction: float = 0.15
    """share of training views left untouched, so the network learns to leave good photos alone"""
    pool_size: int = 2048
    """number of (detuned, good) histogram pairs kept for training"""
    refresh: int = 4
    """pairs replaced by freshly cropped and detuned ones after every step"""
    batch: int = 32
    """histograms per update"""
    lr: float = 1e-3
    """Adam learning rate"""
    steps: int = 20000
    """number of updates"""
    minutes: float = 3.0
    """wall-clock budget in minutes, pool building included (0: none); training stops at whichever budget ends
    first, and never before the first update (a budget that ends while the pool is made is refused); on 2 busy CPU
    cores 3 minutes are a few hundred updates"""
    iterations: int = 10
    """Pitié transfer: number of rotations"""
    transfer_bins: int = 32
    """Pitié transfer: bins of each 1D marginal histogram (few bins: smoother maps that bake into 3D LUTs better,
    and with the true good histogram as well matched as with 256)"""
    per_bin: int = 8
    """Pitié transfer: points per histogram bin (spread uniformly inside it)"""
    source: str = "histogram"
    """what the transfer is fitted from: histogram (the view's histogram, binned like the prediction, so a
    prediction equal to it is the identity) or pixels (the view's pixels)"""
    eval_size: int = 64
    """number of held-out views evaluated (detuned with the basic scheme; the identity share left untouched)"""
    eval_view: int = 64
    """side of the held-out views (the correction is fitted on a size x size view of each and applied to it)"""
    seed: int = 0
    """random seed of the data, the network and the transfer"""
    out: str = "runs/histogram"
    """output folder: histogram.safetensors (+ .json with this config) and eval.json"""
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


def check_config(cfg: HistogramConfig) -> None:
    """Clear errors for settings that cannot work."""
    from .train import check_common_options

    check_common_options(cfg)
    if cfg.bins < 8 or cfg.bins % 8:
        raise ValueError(f"--bins must be a multiple of 8 (the network halves it three times), got {cfg.bins}")
    for name in ("width", "size", "pool_size", "batch", "iterations", "transfer_bins", "per_bin", "eval_size",
                 "eval_view"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.refresh < 0 or cfg.minutes < 0 or cfg.smooth < 0:
        raise ValueError("--refresh, --minutes and --smooth must be >= 0")
    if cfg.refresh > cfg.pool_size:  # it made that many pairs for every update, most of them overwritten at once
        raise ValueError(f"--refresh must be at most --pool-size {cfg.pool_size} (pairs replaced after each update), "
                         f"got {cfg.refresh}")
    if not 0.0 <= cfg.identity_fraction <= 1.0:
        raise ValueError(f"--identity-fraction must be in [0, 1], got {cfg.identity_fraction}")
    if cfg.lr <= 0:
        raise ValueError(f"--lr must be > 0, got {cfg.lr}")
    if cfg.source not in SOURCES:
        raise ValueError(f"--source must be one of {', '.join(SOURCES)}, got {cfg.source!r}")


# ---------------------------------------------------------------------------------------------------------------
# The network


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.GELU())


class HistogramNet(nn.Module):
    """``B x n x n x n`` histogram -> ``B x n^3`` logits of the good histogram (softmax over all bins).

    A 3D U-Net over the histogram cube: the input channels are the log density ``log(1 + n^3 h) / log(n^3)`` and
    the bin-centre coordinates (so positions in colour space are known); levels at ``n/2``, ``n/4`` and ``n/8``
    bins, a global context vector (mean and max pooled) added at the coarsest level, and the input channels
    concatenated again before the final ``1 x 1 x 1`` convolution.
    """

    def __init__(self, bins: int = 16, width: int = 16) -> None:
        super().__init__()
        if bins < 8 or bins % 8:
            raise ValueError(f"bins must be a multiple of 8, got {bins}")
        self.bins, self.width = bins, width
        w = width
        self.stem = nn.Sequential(nn.Conv3d(4, w, 2, stride=2), nn.GELU())         # n/2
        self.enc1 = _conv(w, w)
        self.enc2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))        # n/4
        self.enc3 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))    # n/8
        self.context = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.GELU(), nn.Linear(4 * w, 4 * w))
        self.up3 = nn.ConvTranspose3d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _conv(4 * w, 2 * w)
        self.up2 = nn.ConvTranspose3d(2 * w, w, 2, stride=2)
        self.dec1 = _conv(2 * w, w)
        self.up1 = nn.Sequential(nn.ConvTranspose3d(w, w, 2, stride=2), nn.GELU())  # n
        self.head = nn.Conv3d(w + 4, 1, 1)
        i = (torch.arange(bins) + 0.5) / bins * 2 - 1
        self.register_buffer("coords", torch.stack(torch.meshgrid(i, i, i, indexing="ij")), persistent=False)

    def config(self) -> dict:
        return {"bins": self.bins, "width": self.width}

    def features(self, hist: Tensor) -> Tensor:
        """``B x 4 x n x n x n`` input channels: scaled log density and bin-centre coordinates in [-1, 1]."""
        n3 = self.bins ** 3
        dens = torch.log1p(hist * n3) / math.log(n3)
        return torch.cat([dens.unsqueeze(1), self.coords.expand(hist.shape[0], -1, -1, -1, -1)], dim=1)

    def forward(self, hist: Tensor) -> Tensor:
        n = self.bins
        if hist.ndim != 4 or hist.shape[1:] != (n, n, n):
            raise ValueError(f"expected B x {n} x {n} x {n} histograms, got shape {tuple(hist.shape)}")
        x = self.features(hist)
        a = self.enc1(self.stem(x))
        b = self.enc2(a)
        c = self.enc3(b)
        c = c + self.context(torch.cat([c.mean((2, 3, 4)), c.amax((2, 3, 4))], 1))[:, :, None, None, None]
        b = self.dec2(torch.cat([self.up3(c), b], 1))
        a = self.dec1(torch.cat([self.up2(b), a], 1))
        return self.head(torch.cat([self.up1(a), x], 1)).flatten(1)

    def predict(self, hist: Tensor) -> Tensor:
        """The predicted good histograms, ``B x n x n x n`` probabilities."""
        return self(hist).softmax(1).view_as(hist)


def kl_loss(logits: Tensor, target: Tensor) -> Tensor:
    """``KL(target || softmax(logits))`` averaged over the batch (nats); ``target``: ``B x n x n x n``."""
    return F.kl_div(logits.log_softmax(1), target.flatten(1), reduction="batchmean")


# ---------------------------------------------------------------------------------------------------------------
# Training data


def _quantise(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def make_pairs(photos: list[Tensor], count: int, g: torch.Generator, *, size: int, bins: int,
               identity_fraction: float, smooth: float = 0.0) -> tuple[Tensor, Tensor]:
    """``count`` (detuned, good) histogram pairs, ``count x n x n x n`` each: a random photo, a random crop
    resized to ``size`` and quantised to 8 bits, detuned by seed 002's random mixed edit (or left untouched with
    probability ``identity_fraction``); histograms smoothed by ``smooth`` bins."""
    bad, good = [], []
    for _ in range(count):
        photo = photos[int(torch.randint(len(photos), (), generator=g))]
        target = _quantise(to_view(random_crop(photo, g).unsqueeze(0), size))
        x, _ = detune(target, "mixed", g, identity_fraction=identity_fraction)
        bad.append(_quantise(x))
        good.append(target)
    return (smooth_histogram(rgb_histogram(torch.cat(bad), bins), smooth),
            smooth_histogram(rgb_histogram(torch.cat(good), bins), smooth))


# ---------------------------------------------------------------------------------------------------------------
# Correction


def _entropy_bits(p: Tensor) -> float:
    p = p.flatten()
    return float(-(p * torch.log2(p.clamp(min=1e-30))).sum())


def _mean_rgb(hist: Tensor) -> list[float]:
    n = hist.shape[-1]
    c = (torch.arange(n, dtype=hist.dtype, device=hist.device) + 0.5) / n
    return [float((hist.sum(dims) * c).sum()) for dims in ((1, 2), (0, 2), (0, 1))]


class HistogramCorrector:
    """Seed 002's correction: predict the good histogram of a photo, Pitié-transfer the photo's colours to it.

    ``plan`` fits the colour mapping on a ``view x view`` view; ``enhance`` applies it to the photo at any size.
    """

    def __init__(self, net: HistogramNet, *, view: int = 64, smooth: float = 1.0, iterations: int = 10,
                 transfer_bins: int = 32, per_bin: int = 8, source: str = "histogram", seed: int = 0) -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        if view < 1:
            raise ValueError(f"view must be >= 1, got {view}")
        self.net = net.eval()
        self.view, self.smooth, self.iterations, self.transfer_bins = view, smooth, iterations, transfer_bins
        self.per_bin, self.source, self.seed = per_bin, source, seed

    def settings(self) -> dict:
        return {"view": self.view, "smooth": self.smooth, "iterations": self.iterations,
                "transfer_bins": self.transfer_bins, "per_bin": self.per_bin, "source": self.source, "seed": self.seed}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @staticmethod
    def _check(photo: Tensor) -> None:
        if photo.ndim != 4 or photo.shape[:2] != (1, 3) or not photo.is_floating_point():
            raise ValueError(f"expected one float photo 1 x 3 x H x W in [0, 1], got shape {tuple(photo.shape)} "
                             f"{photo.dtype}")

    @torch.no_grad()
    def plan(self, photo: Tensor) -> tuple[PdfTransfer, dict]:
        """The colour mapping for ``photo`` (``1 x 3 x H x W`` in [0, 1]) and a JSON-ready record of it."""
        self._check(photo)
        small = to_view(photo.to(self.device, torch.float32), self.view)
        hist = smooth_histogram(rgb_histogram(small, self.net.bins), self.smooth)
        pred = self.net.predict(hist)[0]
        target = pred.double()
        source = hist[0].double() if self.source == "histogram" else small[0].flatten(1).T.double()
        transfer = fit_pdf_transfer(source, target, iterations=self.iterations, bins=self.transfer_bins,
                                    seed=self.seed, per_bin=self.per_bin).to(dtype=torch.float32)
        info = {
            "method": "histogram-pitie",
            "bins": self.net.bins,
            **self.settings(),
            "input_entropy_bits": _entropy_bits(hist[0]),
            "predicted_entropy_bits": _entropy_bits(pred),
            "kl_input_to_predicted_nats": float(F.kl_div(pred.clamp(min=1e-30).log().flatten(), hist[0].flatten(),
                                                    reduction="sum")),
            "input_mean_rgb": _mean_rgb(hist[0]),
            "predicted_mean_rgb": _mean_rgb(pred),
        }
        return transfer, info

    @torch.no_grad()
    def enhance(self, photo: Tensor) -> tuple[Tensor, dict]:
        """The corrected photo (same shape, dtype and device, in [0, 1]) and the record of :meth:`plan`."""
        transfer, info = self.plan(photo)
        return transfer.to(photo.device).apply_image(photo.float()).to(photo.dtype), info


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def save_histogram(path: str | Path, net: HistogramNet, cfg: HistogramConfig, extra: dict | None = None) -> Path:
    """``path`` (safetensors) with the network, and its JSON twin with the config: loadable alone."""
    from .checkpoint import save_checkpoint

    meta = {"kind": "histogram", "model": net.config(), "config": dataclasses.asdict(cfg), **(extra or {})}
    return save_checkpoint(path, modules={"net": net}, meta=meta)


def load_histogram(path: str | Path, device: torch.device | str = "cpu") -> HistogramCorrector:
    """The corrector saved by :func:`train_histogram` (``path``: the .safetensors file or its folder)."""
    from deepexpose.config import from_dict

    from .checkpoint import load_checkpoint, read_meta

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    meta = read_meta(path)
    if meta.get("kind") != "histogram":
        raise ValueError(f"{path} is not a histogram-network checkpoint (kind {meta.get('kind')!r})")
    cfg = from_dict(HistogramConfig, meta["config"])
    net = HistogramNet(**meta["model"])
    load_checkpoint(path, modules={"net": net})
    return HistogramCorrector(net.to(device), view=cfg.size, smooth=cfg.smooth, iterations=cfg.iterations,
                              transfer_bins=cfg.transfer_bins, per_bin=cfg.per_bin, source=cfg.source,
                              seed=cfg.seed)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and training


def evaluate_histogram(corrector: HistogramCorrector, pool: PairPool) -> dict[str, float]:
    """Scores of the corrector on a paired pool, as :func:`deepexpose.agents.train.evaluate` reports them.

    Detuned views: mean PSNR and CIEDE2000 (8-bit, :mod:`deepexpose.metrics`) of the output and of the input
    against the target; views left untouched (class ``correct``): mean PSNR of the output to the input
    (``good_psnr``, an exact copy counts as 100 dB).
    """
    from deepexpose.metrics import capped_psnr, delta_e2000

    if not pool.paired:
        raise ValueError("evaluation needs a pool with targets")
    detuned, good = [], []
    for i in range(len(pool)):
        x, t = pool.get([i])
        out, _ = corrector.enhance(x)
        if pool.records[i].get("class") == "correct":
            good.append(capped_psnr(out, x))
        else:
            detuned.append((capped_psnr(out, t), delta_e2000(out, t), capped_psnr(x, t), delta_e2000(x, t)))
    result: dict[str, float] = {}
    if detuned:
        keys = ("psnr", "delta_e2000", "input_psnr", "input_delta_e2000")
        result.update({k: sum(col) / len(col) for k, col in zip(keys, zip(*detuned, strict=True), strict=True)})
        result["detuned_views"] = len(detuned)
    if good:
        result["good_psnr"] = sum(good) / len(good)
        result["good_views"] = len(good)
    return result


def train_histogram(cfg: HistogramConfig) -> dict:
    """Train the histogram network; write ``out/histogram.safetensors`` (+ JSON) and ``out/eval.json``; return
    the held-out evaluation (basic detuning) together with the training summary."""
    check_config(cfg)
    from deepexpose.io import writable_folder

    from .train import refuse_earlier_run, torch_threads, warn_unused_data_options

    refuse_earlier_run(cfg.out, "histogram.safetensors", cfg.overwrite)

    given, cfg = cfg.data, resolve_data(cfg)
    warn_unused_data_options(cfg, given)
    writable_folder(cfg.out, "--out")  # its model is written at the end: not after the whole budget
    with torch_threads(cfg.threads):
        return _train(cfg)


def _train(cfg: HistogramConfig) -> dict:
    from deepexpose.io import atomic_write_bytes

    from deepexpose.device import resolve_device

    from .train import good_photos

    start = time.monotonic()
    deadline = start + cfg.minutes * 60 if cfg.minutes > 0 else math.inf
    device = resolve_device(cfg.device)
    train_photos, held_photos = good_photos(cfg)
    if not train_photos or not held_photos:
        raise ValueError("need photos both for training and for the held-out evaluation")

    # 1. the pool of (detuned, good) histogram pairs
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    kw = dict(size=cfg.size, bins=cfg.bins, identity_fraction=cfg.identity_fraction, smooth=cfg.smooth)
    parts = []  # made in chunks (the same draws as all at once), so that --minutes ends a long build too
    for made in range(0, cfg.pool_size, POOL_CHUNK):
        if time.monotonic() >= deadline:  # before a chunk, and after the last one
            break
        parts.append(make_pairs(train_photos, min(POOL_CHUNK, cfg.pool_size - made), g, **kw))
    made = sum(len(p[0]) for p in parts)
    if time.monotonic() >= deadline:
        raise ValueError(f"--minutes {cfg.minutes} ended while the pool was made ({made} of --pool-size "
                         f"{cfg.pool_size} pairs; the budget includes it), before any training: no model is "
                         "written; raise --minutes or lower --pool-size")
    bad, good = (torch.cat(t).to(device) for t in zip(*parts, strict=True))

    # 2. the network and its optimiser
    net = HistogramNet(cfg.bins, cfg.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, disable=None)

    # 3. updates: a batch from the pool, KL(good || predicted), then a few pool entries replaced
    step, cursor, ema = 0, 0, None
    while step < cfg.steps and (step == 0 or time.monotonic() < deadline):  # the budget ends after an update
        idx = torch.randint(cfg.pool_size, (cfg.batch,), generator=g).to(device)
        loss = kl_loss(net(bad[idx]), good[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        value = loss.item()
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        if cfg.refresh:
            fresh_bad, fresh_good = make_pairs(train_photos, cfg.refresh, g, **kw)
            slots = (torch.arange(cfg.refresh) + cursor) % cfg.pool_size
            bad[slots.to(device)], good[slots.to(device)] = fresh_bad.to(device), fresh_good.to(device)
            cursor = int(slots[-1] + 1) % cfg.pool_size
        if bar is not None:
            bar.update(1)
            bar.set_postfix(kl=f"{ema:.4f}")
    if bar is not None:
        bar.close()
    train_seconds = time.monotonic() - start

    # 4. checkpoint, then the held-out evaluation on basic errors
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"steps": step, "train_kl": ema, "train_seconds": train_seconds,
               "parameters": sum(p.numel() for p in net.parameters())}
    save_histogram(out / CHECKPOINT_NAME, net, cfg, {"training": summary})
    corrector = HistogramCorrector(net, view=cfg.size, smooth=cfg.smooth, iterations=cfg.iterations,
                                   transfer_bins=cfg.transfer_bins, per_bin=cfg.per_bin, source=cfg.source,
                                   seed=cfg.seed)
    pool = PairPool.from_photos(held_photos, cfg.eval_size, size=cfg.eval_view, scheme="basic",
                                identity_fraction=cfg.identity_fraction, seed=cfg.seed + 7919)
    result = {**evaluate_histogram(corrector, pool), **summary}
    atomic_write_bytes(out / "eval.json", json.dumps(result, indent=2).encode(), overwrite=True)
    return result


if __name__ == "__main__":
    import argparse

    from deepexpose.config import add_dataclass_arguments, from_namespace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataclass_arguments(parser, HistogramConfig)
    print(json.dumps(train_histogram(from_namespace(HistogramConfig, parser.parse_args())), indent=2))
