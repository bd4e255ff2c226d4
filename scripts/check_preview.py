"""How far a photo's result moves when its edit is chosen on a reduced-scale JPEG preview.

``deepexpose enhance`` chooses the edit of a large JPEG on :func:`deepexpose.io.read_preview` (libjpeg's 1/2, 1/4
or 1/8 scale decode) while the whole photo decodes, and segments the sub-image masks on that preview's view
(:func:`deepexpose.enhance.read_and_plan`). This script enhances every such JPEG in a folder both ways, with the
bundled agent (or ``--model``), and prints the PSNR between the two results (100 dB where they are identical) and
the PSNR of the full-decode result to the input, for scale.

    python scripts/check_preview.py FOLDER... [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def compare(method, path: Path) -> dict | None:
    """Both results of one JPEG; ``None`` when it gets no preview."""
    from deepexpose.enhance import read_and_plan
    from deepexpose.metrics import capped_psnr

    img, plan, chosen_on = read_and_plan(method, path)
    if chosen_on is None:
        return None
    pixels = img.pixels
    with_preview = plan.render(pixels, 1.0)
    whole = method.plan(pixels).render(pixels, 1.0)

    return {"file": path.name, "size": [img.width, img.height], "preview": chosen_on,
            "psnr_between": capped_psnr(with_preview, whole), "psnr_to_input": capped_psnr(whole, pixels)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="+", help="folders searched for JPEGs (recursively)")
    parser.add_argument("--model", default=None, help="agent model (default: the bundled one)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many JPEGs (0: all)")
    args = parser.parse_args(argv)
    if any(not f.strip() for f in args.folder):  # '' searched the current folder, .venv included
        parser.error("a folder given is empty: name it ('.' for the current one)")
    args.folder = [Path(f) for f in args.folder]
    if missing := [str(f) for f in args.folder if not f.is_dir()]:
        parser.error(f"not a folder: {', '.join(missing)}")
    if args.limit < 0:
        parser.error(f"--limit must be >= 0 (0: all), got {args.limit}")
    from deepexpose.io import ImageIOError
    from deepexpose.methods import AgentMethod

    try:
        method = AgentMethod(args.model)
    except (OSError, ValueError) as e:
        parser.error(f"--model: {e}")
    found = {p.resolve(): p for folder in reversed(args.folder) for p in folder.rglob("*")
             if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file()}  # a photo in two folders given is one photo
    files = sorted(found.values())
    rows = []
    for path in files:
        try:
            row = compare(method, path)
        except ImageIOError as e:  # one damaged JPEG is reported, never the end of the check
            print(f"skipped {path}: {e.reason}", file=sys.stderr)
            continue
        if row is None:
            continue
        rows.append(row)
        print(f"{row['file'][:40]:40s} {row['size'][0]:5d}x{row['size'][1]:<5d} preview "
              f"{row['preview'][0]:4d}x{row['preview'][1]:<4d} between {row['psnr_between']:6.2f} dB  "
              f"result to input {row['psnr_to_input']:6.2f} dB")
        if args.limit and len(rows) >= args.limit:
            break
    if not rows:
        print("no JPEG large enough for a preview", file=sys.stderr)
        return 1
    between = [r["psnr_between"] for r in rows]
    print(f"\n{len(rows)} JPEGs: PSNR between the results (preview vs whole decode): mean {np.mean(between):.2f} dB, "
          f"median {np.median(between):.2f}, lowest {min(between):.2f}; identical: "
          f"{sum(b >= 100 for b in between)}")
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
