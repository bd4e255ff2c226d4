"""Choose the agent's consensus settings (crop size, shrinkage) on its validation photos, never on held-out ones.

    .venv/bin/python scripts/tune_consensus.py                         # the bundled agent, the default grid
    .venv/bin/python scripts/tune_consensus.py --crops 0.6 --shrinks 1 --draws 1
    .venv/bin/python scripts/tune_consensus.py --model runs/X/best.safetensors --export runs/X/agent.safetensors

Scores each consensus setting of the grid, and the whole-photo view alone, on the agent's validation photos (whole
photos, short side at most 512, with ``basic`` errors, ``--draws`` per photo, and untouched), ranked by the
checkpoint-selection score of ``deepexpose train`` (:mod:`deepexpose.agents.tuning`). Prints a table and a JSON
report with the best setting. ``--export PATH`` writes the model to PATH (safetensors + JSON,
:func:`deepexpose.agents.policy.export_agent`) carrying the best consensus setting, which ``deepexpose enhance`` and
``evaluate`` then use for it (:func:`deepexpose.agents.policy.consensus_setting`); the model given is never
rewritten.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepexpose.agents.policy import check_export_target, export_agent
from deepexpose.agents.tuning import GRID_CROPS, GRID_SHRINKS, tune_consensus


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _text(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--crops", default=_text(GRID_CROPS), help="crop sides to try, as shares of the photo's "
                        f"(default: {_text(GRID_CROPS)})")
    parser.add_argument("--shrinks", default=_text(GRID_SHRINKS), help=f"shrink factors to try (default: "
                        f"{_text(GRID_SHRINKS)})")
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
    try:
        tuned = tune_consensus(model, _floats(args.crops), _floats(args.shrinks), _floats(args.untouched_within),
                               draws=args.draws, seed=args.seed, log=lambda line: print(line, flush=True))
    except ValueError as e:
        raise SystemExit(str(e)) from None
    report = {"model": str(Path(model)) if model else "bundled default", "validation_photos":
              tuned["validation_photos"], "draws": args.draws, "seed": args.seed, "rows": tuned["rows"],
              "best": tuned["best"]}
    if args.export:  # a model carries crop and shrink, not "whole photo" nor an --untouched-within threshold
        setting = tuned["setting"]
        report["exported"] = {"path": str(export_agent(model, args.export, consensus=setting)), "consensus": setting}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
