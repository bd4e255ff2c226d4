"""Does the agent get better with more training photos? The same training on growing shares of them.

    .venv/bin/python scripts/get_photos.py               # the Debian photo library (once)
    .venv/bin/python scripts/learning_curve.py           # 1/8, 1/4, 1/2 and all of the training photos

Each run is ``deepexpose train`` with its default settings (the photo library through ``--data auto``, 20,000
image-steps), the packages of ``--library-packages`` (by default the bundled models' nine) and
``--train-fraction F``: only that share of the training photos is trained on, while the
validation photos (which choose the checkpoint) and the held-out photos (which are only reported) stay the same.
The table gives the held-out views' basic-error quality of each run's chosen checkpoint. A curve that is still
rising at the right end says more photos of this kind would help; a flat one says they would not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepexpose.agents.train import TrainConfig, check_config, earlier_run, train
from deepexpose.data.synthetic import BUNDLED_LIBRARY
from deepexpose.io import atomic_write_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fractions", default="0.125,0.25,0.5,1", help="shares of the training photos")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (photo draw, data and networks)")
    parser.add_argument("--steps", type=int, default=20000, help="image-steps per run (default: 20000)")
    parser.add_argument("--eval-size", type=int, default=512, help="validation and held-out views (default: 512)")
    parser.add_argument("--out", default="runs/learning-curve", help="runs go to OUT/F-SEED; OUT/curve.json")
    parser.add_argument("--library-packages", default=",".join(BUNDLED_LIBRARY),
                        help="photo-library packages to use (default: the bundled models' BUNDLED_LIBRARY)")
    parser.add_argument("--overwrite", action="store_true", help="replace the runs an earlier call left in OUT")
    args = parser.parse_args()
    try:
        fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as e:
        parser.error(f"--fractions takes numbers and --seeds whole numbers, comma-separated ({e})")
    if not fractions or not all(0 < f <= 1 for f in fractions):
        parser.error(f"--fractions must be shares in (0, 1], got {args.fractions!r}")
    if not seeds:
        parser.error("--seeds is empty")
    for name, values in (("--fractions", [f"{f:g}" for f in fractions]), ("--seeds", [str(s) for s in seeds])):
        if len(set(values)) != len(values):  # two runs of one folder: the second would fail hours in
            parser.error(f"{name} lists a value twice: {', '.join(values)}")
    if args.steps < 1 or args.eval_size < 1:
        parser.error(f"--steps and --eval-size must be >= 1, got {args.steps} and {args.eval_size}")
    runs = [(f, s) for s in seeds for f in fractions]
    taken = [str(Path(args.out) / f"{f:g}-{s}") for f, s in runs if earlier_run(Path(args.out) / f"{f:g}-{s}")]
    if taken and not args.overwrite:  # said before the first run, not hours into the curve
        parser.error(f"{', '.join(taken)} hold earlier runs: choose another --out, or pass --overwrite")
    configs = [TrainConfig(train_fraction=fraction, steps=args.steps, eval_size=args.eval_size, seed=seed,
                           out=str(Path(args.out) / f"{fraction:g}-{seed}"), progress=False,
                           library_packages=args.library_packages, overwrite=args.overwrite) for fraction, seed in runs]
    try:  # every run's settings, before the first one trains
        for cfg in configs:
            check_config(cfg)
    except ValueError as e:
        parser.error(str(e))
    rows = []
    for cfg in configs:
        fraction, seed = cfg.train_fraction, cfg.seed
        result = train(cfg)
        best, photos = result["best"], result["trained_on"]
        held = best["held_out"]
        rows.append({"fraction": fraction, "seed": seed, "photos": photos, "step": best["step"],
                     "held_out": held, "validation": {**best["validation"], "score": best["score"]}})
        print(f"{fraction:>8g} {seed:>4} {photos:>6} photos: held-out basic errors {held['input_psnr']:.2f} -> "
              f"{held['psnr']:.2f} dB, CIEDE2000 {held['input_delta_e2000']:.2f} -> {held['delta_e2000']:.2f}; "
              f"untouched {held.get('good_psnr', float('nan')):.2f} dB", flush=True)
    atomic_write_bytes(Path(args.out) / "curve.json", json.dumps(rows, indent=2).encode(), overwrite=True)
    print(f"wrote {Path(args.out) / 'curve.json'}")
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
