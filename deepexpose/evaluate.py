"""``deepexpose evaluate``: score correction methods on a paired benchmark, the way the literature reports it.

Datasets (:mod:`deepexpose.data`): ``fivek`` (FiveK 480p of Zeng et al.: ``input/JPG/480p``, ``expertC/JPG/480p``,
``test.txt``), ``exposure-split`` (the 2000/2000/1000 FiveK split of Hu et al.), ``afifi`` (the multi-exposure
renders of Afifi et al., CVPR 2021), ``pairs`` (``input/`` and ``target/`` folders) and ``synthetic`` (good
photos given known errors; by default the photos no bundled model was trained on, see
:mod:`deepexpose.data.synthetic`).

Each input is quantised to 8 bits, corrected by every method (``plan`` then ``render`` at the image's own size;
the seconds of that are timed after one warm-up call per method) and scored against its target with
:mod:`deepexpose.metrics` (FiveK-480p protocol: 8-bit, whole RGB image, per image then averaged): PSNR, SSIM,
ΔEab (CIE76) and CIEDE2000. An exact match scores :data:`PSNR_CAP` dB instead of infinity so that means stay
finite. Written to ``--out``:

- ``results.json``: settings, per-image scores, means per method (and per group: the synthetic case or the
  Afifi exposure offset), parameter counts, seconds per image, skipped images and failures;
- ``per_image.csv``: one row per image and method;
- ``results.md``: the table printed at the end (on FiveK test / expert C, the published figures of other
  systems follow, marked as published);
- ``contact_sheet.png``: for a few images, a row input | each method | target with PSNR / ΔE00 captions, and
  below it a row of per-pixel CIEDE2000 heat maps against the target (colour bar in the target's place);
- ``outputs/<method>/<name>.png`` with ``--save-outputs`` (plus ``outputs/input`` and ``outputs/target``), so
  that ``deepexpose score OUT/outputs/agent OUT/outputs/target`` or anyone's own tools can rescore them.

Images whose target is missing, unreadable or of another size are reported and skipped; a method that fails
on one image is reported for that image (exit status 1) and the rest goes on.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .device import resolve_device
from .metrics import DO_NO_HARM_PSNR, METRIC_NAMES, PSNR_CAP, SSIM_MIN_SIDE, capped_pair

__all__ = ["DATASETS", "EvaluateConfig", "HEAT_MAX", "PSNR_CAP", "PUBLISHED_FIVEK", "colour_bar", "heat_map",
           "markdown_table", "open_dataset", "run_evaluation"]

DATASETS = ("fivek", "exposure-split", "afifi", "pairs", "synthetic")
ALL_METHODS = "agent,cgan,classifier,histogram,identity,classic"
HEAT_MAX = 20.0
"""CIEDE2000 at which the heat map saturates (the brightest colour)."""
PUBLISHED_FIVEK = {  # FiveK 480p, expert C, test.txt: PSNR, SSIM, ΔEab as published (not measured here)
    "AdaInt (Yang et al., CVPR 2022)": (25.49, 0.926, 7.47),
    "3D-LUT (Zeng et al., TPAMI 2020)": (25.21, 0.922, 7.61),
    "HDRNet (Gharbi et al., SIGGRAPH 2017)": (24.66, 0.915, 8.06),
    "White-box RL (Hu et al., SIGGRAPH 2018)": (21.32, 0.864, 12.65),
}
METRIC_LABELS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "delta_e76": "ΔEab ↓", "delta_e2000": "ΔE00 ↓"}


@dataclass
class EvaluateConfig:
    dataset: str = "synthetic"
    """fivek (FiveK 480p: ROOT/input/JPG/480p, ROOT/expertC/JPG/480p, ROOT/test.txt), exposure-split (FiveK
    split of Hu et al.), afifi (Afifi et al. multi-exposure layout), pairs (ROOT/input and ROOT/target),
    synthetic (good photos given known errors)"""
    root: str = ""
    """dataset folder; synthetic: a folder of good photos (default: the photos no bundled model trained on,
    the held-out demo photos plus the held-out part of the photo library when scripts/get_photos.py fetched it)"""
    split: str = "test"
    """fivek: train, train_input, train_label or test; exposure-split: A, B or test; afifi: training,
    validation or test(ing); pairs and synthetic have none"""
    expert: str = "C"
    """whose retouch is the target (FiveK and Afifi: A to E)"""
    methods: str = ALL_METHODS
    """comma-separated methods to compare (agent, cgan, classifier, histogram, identity, classic)"""
    models: str = ""
    """model files as METHOD=PATH, comma-separated (default: each method's bundled model)"""
    cases: str = "basic"
    """synthetic: comma-separated errors given to each photo: basic (exposure, white balance, contrast,
    saturation), mixed, single, afifi, crosstalk, highlight_rolloff, falloff, untouched (do no harm)"""
    draws: int = 1
    """synthetic: errors drawn per photo and case (untouched is drawn once); more draws narrow the standard
    error of a comparison (scripts/paired_difference.py)"""
    size: int = 512
    """short side images are shrunk to before correction (never enlarged; 0 keeps them whole; FiveK 480p is
    already smaller)"""
    limit: int = 0
    """evaluate only the first N images (synthetic: the first N photos, each with every case; 0: all)"""
    seed: int = 0
    """seed of the synthetic errors and of the images chosen for the contact sheet"""
    sheet: int = 4
    """images on the contact sheet, chosen at random (0: no sheet)"""
    sheet_images: str = ""
    """comma-separated image names for the contact sheet instead of a random choice"""
    save_outputs: bool = False
    """keep every method's output as OUT/outputs/METHOD/NAME.png (and the inputs and targets beside them)"""
    out: str = "runs/evaluate"
    """output folder: results.json, per_image.csv, results.md, contact_sheet.png"""
    overwrite: bool = False
    """replace the results of an earlier run in --out"""
    single_view: bool = False
    """the agent chooses each edit on the whole-photo view alone, as ``deepexpose enhance --single-view``"""
    untouched_within: float = 0.0
    """the agent leaves a photo untouched when its edit would keep it within this many dB, as ``deepexpose enhance
    --untouched-within``"""
    device: str = "cpu"
    """cpu, cuda or auto"""
    progress: bool = True
    """show a progress bar (on a terminal: none is drawn into a log or a pipe)"""


# --------------------------------------------------------------------------------------------- datasets


def open_dataset(cfg: EvaluateConfig):
    """The paired dataset of ``cfg`` (items ``{"input", "target", "name", ...}``); layouts read ``missing="skip"``
    so that an image without a target is listed in ``dataset.skipped`` instead of stopping the run."""
    from .data import registry
    from .data.folders import require_dir

    name = cfg.dataset.strip().lower().replace("_", "-")
    if name not in DATASETS:
        raise ValueError(f"unknown --dataset {cfg.dataset!r}; choose from {', '.join(DATASETS)}")
    split = cfg.split.strip()
    if name in ("pairs", "synthetic") and split not in ("", "test"):
        raise ValueError(f"--dataset {name} has no splits; drop --split {split}")
    defaults = EvaluateConfig()
    if name in ("pairs", "synthetic") and cfg.expert != defaults.expert:
        raise ValueError(f"--dataset {name} has no experts' retouches; drop --expert {cfg.expert}")
    if name != "synthetic" and (cfg.cases != defaults.cases or cfg.draws != defaults.draws):
        raise ValueError("--cases and --draws choose the errors of --dataset synthetic; drop them for "
                         f"--dataset {name}")
    if name == "synthetic":
        return registry.make_dataset("synthetic", root=cfg.root or None, cases=cfg.cases, seed=cfg.seed,
                                     size=cfg.size, limit=cfg.limit, draws=cfg.draws)
    if not cfg.root:
        raise ValueError(f"--dataset {name} needs --root, the folder that holds the dataset")
    require_dir(cfg.root, f"{name} dataset root")
    if name == "fivek":
        return registry.make_dataset("fivek", root=cfg.root, split=split, expert=cfg.expert, missing="skip")
    if name == "exposure-split":
        return registry.make_dataset("exposure-split", root=cfg.root, part=split, expert=cfg.expert, images="pair",
                                     missing="skip")
    if name == "afifi":
        return registry.make_dataset("afifi", root=cfg.root, split="testing" if split == "test" else split,
                                     expert=cfg.expert, missing="skip")
    return registry.make_dataset("pairs", root=cfg.root, missing="skip")


def _group(item: dict) -> str:
    """The sub-table an item belongs to: its synthetic case or its Afifi exposure offset (``"unknown EV"`` for a
    name whose suffix names none; "" for no group)."""
    if "case" in item:
        return str(item["case"])
    if "ev" not in item:
        return ""
    ev = item["ev"]
    return f"{ev:+g} EV" if isinstance(ev, float) and not math.isnan(ev) else UNKNOWN_EV


UNKNOWN_EV = "unknown EV"
"""the group of an Afifi input whose name ends in no known exposure suffix"""


def _group_key(group: str) -> tuple:
    """Groups in table order: exposure offsets from the darkest up, then an unknown one, then the others by name."""
    if group.endswith(" EV") and group != UNKNOWN_EV:
        return (0, float(group[:-3]), "")
    return (1 if group == UNKNOWN_EV else 2, 0.0, group)


# --------------------------------------------------------------------------------------------- heat maps

# Anchors of a perceptually ordered dark-to-bright ramp (close to matplotlib's "inferno").
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


def _ramp(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> ``... x 3`` uint8 colours of :data:`_RAMP` (linear between anchors)."""
    pos = np.clip(x, 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.minimum(pos.astype(np.int64), len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    return np.round(_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).astype(np.uint8)


def delta_e_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 between two ``H x W x 3`` uint8 sRGB images (``H x W`` float64)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    if pred.shape != target.shape:
        raise ValueError(f"heat map of images of different shapes: {pred.shape} vs {target.shape}")
    return deltaE_ciede2000(rgb2lab(pred / 255.0), rgb2lab(target / 255.0))


def heat_map(pred: np.ndarray, target: np.ndarray, max_delta_e: float = HEAT_MAX) -> np.ndarray:
    """Where ``pred`` errs: per-pixel CIEDE2000 against ``target`` as colours, black at 0, pale yellow at
    ``max_delta_e`` and above (``H x W x 3`` uint8)."""
    return _ramp(delta_e_map(pred, target) / max_delta_e)


def colour_bar(height: int, width: int, max_delta_e: float = HEAT_MAX) -> np.ndarray:
    """The heat maps' scale as an image: the ramp from ``max_delta_e`` (top) to 0 (bottom), with labels."""
    from PIL import Image, ImageDraw

    if height < 2 or width < 2:
        raise ValueError(f"colour bar of {width}x{height} pixels is too small")
    values = np.linspace(1.0, 0.0, height)[:, None].repeat(max(1, width // 3), axis=1)
    bar = np.full((height, width, 3), 255, np.uint8)
    bar[:, : values.shape[1]] = _ramp(values)
    im = Image.fromarray(bar)
    draw = ImageDraw.Draw(im)
    x = values.shape[1] + 3
    size = max(8, height // 16)
    for frac, text in ((0.0, f"{max_delta_e:g}+"), (0.5, f"{max_delta_e / 2:g}"), (1.0, "0")):
        y = min(height - size - 1, max(0, round(frac * (height - 1)) - size // 2))
        draw.text((x, y), text, fill=(0, 0, 0), font_size=size)
    draw.text((x, height // 4), "dE00", fill=(0, 0, 0), font_size=size)
    return np.asarray(im)


# --------------------------------------------------------------------------------------------- the run


def _parse_models(text: str, methods: list[str]) -> dict[str, str]:
    models: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, path = part.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"--models takes METHOD=PATH pairs, got {part!r}")
        if name.strip() not in methods:
            raise ValueError(f"--models names {name.strip()!r}, which is not among --methods {','.join(methods)}")
        models[name.strip()] = path.strip()
    return models


def _trained_on(model: str | os.PathLike | None, names: list[str]) -> list[str]:
    """Which photos of the synthetic errors' image ``names`` the ``model`` (its JSON's training config) was trained
    or validated on (:func:`~deepexpose.agents.train.training_photo_names`); none when that cannot be told."""
    from .agents.checkpoint import read_meta
    from .agents.train import training_photo_names
    from .data.synthetic import photo_of

    if not model:
        return []
    meta = read_meta(model)
    trained = meta.get("trained")
    config = meta.get("config") or (trained.get("config") if isinstance(trained, dict) else None)
    seen = training_photo_names(config) if isinstance(config, dict) else None
    return sorted({photo_of(n) for n in names} & seen) if seen else []


def _as_u8(t: torch.Tensor) -> np.ndarray:
    from .io import from_tensor, quantize

    return quantize(from_tensor(t), 8)


def _scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    return capped_pair(pred, target)


def _exact(pred: np.ndarray, target: np.ndarray) -> bool:
    """Bit for bit the same (a PSNR at the cap can still differ by a few 8-bit levels in a large image)."""
    return bool(np.array_equal(pred, target))


UNTOUCHED = "untouched"
"""The group of good photos given as they are: scored by how many come back within ``DO_NO_HARM_PSNR``."""


def _mean(rows: list[dict]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_NAMES}
    out["median_psnr"] = float(np.median([r["psnr"] for r in rows]))
    out["images"] = len(rows)
    return out


def _untouched(rows: list[dict]) -> dict[str, float]:
    """:func:`_mean` plus how many images come back within ``DO_NO_HARM_PSNR`` of themselves, and how many bit for
    bit (the rows' ``exact``)."""
    return {**_mean(rows), "within_do_no_harm": int(sum(r["psnr"] >= DO_NO_HARM_PSNR for r in rows)),
            "exact": int(sum(bool(r.get("exact")) for r in rows))}


def summarise(per_image: list[dict], methods: list[str]) -> dict[str, dict]:
    """Per method: means (and the median PSNR) over all its scored images and per group, and mean seconds per
    image; the untouched group also counts the photos kept within ``DO_NO_HARM_PSNR`` dB and those kept exactly."""
    summary: dict[str, dict] = {}
    for m in methods:
        rows = [r for r in per_image if r["method"] == m]
        if not rows:
            summary[m] = {"all": {"images": 0}, "groups": {}, "seconds_per_image": math.nan}
            continue
        groups = sorted({r["group"] for r in rows if r["group"]}, key=_group_key)
        summary[m] = {"all": _mean(rows),
                      "groups": {g: (_untouched if g == UNTOUCHED else _mean)([r for r in rows if r["group"] == g])
                                 for g in groups},
                      "seconds_per_image": float(np.mean([r["seconds"] for r in rows]))}
    return summary


def _fmt(value: float, digits: int) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_table(summary: dict[str, dict], parameters: dict[str, int], published: dict | None = None) -> str:
    """The results as Markdown: one row per method (and per published system, marked so), one table per group
    after the overall one when there are groups."""
    head = ["method", *METRIC_LABELS.values(), "s / image", "parameters", "images"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    digits = {"psnr": 2, "ssim": 3, "delta_e76": 2, "delta_e2000": 2}
    for m, s in summary.items():
        a = s["all"]
        cells = [m, *[_fmt(a.get(k, math.nan), digits[k]) for k in METRIC_NAMES],
                 _fmt(s["seconds_per_image"], 3), f"{parameters.get(m, 0):,}", str(a["images"])]
        lines.append("| " + " | ".join(cells) + " |")
    for system, (p, ss, de) in (published or {}).items():
        lines.append(f"| {system}, *published* | {p:.2f} | {ss:.3f} | {de:.2f} | – | – | – | – |")
    groups = sorted({g for s in summary.values() for g in s["groups"]}, key=_group_key)
    for g in groups if len(groups) > 1 else []:
        lines += ["", f"**{g}**", "", "| method | " + " | ".join(METRIC_LABELS.values()) + " | images |",
                  "|" + "---|" * (len(METRIC_LABELS) + 2)]
        for m, s in summary.items():
            if g in s["groups"]:
                r = s["groups"][g]
                lines.append(f"| {m} | " + " | ".join(_fmt(r[k], digits[k]) for k in METRIC_NAMES)
                             + f" | {r['images']} |")
    kept = {m: s["groups"][UNTOUCHED] for m, s in summary.items() if UNTOUCHED in s["groups"]}
    if kept:
        lines += ["", f"**{UNTOUCHED}: do no harm**", ""]
        lines += [f"- {m}: {r['within_do_no_harm']} of {r['images']} within {DO_NO_HARM_PSNR:g} dB of themselves "
                  f"({r['exact']} exactly), median {r['median_psnr']:.2f} dB" for m, r in kept.items()]
    return "\n".join(lines)


def _placeholder(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, 200, np.uint8)


def _sheet(entries: list[dict], methods: list[str]) -> np.ndarray:
    """Two rows per entry: input | methods | target with scores, and their CIEDE2000 heat maps."""
    from .sheet import contact_sheet

    cell = 192
    rows, captions = [], []
    for e in entries:
        tgt, px = e["target"], e["input"]
        outs = [e["outputs"].get(m) for m in methods]
        rows.append([px, *[o if o is not None else _placeholder(px.shape) for o in outs], tgt])
        bar = colour_bar(cell, max(48, round(cell * tgt.shape[1] / tgt.shape[0])))
        rows.append([heat_map(px, tgt), *[heat_map(o, tgt) if o is not None else _placeholder(px.shape)
                                          for o in outs], bar])
        sc = [e["input_scores"], *[e["scores"].get(m) for m in methods]]
        captions.append([*[f"{s['psnr']:.1f} dB  dE00 {s['delta_e2000']:.1f}" if s else "failed" for s in sc],
                         e["name"]])
        captions.append([*[f"mean dE00 {s['delta_e2000']:.1f}" if s else "" for s in sc], ""])
    return contact_sheet(rows, ["input", *methods, "target"], cell=cell, captions=captions)


def _sheet_indices(cfg: EvaluateConfig, names: list[str]) -> tuple[list[int], dict[int, int]]:
    """The images asked for on the contact sheet, as indices of ``names`` (those of ``--sheet-images``, or the first
    ``--sheet`` of a draw with ``--seed``), and for a draw every image's rank in it: the sheet shows the ``--sheet``
    images of lowest rank among those scored, so that one that cannot be scored is replaced by the next."""
    if cfg.sheet_images:
        wanted = [n.strip() for n in cfg.sheet_images.split(",") if n.strip()]
        if missing := [n for n in wanted if n not in names]:
            raise ValueError(f"--sheet-images: no image named {', '.join(missing)} in the dataset "
                             f"(names look like {', '.join(names[:3])})")
        return [names.index(n) for n in wanted], {}
    k = min(max(cfg.sheet, 0), len(names))
    order = random.Random(cfg.seed).sample(range(len(names)), len(names)) if k else []
    return sorted(order[:k]), {j: r for r, j in enumerate(order)}


REPORTS = ("results.json", "per_image.csv", "results.md", "contact_sheet.png")
"""the files an evaluation writes to its output folder (``results.json`` last: it marks a complete run)"""


def _remove_earlier_run(out: Path) -> None:
    """What an earlier evaluation wrote to ``out``: its reports (:data:`REPORTS`, so that a run that now fails
    leaves none of them to be taken for its own), the PNGs of ``outputs/**``, and the folders they leave empty;
    nothing else is touched."""
    for report in REPORTS:
        (out / report).unlink(missing_ok=True)
    for png in sorted((out / "outputs").rglob("*.png")):
        png.unlink(missing_ok=True)
    for folder in sorted((out / "outputs").rglob("*"), key=lambda p: -len(p.parts)) + [out / "outputs"]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _inside(out: Path, root: Path) -> str:
    """``"is"`` or ``"lies inside"`` where the folder ``out`` is ``root`` or lies inside it or inside a folder a
    symbolic link under ``root`` leads to (``input -> ../photos/input``), links followed; ``""`` otherwise."""
    out = out.resolve()
    folders = [root.resolve()]
    for here, dirs, _ in os.walk(root):  # links are not followed: each one is looked at once, where it is
        folders += [Path(here, d).resolve() for d in dirs if os.path.islink(os.path.join(here, d))]
    for folder in folders:
        if out == folder or out.is_relative_to(folder):
            return "is" if out == folder else "lies inside"
    return ""


def run_evaluation(cfg: EvaluateConfig) -> dict:
    """Evaluate every method of ``cfg`` on its dataset and write the reports (see the module docstring).
    Returns the record written to ``results.json`` (plus ``"table"``, the Markdown)."""
    from .io import atomic_write_bytes, output_folder, undecodable_escaped, writable_folder, write_image
    from .methods import METHODS, bundled_model, load_method, view_options

    methods = [m.strip() for m in cfg.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty")
    if bad := [m for m in methods if m not in METHODS]:
        raise ValueError(f"unknown --methods {', '.join(bad)}; choose from {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"--methods lists a method twice: {cfg.methods}")
    for option, value in (("--size", cfg.size), ("--limit", cfg.limit), ("--sheet", cfg.sheet)):
        if value < 0:
            raise ValueError(f"{option} must be >= 0 (0: {'none' if option == '--sheet' else 'all'}), got {value}")
    if (cfg.single_view or cfg.untouched_within) and "agent" not in methods:
        raise ValueError("--single-view and --untouched-within apply to the agent, which --methods does not list")
    models = _parse_models(cfg.models, methods)
    out = output_folder(cfg.out, "-o")
    if cfg.root and (inside := _inside(out, Path(cfg.root))):
        raise ValueError(f"-o {cfg.out} {inside} the dataset folder {cfg.root}: the reports and images written there "
                         "would be mixed with its photos (and read as photos by a later run); choose another -o")
    earlier = [name for name in REPORTS if os.path.lexists(out / name)]
    if earlier and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds {', '.join(earlier)}: pass --overwrite to replace "
                              f"{'them' if len(earlier) > 1 else 'it'} or choose another --out")
    leftover = (out / "outputs").is_dir() and any(p.is_file() for p in (out / "outputs").rglob("*.png"))
    if leftover and not cfg.overwrite:  # an interrupted --save-outputs run: its images would be mixed with these
        raise FileExistsError(f"{out / 'outputs'} holds the images of an unfinished evaluation: pass --overwrite to "
                              "replace them or choose another --out")
    writable_folder(out, "-o")  # the reports are written at the end: not after the whole evaluation has run

    dataset = open_dataset(cfg)
    names = list(dataset.names)
    synthetic = cfg.dataset.strip().lower() == "synthetic"  # its limit counts photos (open_dataset applies it)
    count = min(len(names), cfg.limit) if cfg.limit and not synthetic else len(names)
    available = len(names)
    names, whole = names[:count], count == len(names)
    chosen, rank = _sheet_indices(cfg, names)
    reasons = getattr(dataset, "reasons", {})  # FiveK's: which file of an id lacks
    skipped = [{"name": str(s), "reason": reasons.get(s, "no target (or no input) found")}
               for s in getattr(dataset, "skipped", [])]
    skipped += [{"name": str(s), "reason": "a target without an input"} for s in getattr(dataset, "without_input", [])]
    notes = list(getattr(dataset, "notes", []))
    unpaired = len(skipped)  # the images tried are reported after these

    device = str(resolve_device(cfg.device))
    loaded, parameters, described = {}, {}, {}
    for m in methods:
        method = load_method(m, models.get(m), device, **view_options(m, cfg.single_view, cfg.untouched_within))
        warm = np.full((64, 64, 3), 128, np.uint8)
        method.plan(warm).render(warm, 1.0)  # first calls allocate and compile: keep them out of the timing
        loaded[m], parameters[m], described[m] = method, method.parameter_count(), method.describe()
    if synthetic and not cfg.root:
        for m in methods:
            model = models.get(m) or (bundled_model(m) if described[m].get("model") else None)
            if seen := _trained_on(model, names):
                from . import DeepExposeWarning

                line = (f"{m} ({described[m]['model']}) was trained or validated on {len(seen)} of the photos measured "
                        f"here ({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): its figures are not those "
                        "of photos it never saw")
                notes.append(line)
                warnings.warn(line, DeepExposeWarning, stacklevel=2)
    if earlier or leftover:  # --overwrite, and data and methods are ready: replace the run
        _remove_earlier_run(out)

    per_image: list[dict] = []
    failures: list[dict] = []
    sheet_entries: list[dict] = []
    bar = None
    if cfg.progress and count:
        from tqdm import tqdm

        bar = tqdm(total=count, unit="image", desc="evaluate", file=sys.stderr, disable=None)
    try:
        for i in range(count):
            name = names[i]
            try:
                item = dataset[i]
                x, t = item["input"], item["target"]
                if tuple(x.shape) != tuple(t.shape):
                    raise ValueError(f"input is {x.shape[-1]}x{x.shape[-2]} but target is {t.shape[-1]}x{t.shape[-2]}")
                if min(x.shape[-2:]) < SSIM_MIN_SIDE:
                    raise ValueError(f"{x.shape[-1]}x{x.shape[-2]} is too small to score (SSIM needs at least "
                                     f"{SSIM_MIN_SIDE} pixels a side)")
            except Exception as e:  # noqa: BLE001 - one unreadable pair is reported, never fatal
                skipped.append({"name": name, "reason": f"{type(e).__name__}: {e}"})
                if bar is not None:
                    bar.update()
                continue
            if cfg.size:
                from .data.folders import shrink_short_side

                x, t = shrink_short_side(x, cfg.size), shrink_short_side(t, cfg.size)
            px, tgt = _as_u8(x), _as_u8(t)
            px.setflags(write=False)  # no method may edit the shared input in place
            group = _group(item)
            outputs, scores = {}, {}
            on_sheet = (i in chosen if not rank else  # drawn: while among the lowest ranks scored so far
                        len(sheet_entries) < len(chosen) or rank[i] < max(e["rank"] for e in sheet_entries))
            for m, method in loaded.items():
                start = time.perf_counter()
                try:
                    result = np.asarray(method.plan(px).render(px, 1.0))
                    seconds = time.perf_counter() - start
                    if result.shape != px.shape or result.dtype != np.uint8:
                        raise RuntimeError(f"returned {result.dtype} {result.shape}, expected uint8 {px.shape}")
                except Exception as e:  # noqa: BLE001 - a method failing on one image is reported, not fatal
                    failures.append({"name": name, "method": m, "reason": f"{type(e).__name__}: {e}"})
                    continue
                scores[m] = _scores(result, tgt)
                per_image.append({"name": name, "group": group, "method": m, **scores[m], "seconds": seconds,
                                  "exact": _exact(result, tgt)})
                if cfg.save_outputs:
                    write_image(out / "outputs" / m / f"{name}.png", result, overwrite=cfg.overwrite)
                if on_sheet:
                    outputs[m] = result
            if cfg.save_outputs:
                write_image(out / "outputs" / "input" / f"{name}.png", px, overwrite=cfg.overwrite)
                write_image(out / "outputs" / "target" / f"{name}.png", tgt, overwrite=cfg.overwrite)
            if on_sheet and scores:  # not when every method failed on it
                sheet_entries.append({"name": name, "input": px, "target": tgt, "outputs": outputs, "scores": scores,
                                      "input_scores": _scores(px, tgt), "rank": rank.get(i, 0)})
                if len(sheet_entries) > len(chosen):
                    sheet_entries.remove(max(sheet_entries, key=lambda e: e["rank"]))
            if bar is not None:
                bar.update()
                if per_image:
                    first = [r["psnr"] for r in per_image if r["method"] == methods[0]]
                    if first:
                        bar.set_postfix({f"{methods[0]} dB": f"{np.mean(first):.2f}"})
    finally:
        if bar is not None:
            bar.close()
    if not per_image:  # the images tried first (--limit leaves others out), then what could not be paired
        tried = [f"{s['name']}: {s['reason']}" for s in skipped[unpaired:]]
        failed = [f"{f['name']} / {f['method']}: {f['reason']}" for f in failures]
        unpaired_reasons = [f"{s['name']}: {s['reason']}" for s in skipped[:unpaired]]
        raise RuntimeError(f"nothing could be scored ({'; '.join((tried + failed + unpaired_reasons)[:3])})")

    if len(sheet_entries) < len(chosen):
        shown = {e["name"] for e in sheet_entries}
        left = [names[i] for i in chosen if names[i] not in shown] if cfg.sheet_images else []
        notes.append(f"the contact sheet shows {len(sheet_entries)} of the {len(chosen)} images asked for"
                     + (f"; {', '.join(left)} could not be scored" if left else
                        ": too few of the others could be scored" if sheet_entries else ": none could be scored"))
    summary = summarise(per_image, methods)
    fivek_standard = (cfg.dataset == "fivek" and cfg.split == "test" and cfg.expert.upper().endswith("C"))
    if fivek_standard and (not whole or skipped or failures):
        fivek_standard = False  # the published figures are for the whole test split
        notes.append("the published FiveK figures are left out: they were measured on the whole test split, and "
                     "this run left some of it out (--limit, or photos skipped or failed)")
    table = markdown_table(summary, parameters, PUBLISHED_FIVEK if fivek_standard else None)
    for row in (*per_image, *skipped, *failures):  # the reports are UTF-8: a name's odd bytes as \xNN
        row["name"] = undecodable_escaped(str(row["name"]))
    record = {"settings": asdict(cfg), "dataset": repr(dataset), "images": count, "available": available,
              "unpaired": len(getattr(dataset, "skipped", [])),
              "without_input": len(getattr(dataset, "without_input", [])),
              "scored_images": len({r["name"] for r in per_image}), "methods": described,
              "parameters": parameters, "summary": summary, "skipped": skipped, "failures": failures,
              "notes": notes, "psnr_cap": PSNR_CAP,
              "contact_sheet": [undecodable_escaped(e["name"]) for e in sheet_entries],
              "per_image": per_image}
    buf = _stdio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "group", "method", *METRIC_NAMES, "seconds", "exact"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(per_image)
    atomic_write_bytes(out / "per_image.csv", buf.getvalue().encode(), overwrite=True)
    atomic_write_bytes(out / "results.md", (table + "\n").encode(), overwrite=True)
    if sheet_entries:
        write_image(out / "contact_sheet.png", _sheet(sheet_entries, methods), overwrite=True)
    # written last: results.json marks a complete run (and guards it against being overwritten unasked)
    atomic_write_bytes(out / "results.json", json.dumps(record, indent=2).encode(), overwrite=True)
    return {**record, "table": table}
