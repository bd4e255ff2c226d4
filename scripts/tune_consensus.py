"""Choose the agent's consensus settings (crop size, shrinkage) on its validation photos, never on held-out ones.

    .venv/bin/python scripts/tune_consensus.py                         # the bundled agent, the default grid
    .venv/bin/python scripts/tune_consensus.py --crops 0.6 --shrinks 1 --draws 1
    .venv/bin/python scripts/tune_consensus.py --model runs/X/best.safetensors --export runs/X/agent.safetensors

``deepexpose enhance`` lets the agent agree on one edit over the whole photo and five crops of it
(:class:`deepexpose.methods.AgentMethod`): parameters the views disagree on are shrunk toward "change nothing"
(:func:`deepexpose.agents.policy.consensus_action`). This script scores each setting of the grid, and the
whole-photo view alone, on the agent's validation photos (the share of its training scene groups that its run
kept out of training to choose the checkpoint; split exactly as that run split them): whole photos (short side
at most 512) with ``basic`` errors (``--draws`` per photo) and untouched. Each setting is ranked by the
checkpoint-selection score of ``deepexpose train``, ``PSNR - max(0, 38 - untouched PSNR)``
(:func:`deepexpose.agents.train.selection_score`); the errors no model is trained for are left out, so that they
stay unseen. Prints a table and a JSON report with the best setting. ``--export PATH`` writes the model to PATH
(safetensors + JSON, :func:`deepexpose.agents.policy.export_agent`) carrying the best consensus setting, which
``deepexpose enhance`` and ``evaluate`` then use for it (:func:`deepexpose.agents.policy.consensus_setting`); the
model given is never rewritten.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from deepexpose.agents.policy import check_export_target, export_agent
from deepexpose.agents.train import TrainConfig, good_photo_split, selection_score
from deepexpose.config import from_dict
from deepexpose.data.synthetic import apply_case, case_seed
from deepexpose.io import from_tensor, quantize
from deepexpose.methods import AgentMethod, Method
from deepexpose.metrics import capped_psnr, delta_e2000


def validation_cases(photos: list[torch.Tensor], draws: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
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


def score(method: Method, cases: list[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Mean PSNR (capped at 100 dB) and CIEDE2000 of the basic cases, the untouched cases' PSNR, and the score."""
    basic, good = [], []
    for case, x, target in cases:
        out = method.plan(x).render(x, 1.0)
        if case == "untouched":
            good.append(capped_psnr(out, target))
        else:
            basic.append((capped_psnr(out, target), delta_e2000(out, target)))
    result = {"psnr": float(np.mean([b[0] for b in basic])), "delta_e2000": float(np.mean([b[1] for b in basic])),
              "good_psnr": float(np.mean(good))}
    return {**result, "score": selection_score(result)}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--crops", default="0.5,0.6,0.7,0.8", help="crop sides to try, as shares of the photo's")
    parser.add_argument("--shrinks", default="0.5,1,1.5,2", help="shrink factors to try")
    parser.add_argument("--untouched-within", default="0",
                        help="thresholds of --untouched-within to try with each consensus setting, in dB (default: 0, "
                             "off)")
    parser.add_argument("--draws", type=int, default=3, help="basic errors drawn per photo (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the errors (default: 0)")
    parser.add_argument("--export", default="", help="write the model with the best consensus setting to this "
                        "new .safetensors path (+ .json); needs --model")
    args = parser.parse_args(argv)
    model = args.model or None
    if args.export and model is None:
        raise SystemExit("--export needs --model: the bundled model is not rewritten")
    if args.export and 0.0 not in _floats(args.untouched_within):
        raise SystemExit("--export needs settings without --untouched-within: include 0 in its list")
    if args.export:  # refused before the grid runs, not after
        try:
            _, target = check_export_target(model, args.export)
        except ValueError as e:
            raise SystemExit(f"--export: {e}") from None
        if target.exists() or target.with_suffix(".json").exists():
            raise SystemExit(f"--export: {target} (or its .json) exists; choose a new path")
    single = AgentMethod(model, consensus=False)
    meta = single.policy.meta
    cfg = from_dict(TrainConfig, meta["trained"]["config"] if "trained" in meta else meta["config"])
    _, validation, _ = good_photo_split(cfg)
    if not validation:
        raise SystemExit("this agent's run kept no validation photos: nothing to tune on")
    cases = validation_cases(validation, args.draws, args.seed)
    print(f"{len(validation)} validation photos, {len(cases)} cases")
    print(f"{'views':<12} {'crop':>5} {'shrink':>6} {'within':>6} {'PSNR':>6} {'ΔE00':>6} {'untouched':>9} "
          f"{'score':>6}")
    settings = [(single, {"views": "whole photo"})] + [
        (AgentMethod(model, crop=crop, shrink=shrink, untouched_within=within),
         {"views": "consensus", "crop": crop, "shrink": shrink, "untouched_within": within})
        for crop in _floats(args.crops) for shrink in _floats(args.shrinks)
        for within in _floats(args.untouched_within)]
    rows = []
    for method, setting in settings:
        r = {**setting, **score(method, cases)}
        rows.append(r)
        print(f"{r['views']:<12} {r.get('crop', ''):>5} {r.get('shrink', ''):>6} {r.get('untouched_within', ''):>6} "
              f"{r['psnr']:6.2f} {r['delta_e2000']:6.2f} {r['good_psnr']:9.2f} {r['score']:6.2f}", flush=True)
    best = max(rows, key=lambda r: r["score"])
    report = {"model": str(Path(model)) if model else "bundled default", "validation_photos": len(validation),
              "draws": args.draws, "seed": args.seed, "rows": rows, "best": best}
    if args.export:  # a model carries crop and shrink, not "whole photo" nor an --untouched-within threshold
        chosen = max((r for r in rows if r["views"] == "consensus" and r["untouched_within"] == 0),
                     key=lambda r: r["score"])
        setting = {"crop": chosen["crop"], "shrink": chosen["shrink"]}
        report["exported"] = {"path": str(export_agent(model, args.export, consensus=setting)), "consensus": setting}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
