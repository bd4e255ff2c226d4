"""Would more validation photos, or averaging the last kept policies, export a better agent? Validation photos only.

    .venv/bin/python scripts/checkpoint_study.py runs/default-s14 runs/default-s14-seed1 runs/photos-s13 \
        --out runs/study/checkpoints.json

``scripts/train_default_model.py`` exports the policy, among those its run kept at every evaluation (its
``evaluated/`` folder), that scores best on the run's 15 validation photos. This study scores, for each run given,
every kept policy and the weight averages of the last few (``--average``, :func:`deepexpose.agents.policy.
average_policies`), all at crop 0.7 / shrink 1.5 (one of the two settings the recipe scores checkpoints at), on two
sets of photos:

- ``own``: the run's validation photos, 3 ``basic`` errors each and untouched, seed 0: the cases the recipe
  chooses on (:func:`deepexpose.agents.tuning.validation_cases`);
- ``extra``: every photo of the library ``--packages`` (default: endless-sky-data, scratch, tuxpaint-data, which
  no bundled model trained on and which are not reserved), 1 error each and untouched, keyed by name
  (:func:`deepexpose.agents.tuning.library_validation_photos`).

Each candidate's score is the recipe's, ``PSNR - mean max(0, 38 - untouched PSNR)`` over the photos. With the extra
photos as the judge, the report gives the mean *regret* (best score on the judging photos minus the score of the
candidate a rule picks) of: choosing on ``k`` extra photos and judging on the others (``--subsets``, 300 random
splits each, seed 0); the recipe's pick (the best on ``own`` at this setting: the recipe also tries shrink 0.5, so
check that it is the checkpoint the run exported); the last kept policy; each average. Per-photo PSNRs go to
``--out`` (JSON, with the ``--packages`` and each run's folder they were scored with; a rerun skips the candidates
it holds, and refuses a file scored with other packages or another run of the same name, unless ``--overwrite``).
Every option is checked against every run before the first is scored. Held-out photos are never read.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from deepexpose.agents.async_ac import EVALUATED
from deepexpose.agents.policy import average_policies
from deepexpose.agents.train import selection_score
from deepexpose.agents.tuning import (library_validation_photos, parse_grid, run_config, validation_cases,
                                      validation_photos, validation_records)
from deepexpose.io import atomic_write_bytes
from deepexpose.methods import AgentMethod
from deepexpose.metrics import capped_psnr, do_no_harm

PACKAGES = "endless-sky-data,scratch,tuxpaint-data"
CROP, SHRINK, OWN_DRAWS, SEED, SPLITS = 0.7, 1.5, 3, 0, 300

Photo = tuple[list[float], float]  # the PSNRs of a photo's basic errors, and of it untouched


def per_photo(cases: list[list]) -> list[Photo]:
    """``[case, psnr]`` rows in :func:`validation_cases` order (each photo's errors, then it untouched) grouped by
    photo."""
    photos, errors = [], []
    for case, value in cases:
        if case == "untouched":
            photos.append((errors, value))
            errors = []
        else:
            errors.append(value)
    if errors:
        raise ValueError("cases end with errors of a photo that has no untouched case")
    return photos


def set_score(photos: list[Photo], indices: list[int] | None = None) -> float:
    """The selection score of ``deepexpose train`` on ``photos`` (or those at ``indices``): mean PSNR of the
    errors minus the mean of ``max(0, 38 - untouched PSNR)`` over the photos
    (:func:`deepexpose.agents.train.selection_score`)."""
    chosen = photos if indices is None else [photos[i] for i in indices]
    if not chosen:
        raise ValueError("no photos to score")
    psnr = float(np.mean([v for errors, _ in chosen for v in errors]))
    return selection_score({"psnr": psnr, **do_no_harm([good for _, good in chosen])})


def regrets(extra: dict[str, list[Photo]], candidates: list[str], fixed: dict[str, str], k: int,
            splits: int = SPLITS, seed: int = SEED) -> dict[str, float]:
    """Mean regret over ``splits`` random splits of the extra photos into ``k`` choosing and the rest judging:
    ``"chosen on k"`` (the best of ``candidates`` on the ``k``) and each entry of ``fixed`` (label -> candidate),
    against the best of ``candidates`` on the judging photos."""
    n = len(next(iter(extra.values())))
    if not 0 < k < n:
        raise ValueError(f"cannot choose on {k} of {n} photos and judge on the rest")
    rng = random.Random(seed)
    out: dict[str, list[float]] = {"chosen on k": [], **{label: [] for label in fixed}}
    for _ in range(splits):
        order = list(range(n))
        rng.shuffle(order)
        choose, judge = order[:k], order[k:]
        judged = {c: set_score(extra[c], judge) for c in {*candidates, *fixed.values()}}
        top = max(judged[c] for c in candidates)
        out["chosen on k"].append(top - judged[max(candidates, key=lambda c: set_score(extra[c], choose))])
        for label, c in fixed.items():
            out[label].append(top - judged[c])
    return {label: float(np.mean(v)) for label, v in out.items()}


def score_policy(path: Path, cases: list) -> list[list]:
    """``[case, psnr]`` of every case, edited by the agent at ``path`` with the recipe's consensus setting."""
    method = AgentMethod(path, crop=CROP, shrink=SHRINK)
    return [[case, capped_psnr(method.plan(x).render(x, 1.0), target)] for case, x, target in cases]


def study_run(run: Path, packages: list[str], averages: list[int], results: dict, folder: Path,
              save: Callable[[], None], log: Callable[[str], None]) -> None:
    """Score every kept policy of ``run`` and the averages of its last ones (written to ``folder``) into
    ``results[run name]``, calling ``save`` after each."""
    kept = kept_policies(run)
    candidates = [(p.stem, p) for p in kept]
    for n in averages:
        target = folder / f"{run.name}-last{n}.safetensors"
        candidates.append((f"average of last {n}", average_policies(kept[-n:], target)))
    names, photos = library_validation_photos(kept[0], packages)
    sets = {"own": validation_cases(validation_photos(kept[0]), OWN_DRAWS, SEED),
            "extra": validation_cases(photos, 1, SEED, keys=names)}
    done = results.setdefault(run.name, {})
    for name, path in candidates:
        if name in done:
            continue
        start = time.time()
        done[name] = {label: score_policy(path, cases) for label, cases in sets.items()}
        save()
        log(f"{run.name}/{name}: {time.time() - start:.0f} s")


def kept_policies(run: Path) -> list[Path]:
    kept = sorted((run / EVALUATED).glob("step-*.safetensors"))
    if not kept:
        raise SystemExit(f"{run}: no kept policies in {run / EVALUATED} (train with deepexpose train "
                         "--keep-evaluated, or scripts/train_default_model.py, which keeps them by default)")
    return kept


def check_runs(runs: list[Path], packages: list[str], averages: list[int], subsets: list[int]) -> None:
    """Refuse, before any scoring (the README's study takes half an hour), an ``--average`` longer than a run's
    kept policies and a ``--subsets`` entry that leaves no extra photo to judge on; the extra photos are counted
    from the library's records, without opening them."""
    for run in runs:
        kept = kept_policies(run)
        if too_long := [n for n in averages if n > len(kept)]:
            raise SystemExit(f"--average {too_long[0]}: {run} kept only {len(kept)} policies")
        try:
            n = len(validation_records(run_config(kept[0]), packages))
        except ValueError as e:
            raise SystemExit(f"{run}: {e}") from None
        if too_many := [k for k in subsets if k >= n]:
            raise SystemExit(f"--subsets: cannot choose on {too_many[0]} of {n} photos and judge on the rest")


def read_results(out: Path, packages: list[str], runs: list[Path], overwrite: bool) -> dict:
    """The results an earlier call wrote to ``out`` (``{"packages", "paths", "runs"}``), to go on from; a new
    record without it or with ``overwrite``. A file of another kind or of the earlier format (which recorded no
    packages), or scored with other packages (in any order) or for another run of the same folder name (kept
    policies it does not have), is refused rather than merged into."""
    packages = sorted(set(packages))
    fresh = {"packages": packages, "paths": {}, "runs": {}}
    if overwrite or not out.exists():
        return fresh
    try:
        results = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SystemExit(f"--out {out} cannot be read as this study's results ({e}): choose another --out, or pass "
                         "--overwrite to replace it") from None
    if isinstance(results, dict) and results and all(isinstance(v, dict) and all(
            isinstance(c, dict) and set(c) == {"own", "extra"} for c in v.values()) for v in results.values()):
        raise SystemExit(f"--out {out} was written by an earlier version of this script, which did not record the "
                         "--packages it scored with: pass --overwrite to score again, or choose another --out")
    if not isinstance(results, dict) or set(results) != set(fresh):
        raise SystemExit(f"--out {out} is not a file of this study: choose another --out, or pass --overwrite to "
                         "replace it")
    if sorted(set(results["packages"])) != packages:
        raise SystemExit(f"--out {out} holds scores on the photos of --packages {','.join(results['packages'])}: "
                         "choose another --out, or pass --overwrite to score again")
    for run in runs:  # by its kept policies, not its path: a run folder moved with its results is the same run
        scored = {c for c in results["runs"].get(run.name, {}) if c.startswith("step-")}
        if unknown := scored - {p.stem for p in kept_policies(run)}:
            raise SystemExit(f"--out {out} holds scores of another run named {run.name} "
                             f"({results['paths'].get(run.name, '?')}: kept {sorted(unknown)[0]}, which {run} has "
                             "not): choose another --out, or pass --overwrite to score again")
    return results


def report(results: dict, subsets: list[int]) -> str:
    lines = []
    for run, rows in results.items():
        own = {c: per_photo(r["own"]) for c, r in rows.items()}
        extra = {c: per_photo(r["extra"]) for c, r in rows.items()}
        kept = sorted(c for c in rows if c.startswith("step-"))
        averages = [c for c in rows if not c.startswith("step-")]
        pick = max(kept, key=lambda c: set_score(own[c]))
        lines += [f"\n## {run}: {len(kept)} kept policies, {len(own[kept[0]])} own validation photos, "
                  f"{len(extra[kept[0]])} extra photos", "", "| candidate | own score | extra score |", "|---|---|---|"]
        lines += [f"| {c}{' (the recipe picks it)' if c == pick else ''} | {set_score(own[c]):.2f} | "
                  f"{set_score(extra[c]):.2f} |" for c in kept + averages]
        best = max(kept, key=lambda c: set_score(extra[c]))
        header = ["choosing on", "regret: chosen on k extra photos", "the recipe's pick", "the last kept", *averages]
        lines += ["", f"best kept policy on all extra photos: {best}, {set_score(extra[best]):.2f}", "",
                  "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        fixed = {"recipe": pick, "last": kept[-1], **{a: a for a in averages}}
        for k in subsets:
            r = regrets(extra, kept, fixed, k)
            lines.append(f"| {k} | {r['chosen on k']:.3f} | {r['recipe']:.3f} | {r['last']:.3f} | "
                         + " | ".join(f"{r[a]:.3f}" for a in averages) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders that kept their evaluated policies")
    parser.add_argument("--packages", default=PACKAGES, help=f"library packages of the extra photos (default: "
                        f"{PACKAGES})")
    parser.add_argument("--average", default="3,5", help="average the last N kept policies, for each N (default: "
                        "3,5; '' for none)")
    parser.add_argument("--subsets", default="15,30,60,120", help="numbers of extra photos to choose on (default: "
                        "15,30,60,120)")
    parser.add_argument("--out", type=Path, default=Path("runs/study/checkpoints.json"),
                        help="per-photo results (JSON; averaged policies go beside it); a rerun goes on from it")
    parser.add_argument("--overwrite", action="store_true", help="score afresh, replacing the results in --out")
    args = parser.parse_args(argv)
    try:
        averages = parse_grid(args.average, "--average")
        subsets = parse_grid(args.subsets, "--subsets")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if any(n < 2 or n != int(n) for n in averages):
        raise SystemExit("--average: an average needs a whole number of at least 2 policies")
    if any(k < 1 or k != int(k) for k in subsets):
        raise SystemExit("--subsets: whole numbers of photos, at least 1")
    averages, subsets = [int(n) for n in averages], [int(k) for k in subsets]
    if len({run.name for run in args.runs}) < len(args.runs):
        raise SystemExit("runs are recorded by folder name: give runs whose folders have different names")
    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    check_runs(args.runs, packages, averages, subsets)
    results = read_results(args.out, packages, args.runs, args.overwrite)
    packages = results["packages"]
    results["paths"].update({run.name: str(run.resolve()) for run in args.runs})

    def save() -> None:
        atomic_write_bytes(args.out, json.dumps(results).encode(), overwrite=True)
    folder = args.out.parent / f"{args.out.stem}-averages"
    folder.mkdir(parents=True, exist_ok=True)
    for run in args.runs:
        try:
            study_run(run, packages, averages, results["runs"], folder, save, lambda line: print(line, flush=True))
        except ValueError as e:
            raise SystemExit(f"{run}: {e}") from None
    print(report({run.name: results["runs"][run.name] for run in args.runs}, subsets))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
