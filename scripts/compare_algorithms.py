"""Train every algorithm for the same wall-clock budget on the same data and tabulate held-out quality.

    .venv/bin/python scripts/compare_algorithms.py --minutes 5 --algos adpg,a3c,a2c,ppo,sac,td3 --out runs/compare

Each algorithm trains with ``deepexpose train``'s defaults (data, detuning, seed, hold-out photos) for the same
minutes; two untrained rows give the floor: ``identity`` (change nothing) and ``classic`` (grey-world white
balance and auto exposure, :mod:`deepexpose.agents.classic`). ``--algos ''`` gives only those two; the table (Markdown,
also written to OUT/compare.md and OUT/compare.json) gives the final held-out PSNR and CIEDE2000 of detuned views,
the inputs' own scores, "do no harm" PSNR on untouched views, the image-steps each algorithm managed in the budget,
and the step and held-out PSNR / CIEDE2000 of the run's ``best.safetensors`` (chosen on validation views; step 0 is
the untrained policy, which changes nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from deepexpose.agents.classic import classic_act
from deepexpose.agents.train import OWN_ALGOS, SB3_ALGOS, TrainConfig, build_pools, evaluate, make_core, train
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
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget per algorithm")
    p.add_argument("--algos", default=",".join(OWN_ALGOS + SB3_ALGOS))
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--holdout", default="coffee,chelsea")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--library-packages", default=",".join(BUNDLED_LIBRARY),
                   help="photo-library packages to use (default: the bundled models' BUNDLED_LIBRARY)")
    args = p.parse_args()
    out = Path(args.out)
    base = TrainConfig(holdout=args.holdout, seed=args.seed, eval_size=128, library_packages=args.library_packages)
    _, eval_pool = build_pools(base)
    core = make_core(base)
    rows = [{"algo": "identity", "steps": 0,
             **evaluate(lambda obs: torch.zeros(obs["image"].shape[0], core.action_dim), core, eval_pool)},
            {"algo": "classic", "steps": 0, **evaluate(classic_act(core), core, eval_pool)}]
    for algo in filter(None, args.algos.split(",")):
        cfg = TrainConfig(algo=algo, minutes=args.minutes, steps=10**12, holdout=args.holdout, seed=args.seed,
                          out=str(out / algo), eval_every=0, checkpoint_every=0, eval_size=128, progress=False,
                          library_packages=args.library_packages)
        print(f"== {algo}: {args.minutes} min", flush=True)
        rows.append(row(train(cfg)))
    text = table(rows)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "compare.md", (text + "\n").encode(), overwrite=True)
    settings = dataclasses.asdict(TrainConfig(minutes=args.minutes, holdout=args.holdout, seed=args.seed,
                                              library_packages=args.library_packages))
    atomic_write_bytes(out / "compare.json", json.dumps({"settings": settings, "rows": rows}, indent=2).encode(),
                       overwrite=True)


if __name__ == "__main__":
    main()
