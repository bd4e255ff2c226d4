"""Train the bundled baseline models (``deepexpose/models/{classifier,histogram,cgan}.safetensors``).

    .venv/bin/python scripts/get_photos.py            # the Debian photo library (once)
    .venv/bin/python scripts/train_baselines.py        # all three, 3.5 minutes of training each
    .venv/bin/python scripts/train_baselines.py --methods classifier --minutes 2

Same photos and the same held-out photos as the default agent (``scripts/train_default_model.py``): the
demo photos astronaut and rocket plus the library packages of ``--library-packages`` (by default
``BUNDLED_LIBRARY``, the library without kphotoalbum as the bundled models were trained on it); coffee,
chelsea, the motorcycle pair and 20 % of the library's scene groups held out. Each model is written with its JSON twin
(config and held-out evaluation) and must stay under 5 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_default_model import HOLDOUT, MODEL_DIR, chosen_packages, library_packages_option  # noqa: E402

from deepexpose.agents.cgan import CganConfig, train_cgan  # noqa: E402
from deepexpose.agents.classifier import ClassifierConfig, train_classifier  # noqa: E402
from deepexpose.agents.histogram import HistogramConfig, train_histogram  # noqa: E402
from deepexpose.io import atomic_write_bytes, writable_folder  # noqa: E402

TRAINERS = {
    "classifier": (ClassifierConfig, train_classifier, "classifier.safetensors"),
    "histogram": (HistogramConfig, train_histogram, "histogram.safetensors"),
    "cgan": (CganConfig, train_cgan, "cgan.safetensors"),
}
MAX_BYTES = 5 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="classifier,histogram,cgan", help="which baselines to train")
    parser.add_argument("--minutes", type=float, default=3.5, help="training budget of each (> 0; default: 3.5)")
    parser.add_argument("--out", default="runs/baselines", help="training runs go to OUT/METHOD")
    parser.add_argument("--model-dir", default=str(MODEL_DIR), help="where the models go")
    library_packages_option(parser)
    args = parser.parse_args(argv)

    if not args.minutes > 0:  # with the step budget of 10**9, 0 ("no time budget") would train for days
        raise SystemExit(f"--minutes must be > 0, got {args.minutes}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := [m for m in methods if m not in TRAINERS] or ([] if methods else ["(none)"]):
        raise SystemExit(f"unknown baseline {', '.join(map(repr, unknown))}; choose from {', '.join(TRAINERS)}")
    packages = chosen_packages(args.library_packages)
    try:  # made and tried with a file (after every other check): each model is written after its whole training
        writable_folder(args.model_dir, "--model-dir")
    except (OSError, ValueError) as e:
        raise SystemExit(str(e)) from None
    report = {}
    for method in methods:  # checked above, before any training
        cls, fn, name = TRAINERS[method]
        out = Path(args.out) / method
        cfg = cls(data="library", library_packages=",".join(packages), holdout=HOLDOUT, minutes=args.minutes,
                  steps=10 ** 9, out=str(out), progress=False, seed=0, overwrite=True)
        result = fn(cfg)
        size = (out / name).stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{method}: the model is {size} bytes, over the 5 MB limit")
        target = Path(args.model_dir)
        target.mkdir(parents=True, exist_ok=True)
        for src in (out / name, (out / name).with_suffix(".json")):  # the JSON last: it marks a complete model
            atomic_write_bytes(target / src.name, src.read_bytes(), overwrite=True)
        report[method] = {"bytes": size, "held_out": result}
        print(json.dumps({method: report[method]}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
