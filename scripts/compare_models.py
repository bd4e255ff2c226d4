"""Agent models side by side on the photos that every one of them held out.

    .venv/bin/python scripts/compare_models.py runs/a/best.safetensors runs/b/best.safetensors   # + the bundled one
    .venv/bin/python scripts/compare_models.py A B --no-bundled --count 2048 --out runs/compare-models.json

Models trained on different packages of the photo library have different held-out photos, because the split by
scene group depends on every package in it: a photo one model held out may be one another trained on. Each model's
saved training config gives its split (:func:`deepexpose.agents.train.good_photo_split` on the photo cache as it
is now; fetch the same packages first); the photos held out by all of them (the demo hold-outs they share and the
library photos in every held-out list) get ``--count`` views with ``basic`` errors, 15 % of them left untouched
(:meth:`PairPool.from_photos`, the held-out seed of ``deepexpose train``), and every model is scored on the same
views as ``deepexpose train`` scores its held-out views (:func:`deepexpose.agents.train.evaluate`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deepexpose.agents.policy import AgentPolicy, default_model_path, load_agent
from deepexpose.agents.train import (TrainConfig, dataset_photos, evaluate, library_records, load_records,
                                    resolve_data)
from deepexpose.config import from_dict
from deepexpose.data.demo import DemoSet
from deepexpose.envs.pool import PairPool
from deepexpose.io import atomic_write_bytes

HELD_OUT_SEED = 7919
"""The seed offset of ``deepexpose train``'s held-out views (seed 0)."""


def training_config(agent: AgentPolicy) -> TrainConfig:
    """The config a model was trained with (exported models keep it under ``trained``)."""
    saved = agent.meta["trained"]["config"] if "trained" in agent.meta else agent.meta.get("config")
    if not isinstance(saved, dict) or "data" not in saved:
        raise ValueError("the model records no training config, so its held-out photos are unknown")
    return resolve_data(from_dict(TrainConfig, saved))


def held_out(cfg: TrainConfig) -> tuple[set[str], dict[str, Any]]:
    """The demo photo names and the library records (by file) ``cfg``'s run held out (``demo``/``library`` data)."""
    if cfg.data not in ("demo", "library"):
        raise ValueError(f"only models trained on demo or library photos can be compared, not --data {cfg.data}")
    demo = {n.strip() for n in cfg.holdout.split(",") if n.strip()}
    library = {str(r.path): r for r in library_records(cfg)[1]} if cfg.data == "library" else {}
    return demo, library


def model_split(path: str, agent: AgentPolicy) -> tuple[set[str], dict[str, Any]]:
    """:func:`held_out` of the model at ``path``; what its config cannot rebuild is said as the model's (the options
    named are those it was trained with, not this script's)."""
    try:
        return held_out(training_config(agent))
    except ValueError as e:
        raise ValueError(f"{path}, as it was trained: {e}") from None


def common_photos(splits: list[tuple[set[str], dict[str, Any]]]) -> tuple[list[str], list]:
    """The demo photo names and library records held out by every split (of :func:`held_out`), in a fixed order."""
    demo = set.intersection(*(d for d, _ in splits))
    library = set.intersection(*(set(lib) for _, lib in splits))
    return sorted(demo), [splits[0][1][p] for p in sorted(library)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="exported agents or the own trainer's checkpoints")
    parser.add_argument("--no-bundled", action="store_true", help="leave out the bundled agent")
    parser.add_argument("--count", type=int, default=1024, help="views (default: 1024)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the views (default: 0, as deepexpose train)")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace the JSON of --out if it exists")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    if args.out and Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a folder; name the JSON file to write")
    if args.out and Path(args.out).exists() and not args.overwrite:
        parser.error(f"--out {args.out} exists (an earlier comparison?): pass --overwrite to replace it, or choose "
                     "another --out")
    paths = ([] if args.no_bundled else [str(default_model_path())]) + list(args.models)
    agents = [(p, load_agent(p)) for p in paths]
    views = {a.view for _, a in agents}
    if len(views) != 1:
        raise SystemExit(f"compare_models.py: the models look at views of different sizes ({sorted(views)})")
    demo, records = common_photos([model_split(p, a) for p, a in agents])
    photos = (dataset_photos(DemoSet(split="holdout", holdout=tuple(demo))) if demo else []) + load_records(records)
    if not photos:
        raise SystemExit("compare_models.py: no photo is held out by every model")
    print(f"{len(photos)} photos held out by every model: {len(photos) - len(records)} demo photos "
          f"({', '.join(demo)}) and {len(records)} from the library", flush=True)
    pool = PairPool.from_photos(photos, args.count, size=views.pop(), scheme="basic", identity_fraction=0.15,
                                seed=args.seed + HELD_OUT_SEED)
    rows = []
    for path, agent in agents:
        r = evaluate(agent.model, agent.core, pool)
        rows.append({"model": path, **r})
        good = f"; untouched kept at {r['good_psnr']:.2f} dB" if "good_psnr" in r else ""
        print(f"{path}: basic errors {r['input_psnr']:.2f} -> {r['psnr']:.2f} dB, CIEDE2000 "
              f"{r['input_delta_e2000']:.2f} -> {r['delta_e2000']:.2f}{good}", flush=True)
    if args.out:
        doc = {"photos": {"demo": demo, "library": [f"{r.package}/{r.name}" for r in records]},
               "views": args.count, "seed": args.seed, "results": rows}
        atomic_write_bytes(Path(args.out), (json.dumps(doc, indent=1) + "\n").encode(), overwrite=True)
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
