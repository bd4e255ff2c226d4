"""Choosing an agent's consensus setting (crop size, shrinkage) on its validation photos, never on held-out ones.

``deepexpose enhance`` lets the agent agree on one edit over the whole photo and five crops of it
(:class:`deepexpose.methods.AgentMethod`): parameters the views disagree on are shrunk toward "change nothing"
(:func:`deepexpose.agents.policy.consensus_action`). :func:`tune_consensus` scores each setting of a grid, and the
whole-photo view alone, on the agent's validation photos (the share of its training scene groups that its run kept
out of training to choose the checkpoint, split exactly as that run split them): whole photos (short side at most
512) with ``basic`` errors (``draws`` per photo) and untouched. Each setting is ranked by the checkpoint-selection
score of ``deepexpose train``, ``PSNR - max(0, 38 - untouched PSNR)`` (:func:`deepexpose.agents.train.selection_score`);
the errors no model is trained for are left out, so that they stay unseen. Used by ``scripts/tune_consensus.py`` and
``scripts/train_default_model.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from deepexpose.config import from_dict
from deepexpose.data.synthetic import apply_case, case_seed
from deepexpose.io import from_tensor, quantize
from deepexpose.methods import AgentMethod, Method
from deepexpose.metrics import capped_psnr, delta_e2000

from .policy import agent_file, check_consensus
from .checkpoint import read_meta
from .train import TrainConfig, good_photo_split, selection_score

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


def validation_cases(photos: list[torch.Tensor], draws: int, seed: int) -> list[Case]:
    """``(case, input, target)`` 8-bit triples: each photo ``draws`` times with ``basic`` errors and once untouched,
    each draw seeded by ``(seed, photo index, case)`` alone."""
    out = []
    for p, photo in enumerate(photos):
        target = quantize(from_tensor(photo), 8)
        for d in range(draws):
            g = torch.Generator().manual_seed(case_seed(seed, f"validation{p}.{d}", "basic"))
            out.append(("basic", quantize(from_tensor(apply_case(photo.unsqueeze(0), "basic", g)[0]), 8), target))
        out.append(("untouched", target, target))
    return out


def score_cases(method: Method, cases: list[Case], colour: bool = True) -> dict:
    """Mean PSNR (capped at 100 dB) and CIEDE2000 of the basic cases, the untouched cases' PSNR, and the score;
    ``colour=False`` leaves CIEDE2000 out (the score does not use it, and it costs more than the edits)."""
    basic, good = [], []
    for case, x, target in cases:
        out = method.plan(x).render(x, 1.0)
        if case == "untouched":
            good.append(capped_psnr(out, target))
        else:
            basic.append((capped_psnr(out, target), delta_e2000(out, target) if colour else 0.0))
    result = {"psnr": float(np.mean([b[0] for b in basic])), "good_psnr": float(np.mean(good))}
    if colour:
        result["delta_e2000"] = float(np.mean([b[1] for b in basic]))
    return {**result, "score": selection_score(result)}


def validation_photos(model: str | Path | None) -> list[torch.Tensor]:
    """The validation photos of the run that trained ``model`` (an exported agent or a run's checkpoint), split
    exactly as that run split them; :class:`NoValidationPhotos` when it kept none."""
    meta = read_meta(agent_file(model))
    cfg = from_dict(TrainConfig, meta["trained"]["config"] if "trained" in meta else meta["config"])
    _, validation, _ = good_photo_split(cfg)
    if not validation:
        raise NoValidationPhotos("this agent's run kept no validation photos: nothing to tune on")
    return validation


def tune_consensus(model: str | Path | None, crops: Sequence[float], shrinks: Sequence[float],
                   withins: Sequence[float] = (0.0,), *, draws: int = 3, seed: int = 0,
                   log: Callable[[str], None] = print) -> dict:
    """Score the whole-photo view and every ``(crop, shrink, untouched_within)`` of the grid on ``model``'s
    validation photos; ``log`` gets a table line per row. Returns ``{"validation_photos", "rows", "best", "chosen",
    "setting"}``: ``chosen`` is the best row a model can carry (consensus, ``untouched_within`` 0; ``None`` when the
    grid has none) and ``setting`` its ``{"crop", "shrink"}`` for :func:`~deepexpose.agents.policy.export_agent`."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    photos = validation_photos(model)
    cases = validation_cases(photos, draws, seed)
    log(f"{len(photos)} validation photos, {len(cases)} cases")
    log(f"{'views':<12} {'crop':>5} {'shrink':>6} {'within':>6} {'PSNR':>6} {'ΔE00':>6} {'untouched':>9} {'score':>6}")
    settings = [(AgentMethod(model, consensus=False), {"views": "whole photo"})] + [
        (AgentMethod(model, crop=crop, shrink=shrink, untouched_within=within),
         {"views": "consensus", "crop": crop, "shrink": shrink, "untouched_within": within})
        for crop in crops for shrink in shrinks for within in withins]
    rows = []
    for method, setting in settings:
        r = {**setting, **score_cases(method, cases)}
        rows.append(r)
        log(f"{r['views']:<12} {r.get('crop', ''):>5} {r.get('shrink', ''):>6} {r.get('untouched_within', ''):>6} "
            f"{r['psnr']:6.2f} {r['delta_e2000']:6.2f} {r['good_psnr']:9.2f} {r['score']:6.2f}")
    carried = [r for r in rows if r["views"] == "consensus" and r["untouched_within"] == 0]
    chosen = max(carried, key=lambda r: r["score"]) if carried else None
    return {"validation_photos": len(photos), "rows": rows, "best": max(rows, key=lambda r: r["score"]),
            "chosen": chosen, "setting": {"crop": chosen["crop"], "shrink": chosen["shrink"]} if chosen else None}


def choose_checkpoint(paths: Sequence[str | Path], crops: Sequence[float], shrinks: Sequence[float], *,
                      draws: int = 3, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """The policy among ``paths`` (checkpoints of one run, e.g. those kept at every evaluation,
    ``TrainConfig.keep_evaluated``) that scores best on the run's whole validation photos with one edit agreed on
    six views as ``deepexpose enhance`` makes it, at its best ``(crop, shrink)`` of the grid: the checkpoint
    selection of ``deepexpose train`` (:func:`~deepexpose.agents.train.selection_score`), but on whole photos
    rather than 64x64 views. PSNR only (the score needs no CIEDE2000). Returns ``{"path", "best", "rows"}``, ``best``
    being the best row."""
    if not paths or not crops or not shrinks:
        raise ValueError("choose_checkpoint needs checkpoints and a grid of at least one crop and one shrink")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    cases = validation_cases(validation_photos(paths[0]), draws, seed)
    log(f"{'checkpoint':<40} {'crop':>5} {'shrink':>6} {'PSNR':>6} {'untouched':>9} {'score':>6}")
    rows = []
    for path in paths:
        for crop in crops:
            for shrink in shrinks:
                r = {"path": str(path), "crop": crop, "shrink": shrink,
                     **score_cases(AgentMethod(path, crop=crop, shrink=shrink), cases, colour=False)}
                rows.append(r)
                log(f"{Path(path).name:<40} {crop:>5} {shrink:>6} {r['psnr']:6.2f} {r['good_psnr']:9.2f} "
                    f"{r['score']:6.2f}")
    best = max(rows, key=lambda r: r["score"])
    return {"path": best["path"], "best": best, "rows": rows}
