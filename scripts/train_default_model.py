"""Train the bundled default agent, ``deepexpose/models/agent.safetensors`` (+ ``.json``), from a fresh clone.

    bash scripts/setup.sh
    .venv/bin/python scripts/get_photos.py                       # the Debian photo library (once)
    .venv/bin/python scripts/train_default_model.py               # trains, evaluates, exports

Training photos, all openly licensed and listed with their licences in ``deepexpose/data/packages.py`` and
``deepexpose/data/demo.py``: the scikit-image demo photos astronaut and rocket (coffee and chelsea are held
out for evaluation; the motorcycle pair, whose licence is unstated, is held out too, so the shipped weights never
saw it) and the packages of the Debian photo library named by ``--library-packages`` (by default those the bundled
models were trained on, :data:`deepexpose.data.synthetic.BUNDLED_LIBRARY`, which leaves out kphotoalbum:
identifiable people), minus 20 % of their scene groups held out. Retraining on more packages means naming them here
and then setting ``BUNDLED_LIBRARY`` to them (a test compares it with the models' configs), and retraining the
baselines (``scripts/train_baselines.py``) on the same packages, since the held-out split depends on every package
in it. The reserved evaluation packages (mate-backgrounds, plasma-workspace-wallpapers) are never fetched.

The exported checkpoint is chosen on validation photos: 10 % of the library's *training* scene groups, kept out
of training. By default (``--choose-on-photos``) the run keeps the policy of every evaluation and exports the one
that scores best on these photos, whole, with one edit agreed on six views as ``deepexpose enhance`` makes it
(:func:`deepexpose.agents.tuning.choose_checkpoint`); with ``--no-choose-on-photos`` it exports the run's
``best.safetensors``, the best score on their 64x64 views (:func:`deepexpose.agents.train.selection_score`). The
consensus setting (crop and shrink of the six views ``deepexpose enhance`` agrees on) is then chosen on the same
photos, whole, from the grid of ``--consensus-crops`` and ``--consensus-shrinks``
(:func:`deepexpose.agents.tuning.tune_consensus`), and carried in the model's JSON. Neither checkpoint nor setting
is ever chosen on the held-out photos, whose results are only reported. The policy sees the log-chroma
white-balance estimate (``--chroma``, on by default). The run goes to ``runs/default-model``; the exported model
keeps only the policy weights, its set-up, the training config, the run's evaluation history and best score on
views, how its checkpoint was chosen (``trained.chosen``: the step, and for ``--choose-on-photos`` the setting it
was scored at and its score) and its consensus setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from deepexpose.agents.async_ac import EVALUATED
from deepexpose.agents.checkpoint import read_meta
from deepexpose.agents.policy import DEFAULT_MODEL, export_agent
from deepexpose.agents.train import TrainConfig, earlier_run, train
from deepexpose.agents.tuning import (GRID_CROPS, GRID_SHRINKS, NoValidationPhotos, choose_checkpoint, grid_text,
                                      parse_consensus_grid, tune_consensus, validation_set)
from deepexpose.data.packages import PHOTO_PACKAGES, default_cache_dir, load_library
from deepexpose.data.synthetic import BUNDLED_LIBRARY, EXCLUDED_PACKAGES, HELD_OUT_DEMO
from deepexpose.io import writable_folder

HOLDOUT = HELD_OUT_DEMO
TUNE_DRAWS, TUNE_SEED = 3, 0  # the basic errors per validation photo that score each consensus setting
CHOOSE_CROPS, CHOOSE_SHRINKS = (0.7,), (0.5, 1.5)  # --choose-on-photos: the settings each kept policy is scored at
# how the exported checkpoint was chosen, in its JSON as trained.chosen.by
CHOSEN_ON_PHOTOS = "whole validation photos, one edit agreed on six views"
CHOSEN_ON_VIEWS = "64x64 validation views (best.safetensors)"
CHOSEN_LAST = "last checkpoint (no validation score)"
MODEL_DIR = Path(__file__).resolve().parent.parent / "deepexpose" / "models"


def default_config(minutes: float, out: str, packages: list[str], seed: int = 0, chroma: bool = True) -> TrainConfig:
    return TrainConfig(algo="adpg", data="library", library_packages=",".join(packages), holdout=HOLDOUT,
                       scheme="mixed", eval_scheme="basic", pool_size=8192, eval_size=256, minutes=minutes,
                       steps=10 ** 9, colour_stats=True, deadzone=0.05, chroma=chroma, validation=0.1,
                       eval_every=25_000, checkpoint_every=200_000, out=out, seed=seed)


def chosen_packages(value: str) -> list[str]:
    """The comma-separated library packages of ``value``, each of which must be in the photo cache."""
    packages = [p.strip() for p in value.split(",") if p.strip()]
    cached = {r.package for r in load_library(default_cache_dir())}
    unknown = [p for p in packages if p not in PHOTO_PACKAGES]
    missing = [p for p in packages if p not in cached and p not in unknown]
    if not packages or unknown:
        raise SystemExit(f"--library-packages: name packages of the photo registry, not {', '.join(unknown) or 'none'}")
    if missing:
        raise SystemExit(f"not in the photo cache: {', '.join(missing)} (fetch them with scripts/get_photos.py"
                         f"{' --with-large' if any(PHOTO_PACKAGES[p].large for p in missing) else ''})")
    if any(p in EXCLUDED_PACKAGES for p in packages):
        print(f"note: training on {', '.join(p for p in packages if p in EXCLUDED_PACKAGES)}, which the bundled "
              "models leave out")
    return packages


def _scores(evaluation: dict) -> dict:
    """The held-out scores of an evaluation (its float entries)."""
    return {k: v for k, v in evaluation.items() if isinstance(v, float)}


def library_packages_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library-packages", default=",".join(BUNDLED_LIBRARY),
                        help="photo-library packages to train on (default: BUNDLED_LIBRARY, those the bundled "
                             "models were trained on)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget in minutes (> 0; default: 12)")
    parser.add_argument("--out", default="runs/default-model", help="training run folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    parser.add_argument("--model-dir", default=str(MODEL_DIR), help="where the exported model goes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the photos' views, the networks and the "
                        "workers (default: 0, the bundled model's)")
    parser.add_argument("--chroma", action=argparse.BooleanOptionalAction, default=True,
                        help="add the log-chroma white-balance estimate (deepexpose train --chroma; default: on, "
                             "as the bundled model was trained)")
    parser.add_argument("--consensus-crops", default=grid_text(GRID_CROPS),
                        help=f"crop sides of the consensus grid tried on the validation photos (default: "
                             f"{grid_text(GRID_CROPS)}); empty, with --consensus-shrinks '': no tuning, the model "
                             "keeps the default setting")
    parser.add_argument("--consensus-shrinks", default=grid_text(GRID_SHRINKS),
                        help=f"shrink factors of that grid (default: {grid_text(GRID_SHRINKS)})")
    parser.add_argument("--choose-on-photos", action=argparse.BooleanOptionalAction, default=True,
                        help="keep the policy of every evaluation and export the one that scores best on the whole "
                             "validation photos with one edit agreed on six views, as enhance makes it (crop "
                             f"{grid_text(CHOOSE_CROPS)}, shrinks {grid_text(CHOOSE_SHRINKS)}), instead of the best "
                             "on 64x64 validation views (default: on, as the bundled model was chosen)")
    library_packages_option(parser)
    args = parser.parse_args(argv)

    if not args.minutes > 0:  # with the step budget of 10**9, 0 ("no time budget") would train for days
        raise SystemExit(f"--minutes must be > 0, got {args.minutes}")
    if (found := earlier_run(args.out)) and not args.overwrite:
        raise SystemExit(f"--out {args.out} holds an earlier run ({', '.join(found)}): choose another --out, or pass "
                         "--overwrite to replace it")
    try:  # refused before training, not after
        crops, shrinks = parse_consensus_grid(args.consensus_crops, args.consensus_shrinks, "--consensus-crops",
                                              "--consensus-shrinks")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if bool(crops) != bool(shrinks):
        raise SystemExit("--consensus-crops and --consensus-shrinks: give both, or both empty to skip the tuning")
    packages = chosen_packages(args.library_packages)
    try:  # made and tried with a file (after every other check): the model is written after the whole training
        writable_folder(args.model_dir, "--model-dir")
    except (OSError, ValueError) as e:
        raise SystemExit(str(e)) from None
    cfg = dataclasses.replace(default_config(args.minutes, args.out, packages, args.seed, args.chroma),
                              keep_evaluated=args.choose_on_photos, overwrite=args.overwrite)
    result = train(cfg)
    start = time.monotonic()
    target = Path(args.model_dir) / DEFAULT_MODEL
    note = (f"trained by scripts/train_default_model.py: demo photos astronaut, rocket and the Debian photo "
            f"library packages {', '.join(packages)} (held out: {HOLDOUT} and 20 % of the library's scene groups; ")
    best = Path(args.out) / "best.safetensors"
    kept = sorted((Path(args.out) / EVALUATED).glob("step-*.safetensors")) if args.choose_on_photos else []
    on_photos, cases = None, None  # cases: the validation photos with their errors, made once for both choices
    if kept:
        try:
            cases = validation_set(kept[0], draws=TUNE_DRAWS, seed=TUNE_SEED)
            on_photos = choose_checkpoint(kept, CHOOSE_CROPS, CHOOSE_SHRINKS, cases=cases,
                                          log=lambda line: print(line, flush=True))["best"]
        except NoValidationPhotos as e:
            print(f"note: --choose-on-photos: {e}; exporting as without it")
    if on_photos is not None:
        source = Path(on_photos["path"])
        step = read_meta(source)["step"]
        evaluation = next(h for h in result["history"] if h["step"] == step)
        exported = {"step": step, "validation_photos": on_photos, "validation": evaluation.get("validation"),
                    "held_out": _scores(evaluation)}
        how = {"by": CHOSEN_ON_PHOTOS, "step": step, "scored_at": {"crop": on_photos["crop"],
                                                                 "shrink": on_photos["shrink"]},
               **{k: on_photos[k] for k in ("psnr", "good_psnr", "good_shortfall", "good_within", "score")
                  if k in on_photos}}
        # the run's whole record: the kept file holds its history and best only up to its own step
        run = {"history": result["history"], **({"best": result["best"]} if result.get("best") else {})}
        note += ("checkpoint chosen on the whole photos of 10 % of the library's training scene groups, kept out of "
                 "training, among those of every evaluation)")
    elif best.with_suffix(".json").is_file() and result.get("best"):
        source, chosen = best, result["best"]
        exported = {"step": chosen["step"], "validation": {**chosen["validation"], "score": chosen["score"]},
                    "held_out": chosen["held_out"]}
        how = {"by": CHOSEN_ON_VIEWS, "step": chosen["step"], "score": chosen["score"]}
        run = {}
        note += "checkpoint chosen on 10 % of the library's training scene groups, kept out of training)"
    else:
        source = Path(args.out) / "checkpoint.safetensors"
        print(f"note: no {best.name} in {args.out}: exporting the last checkpoint instead")
        exported = {"step": result["steps"], "validation": result.get("validation"), "held_out": _scores(result)}
        how = {"by": CHOSEN_LAST, "step": result["steps"]}
        run = {}
        note += "the last checkpoint: no validation score chose one)"
    tuned = {"setting": None, "chosen": None}
    if crops:  # the model's own consensus setting, chosen on the validation photos that chose its checkpoint
        try:
            tuned = tune_consensus(source, crops, shrinks, draws=TUNE_DRAWS, seed=TUNE_SEED, cases=cases,
                                   colour=False, log=lambda line: print(line, flush=True))
            note += (f"; consensus setting chosen on the validation photos (deepexpose.agents.tuning, {TUNE_DRAWS} "
                     f"draws, seed {TUNE_SEED})")
        except NoValidationPhotos as e:
            print(f"note: {e}; the model keeps the default consensus setting")
    export_agent(source, target, note=note, consensus=tuned["setting"], record={"chosen": how, **run})
    size = target.stat().st_size + target.with_suffix(".json").stat().st_size
    print(json.dumps({"model": str(target), "bytes": size, "from": str(source),
                      "choosing_seconds": round(time.monotonic() - start, 1),
                      "validation_source": result.get("validation_source"), **exported, "consensus": tuned["chosen"]},
                     indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
