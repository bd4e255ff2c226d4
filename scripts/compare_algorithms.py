"""Train every algorithm for the same wall-clock budget on the same data and tabulate held-out quality.

    .venv/bin/python scripts/compare_algorithms.py --minutes 5 --algos adpg,a3c,a2c,ppo,sac,td3 --out runs/compare

Each algorithm trains with ``deepexpose train``'s defaults (data, detuning, seed) for the same minutes, with the
demo photos coffee and chelsea held out (``--holdout``; ``deepexpose train`` also holds out the motorcycle pair,
but the README's table was measured with these two); two untrained rows give the floor: ``identity`` (change
nothing) and ``classic`` (grey-world white balance and auto exposure, :mod:`deepexpose.agents.classic`).
``--algos ''`` gives only those two; the table (Markdown,
also written to OUT/compare.md and OUT/compare.json) gives the final held-out PSNR and CIEDE2000 of detuned views,
the inputs' own scores, "do no harm" PSNR on untouched views, the image-steps each algorithm managed in the budget,
and the step and held-out PSNR / CIEDE2000 of the run's ``best.safetensors`` (chosen on validation views; step 0 is
the untrained policy, which changes nothing). The table is rewritten as each algorithm finishes; run again into
the same ``--out``, an algorithm whose run finished (its ``eval.json``) with the same settings (its ``config.json``)
is read back instead of trained again, unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import torch

from deepexpose.agents.classic import classic_act
from deepexpose.agents.train import (OWN_ALGOS, SB3_ALGOS, TrainConfig, build_pools, evaluate, make_core,
                                    resolve_data, train)
from deepexpose.data.synthetic import BUNDLED_LIBRARY
from deepexpose.io import atomic_write_bytes

COLUMNS = ("algo", "steps", "psnr", "delta_e2000", "input_psnr", "input_delta_e2000", "good_psnr", "best_step",
           "best_psnr", "best_delta_e2000")


def row(result: dict) -> dict:
    """A training result with its best checkpoint's step and held-out scores as columns (none without a best)."""
    best = result.get("best")
    if not best:
        return result
    return {**result, "best_step": best["step"], "best_psnr": best["held_out"]["psnr"],
            "best_delta_e2000": best["held_out"]["delta_e2000"]}


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [f"{r[c]:.2f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget per algorithm (> 0; default: 5)")
    p.add_argument("--algos", default=",".join(OWN_ALGOS + SB3_ALGOS), help="comma-separated (default: all six)")
    p.add_argument("--out", default="runs/compare", help="OUT/ALGO holds each run; OUT/compare.md and compare.json")
    p.add_argument("--holdout", default="coffee,chelsea", help="demo photos kept out of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--library-packages", default=",".join(BUNDLED_LIBRARY),
                   help="photo-library packages to use (default: the bundled models' BUNDLED_LIBRARY)")
    p.add_argument("--overwrite", action="store_true", help="train again the algorithms whose runs finished in OUT")
    args = p.parse_args()
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    if bad := [a for a in algos if a not in OWN_ALGOS + SB3_ALGOS]:
        p.error(f"unknown --algos {', '.join(bad)}; choose from {', '.join(OWN_ALGOS + SB3_ALGOS)}")
    if len(set(algos)) != len(algos):
        p.error(f"--algos lists an algorithm twice: {args.algos}")
    if not 0 < args.minutes < math.inf:  # inf never ended
        p.error(f"--minutes must be a finite number > 0 (the budget every algorithm gets), got {args.minutes}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        p.error(f"--out {out} is a file")
    def run_config(algo: str) -> TrainConfig:
        return TrainConfig(algo=algo, minutes=args.minutes, steps=10**12, holdout=args.holdout, seed=args.seed,
                           out=str(out / algo), eval_every=0, checkpoint_every=0, eval_size=128, progress=False,
                           library_packages=args.library_packages, overwrite=True)

    # what the runs are given (the settings recorded were TrainConfig's defaults: eval_size 64, steps 20000...)
    settings = {**dataclasses.asdict(run_config("ALGO")), "algo": algos, "out": str(out / "ALGO")}
    base = TrainConfig(holdout=args.holdout, seed=args.seed, eval_size=128, library_packages=args.library_packages)
    _, eval_pool = build_pools(base)
    core = make_core(base)
    rows = [{"algo": "identity", "steps": 0,
             **evaluate(lambda obs: torch.zeros(obs["image"].shape[0], core.action_dim), core, eval_pool)},
            {"algo": "classic", "steps": 0, **evaluate(classic_act(core), core, eval_pool)}]
    write(out, rows, settings)
    for algo in algos:
        cfg = run_config(algo)
        finished = out / algo / "eval.json"
        if finished.is_file() and not args.overwrite and same_settings(out / algo / "config.json", cfg):
            print(f"== {algo}: finished in an earlier run with these settings, read from {finished}", flush=True)
            rows.append(row(json.loads(finished.read_text())))
        else:  # whatever is there is this script's earlier run of the algorithm: killed, other settings, or replaced
            print(f"== {algo}: {args.minutes} min", flush=True)
            rows.append(row(train(cfg)))
        write(out, rows, settings)
    print(table(rows))


SETTINGS = ("algo", "minutes", "seed", "holdout", "library_packages", "eval_size", "data")
"""What a finished run read back must share with the run this call would make."""


def same_settings(config: Path, cfg: TrainConfig) -> bool:
    """Whether the run whose ``config.json`` is ``config`` was made with ``cfg``'s :data:`SETTINGS`."""
    try:
        saved = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    wanted = dataclasses.asdict(resolve_data(cfg))  # a run records the data "auto" chose
    return all(saved.get(k) == wanted[k] for k in SETTINGS)


def write(out: Path, rows: list[dict], settings: dict) -> None:
    """OUT/compare.md and OUT/compare.json with the rows so far (a killed run keeps what it finished)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "compare.md", (table(rows) + "\n").encode(), overwrite=True)
    atomic_write_bytes(out / "compare.json", json.dumps({"settings": settings, "rows": rows}, indent=2).encode(),
                       overwrite=True)


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
