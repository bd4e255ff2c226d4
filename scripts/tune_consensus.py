"""Choose the agent's consensus settings (crop size, shrinkage, gains) on its validation photos, never on held-out ones.

    .venv/bin/python scripts/tune_consensus.py                         # the bundled agent, the default grid
    .venv/bin/python scripts/tune_consensus.py --crops 0.6 --shrinks 1 --draws 1
    .venv/bin/python scripts/tune_consensus.py --model runs/X/best.safetensors --export runs/X/agent.safetensors
    .venv/bin/python scripts/tune_consensus.py --no-colour                # CIEDE2000 of the chosen row only
    .venv/bin/python scripts/tune_consensus.py --crops 0.6 --shrinks 1.5 --gains "white_balance=1,1.5,2"
    .venv/bin/python scripts/tune_consensus.py --packages endless-sky-data,scratch,tuxpaint-data --count 80

Scores each consensus setting of the grid, and the whole-photo view alone, on the agent's validation photos (whole
photos, short side at most 512, with ``basic`` errors, ``--draws`` per photo, and untouched), ranked by the
checkpoint-selection score of ``deepexpose train`` (:mod:`deepexpose.agents.tuning`). Prints a table and a JSON
report with the best setting. ``--packages P,P`` adds ``--count`` photos of photo-library packages the agent's run
never saw (:func:`deepexpose.agents.tuning.validation_set`: one error each, and untouched), since 15 photos are too
few to see harm done to single good photos. ``--gains "FILTER=G,G;FILTER=G"`` adds every combination of gains to the
grid: factors on the agreed actions of those filters (``local_exposure`` for the local steps), see
:meth:`deepexpose.agents.policy.AgentPolicy.consensus`. ``--export PATH`` writes the model to PATH (safetensors +
JSON, :func:`deepexpose.agents.policy.export_agent`) carrying the best consensus setting, which ``deepexpose
enhance`` and ``evaluate`` then use for it (:func:`deepexpose.agents.policy.consensus_setting`); the model given is
never rewritten. CIEDE2000 takes seconds per photo, many times what the edits take, and the ranking never uses it:
``--no-colour`` measures it for the chosen setting only (the row a model can carry), as the training recipe does,
and prints "-" for the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepexpose.agents.policy import agent_meta, check_export_target, export_agent, load_agent
from deepexpose.agents.tuning import (GRID_CROPS, GRID_SHRINKS, NoValidationPhotos, grid_text, parse_consensus_grid,
                                      parse_gains_grid, parse_grid, tune_consensus, validation_set)
from deepexpose.io import writable_folder


def _non_negative(value: float) -> None:
    if not value >= 0:
        raise ValueError(f"thresholds are dB of change, >= 0 (0: off), got {value:g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--crops", default=grid_text(GRID_CROPS), help="crop sides to try, as shares of the photo's "
                        f"(default: {grid_text(GRID_CROPS)})")
    parser.add_argument("--shrinks", default=grid_text(GRID_SHRINKS), help=f"shrink factors to try (default: "
                        f"{grid_text(GRID_SHRINKS)})")
    parser.add_argument("--untouched-within", default="0",
                        help="thresholds of --untouched-within to try with each consensus setting, in dB (default: 0, "
                             "off)")
    parser.add_argument("--gains", default="", help="gains to try on filters' agreed actions, 'FILTER=G,G;FILTER=G' "
                        "(e.g. white_balance=1,1.5,2; local_exposure for the local steps; default: none)")
    parser.add_argument("--draws", type=int, default=3, help="basic errors drawn per photo (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the errors (default: 0)")
    parser.add_argument("--packages", default="", help="photo-library packages the run never saw whose photos are "
                        "added, one error each and untouched (e.g. endless-sky-data,scratch,tuxpaint-data; default: "
                        "none, the run's own validation photos only)")
    parser.add_argument("--count", type=int, default=None, help="how many photos of --packages (default: all)")
    parser.add_argument("--colour", action=argparse.BooleanOptionalAction, default=True,
                        help="measure CIEDE2000 for every row (default); --no-colour: for the chosen row only")
    parser.add_argument("--export", default="", help="write the model with the best consensus setting to this "
                        "new .safetensors path (+ .json); needs --model")
    args = parser.parse_args(argv)
    model = args.model or None
    try:
        crops, shrinks = parse_consensus_grid(args.crops, args.shrinks)
        withins = parse_grid(args.untouched_within, "--untouched-within", _non_negative)
        gains = parse_gains_grid(args.gains, load_agent(model).filters) if args.gains.strip() else [{}]
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.draws < 1:
        raise SystemExit(f"--draws must be at least 1, got {args.draws}")
    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    if args.count is not None and (args.count < 1 or not packages):
        raise SystemExit(f"--count must be at least 1 and needs --packages, got {args.count}")
    if args.export and model is None:
        raise SystemExit("--export needs --model: the bundled model is not rewritten")
    if args.export and (0.0 not in withins or not crops or not shrinks):
        raise SystemExit("--export needs consensus settings without --untouched-within: crops, shrinks and 0 in "
                         "--untouched-within")
    if args.export:  # refused before the grid runs, not after
        try:
            _, target = check_export_target(model, args.export)
        except ValueError as e:
            raise SystemExit(f"--export: {e}") from None
        if target.exists() or target.with_suffix(".json").exists():
            raise SystemExit(f"--export: {target} (or its .json) exists; choose a new path")
        try:  # its folder made and tried with a file (os.access let root past a folder nobody can write in)
            writable_folder(target.parent, "--export")
        except (OSError, ValueError) as e:
            raise SystemExit(str(e)) from None
    try:
        agent_meta(model)  # another kind of model is named by what it is, not by the fields its config lacks
        cases = validation_set(model, draws=args.draws, seed=args.seed, packages=packages, count=args.count)
        tuned = tune_consensus(model, crops, shrinks, withins, gains=gains, cases=cases, colour=args.colour,
                               log=lambda line: print(line, flush=True))
    except (NoValidationPhotos, OSError, ValueError) as e:
        raise SystemExit(str(e)) from None
    report = {"model": str(Path(model)) if model else "bundled default", "validation_photos":
              tuned["validation_photos"], "packages": packages, "draws": args.draws, "seed": args.seed,
              "colour": args.colour, "rows": tuned["rows"], "best": tuned["best"]}
    if args.export:  # a model carries crop, shrink and gains, not "whole photo" nor an --untouched-within threshold
        setting = tuned["setting"]
        report["exported"] = {"path": str(export_agent(model, args.export, consensus=setting)), "consensus": setting}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
