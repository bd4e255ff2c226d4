"""How sure is a difference between two methods measured on the same photos? Paired differences with standard errors.

    .venv/bin/python scripts/paired_difference.py runs/eval/A runs/eval/B
    .venv/bin/python scripts/paired_difference.py runs/eval/A runs/eval/B --method-a agent --method-b classic

Reads the ``per_image.csv`` of two ``deepexpose evaluate`` runs on the same benchmark (or one run with two methods,
given twice), pairs their rows by image (the same photo with the same drawn error; images only one run measured
are left out and counted) and prints, per case group and metric, the mean of B − A, the standard deviation of the
differences, the standard error of their mean (over photos: the errors ``evaluate --draws`` gives one photo are not
independent) and ``t = mean / se``: a difference within about two standard errors of 0 is not shown by these
photos. Positive PSNR and negative CIEDE2000 differences favour B.

Names alone do not make two runs' images the same: the ``results.json`` beside each ``per_image.csv`` is read, and
runs of another dataset or ``--size``, of another ``--seed`` of synthetic errors (whose names are the same and whose
drawn errors are not) or another ``--split`` or ``--expert`` are refused, as is an image that the two runs put in
different groups (a run of one case names its images without it); another dataset folder is pointed out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
from pathlib import Path

from deepexpose.data.synthetic import photo_of

METRICS = ("psnr", "delta_e2000")


def read_rows(path: str | Path, method: str) -> dict[str, dict]:
    """The rows of ``method`` in an evaluate run's ``per_image.csv`` (``path``: the file or its folder), by image,
    their metrics as numbers; a cell that is not a finite number and an image listed twice are refused by name (a
    hand-edited file gave a traceback, or its last row of a name silently)."""
    path = Path(path)
    if path.is_dir():
        path = path / "per_image.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if missing := {"name", "group", "method", *METRICS} - set(reader.fieldnames or ()):
            raise ValueError(f"{path} is not the per_image.csv of deepexpose evaluate (no {', '.join(sorted(missing))} "
                             "column)")
        rows: dict[str, dict] = {}
        for r in reader:
            if r["method"] != method:
                continue
            if r["name"] in rows:
                raise ValueError(f"{path} lists image {r['name']!r} of method {method!r} twice")
            for metric in METRICS:
                try:
                    r[metric] = float(r[metric])
                except (TypeError, ValueError):
                    r[metric] = math.nan
                if not math.isfinite(r[metric]):
                    raise ValueError(f"{path}: image {r['name']!r} has no finite {metric} (line {reader.line_num})")
            rows[r["name"]] = r
    if not rows:
        raise ValueError(f"{path} has no rows of method {method!r}")
    return rows


def image_settings(path: str | Path) -> dict | None:
    """The settings of the evaluate run of ``path`` (its folder or ``per_image.csv``) that decide what an image's name
    stands for, from the ``results.json`` beside it: ``dataset``, ``root`` and ``size``, with ``seed`` for synthetic
    errors (the draws) and ``split`` and ``expert`` for the other datasets; ``None`` without a ``results.json``."""
    path = Path(path)
    found = (path if path.is_dir() else path.parent) / "results.json"
    if not found.is_file():
        return None
    settings = json.loads(found.read_text()).get("settings")
    if not isinstance(settings, dict):
        raise ValueError(f"{found} is not the results.json of deepexpose evaluate (no settings)")
    dataset = str(settings.get("dataset", "")).strip().lower()
    keys = ("root", "size", *(("seed",) if dataset == "synthetic" else ("split", "expert")))
    root = str(settings.get("root") or "")
    return {"dataset": dataset, **{key: settings.get(key) for key in keys},
            "root": os.path.normpath(os.path.expanduser(root)) if root else ""}


def check_same_images(a: dict | None, b: dict | None) -> str:
    """``ValueError`` naming what differs when the settings of :func:`image_settings` of two runs differ, but for
    their dataset folders (``root``), which may hold the same photos in another place: a note saying so, or ``""``."""
    if a is None or b is None:
        return ""
    differ = [f"{key} {a.get(key)!r} against {b.get(key)!r}" for key in dict.fromkeys([*a, *b])
              if key != "root" and a.get(key) != b.get(key)]
    if differ:
        raise ValueError("the two runs scored other images under the same names: " + "; ".join(differ))
    if a.get("root") != b.get("root"):
        return f"note: the runs read their photos from other folders ({a.get('root')!r}, {b.get('root')!r})"
    return ""


def paired(a: dict[str, dict], b: dict[str, dict], metrics: tuple[str, ...] = METRICS) -> list[dict]:
    """Per group and metric over the images both runs measured (``ValueError`` when none): ``n`` images of
    ``photos`` photos, the means of A and B, and of B − A with the ``sd`` of the differences, the standard error
    ``se`` and ``t = mean / se``. Several errors drawn on one photo are not independent, so ``se`` is that of the
    photos' mean differences, ``sd(photo means) / sqrt(photos)`` (with one error per photo the usual one); ``None``
    with fewer than two photos or no spread."""
    common = a.keys() & b.keys()
    if not common:
        raise ValueError("the two runs have no image in common")
    if moved := sorted(n for n in common if a[n]["group"] != b[n]["group"]):
        raise ValueError(f"{len(moved)} image(s) are in other groups in the two runs, so they are other images under "
                         f"one name, e.g. {moved[0]} ({a[moved[0]]['group']} against {b[moved[0]]['group']})")
    out = []
    for group in sorted({a[n]["group"] for n in common}):
        names = sorted(n for n in common if a[n]["group"] == group)
        for metric in metrics:
            xa = [float(a[n][metric]) for n in names]
            xb = [float(b[n][metric]) for n in names]
            d = [y - x for x, y in zip(xa, xb, strict=True)]
            by_photo: dict[str, list[float]] = {}
            for name, diff in zip(names, d, strict=True):
                by_photo.setdefault(photo_of(name), []).append(diff)
            means = [statistics.fmean(v) for v in by_photo.values()]
            mean = statistics.fmean(d)
            sd = statistics.stdev(d) if len(d) > 1 else None
            spread = statistics.stdev(means) if len(means) > 1 else None
            se = spread / math.sqrt(len(means)) if spread else None
            out.append({"group": group, "metric": metric, "n": len(d), "photos": len(means),
                        "a": statistics.fmean(xa), "b": statistics.fmean(xb), "difference": mean, "sd": sd,
                        "se": se, "t": mean / se if se else None})
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="evaluate output folder (or its per_image.csv) of A")
    parser.add_argument("b", help="the same for B")
    parser.add_argument("--method-a", default="agent", help="method of A's rows (default: agent)")
    parser.add_argument("--method-b", default="agent", help="method of B's rows (default: agent)")
    args = parser.parse_args(argv)
    try:
        a, b = read_rows(args.a, args.method_a), read_rows(args.b, args.method_b)
        settings = image_settings(args.a), image_settings(args.b)
        if note := check_same_images(*settings):
            print(note)
        rows = paired(a, b)
    except (OSError, ValueError) as e:
        raise SystemExit(str(e)) from None
    left_out = {"only_a": len(a.keys() - b.keys()), "only_b": len(b.keys() - a.keys())}
    if any(left_out.values()):
        print(f"note: left out the images only one run measured: {left_out['only_a']} of A's, "
              f"{left_out['only_b']} of B's")
    if None in settings:
        print("note: without the results.json of " + " and ".join(
            name for name, found in zip("AB", settings, strict=True) if found is None)
            + ", whether the runs scored the same images (dataset, size, seed) was not checked")
    print(f"| group | metric | images | photos | A | B | B − A | sd | se | t |\n|{'---|' * 10}")
    for r in rows:
        print(f"| {r['group']} | {r['metric']} | {r['n']} | {r['photos']} | {r['a']:.2f} | {r['b']:.2f} | "
              f"{r['difference']:+.2f} | {_cell(r['sd'])} | {_cell(r['se'])} | {_cell(r['t'])} |")
    print(json.dumps({"a": f"{args.a} ({args.method_a})", "b": f"{args.b} ({args.method_b})", "left_out": left_out,
                      "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
