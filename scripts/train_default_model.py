"""Train the bundled default agent, ``deepexpose/models/agent.safetensors`` (+ ``.json``), from a fresh clone.

    bash scripts/setup.sh
    .venv/bin/python scripts/get_photos.py                       # the Debian photo library (once)
    .venv/bin/python scripts/train_default_model.py               # trains, evaluates, exports

Training photos, all openly licensed and listed with their licences in ``deepexpose/data/packages.py`` and
``deepexpose/data/demo.py``: the scikit-image demo photos astronaut and rocket (coffee and chelsea are held
out for evaluation; the motorcycle pair, whose licence is unstated, is held out too, so the shipped weights
never saw it) and the Debian photo library without kphotoalbum (identifiable people), minus 20 % of its scene
groups held out. The reserved evaluation packages (mate-backgrounds, plasma-workspace-wallpapers) are never
fetched.

The exported checkpoint is chosen on validation photos: 10 % of the library's *training* scene groups, kept out
of training (``best.safetensors`` of the run, the best validation score; see
:func:`deepexpose.agents.train.selection_score`). It is never chosen on the held-out photos, whose results are
only reported. The run goes to ``runs/default-model``; the exported model keeps only the policy weights, its
set-up, the training config and the evaluation history.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepexpose.agents.policy import DEFAULT_MODEL, export_agent
from deepexpose.agents.train import TrainConfig, train
from deepexpose.data.packages import PHOTO_PACKAGES, default_cache_dir, load_library
from deepexpose.data.synthetic import EXCLUDED_PACKAGES, HELD_OUT_DEMO

HOLDOUT = HELD_OUT_DEMO
MODEL_DIR = Path(__file__).resolve().parent.parent / "deepexpose" / "models"


def default_config(minutes: float, out: str, packages: list[str]) -> TrainConfig:
    return TrainConfig(algo="adpg", data="library", library_packages=",".join(packages), holdout=HOLDOUT,
                       scheme="mixed", eval_scheme="basic", pool_size=8192, eval_size=256, minutes=minutes,
                       steps=10 ** 9, colour_stats=True, deadzone=0.05, validation=0.1, eval_every=25_000,
                       checkpoint_every=200_000, out=out, seed=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget (default: 12)")
    parser.add_argument("--out", default="runs/default-model", help="training run folder")
    parser.add_argument("--model-dir", default=str(MODEL_DIR), help="where the exported model goes")
    args = parser.parse_args()

    cached = sorted({r.package for r in load_library(default_cache_dir())})
    packages = [p for p in cached if p not in EXCLUDED_PACKAGES]
    missing = [p for p in PHOTO_PACKAGES if p not in cached and p not in EXCLUDED_PACKAGES]
    if not packages:
        raise SystemExit("no photo library in the cache: run scripts/get_photos.py first")
    if missing:
        print(f"note: packages not in the cache (fetch them with scripts/get_photos.py): {', '.join(missing)}")
    cfg = default_config(args.minutes, args.out, packages)
    result = train(cfg)
    target = Path(args.model_dir) / DEFAULT_MODEL
    note = (f"trained by scripts/train_default_model.py: demo photos astronaut, rocket and the Debian photo "
            f"library packages {', '.join(packages)} (held out: {HOLDOUT} and 20 % of the library's scene groups; "
            f"checkpoint chosen on 10 % of the library's training scene groups, kept out of training)")
    best = Path(args.out) / "best.safetensors"
    if best.with_suffix(".json").is_file() and result.get("best"):
        source, chosen = best, result["best"]
        exported = {"step": chosen["step"], "validation": {**chosen["validation"], "score": chosen["score"]},
                    "held_out": chosen["held_out"]}
    else:
        source = Path(args.out) / "checkpoint.safetensors"
        print(f"note: no {best.name} in {args.out}: exporting the last checkpoint instead")
        held = {k: v for k, v in result.items() if isinstance(v, float)}
        exported = {"step": result["steps"], "validation": result.get("validation"), "held_out": held}
    export_agent(source, target, note=note)
    size = target.stat().st_size + target.with_suffix(".json").stat().st_size
    print(json.dumps({"model": str(target), "bytes": size, "from": str(source),
                      "validation_source": result.get("validation_source"), **exported}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
