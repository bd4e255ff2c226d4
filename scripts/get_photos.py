"""Fetch the openly licensed photos that ship in Debian packages into the photo cache and list them.

    .venv/bin/python scripts/get_photos.py                     # every package but the 400 MB one
    .venv/bin/python scripts/get_photos.py --with-large --sheet out/photos.jpg
    .venv/bin/python scripts/get_photos.py --packages kphotoalbum,jigzo-data --cache /tmp/photos

Needs apt-get and dpkg-deb (Debian or Ubuntu). ``apt-get download`` works without root once apt's package lists
exist; if they do not, the script runs ``apt-get update`` once, which needs root (or run it yourself first).
Packages already in the cache are not fetched again. The cache is $DEEPEXPOSE_PHOTOS or
~/.cache/deepexpose/photos. Packages, licences and credits: deepexpose/data/packages.py.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from deepexpose.data.packages import (PHOTO_PACKAGES, PhotoFetchError, PhotoRecord, default_cache_dir,
                                      fetch_photos)


def _norm(licence: str) -> str:
    return re.sub(r"\s+", "-", licence.strip()).upper()


def licence_summary(records: list[PhotoRecord]) -> str:
    """``debian/copyright`` licences of a package's photos, then the upstream statements, each set sorted."""
    debian = sorted({_norm(r.licence.split(" (")[0]) for r in records})
    upstream = sorted({_norm(m.group(1)) for r in records if (m := re.search(r"upstream: (.+?) \(", r.licence))})
    return ", ".join(debian) + (f"; upstream: {', '.join(upstream)}" if upstream else "")


def table(records: list[PhotoRecord]) -> str:
    by_package: dict[str, list[PhotoRecord]] = defaultdict(list)
    for r in records:
        by_package[r.package].append(r)
    rows = [(name, str(len(recs)), licence_summary(recs)) for name, recs in by_package.items()]
    rows.append(("total", str(len(records)), f"{len({r.group for r in records})} scene groups"))
    head = ("package", "photos", "licence (debian/copyright; upstream credit files)")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(2)]
    lines = [f"{head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]}"]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def _thumbnail(path: Path, cell: int) -> np.ndarray:
    with PILImage.open(path) as im:
        im.draft("RGB", (cell * 4, cell * 4))  # fast JPEG decode at reduced size
        im = im.convert("RGB")
        im.thumbnail((cell * 3, cell))
        return np.asarray(im)


def write_sheet(records: list[PhotoRecord], out: Path, columns: int = 12, cell: int = 96) -> None:
    """A contact sheet of every photo, one or more rows per package."""
    from deepexpose.io import write_image
    from deepexpose.sheet import contact_sheet

    rows: list[list[np.ndarray]] = []
    for package in dict.fromkeys(r.package for r in records):
        thumbs = [_thumbnail(r.path, cell) for r in records if r.package == package]
        rows += [thumbs[i:i + columns] for i in range(0, len(thumbs), columns)]
    sheet = contact_sheet(rows, cell=cell)
    write_image(out, sheet.astype(np.float32) / 255.0, quality=90, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=None, help=f"cache folder (default {default_cache_dir()})")
    p.add_argument("--packages", default=None,
                   help=f"comma-separated subset of: {', '.join(PHOTO_PACKAGES)}")
    p.add_argument("--with-large", action="store_true",
                   help="also fetch the large packages (enlightenment-data, 400 MB download)")
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of all photos here (.jpg)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --sheet")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    packages = None
    if args.packages is not None:  # an empty list fetched every default package
        packages = [name.strip() for name in args.packages.split(",") if name.strip()]
        if not packages:
            p.error("--packages names no package: name some, or leave it out for the default ones")
    from deepexpose.io import writable_folder

    try:  # before any download: a cache or sheet that cannot be written is said first (their folders made, tried)
        if args.sheet is not None and args.sheet.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            raise ValueError(f"--sheet {args.sheet}: name a .jpg or .png file")
        if args.sheet is not None and args.sheet.exists() and not args.overwrite:
            raise ValueError(f"--sheet {args.sheet} exists: pass --overwrite to replace it, or choose another --sheet")
        writable_folder(args.cache or default_cache_dir(), "--cache")
        if args.sheet is not None:
            writable_folder(args.sheet.parent, "--sheet")
    except (OSError, ValueError) as e:
        p.error(str(e))
    start = time.perf_counter()
    failures: dict[str, str] = {}
    try:
        records = fetch_photos(args.cache, packages, include_large=args.with_large)
    except PhotoFetchError as e:
        records, failures = e.records, e.failures
    except ValueError as e:
        p.error(str(e))
    elapsed = time.perf_counter() - start

    print()
    print(table(records))
    print(f"\n{len(records)} photos in {args.cache or default_cache_dir()} ({elapsed:.1f} s)")
    for name, reason in failures.items():
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    if args.sheet is not None and records:
        write_sheet(records, args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 1 if failures else 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
