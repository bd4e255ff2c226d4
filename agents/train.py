"""``deepexpose train``: one command for every algorithm, dataset and reward; the config is a dataclass.

Data become a :class:`~deepexpose.envs.pool.PairPool` of low-resolution views: good photos (the bundled demo
set or a folder) are cropped and detuned by a seeded scheme; paired layouts (pairs, FiveK, Afifi) give their
own (input, target) pairs. Every ``eval_every`` image-steps the policy is evaluated (PSNR and CIEDE2000 of the
final edits against the targets, 8-bit quantised as in :mod:`deepexpose.metrics`) on two pools: a validation pool
made from a share of the *training* photos (whole scene groups, kept out of training), which alone chooses the best
checkpoint (:func:`selection_score`), and the held-out pool, which is only ever reported. A fresh run with a
validation pool is also evaluated before it trains: every policy starts from "change nothing", the first candidate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import torch

from deepexpose import DeepExposeWarning
from deepexpose.data.folders import DatasetLayoutError
from deepexpose.data.synthetic import EXCLUDED_PACKAGES, HELD_OUT_DEMO
from deepexpose.envs.core import EditCore
from deepexpose.envs.pool import PairPool
from deepexpose.envs.rewards import REWARDS
from deepexpose.io import available_cores
from deepexpose.metrics import DO_NO_HARM_PSNR, do_no_harm

from .networks import ActorCritic

OWN_ALGOS = ("adpg", "a3c")
SB3_ALGOS = ("a2c", "ppo", "sac", "td3")


@dataclass
class PhotoSplit:
    """Which photos are held out of training, shared by the configs of every trainer (see :func:`good_photos`)."""

    holdout: str = HELD_OUT_DEMO
    """demo and library data: comma-separated demo photo names kept out of training and used for evaluation
    (default: those the bundled models never saw, as ``deepexpose evaluate --dataset synthetic`` expects)"""
    library_holdout: float = 0.2
    """library data: share of the library's scene groups kept out of training and used for evaluation, in (0, 1);
    deepexpose evaluate --dataset synthetic measures on the groups of 0.2, so a smaller share trains on some of them"""
    library_packages: str = ""
    """library data: comma-separated packages of the photo library to use (default: every cached package but
    kphotoalbum, whose photos show identifiable people)"""
    train_fraction: float = 1.0
    """good photos (demo, library, folder): share of the training photos trained on, drawn with --seed; the
    validation and held-out photos stay the same (learning curves: scripts/learning_curve.py)"""


@dataclass
class TrainConfig(PhotoSplit):
    algo: str = "adpg"
    """adpg: asynchronous deterministic policy gradient through the differentiable filters (the default);
    a3c: asynchronous advantage actor-critic; a2c, ppo, sac, td3: stable-baselines3 on the batched environment"""
    data: str = "auto"
    """auto (library when scripts/get_photos.py has fetched it into --root or its cache; else folder with a --root,
    else demo), demo (bundled photos, detuned), library (the demo photos plus the Debian photo library fetched by
    scripts/get_photos.py, detuned; --root overrides its cache folder), folder (good photos under --root, detuned),
    pairs (--root/input and --root/target), fivek (FiveK 480p layout under --root), afifi (Afifi et al. layout under
    --root)"""
    root: str = ""
    """dataset folder (not used for demo)"""
    scheme: str = "mixed"
    """detuning of the training photos: mixed (seed 002 random edits), basic (exposure, white balance, contrast
    and saturation errors only), single (seed 001's 24 classes), afifi (EV offsets)"""
    eval_scheme: str = "basic"
    """detuning of the held-out photos (the issue's quality target is on basic errors)"""
    identity_fraction: float = 0.15
    """share of views left untouched, so the agent learns to leave good photos alone: of the training views, and of
    the validation and held-out views, where they measure that it does (the untouched PSNR; 0: not measured)"""
    pool_size: int = 1024
    """number of training views made from the data"""
    eval_size: int = 64
    """number of held-out views evaluated (and of validation views)"""
    validation: float = 0.1
    """share of the training photos kept out of training and used to choose the best checkpoint
    (best.safetensors); never individual crops: demo and folder data lose whole photos (a demo scene group stays
    together), library data whole scene groups of the library (the demo photos stay in training), paired data
    a share of the training pairs. 0: no selection. With fewer than two training photos, validation uses fresh
    detunings of the training photos (recorded as validation_source in eval.json)"""
    view: int = 64
    """side of the square low-resolution view the policy sees"""
    k: int = 3
    """number of luminosity sub-images (local exposure steps)"""
    reward: str = "paired"
    """paired (improvement of the colour difference to the target, ΔE76), psnr (PSNR improvement), adversarial
    (discriminator score), mixed (paired and adversarial)"""
    steps: int = 20000
    """training budget in image-steps (one step of one image's episode; an episode is k+1 of them). adpg and a3c
    stop at the first whole episode at or past it; stable-baselines3 finishes its rollout (a2c, ppo) or its
    step of every environment (sac, td3)"""
    minutes: float = 0.0
    """wall-clock budget in minutes (0: none); training stops at whichever budget ends first, and never before the
    first update"""
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
    colour_stats: bool = True
    """add per-channel statistics (quantiles, clipping, saturation, histograms) to what the policy sees"""
    hidden: int = 128
    """width of the policy's hidden layers"""
    deadzone: float = 0.05
    """actions within this distance of 0 become exactly 0 ("change nothing"; straight-through gradient)"""
    chroma: bool = False
    """add a white-balance estimate from the input's log-chroma histogram (FFCC-like network, Barron & Tsai 2017,
    agents/chroma.py): adpg/a3c add it to the final step's white balance and the policy learns the rest;
    stable-baselines3 policies see it as two more features"""
    seed: int = 0
    """random seed of the data, the networks and the workers"""
    out: str = "runs/agent"
    """output folder: checkpoints (safetensors + JSON), TensorBoard logs, evaluation results"""
    eval_every: int = 5000
    """evaluate on the validation and held-out views every this many image-steps (0: only at the end; a fresh run
    is also evaluated before training)"""
    checkpoint_every: int = 5000
    """save a checkpoint every this many image-steps (0: only at the end)"""
    keep_evaluated: bool = False
    """also keep the policy of every evaluation as evaluated/step-N.safetensors (adpg/a3c), to choose among them
    afterwards, e.g. on whole photos (scripts/train_default_model.py --choose-on-photos)"""
    resume: bool = False
    """continue from the checkpoint in --out"""
    overwrite: bool = False
    """start afresh in an --out that holds an earlier run: its checkpoint, best, kept policies, eval.json and
    TensorBoard logs are removed first (without it such an --out is refused)"""
    device: str = "cpu"
    """cpu, cuda or auto"""
    progress: bool = True
    """show a progress bar (on a terminal: none is drawn into a log or a pipe)"""


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0: torch's setting as it is), restoring the count after."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def num_workers(cfg: TrainConfig) -> int:
    return cfg.workers if cfg.workers > 0 else available_cores()


# Photos are shrunk to this short side when loaded for views: crops of a quarter of the area still have
# several times the pixels of a 64 x 64 view, and a 16-megapixel wallpaper no longer takes 190 MB.
PHOTO_SHORT_SIDE = 512


def dataset_photos(dataset) -> list[torch.Tensor]:
    """The ``image`` of every item of ``dataset`` (good photos), shrunk to the training short side."""
    from deepexpose.data.folders import shrink_short_side

    return [shrink_short_side(item["image"], PHOTO_SHORT_SIDE) for item in dataset]


def library_records(cfg: TrainConfig) -> tuple[list, list]:
    """Train and held-out records of the Debian photo library ``cfg`` trains on (split by scene group)."""
    from deepexpose.data.packages import load_library, split_records

    if not 0 < cfg.library_holdout < 1:
        raise ValueError(f"--library-holdout must be in (0, 1), got {cfg.library_holdout}: the held-out scene groups "
                         "are what the evaluations score, and at least one group is trained on")
    cache = library_cache(cfg)
    packages = library_packages(cfg)
    records = load_library(cache, packages)
    if packages is None:
        records = [r for r in records if r.package not in EXCLUDED_PACKAGES]
    elif missing := sorted(set(packages) - {r.package for r in records}):
        cached = sorted({r.package for r in load_library(cache)}) if cache.is_dir() else []
        raise ValueError(f"--library-packages names {', '.join(missing)}, not in the photo library in {cache} (it "
                         f"holds {', '.join(cached) or 'none'}): check the names, or fetch them with "
                         f"scripts/get_photos.py --packages {','.join(missing)}")
    if not records:
        raise ValueError(f"the photo library in {cache} has no photos{' of ' + ', '.join(packages) if packages else ''}"
                         ": fetch them with scripts/get_photos.py")
    return split_records(records, holdout_fraction=cfg.library_holdout, seed=0)


def training_photo_names(config: dict) -> set[str] | None:
    """The photos a model whose training config is ``config`` (a ``TrainConfig``'s, or any trainer's sharing
    :class:`PhotoSplit`, as saved in its JSON) was trained or validated on, named as ``deepexpose evaluate --dataset
    synthetic`` names them (``demo/coffee``, ``jigzo-data/<name>``); ``None`` when that cannot be told: data other
    than the demo set or the photo library, a library no longer where it was or without the packages it named, or a
    held-out demo photo this version does not know. The library's split is made again from the packages cached now:
    for a model trained on every cached package (no ``library_packages``), packages fetched or removed since move
    some scene groups, and the names given are those of the split of now."""
    data = config.get("data")
    if data not in ("demo", "library"):
        return None
    from deepexpose.data.demo import DemoSet

    holdout = tuple(n.strip() for n in str(config.get("holdout", HELD_OUT_DEMO)).split(",") if n.strip())
    try:
        names = {f"demo/{p.name}" for p in DemoSet(split="train", holdout=holdout).photos}
    except ValueError:  # a held-out photo of another version of the demo set
        return None
    if data == "library":
        defaults = PhotoSplit()
        cfg = SimpleNamespace(root=config.get("root") or "",
                              library_holdout=config.get("library_holdout", defaults.library_holdout),
                              library_packages=config.get("library_packages", defaults.library_packages))
        if not library_cache(cfg).is_dir():
            return None
        try:
            train, _ = library_records(cfg)  # type: ignore[arg-type]
        except (OSError, ValueError):  # packages it named are not here: which photos it saw cannot be told
            return None
        names |= {f"{r.package}/{r.name}" for r in train}
    return names


def load_records(records) -> list[torch.Tensor]:
    """The photos of photo-library ``records``, shrunk to the training short side."""
    from deepexpose.data.folders import load_image_tensor, shrink_short_side

    return [shrink_short_side(load_image_tensor(r.path), PHOTO_SHORT_SIDE) for r in records]


VALIDATION_SEED = 1
"""Seed of the validation splits (the held-out split of the library uses seed 0)."""


def validation_indices(groups: Sequence[str], fraction: float) -> list[int]:
    """Indices of the items (with scene ``groups``) kept for validation: whole groups, in an order seeded by
    :data:`VALIDATION_SEED`, until at least ``max(1, round(fraction * n))`` items; never every group, so none
    when ``fraction`` is 0 or there is a single group."""
    order = sorted(set(groups), key=lambda g: (hashlib.sha256(f"{VALIDATION_SEED}:{g}".encode()).hexdigest(), g))
    if fraction <= 0 or len(order) < 2:
        return []
    want, taken, count = max(1, round(fraction * len(groups))), set(), 0
    for g in order[:-1]:
        if count >= want:
            break
        taken.add(g)
        count += list(groups).count(g)
    return [i for i, g in enumerate(groups) if g in taken]


def _split_off(photos: list, groups: Sequence[str], fraction: float) -> tuple[list, list]:
    val = set(validation_indices(groups, fraction))
    return [p for i, p in enumerate(photos) if i not in val], [p for i, p in enumerate(photos) if i in val]


GOOD_PHOTO_DATA = ("demo", "library", "folder")
AUTO_DATA = "auto"
"""``--data auto`` (every trainer's default): the photo library when it has been fetched, else the demo set."""
DEMO_TOO_SMALL = ("training on {n} demo photos: too few for a model that works on other photos (trained on them "
                  "with their default settings, the cGAN, classifier and histogram baselines were measured to make "
                  "held-out photos worse); fetch the photo library with scripts/get_photos.py: the default --data "
                  "auto then trains on it")

C = TypeVar("C")


def library_cache(cfg) -> Path:
    """The photo library's folder: ``cfg.root`` when given, else :func:`~deepexpose.data.packages.default_cache_dir`."""
    from deepexpose.data.packages import default_cache_dir

    return Path(cfg.root) if cfg.root else default_cache_dir()


def library_packages(cfg) -> list[str] | None:
    """The packages named by ``cfg.library_packages``; ``None`` (every cached package but
    :data:`~deepexpose.data.synthetic.EXCLUDED_PACKAGES`) when it is empty."""
    return [p.strip() for p in cfg.library_packages.split(",") if p.strip()] or None


def resolve_data(cfg: C) -> C:
    """``cfg`` with ``data="auto"`` made concrete (any trainer's config; other values are returned unchanged).

    ``auto`` becomes ``library`` when the photo library of ``scripts/get_photos.py`` holds photos (of
    ``library_packages``, when set) in :func:`library_cache`; else ``folder`` when a ``root`` that holds no library
    was given (the user's own folder of good photos, which a user who names one means), else ``demo``, which warns
    that the demo photos are too few (:data:`DEMO_TOO_SMALL`); with ``library_packages`` set and none of them found it
    raises. Trainers resolve it first, so their saved config names the data they used.
    """
    if cfg.data != AUTO_DATA:
        return cfg
    from deepexpose.data.packages import MANIFEST, load_library

    cache = library_cache(cfg)
    packages = library_packages(cfg)
    found = cache.is_dir() and any(packages is not None or r.package not in EXCLUDED_PACKAGES
                                   for r in load_library(cache, packages))
    a_library = cache.is_dir() and any(cache.glob(f"*/{MANIFEST}"))
    if packages is not None and not found:  # packages named are meant to be trained on, never the demo photos
        raise ValueError(f"--library-packages names {', '.join(packages)}, none of them in a photo library in {cache}: "
                         f"check the names, or fetch them with scripts/get_photos.py --packages {','.join(packages)}")
    return dataclasses.replace(cfg, data="library" if found else "folder" if cfg.root and not a_library else "demo")


DATA_OPTIONS = {"demo": ("holdout", "train_fraction"),
                "library": ("holdout", "library_packages", "library_holdout", "root", "train_fraction"),
                "folder": ("root", "train_fraction")}
"""The photo options each kind of ``--data`` uses (paired data: ``root`` alone)."""


def warn_unused_data_options(cfg, given: str = "") -> None:
    """Warn, naming them, of the photo options given other values than their defaults that ``cfg.data`` (resolved,
    any trainer's config; ``given``: the ``--data`` it was resolved from) does not use: ``--root`` with ``--data
    demo``, ``--library-packages`` with a folder of photos... are otherwise ignored without a word."""
    defaults = {**dataclasses.asdict(PhotoSplit()), "root": ""}
    used = DATA_OPTIONS.get(cfg.data, ("root",))
    unused = [name for name, default in defaults.items() if name not in used and getattr(cfg, name, default) != default]
    if unused:
        options = ", ".join("--" + name.replace("_", "-") for name in unused)
        chose = f" (what --data {given} chose)" if given and given != cfg.data else ""
        warnings.warn(f"--data {cfg.data}{chose} does not use {options}: ignored", DeepExposeWarning, stacklevel=3)


def good_photo_split(cfg: TrainConfig, validation: float | None = None
                     ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Good photos of ``cfg.data`` split into ``(train, validation, held)``; ``validation`` (default
    ``cfg.validation``) is the share of the training photos moved to the validation list (see
    :attr:`TrainConfig.validation`; empty when too few photos are left to take any)."""
    from deepexpose.data import registry
    from deepexpose.data.demo import DemoSet
    from deepexpose.data.packages import split_records

    fraction = cfg.validation if validation is None else validation
    cfg = resolve_data(cfg)
    if cfg.data in ("demo", "library"):
        holdout = tuple(n.strip() for n in cfg.holdout.split(",") if n.strip())
        demo_train = DemoSet(split="train", holdout=holdout)
        train = dataset_photos(demo_train)
        held = dataset_photos(DemoSet(split="holdout", holdout=holdout))
        if cfg.data == "demo":
            warnings.warn(DEMO_TOO_SMALL.format(n=len(train)), DeepExposeWarning, stacklevel=2)
            train, val = _split_off(train, [p.group for p in demo_train.photos], fraction)
        else:  # the demo photos stay in training; the library's training groups are split again
            lib_train, lib_held = library_records(cfg)
            lib_train, lib_val = split_records(lib_train, holdout_fraction=fraction, seed=VALIDATION_SEED)
            train, val, held = train + load_records(lib_train), load_records(lib_val), held + load_records(lib_held)
    elif cfg.data == "folder":
        from deepexpose.data.folders import shrink_short_side

        photos, names = [], []
        for item in readable_items(registry.make_dataset("folder", root=cfg.root)):
            photos.append(shrink_short_side(item["image"], PHOTO_SHORT_SIDE))
            names.append(item["name"])
        if len(photos) < 2:
            raise ValueError("--data folder needs at least two photos (some are held out for evaluation)")
        n_held = max(1, len(photos) // 10)
        train, val = _split_off(photos[n_held:], names[n_held:], fraction)  # each photo is its own group
        held = photos[:n_held]
    else:
        raise ValueError(f"--data {cfg.data!r} has no good photos; choose from {', '.join(GOOD_PHOTO_DATA)}")
    return subsample(train, cfg.train_fraction, cfg.seed), val, held


def subsample(items: list, fraction: float, seed: int) -> list:
    """``max(1, round(fraction * n))`` of ``items``, drawn without replacement by ``seed``, in their order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"--train-fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0 or not items:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), max(1, round(fraction * len(items)))))
    return [items[i] for i in keep]


def good_photos(cfg: TrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Good photos (``3 x H x W`` in [0, 1], short side at most :data:`PHOTO_SHORT_SIDE`) of ``cfg.data``
    (demo, library or folder), split into training and held-out photos (no validation split)."""
    train, _, held = good_photo_split(cfg, validation=0.0)
    return train, held


def _warn_left_out(names: Sequence[str], what: str) -> None:
    """One warning naming (the first three of) the ``names`` left out of the data, if any; ``what`` says what
    they are, with ``{s}`` where the plural takes an s."""
    if names:
        warnings.warn(f"left out {len(names)} {what.format(s='s' if len(names) > 1 else '')}: "
                      + "; ".join(names[:3]) + ("; ..." if len(names) > 3 else ""), DeepExposeWarning, stacklevel=3)


def readable_items(dataset, indices: Iterable[int] | None = None, *, indexed: bool = False) -> Iterator:
    """The items of an image-file ``dataset`` (at ``indices``, default all) that can be read, in order (``(index,
    item)`` with ``indexed``). Unreadable ones (damaged, truncated, too large, not images) are left out and named
    in one warning once all were read, as ``deepexpose evaluate`` reports them, instead of stopping the run."""
    from deepexpose.io import ImageIOError

    skipped = []
    for i in range(len(dataset)) if indices is None else indices:
        try:
            item = dataset[i]
        except (ImageIOError, OSError, ValueError) as e:
            skipped.append(f"{dataset.samples[i].name} ({e})")
            continue
        yield (i, item) if indexed else item
    _warn_left_out(skipped, "unreadable item{s}")


def paired_dataset(name: str, **options):
    """The paired dataset ``name`` of the registry with its inputs that have no target (or no input) left out
    and named in one warning, as :func:`readable_items` does for unreadable ones."""
    from deepexpose.data import registry

    ds = registry.make_dataset(name, missing="skip", **options)
    reasons = getattr(ds, "reasons", {})
    _warn_left_out([f"{n} ({reasons[n]})" if n in reasons else str(n) for n in getattr(ds, "skipped", [])],
                   f"item{{s}} of --data {name} without a target (or an input)")
    _warn_left_out([str(n) for n in getattr(ds, "without_input", [])], f"target{{s}} of --data {name} without an input")
    return ds


def view_pairs(dataset, size: int, indices) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(input, target)`` views of the paired ``dataset`` items at ``indices``, made as each pair is read, so
    that a large dataset (FiveK, Afifi) never sits in memory at full size; unreadable pairs are left out
    (:func:`readable_items`)."""
    from deepexpose.apply import to_view

    pairs = []
    for item in readable_items(dataset, indices):
        pairs.append((to_view(item["input"].unsqueeze(0), size)[0], to_view(item["target"].unsqueeze(0), size)[0]))
    return pairs


@dataclass
class Pools:
    """The pools of a run: training, validation (chooses the best checkpoint; ``None`` when ``cfg.validation``
    is 0) and held-out (reported only)."""

    train: PairPool
    validation: PairPool | None
    held: PairPool
    validation_source: str
    """how the validation pool was made (recorded in the run's output)"""
    trained_on: int = 0
    """the photos (good-photo data) or pairs (paired data) the training views are made from (recorded too)"""


def _split_pairs(pairs: list, fraction: float) -> tuple[list, list]:
    """The last ``max(1, round(fraction * n))`` of ``pairs`` go to validation (at least one stays)."""
    if fraction <= 0 or len(pairs) < 2:
        return pairs, []
    n = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    return pairs[:-n], pairs[-n:]


def _pair_pool(pairs: list, cfg: TrainConfig, role: str, found: int) -> PairPool:
    """The pool of ``pairs``, refused by name when none was usable: each left-out pair was warned of as it was
    read, and a --data pairs folder keeps its first tenth (one pair at least) for the held-out report, so that one
    pair alone leaves none to train on."""
    if not pairs:
        why = "the warnings above say why pairs were left out"
        if found < 2 and role == "training" and cfg.data == "pairs":
            why = f"it holds {found} pair, kept out for the held-out report: --data pairs needs two or more"
        raise DatasetLayoutError(f"no {role} pair of --data {cfg.data} under {cfg.root or 'the default root'} could "
                                 f"be used; {why}")
    return PairPool.from_pairs(pairs, size=cfg.view)


def build_split_pools(cfg: TrainConfig) -> Pools:
    """The training, validation and held-out pools of the configured data (see :attr:`TrainConfig.validation`).

    Validation and held-out views are detuned by ``cfg.eval_scheme`` with ``cfg.identity_fraction`` untouched
    views, each with its own seed; with too few training photos (or pairs) to hold any out, validation uses
    fresh detunings of the training photos (the training pairs themselves for paired data).
    """
    fraction = cfg.validation
    cfg = resolve_data(cfg)
    if cfg.data in ("pairs", "fivek", "afifi"):
        if cfg.train_fraction != 1.0:
            raise ValueError(f"--train-fraction applies to good photos ({', '.join(GOOD_PHOTO_DATA)}), "
                             f"not to --data {cfg.data}")
        # every pair is read once, and the readable ones are split: an unreadable pair where the held-out or
        # validation pairs are taken from would otherwise leave that pool empty and stop the run
        if cfg.data == "pairs":
            train_ds = paired_dataset("pairs", root=cfg.root)
            readable = view_pairs(train_ds, cfg.view, range(len(train_ds)))
            n_held = max(1, len(readable) // 10)
            held_pairs, readable = readable[:min(n_held, cfg.eval_size)], readable[n_held:]
        else:
            split_train, split_test = ("train", "test") if cfg.data == "fivek" else ("training", "validation")
            train_ds = paired_dataset(cfg.data, root=cfg.root, split=split_train)
            held_ds = paired_dataset(cfg.data, root=cfg.root, split=split_test)
            readable = view_pairs(train_ds, cfg.view, range(len(train_ds)))
            held_pairs = view_pairs(held_ds, cfg.view, range(min(len(held_ds), cfg.eval_size)))
        train_pairs, val_pairs = _split_pairs(readable, fraction)
        val_pool, source = None, "none (validation 0)"
        train_pool = _pair_pool(train_pairs, cfg, "training", len(train_ds))
        if val_pairs:
            val_pool = PairPool.from_pairs(val_pairs[:cfg.eval_size], size=cfg.view)
            source = f"{len(val_pairs)} of the training pairs kept out of training"
        elif fraction > 0:
            val_pool = PairPool.from_pairs(train_pairs[:cfg.eval_size], size=cfg.view)
            source = "the training pairs themselves (too few to keep any out of training)"
        return Pools(train_pool, val_pool, _pair_pool(held_pairs, cfg, "held-out", len(train_ds)), source,
                     len(train_pairs))
    if cfg.data not in GOOD_PHOTO_DATA:
        raise ValueError(f"unknown --data {cfg.data!r}; choose auto, demo, library, folder, pairs, fivek or afifi")
    train, val, held = good_photo_split(cfg)
    if not train or not held:
        raise ValueError("need photos both for training and for the held-out evaluation")
    source = "none (validation 0)"
    if val:
        source = f"{len(val)} of the training photos kept out of training"
    elif fraction > 0:
        val, source = train, "fresh detunings of the training photos (too few photos to keep any out of training)"

    def views(photos, count, scheme, seed):
        return PairPool.from_photos(photos, count, size=cfg.view, scheme=scheme,
                                    identity_fraction=cfg.identity_fraction, seed=seed)

    return Pools(views(train, cfg.pool_size, cfg.scheme, cfg.seed),
                 views(val, cfg.eval_size, cfg.eval_scheme, cfg.seed + 104729) if val else None,
                 views(held, cfg.eval_size, cfg.eval_scheme, cfg.seed + 7919), source, len(train))


def build_pools(cfg: TrainConfig) -> tuple[PairPool, PairPool]:
    """The training pool and the held-out evaluation pool (:func:`build_split_pools` without validation)."""
    pools = build_split_pools(cfg)
    return pools.train, pools.held


def make_core(cfg: TrainConfig, critic: torch.nn.Module | None = None) -> EditCore:
    return EditCore(k=cfg.k, reward=cfg.reward, critic=critic)


def make_model(cfg: TrainConfig, core: EditCore) -> ActorCritic:
    chroma, scale = chroma_action(core) if cfg.chroma else (None, 1.0)
    return ActorCritic(core.steps, core.action_dim, hidden=cfg.hidden, use_cnn=cfg.use_cnn, colour=cfg.colour_stats,
                       deadzone=cfg.deadzone, chroma=chroma, chroma_scale=scale)


def chroma_action(core: EditCore) -> tuple[list[int], float]:
    """The action dimensions of the white balance's temperature and tint in ``core``'s final step, and the stops
    one unit of action moves each (from their ``ParamSpec`` ranges, which must be symmetric and equal, as the
    estimate is in stops of both)."""
    start = 0
    for f in core.pipeline.filters:
        if f.name == "white_balance":
            names = [p.name for p in f.params]
            t, m = (f.params[names.index(n)] for n in ("temperature", "tint"))
            span = t.high - t.identity
            if not span == t.identity - t.low == m.high - m.identity == m.identity - m.low:
                raise ValueError("--chroma needs white-balance temperature and tint ranges symmetric about their "
                                 f"identity and equal, got [{t.low}, {t.high}] and [{m.low}, {m.high}]")
            return [start + names.index("temperature"), start + names.index("tint")], span
        start += f.num_params
    raise ValueError("--chroma needs the white_balance filter among the global filters")


# A policy as a function: the uint8 observation tensors of EditCore.observation() -> B x A actions.
Act = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def actor_critic_act(model: ActorCritic) -> Act:
    """The deterministic action of the project's actor as an :data:`Act`, for one batch of episodes
    (:meth:`ActorCritic.episode`: the input's statistics are computed once)."""
    step = model.episode()
    return lambda obs: step(obs)[0]


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
    the output to the input, "do no harm" (``good_psnr``), with the mean shortfall below 38 dB and the share
    within it (``good_shortfall``, ``good_within``: :func:`~deepexpose.metrics.do_no_harm`). An exact match counts as
    :data:`~deepexpose.metrics.PSNR_CAP` (100 dB) everywhere, so that a detuning that happened to change
    nothing in 8 bits cannot make a mean infinite.
    """
    from deepexpose.metrics import capped_psnr as psnr
    from deepexpose.metrics import delta_e2000

    if not pool.paired:
        raise ValueError("evaluation needs a pool with targets")
    detuned, good = [], []
    for start in range(0, len(pool), batch):
        idx = list(range(start, min(len(pool), start + batch)))
        x, t = pool.get(idx, device)
        out, _ = run_policy(model, core, x, t)
        for j, i in enumerate(idx):
            if pool.records[i].get("class") == "correct":
                good.append(psnr(out[j], x[j]))
            else:
                detuned.append((psnr(out[j], t[j]), delta_e2000(out[j], t[j]), psnr(x[j], t[j]),
                                delta_e2000(x[j], t[j])))
    result: dict[str, float] = {}
    if detuned:
        keys = ("psnr", "delta_e2000", "input_psnr", "input_delta_e2000")
        result.update({k: sum(col) / len(col) for k, col in zip(keys, zip(*detuned, strict=True), strict=True)})
    if good:
        result.update(do_no_harm(good))
    return result


GOOD_PSNR_FLOOR = DO_NO_HARM_PSNR
"""Untouched views that come back below this PSNR (dB) are penalised by :func:`selection_score`."""


def selection_score(result: dict) -> float:
    """The score that chooses the best checkpoint, from an :func:`evaluate` result on the validation pool::

        score = psnr - mean_i max(0, 38 - good_psnr_i)

    ``psnr``: mean PSNR of the edited detuned views to their targets; ``good_psnr_i``: PSNR of untouched
    ("correct") view i to itself, so that harming any good photo below 38 dB costs its dB of harm over the number of
    untouched views ("do no harm", ``good_shortfall`` of :func:`~deepexpose.metrics.do_no_harm`). Charging the mean
    instead (``max(0, 38 - mean good_psnr)``, the rule before session 30) let copies at 100 dB hide ruined photos.
    A result with ``good_psnr`` but no ``good_shortfall`` (one saved before session 30) is charged by its mean.
    A missing term (no detuned or no untouched views) counts 0.
    """
    if "good_shortfall" in result:
        penalty = float(result["good_shortfall"])
    else:
        penalty = max(0.0, GOOD_PSNR_FLOOR - result["good_psnr"]) if "good_psnr" in result else 0.0
    return float(result.get("psnr", 0.0)) - penalty


def rescored_best(best: dict, validation: dict) -> dict:
    """``best`` (a run's best-checkpoint record) with ``validation`` (its weights scored again on the validation pool)
    and the :func:`selection_score` of that; warns when the score changes. For a resumed run whose best was scored
    before session 30 (:func:`stale_best`): the rule of then charged the shortfall of the untouched views' mean,
    never more than the present one, so an old best would be kept over evaluations that beat it now."""
    score = selection_score(validation)
    if score != best["score"]:
        from deepexpose import DeepExposeWarning

        warnings.warn(f"--resume: the best checkpoint (step {best['step']}) was scored by the selection rule before "
                      f"session 30; scored again on its validation photos: {best['score']:.2f} -> {score:.2f}",
                      DeepExposeWarning, stacklevel=3)
    return {**best, "score": score, "validation": validation}


def stale_best(best: dict | None) -> bool:
    """Whether a best-checkpoint record was scored before session 30: its validation result has untouched views
    (``good_psnr``) but no per-view shortfall (``good_shortfall``), so its score is the rule of then."""
    validation = (best or {}).get("validation") or {}
    return "good_psnr" in validation and "good_shortfall" not in validation


RESUME_KEYS = ("algo", "data", "root", "scheme", "eval_scheme", "identity_fraction", "pool_size", "eval_size",
               "holdout", "view", "k", "reward", "batch", "use_cnn", "colour_stats", "hidden", "deadzone", "chroma",
               "seed", "validation", "train_fraction", "library_packages", "library_holdout", "lr", "critic_lr")
"""The settings a resumed run must share with the run that saved the checkpoint."""


def check_resume(saved: dict, cfg: TrainConfig, out: Path) -> None:
    """Refuse to resume, with the differing settings named, when ``cfg`` differs from the checkpoint's ``saved``
    config in any of :data:`RESUME_KEYS` (keys older runs did not save count as their defaults)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    changed = [k for k in RESUME_KEYS if not _same_setting(k, saved.get(k, defaults[k]), getattr(cfg, k))]
    if changed:
        raise ValueError(f"--resume: the checkpoint in {out} was made with other settings: "
                         + ", ".join(f"{k}={saved.get(k, defaults[k])!r} (now {getattr(cfg, k)!r})"
                                     for k in changed))


def warn_if_done(step: int, cfg: TrainConfig, out: Path) -> None:
    """Warn that a resumed run whose checkpoint is already at ``cfg.steps`` or past it trains nothing (it ended at
    the checkpoint's step without a word)."""
    if step >= cfg.steps:
        warnings.warn(f"--resume: the checkpoint in {out} is at step {step}, already at or past --steps {cfg.steps}: "
                      "nothing is trained (raise --steps to train on)", DeepExposeWarning, stacklevel=3)


def _same_setting(key: str, saved, now) -> bool:
    """Whether a saved setting and the current one agree; ``root`` is compared as the folder it names
    (``data/good/``, ``./data/good`` and its absolute path are one folder; ``~`` is expanded), and the lists
    ``holdout`` and ``library_packages`` as sets of names (their order and spaces change nothing)."""
    if key == "root" and saved and now and isinstance(saved, str):
        return Path(saved).expanduser().resolve() == Path(now).expanduser().resolve()
    if key in ("holdout", "library_packages") and isinstance(saved, str) and isinstance(now, str):
        return {n.strip() for n in saved.split(",") if n.strip()} == {n.strip() for n in now.split(",") if n.strip()}
    return saved == now


def save_config(cfg: TrainConfig, out: Path) -> None:
    from deepexpose.io import atomic_write_bytes

    atomic_write_bytes(out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode(), overwrite=True)


RUN_FILES = ("checkpoint.safetensors", "checkpoint.json", "best.safetensors", "best.json", "eval.json", "tb",
             "evaluated")
"""What a training run leaves in its ``--out`` (config.json aside, which every run rewrites)."""


def earlier_run(out: str | Path) -> list[str]:
    """The files of :data:`RUN_FILES` an earlier training run left in ``out`` (none: ``[]``)."""
    out = Path(out)
    return [n for n in RUN_FILES if (out / n).exists() or (out / n).is_symlink()]


def check_fresh_out(out: Path, overwrite: bool) -> list[str]:
    """For a fresh (not resumed) run: the files an earlier run left in ``out`` (:data:`RUN_FILES`), refused unless
    ``overwrite``, so that no best, evaluation or TensorBoard curve of another run is mixed into this one's. Call
    :func:`remove_run_files` on them once the new run is ready to start (its photos read), so that a run that
    cannot start loses nothing."""
    found = earlier_run(out)
    if found and not overwrite:
        resume = "pass --resume to continue it, " if "checkpoint.json" in found else ""
        raise FileExistsError(f"{out} holds an earlier run ({', '.join(found)}): {resume}choose another --out, or "
                              "pass --overwrite to remove it and start afresh")
    return found


def remove_run_files(out: Path, names: Sequence[str]) -> None:
    """Remove the run files ``names`` (from :func:`check_fresh_out`) from ``out``."""
    import shutil

    for name in names:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def prepare_fresh_out(out: Path, overwrite: bool) -> None:
    """:func:`check_fresh_out` and :func:`remove_run_files` at once."""
    remove_run_files(out, check_fresh_out(out, overwrite))


def resume_note(out: str | Path) -> str:
    """What ``--resume`` continues from in ``out``: for the message of an interrupted run."""
    from .checkpoint import read_meta

    try:
        meta = read_meta(Path(out) / "checkpoint.safetensors")
    except (OSError, ValueError):
        return f"no checkpoint was saved in {out} yet: rerun with --resume (or --overwrite) to start afresh"
    step = meta.get("step", meta.get("num_timesteps"))
    return f"--resume continues from the checkpoint of step {step} in {out}"


def refuse_earlier_run(out: str | Path, model: str, overwrite: bool) -> None:
    """A baseline's ``--out`` that holds a run already (its model, its ``eval.json`` or an agent's checkpoint) is
    refused unless ``overwrite``: training would replace them; an ``--out`` that is a file is refused too."""
    from deepexpose.io import output_folder

    out = output_folder(out, "--out")
    found = [n for n in (model, "eval.json", "checkpoint.safetensors") if (out / n).exists()]
    if found and not overwrite:
        raise FileExistsError(f"{out} holds an earlier run already ({', '.join(found)}): choose another --out, or "
                              "pass --overwrite to replace its model")


MIN_VIEW = 16
"""the smallest view the policy's CNN and the sub-image segmentation work on"""


MAX_SEED = 2 ** 32 - 1  # numpy's and every seed derived from it stay within 64 bits
OVERSUBSCRIBE = 4  # most --threads or --workers per core


def check_common_options(cfg) -> None:
    """What every trainer's config (any of them) refuses, naming the option, before any work: a number that is not
    finite (``--lr inf`` trained a model of NaNs; ``--minutes nan`` was written into its JSON), ``--steps`` below 1,
    a ``--seed`` outside 32 bits, more than :data:`OVERSUBSCRIBE` ``--threads`` per core (or ``--workers``, the own
    trainer's processes; stable-baselines3's are environments batched in one process), and
    ``--data`` of a folder without ``--root`` (the baselines then trained on the current folder)."""
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{field.name.replace('_', '-')} must be a finite number, got {value}")
    if getattr(cfg, "steps", 1) < 1:  # 0 trained nothing and wrote the untrained model as a finished one
        raise ValueError(f"--steps must be >= 1, got {cfg.steps}")
    if not 0 <= cfg.seed <= MAX_SEED:  # a larger one failed in torch with "Overflow when unpacking long long"
        raise ValueError(f"--seed must be in 0..{MAX_SEED}, got {cfg.seed}")
    cores = available_cores()
    processes = ("threads", "workers") if getattr(cfg, "algo", "") in OWN_ALGOS else ("threads",)  # SB3: batched envs
    for name in processes:  # --threads 100000 crashed torch (segmentation fault)
        if getattr(cfg, name, 0) > OVERSUBSCRIBE * cores:
            raise ValueError(f"--{name} {getattr(cfg, name)} is more than {OVERSUBSCRIBE} per core of the {cores} "
                             f"here (0: one per core)")
    if getattr(cfg, "data", "") in ("folder", "pairs", "fivek", "afifi") and not getattr(cfg, "root", ""):
        raise ValueError(f"--data {cfg.data} needs --root (the folder that holds the photos)")


def check_config(cfg: TrainConfig) -> None:
    """Refuse, naming the option, values that cannot train (before any photo is loaded)."""
    check_common_options(cfg)
    rules = [(cfg.reward in REWARDS, f"--reward must be one of {', '.join(REWARDS)}, got {cfg.reward!r}"),
             (cfg.algo != "ppo" or cfg.batch >= 2, f"--batch must be >= 2 with --algo ppo (it normalises advantages "
                                                   f"per minibatch), got {cfg.batch}"),
             (cfg.minutes >= 0, f"--minutes must be >= 0 (0: no time budget), got {cfg.minutes}"),
             (cfg.workers >= 0, f"--workers must be >= 0 (0: one per core), got {cfg.workers}"),
             (cfg.batch >= 1, f"--batch must be >= 1, got {cfg.batch}"),
             (cfg.pool_size >= 1, f"--pool-size must be >= 1, got {cfg.pool_size}"),
             (cfg.eval_size >= 1, f"--eval-size must be >= 1, got {cfg.eval_size}"),
             (0 <= cfg.validation < 1, f"--validation must be in [0, 1), got {cfg.validation}"),
             (0 <= cfg.identity_fraction < 1, f"--identity-fraction must be in [0, 1), got {cfg.identity_fraction}"),
             (cfg.hidden >= 1, f"--hidden must be >= 1, got {cfg.hidden}"),
             (cfg.k >= 1, f"--k must be >= 1, got {cfg.k}"),
             (cfg.view >= MIN_VIEW, f"--view must be >= {MIN_VIEW}, got {cfg.view}"),
             (cfg.lr > 0 and cfg.critic_lr > 0, f"--lr and --critic-lr must be > 0, got {cfg.lr} and {cfg.critic_lr}"),
             (cfg.eval_every >= 0 and cfg.checkpoint_every >= 0, "--eval-every and --checkpoint-every must be >= 0"),
             (not (cfg.resume and cfg.overwrite), "--resume continues the run in --out and --overwrite removes it: "
                                                  "pass one of them")]
    for ok, message in rules:
        if not ok:
            raise ValueError(message)


def train(cfg: TrainConfig) -> dict:
    """Train ``cfg.algo``; returns the final evaluation (also written to ``out/eval.json``)."""
    check_config(cfg)
    if cfg.keep_evaluated and cfg.algo not in OWN_ALGOS:
        raise ValueError(f"--keep-evaluated needs --algo {' or '.join(OWN_ALGOS)}: only their agents are loaded by "
                         "deepexpose enhance")
    given, cfg = cfg.data, resolve_data(cfg)
    warn_unused_data_options(cfg, given)
    if cfg.algo in OWN_ALGOS:
        from .async_ac import train_async

        return train_async(cfg)
    if cfg.algo in SB3_ALGOS:
        from .sb3 import train_sb3

        return train_sb3(cfg)
    raise ValueError(f"unknown --algo {cfg.algo!r}; choose from {', '.join(OWN_ALGOS + SB3_ALGOS)}")
