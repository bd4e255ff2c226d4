"""``deepexpose train``: one command for every algorithm, dataset and reward; the config is a dataclass.

Data become a :class:`~deepexpose.envs.pool.PairPool` of low-resolution views: good photos (the bundled demo
set or a folder) are cropped and detuned by a seeded scheme; paired layouts (pairs, FiveK, Afifi) give their
own (input, target) pairs. A held-out pool is evaluated every ``eval_every`` image-steps (PSNR and CIEDE2000 of
the final edits against the targets, 8-bit quantised as in :mod:`deepexpose.metrics`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from deepexpose.envs.core import EditCore
from deepexpose.envs.pool import PairPool

from .networks import ActorCritic, obs_to_float

OWN_ALGOS = ("adpg", "a3c")
SB3_ALGOS = ("a2c", "ppo", "sac", "td3")


@dataclass
class PhotoSplit:
    """Which photos are held out of training, shared by the configs of every trainer (see :func:`good_photos`)."""

    holdout: str = "coffee"
    """demo and library data: comma-separated demo photo names kept out of training and used for evaluation"""
    library_holdout: float = 0.2
    """library data: share of the library's scene groups kept out of training and used for evaluation"""
    library_packages: str = ""
    """library data: comma-separated packages of the photo library to use (default: every cached package)"""


@dataclass
class TrainConfig(PhotoSplit):
    algo: str = "adpg"
    """adpg: asynchronous deterministic policy gradient through the differentiable filters (the default);
    a3c: asynchronous advantage actor-critic; a2c, ppo, sac, td3: stable-baselines3 on the batched environment"""
    data: str = "demo"
    """demo (bundled photos, detuned), library (the demo photos plus the Debian photo library fetched by
    scripts/get_photos.py, detuned; --root overrides its cache folder), folder (good photos under --root,
    detuned), pairs (--root/input and --root/target), fivek (FiveK 480p layout under --root), afifi (Afifi
    et al. layout under --root)"""
    root: str = ""
    """dataset folder (not used for demo)"""
    scheme: str = "mixed"
    """detuning of the training photos: mixed (seed 002 random edits), basic (exposure, white balance, contrast
    and saturation errors only), single (seed 001's 24 classes), afifi (EV offsets)"""
    eval_scheme: str = "basic"
    """detuning of the held-out photos (the issue's quality target is on basic errors)"""
    identity_fraction: float = 0.15
    """share of training views left untouched, so the agent learns to leave good photos alone"""
    pool_size: int = 1024
    """number of training views made from the data"""
    eval_size: int = 64
    """number of held-out views evaluated"""
    view: int = 64
    """side of the square low-resolution view the policy sees"""
    k: int = 3
    """number of luminosity sub-images (local exposure steps)"""
    reward: str = "paired"
    """paired (improvement of the colour difference to the target, ΔE76), psnr (PSNR improvement), adversarial
    (discriminator score), mixed (paired and adversarial)"""
    steps: int = 20000
    """training budget in image-steps (one step of one image's episode)"""
    minutes: float = 0.0
    """wall-clock budget in minutes (0: none); training stops at whichever budget ends first"""
    workers: int = 0
    """asynchronous worker processes for adpg/a3c (0: one per CPU core); environments for stable-baselines3"""
    batch: int = 32
    """images per update (per worker)"""
    lr: float = 1e-3
    """policy learning rate"""
    critic_lr: float = 1e-4
    """discriminator learning rate (adversarial and mixed rewards)"""
    use_cnn: bool = True
    """add the small CNN to the global statistics the policy sees"""
    colour_stats: bool = False
    """add per-channel statistics (quantiles, clipping, saturation, histograms) to what the policy sees"""
    hidden: int = 128
    """width of the policy's hidden layers"""
    deadzone: float = 0.0
    """actions within this distance of 0 become exactly 0 ("change nothing"; straight-through gradient)"""
    seed: int = 0
    """random seed of the data, the networks and the workers"""
    out: str = "runs/agent"
    """output folder: checkpoints (safetensors + JSON), TensorBoard logs, evaluation results"""
    eval_every: int = 5000
    """evaluate on the held-out views every this many image-steps (0: only at the end)"""
    checkpoint_every: int = 5000
    """save a checkpoint every this many image-steps (0: only at the end)"""
    resume: bool = False
    """continue from the checkpoint in --out"""
    device: str = "cpu"
    """cpu, cuda or auto"""
    progress: bool = True
    """show a progress bar"""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but CUDA is not available")
    return torch.device(name)


def num_workers(cfg: TrainConfig) -> int:
    return cfg.workers if cfg.workers > 0 else max(1, len(os.sched_getaffinity(0)))


# Photos are shrunk to this short side when loaded for views: crops of a quarter of the area still have
# several times the pixels of a 64 x 64 view, and a 16-megapixel wallpaper no longer takes 190 MB.
PHOTO_SHORT_SIDE = 512


def _photos(dataset) -> list[torch.Tensor]:
    from deepexpose.data.folders import shrink_short_side

    return [shrink_short_side(item["image"], PHOTO_SHORT_SIDE) for item in dataset]


def _library_photos(cfg: TrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Train and held-out photos of the Debian photo library (split by scene group)."""
    from deepexpose.data.folders import load_image_tensor, shrink_short_side
    from deepexpose.data.packages import default_cache_dir, load_library, split_records

    cache = Path(cfg.root) if cfg.root else default_cache_dir()
    packages = [p.strip() for p in getattr(cfg, "library_packages", "").split(",") if p.strip()] or None
    records = load_library(cache, packages)
    if not records:
        raise ValueError(f"the photo library in {cache} has no photos{' of ' + ', '.join(packages) if packages else ''}"
                         ": fetch them with scripts/get_photos.py")
    train_r, held_r = split_records(records, holdout_fraction=cfg.library_holdout, seed=0)

    def load(rs):
        return [shrink_short_side(load_image_tensor(r.path), PHOTO_SHORT_SIDE) for r in rs]

    return load(train_r), load(held_r)


GOOD_PHOTO_DATA = ("demo", "library", "folder")


def good_photos(cfg: TrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Good photos (``3 x H x W`` in [0, 1], short side at most :data:`PHOTO_SHORT_SIDE`) of ``cfg.data``
    (demo, library or folder), split into training and held-out photos."""
    from deepexpose.data import registry
    from deepexpose.data.demo import DemoSet

    if cfg.data in ("demo", "library"):
        holdout = tuple(n.strip() for n in cfg.holdout.split(",") if n.strip())
        train = _photos(DemoSet(split="train", holdout=holdout))
        held = _photos(DemoSet(split="holdout", holdout=holdout))
        if cfg.data == "library":
            lib_train, lib_held = _library_photos(cfg)
            train, held = train + lib_train, held + lib_held
    elif cfg.data == "folder":
        photos = _photos(registry.make_dataset("folder", root=cfg.root))
        if len(photos) < 2:
            raise ValueError("--data folder needs at least two photos (some are held out for evaluation)")
        n_held = max(1, len(photos) // 10)
        train, held = photos[n_held:], photos[:n_held]
    else:
        raise ValueError(f"--data {cfg.data!r} has no good photos; choose from {', '.join(GOOD_PHOTO_DATA)}")
    return train, held


def view_pairs(dataset, size: int, indices) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(input, target)`` views of the paired ``dataset`` items at ``indices``, made as each pair is read, so
    that a large dataset (FiveK, Afifi) never sits in memory at full size."""
    from deepexpose.apply import to_view

    pairs = []
    for i in indices:
        item = dataset[i]
        pairs.append((to_view(item["input"].unsqueeze(0), size)[0], to_view(item["target"].unsqueeze(0), size)[0]))
    return pairs


def build_pools(cfg: TrainConfig) -> tuple[PairPool, PairPool]:
    """The training pool and the held-out evaluation pool for the configured data."""
    from deepexpose.data import registry

    if cfg.data in GOOD_PHOTO_DATA:
        train, held = good_photos(cfg)
    elif cfg.data in ("pairs", "fivek", "afifi"):
        if cfg.data == "pairs":
            ds = registry.make_dataset("pairs", root=cfg.root)
            n_held = max(1, len(ds) // 10)
            held_pairs = view_pairs(ds, cfg.view, range(min(n_held, cfg.eval_size)))
            train_pairs = view_pairs(ds, cfg.view, range(n_held, len(ds)))
        else:
            split_train, split_test = ("train", "test") if cfg.data == "fivek" else ("training", "validation")
            train_ds = registry.make_dataset(cfg.data, root=cfg.root, split=split_train)
            held_ds = registry.make_dataset(cfg.data, root=cfg.root, split=split_test)
            train_pairs = view_pairs(train_ds, cfg.view, range(len(train_ds)))
            held_pairs = view_pairs(held_ds, cfg.view, range(min(len(held_ds), cfg.eval_size)))
        return PairPool.from_pairs(train_pairs, size=cfg.view), PairPool.from_pairs(held_pairs, size=cfg.view)
    else:
        raise ValueError(f"unknown --data {cfg.data!r}; choose demo, library, folder, pairs, fivek or afifi")
    if not train or not held:
        raise ValueError("need photos both for training and for the held-out evaluation")
    train_pool = PairPool.from_photos(train, cfg.pool_size, size=cfg.view, scheme=cfg.scheme,
                                      identity_fraction=cfg.identity_fraction, seed=cfg.seed)
    eval_pool = PairPool.from_photos(held, cfg.eval_size, size=cfg.view, scheme=cfg.eval_scheme,
                                     identity_fraction=cfg.identity_fraction, seed=cfg.seed + 7919)
    return train_pool, eval_pool


def make_core(cfg: TrainConfig, critic: torch.nn.Module | None = None) -> EditCore:
    return EditCore(k=cfg.k, reward=cfg.reward, critic=critic)


def make_model(cfg: TrainConfig, core: EditCore) -> ActorCritic:
    return ActorCritic(core.steps, core.action_dim, hidden=cfg.hidden, use_cnn=cfg.use_cnn, colour=cfg.colour_stats,
                       deadzone=cfg.deadzone)


# A policy as a function: the uint8 observation tensors of EditCore.observation() -> B x A actions.
Act = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def actor_critic_act(model: ActorCritic) -> Act:
    """The deterministic action of the project's actor as an :data:`Act`."""
    return lambda obs: model(obs_to_float(obs))[0]


@torch.no_grad()
def run_policy(model: ActorCritic | Act, core: EditCore, inputs: torch.Tensor, targets: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[dict]]:
    """Deterministic episodes on a batch: the final images and the edits (physical parameters)."""
    act = actor_critic_act(model) if isinstance(model, ActorCritic) else model
    core.begin(inputs, targets)
    done = False
    while not done:
        _, done = core.step(act(core.observation()))
    return core.current, core.describe()


@torch.no_grad()
def evaluate(model: ActorCritic | Act, core: EditCore, pool: PairPool, batch: int = 64,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """The policy's edits on ``pool``, scored with :mod:`deepexpose.metrics` (8-bit, whole image).

    Detuned views: mean PSNR and CIEDE2000 against the targets (``psnr``, ``delta_e2000``) and of the inputs
    themselves (``input_psnr``, ``input_delta_e2000``). Views left untouched (class ``correct``): mean PSNR of
    the output to the input, "do no harm" (``good_psnr``; an exact copy counts as 100 dB).
    """
    from deepexpose.metrics import delta_e2000, psnr

    if not pool.paired:
        raise ValueError("evaluation needs a pool with targets")
    detuned, good = [], []
    for start in range(0, len(pool), batch):
        idx = list(range(start, min(len(pool), start + batch)))
        x, t = pool.get(idx, device)
        out, _ = run_policy(model, core, x, t)
        for j, i in enumerate(idx):
            if pool.records[i].get("class") == "correct":
                good.append(min(psnr(out[j], x[j]), 100.0))
            else:
                detuned.append((psnr(out[j], t[j]), delta_e2000(out[j], t[j]), psnr(x[j], t[j]),
                                delta_e2000(x[j], t[j])))
    result: dict[str, float] = {}
    if detuned:
        keys = ("psnr", "delta_e2000", "input_psnr", "input_delta_e2000")
        result.update({k: sum(col) / len(col) for k, col in zip(keys, zip(*detuned, strict=True), strict=True)})
    if good:
        result["good_psnr"] = sum(good) / len(good)
    return result


def save_config(cfg: TrainConfig, out: Path) -> None:
    from deepexpose.io import atomic_write_bytes

    atomic_write_bytes(out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode(), overwrite=True)


def train(cfg: TrainConfig) -> dict:
    """Train ``cfg.algo``; returns the final evaluation (also written to ``out/eval.json``)."""
    if cfg.algo in OWN_ALGOS:
        from .async_ac import train_async

        return train_async(cfg)
    if cfg.algo in SB3_ALGOS:
        from .sb3 import train_sb3

        return train_sb3(cfg)
    raise ValueError(f"unknown --algo {cfg.algo!r}; choose from {', '.join(OWN_ALGOS + SB3_ALGOS)}")
