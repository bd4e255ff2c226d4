"""Choosing an agent's consensus setting (crop size, shrinkage, gains) on its validation photos, never on held-out ones.

``deepexpose enhance`` lets the agent agree on one edit over the whole photo and five crops of it
(:class:`deepexpose.methods.AgentMethod`): parameters the views disagree on are shrunk toward "change nothing"
(:func:`deepexpose.agents.policy.consensus_action`), and ``gains`` may scale filters' agreed actions
(:meth:`deepexpose.agents.policy.AgentPolicy.consensus`). :func:`tune_consensus` scores each setting of a grid, and the
whole-photo view alone, on the agent's validation photos (the share of its training scene groups that its run kept
out of training to choose the checkpoint, split exactly as that run split them): whole photos (short side at most
512) with ``basic`` errors (``draws`` per photo) and untouched (:func:`validation_set`). Each setting is ranked by
the checkpoint-selection score of ``deepexpose train``, ``PSNR - mean max(0, 38 - untouched PSNR)`` over the photos
(:func:`deepexpose.agents.train.selection_score`); the errors no model is trained for are left out, so that they
stay unseen. :func:`library_validation_photos` gives more photos, from library packages the run never saw
(``scripts/checkpoint_study.py``; added to the cases by :func:`validation_set`'s ``packages``). Used by
``scripts/tune_consensus.py`` and ``scripts/train_default_model.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from deepexpose.config import from_dict
from deepexpose.data.packages import PHOTO_PACKAGES, RESERVED_PACKAGES, load_library
from deepexpose.data.synthetic import EXCLUDED_PACKAGES, apply_case, case_seed
from deepexpose.io import from_tensor, quantize
from deepexpose.methods import AgentMethod, Method
from deepexpose.metrics import capped_psnr, delta_e2000, do_no_harm

from .policy import agent_meta, check_consensus, check_gains
from .train import (VALIDATION_SEED, TrainConfig, good_photo_split, library_cache, library_packages, load_records,
                    resolve_data, selection_score)

Case = tuple[str, np.ndarray, np.ndarray]
GRID_CROPS = (0.5, 0.6, 0.7, 0.8)  # the default grid: crop sides, as shares of the photo's
GRID_SHRINKS = (0.5, 1.0, 1.5, 2.0)  # and shrink factors


class NoValidationPhotos(ValueError):
    """The run that trained the model kept no validation photos, so there is nothing to tune on."""


def parse_grid(text: str, name: str, check: Callable[[float], None] | None = None) -> list[float]:
    """The comma-separated numbers of ``text`` (``""``: none), each passed to ``check``; ``ValueError`` naming the
    option ``name`` for anything else."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
        for v in values:
            if check is not None:
                check(v)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return values


def grid_text(values: Sequence[float]) -> str:
    """``values`` as :func:`parse_grid` reads them."""
    return ",".join(f"{v:g}" for v in values)


def parse_consensus_grid(crops: str, shrinks: str, crops_name: str = "--crops", shrinks_name: str = "--shrinks"
                         ) -> tuple[list[float], list[float]]:
    """The crop sides and shrink factors of a consensus grid, each checked (:func:`check_consensus`)."""
    return (parse_grid(crops, crops_name, lambda v: check_consensus(crop=v)),
            parse_grid(shrinks, shrinks_name, lambda v: check_consensus(shrink=v)))


def parse_gains_grid(text: str, filters: Sequence[str], name: str = "--gains") -> list[dict[str, float]]:
    """Every combination of the gains of ``text``, ``"FILTER=G,G;FILTER=G,G"`` (e.g. ``"white_balance=1,1.5,2"``),
    each checked against ``filters`` (:func:`~deepexpose.agents.policy.check_gains`); ``""``: no gains, ``[{}]``.
    ``ValueError`` naming the option ``name`` for anything else."""
    grid: list[dict[str, float]] = [{}]
    seen = set()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        filt, eq, values = part.partition("=")
        filt = filt.strip()
        if not eq or not filt:
            raise ValueError(f"{name}: expected FILTER=G,G,... (e.g. white_balance=1,1.5,2), got {part!r}")
        if filt in seen:
            raise ValueError(f"{name}: {filt} is given twice")
        seen.add(filt)
        gains = parse_grid(values, name, lambda v, f=filt: check_gains({f: v}, filters))
        if not gains:
            raise ValueError(f"{name}: no gains given for {filt}")
        grid = [{**g, filt: v} for g in grid for v in gains]
    return grid


def gains_text(gains: dict[str, float]) -> str:
    """``{"white_balance": 1.5}`` as ``white_balance=1.5`` (``-`` for none)."""
    return " ".join(f"{k}={v:g}" for k, v in gains.items()) or "-"


def validation_cases(photos: list[torch.Tensor], draws: int, seed: int, keys: Sequence[str] | None = None
                     ) -> list[Case]:
    """``(case, input, target)`` 8-bit triples: each photo ``draws`` times with ``basic`` errors and once untouched,
    each draw seeded by ``(seed, photo key, draw)`` alone; a photo's key is ``keys[p]`` (e.g. its name, so that
    the draws do not depend on which other photos are scored), by default ``validation{p}``, its index."""
    if keys is not None and len(keys) != len(photos):
        raise ValueError(f"{len(keys)} keys for {len(photos)} photos")
    out = []
    for p, photo in enumerate(photos):
        target = quantize(from_tensor(photo), 8)
        key = keys[p] if keys is not None else f"validation{p}"
        for d in range(draws):
            g = torch.Generator().manual_seed(case_seed(seed, f"{key}.{d}", "basic"))
            out.append(("basic", quantize(from_tensor(apply_case(photo.unsqueeze(0), "basic", g)[0]), 8), target))
        out.append(("untouched", target, target))
    return out


def score_cases(method: Method, cases: list[Case], colour: bool = True) -> dict:
    """Mean PSNR (capped at 100 dB) and CIEDE2000 of the basic cases, how the untouched cases came back
    (:func:`~deepexpose.metrics.do_no_harm`), and the score;
    ``colour=False`` leaves CIEDE2000 out (the score does not use it, and it costs more than the edits)."""
    basic, good = [], []
    for case, x, target in cases:
        out = method.plan(x).render(x, 1.0)
        if case == "untouched":
            good.append(capped_psnr(out, target))
        else:
            basic.append((capped_psnr(out, target), delta_e2000(out, target) if colour else 0.0))
    result = {"psnr": float(np.mean([b[0] for b in basic])), **do_no_harm(good)}
    if colour:
        result["delta_e2000"] = float(np.mean([b[1] for b in basic]))
    return {**result, "score": selection_score(result)}


def run_config(model: str | Path | None) -> TrainConfig:
    """The training config of the run that made ``model`` (an exported agent or a run's checkpoint)."""
    meta = agent_meta(model)  # another model is refused by what it is, not by the fields its config lacks
    return from_dict(TrainConfig, meta["trained"]["config"] if "trained" in meta else meta["config"])


def validation_photos(model: str | Path | None) -> list[torch.Tensor]:
    """The validation photos of the run that trained ``model`` (an exported agent or a run's checkpoint), split
    exactly as that run split them; :class:`NoValidationPhotos` when it kept none."""
    _, validation, _ = good_photo_split(run_config(model))
    if not validation:
        raise NoValidationPhotos("this agent's run kept no validation photos: nothing to tune on")
    return validation


def validation_records(cfg: TrainConfig, packages: Sequence[str], count: int | None = None) -> list:
    """The records of :func:`library_validation_photos` for a run configured by ``cfg``, without opening a photo:
    ``count`` (default: all) photos of photo-library ``packages`` that the run neither trained on nor held out
    (``library_packages`` of ``cfg``; every cached package but the excluded ones when that is empty), in an order
    seeded by :data:`~deepexpose.agents.train.VALIDATION_SEED` and each photo's name, so that a larger count only
    adds photos. Reserved, excluded, unknown, uncached and the run's own packages are refused (``ValueError``)."""
    cfg = resolve_data(cfg)
    packages = list(dict.fromkeys(p.strip() for p in packages if p.strip()))
    if not packages:
        raise ValueError("name at least one photo-library package")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    refused = {p: "reserved for independent evaluation" for p in packages if p in RESERVED_PACKAGES}
    refused.update({p: "unknown photo package" for p in packages if p not in PHOTO_PACKAGES and p not in refused})
    refused.update({p: "left out of every model (EXCLUDED_PACKAGES)" for p in packages if p in EXCLUDED_PACKAGES})
    cache = library_cache(cfg)
    cached = {r.package for r in load_library(cache)} if cache.is_dir() else set()
    if cfg.data == "library":
        own = set(library_packages(cfg) or [p for p in cached if p not in EXCLUDED_PACKAGES])
        refused.update({p: "this model's run trained on it or held it out" for p in packages
                        if p in own and p not in refused})
    refused.update({p: f"not in the photo cache {cache} (scripts/get_photos.py fetches it)" for p in packages
                    if p not in cached and p not in refused})
    if refused:
        raise ValueError("; ".join(f"{p}: {why}" for p, why in refused.items()))
    records = sorted(load_library(cache, packages),
                     key=lambda r: hashlib.sha256(f"{VALIDATION_SEED}:{r.package}/{r.name}".encode()).hexdigest())
    return records[:count] if count is not None else records


def library_validation_photos(model: str | Path | None, packages: Sequence[str], count: int | None = None
                              ) -> tuple[list[str], list[torch.Tensor]]:
    """``(names, photos)``: more validation photos for ``model``, those of :func:`validation_records` for its
    run's config, named ``package/name`` and shrunk as training shrinks them (short side at most 512)."""
    records = validation_records(run_config(model), packages, count)
    return [f"{r.package}/{r.name}" for r in records], load_records(records)


def validation_set(model: str | Path | None, *, draws: int = 3, seed: int = 0, packages: Sequence[str] = (),
                   count: int | None = None) -> list[Case]:
    """The cases a model's settings or its run's checkpoints are scored on: :func:`validation_cases` of the
    validation photos of its run, ``draws`` each; :class:`NoValidationPhotos` when it kept none. With
    ``packages``, also ``count`` (default: all) photos of those photo-library packages that the run never saw
    (:func:`library_validation_photos`), each once with a ``basic`` error and once untouched, the error keyed by the
    photo's name: 15 photos of its own are too few to see harm done to single good photos (README, session 30)."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    cases = validation_cases(validation_photos(model), draws, seed)
    if packages:
        names, photos = library_validation_photos(model, packages, count)
        cases += validation_cases(photos, 1, seed, keys=names)
    elif count is not None:
        raise ValueError("count needs packages to take the photos from")
    return cases


def _setting_text(row: dict) -> str:
    gains = f", gains {gains_text(row['gains'])}" if row.get("gains") else ""
    return f"crop {row['crop']}, shrink {row['shrink']}{gains}"


def better_row_note(best: dict, chosen: dict) -> str:
    """The note :func:`tune_consensus` logs when a row no model can carry (the whole-photo view, an
    ``--untouched-within`` threshold) scores better than the ``chosen`` one, with what ``deepexpose enhance`` can do
    of it: ``--single-view``, or ``--untouched-within``, which it applies to the model's own setting."""
    what = ("the whole-photo view alone" if best["views"] == "whole photo" else
            f"--untouched-within {best['untouched_within']:g} with {_setting_text(best)}")
    note = (f"note: {what} scores {best['score']:.2f}, better than the best setting a model can carry "
            f"({_setting_text(chosen)}: {chosen['score']:.2f}), which is the one chosen; ")
    if best["views"] == "whole photo":
        return note + "deepexpose enhance --single-view chooses on the whole photo alone"
    own = all(best.get(k) == chosen.get(k) for k in ("crop", "shrink", "gains"))
    return note + (f"deepexpose enhance --untouched-within {best['untouched_within']:g} applies that threshold"
                   + ("" if own else " (to the chosen setting, not to that row's)"))


def tune_consensus(model: str | Path | None, crops: Sequence[float], shrinks: Sequence[float],
                   withins: Sequence[float] = (0.0,), *, gains: Sequence[dict[str, float]] = ({},), draws: int = 3,
                   seed: int = 0, cases: list[Case] | None = None, colour: bool = True,
                   log: Callable[[str], None] = print) -> dict:
    """Score the whole-photo view and every ``(crop, shrink, untouched_within, gains)`` of the grid on ``cases``
    (default: ``model``'s validation photos, ``draws`` each, :func:`validation_set`); ``log`` gets a table line per
    row. Returns ``{"validation_photos", "rows", "best", "chosen", "setting"}``: ``chosen`` is the best row a model
    can carry (consensus, ``untouched_within`` 0; ``None`` when the grid has none) and ``setting`` its ``{"crop",
    "shrink"}``, with its ``"gains"`` when it has any, for :func:`~deepexpose.agents.policy.export_agent`.
    ``colour=False`` measures CIEDE2000 for the chosen row only (the ranking never uses it, and it costs many times
    more than the edits)."""
    if cases is None:
        cases = validation_set(model, draws=draws, seed=seed)
    photos = sum(case == "untouched" for case, _, _ in cases)
    log(f"{photos} validation photos, {len(cases)} cases")
    log(f"{'views':<12} {'crop':>5} {'shrink':>6} {'within':>6} {'PSNR':>6} {'ΔE00':>6} {'untouched':>9} {'harm':>5} "
        f"{'kept':>5} {'score':>6}  gains")
    settings = [(AgentMethod(model, consensus=False), {"views": "whole photo"})] + [
        (AgentMethod(model, crop=crop, shrink=shrink, gains=g, untouched_within=within),
         {"views": "consensus", "crop": crop, "shrink": shrink, "untouched_within": within, "gains": dict(g)})
        for crop in crops for shrink in shrinks for within in withins for g in gains]
    rows = []
    for method, setting in settings:
        r = {**setting, **score_cases(method, cases, colour=colour)}
        rows.append(r)
        de = f"{r['delta_e2000']:6.2f}" if colour else f"{'-':>6}"
        log(f"{r['views']:<12} {r.get('crop', ''):>5} {r.get('shrink', ''):>6} {r.get('untouched_within', ''):>6} "
            f"{r['psnr']:6.2f} {de} {r['good_psnr']:9.2f} {r['good_shortfall']:5.2f} {r['good_within']:5.0%} "
            f"{r['score']:6.2f}  "
            f"{gains_text(r['gains']) if 'gains' in r else ''}".rstrip())
    carried = [r for r in rows if r["views"] == "consensus" and r["untouched_within"] == 0]
    chosen = max(carried, key=lambda r: r["score"]) if carried else None
    if chosen is not None and not colour:
        method = next(m for (m, _), r in zip(settings, rows) if r is chosen)
        chosen["delta_e2000"] = score_cases(method, cases)["delta_e2000"]
        log(f"chosen: crop {chosen['crop']}, shrink {chosen['shrink']}, gains {gains_text(chosen['gains'])}, ΔE00 "
            f"{chosen['delta_e2000']:.2f}")
    setting = None
    best = max(rows, key=lambda r: r["score"])
    if chosen is not None:
        setting = {"crop": chosen["crop"], "shrink": chosen["shrink"]}
        if chosen["gains"]:
            setting["gains"] = dict(chosen["gains"])
        if best["score"] > chosen["score"]:  # the row a model carries is not the best one: said, not left to the table
            log(better_row_note(best, chosen))
    return {"validation_photos": photos, "rows": rows, "best": best, "chosen": chosen, "setting": setting}


def choose_checkpoint(paths: Sequence[str | Path], crops: Sequence[float], shrinks: Sequence[float], *,
                      draws: int = 3, seed: int = 0, cases: list[Case] | None = None,
                      log: Callable[[str], None] = print) -> dict:
    """The policy among ``paths`` (checkpoints of one run, e.g. those kept at every evaluation,
    ``TrainConfig.keep_evaluated``) that scores best on ``cases`` (default: the run's whole validation photos,
    ``draws`` each, :func:`validation_set`) with one edit agreed on six views as ``deepexpose enhance`` makes it, at
    its best ``(crop, shrink)`` of the grid: the checkpoint selection of ``deepexpose train``
    (:func:`~deepexpose.agents.train.selection_score`), but on whole photos rather than 64x64 views. PSNR only (the
    score needs no CIEDE2000). Returns ``{"path", "best", "rows"}``, ``best`` being the best row."""
    if not paths or not crops or not shrinks:
        raise ValueError("choose_checkpoint needs checkpoints and a grid of at least one crop and one shrink")
    if cases is None:
        cases = validation_set(paths[0], draws=draws, seed=seed)
    log(f"{'checkpoint':<40} {'crop':>5} {'shrink':>6} {'PSNR':>6} {'untouched':>9} {'harm':>5} {'kept':>5} "
        f"{'score':>6}")
    rows = []
    for path in paths:
        for crop in crops:
            for shrink in shrinks:
                r = {"path": str(path), "crop": crop, "shrink": shrink,
                     **score_cases(AgentMethod(path, crop=crop, shrink=shrink), cases, colour=False)}
                rows.append(r)
                log(f"{Path(path).name:<40} {crop:>5} {shrink:>6} {r['psnr']:6.2f} {r['good_psnr']:9.2f} "
                    f"{r['good_shortfall']:5.2f} {r['good_within']:5.0%} {r['score']:6.2f}")
    best = max(rows, key=lambda r: r["score"])
    return {"path": best["path"], "best": best, "rows": rows}
