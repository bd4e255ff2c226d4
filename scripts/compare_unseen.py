"""Score correction methods on errors the agent was never trained on, against classic auto tools.

    .venv/bin/python scripts/compare_unseen.py --model deepexpose/models/agent.safetensors --limit 8
    .venv/bin/python scripts/compare_unseen.py --methods classic,identity --limit 3 --out runs/unseen/quick.json

Photos: the held-out evaluation photos of the default model (``scripts/train_default_model.py``): the demo photos
coffee, chelsea and the motorcycle pair, then the held-out 20 % of the Debian photo library's scene groups (the
packages of ``BUNDLED_LIBRARY``, split as ``deepexpose train --data library`` split them), each shrunk to a short
side of ``--size``. Each photo gets each error of :mod:`deepexpose.data.unseen` (colour crosstalk, highlight
roll-off, light falloff) with parameters drawn from a generator seeded by ``--seed``, the photo and the error, so
``--limit`` does not change the draws. The detuned photo is quantised to 8 bits (what a file holds) and given to:

- ``input``: nothing done (the floor);
- each deepexpose method of ``--methods`` (``--model`` goes to the ones that take a model);
- ``aaphoto`` (Debian's Auto Adjust Photo, default automatic correction: ``aaphoto -a``), when installed;
- ``imagemagick``: ``magick`` / ``convert IN -auto-level -auto-gamma OUT``, when installed.

Outputs are scored against the untouched photo (8-bit, whole image, :mod:`deepexpose.metrics`): mean PSNR and
CIEDE2000 per error and over all, and how often the PSNR beats the input's. The Markdown table is printed; the
per-case scores, draws and notes go to ``--out`` (JSON). External tools run on PNG copies in a temporary folder;
the photos themselves are only read. Missing tools are skipped with a note; a method that cannot load stops the
run before any photo is scored.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from deepexpose.data.synthetic import HELD_OUT_DEMO, apply_case, case_seed, held_out_photos
from deepexpose.data.unseen import UNSEEN_ERRORS
from deepexpose.io import atomic_write_bytes, from_tensor, quantize, read_image, writable_folder

HOLDOUT = HELD_OUT_DEMO  # the bundled models' held-out demo photos
TRAINED_CASES = ("basic", "untouched")  # beside the unseen errors: the errors of training, and "do no harm"
MODEL_FREE = ("classic", "identity")  # methods that refuse --model

Corrector = Callable[[np.ndarray], np.ndarray]
"""``H x W x 3`` uint8 pixels -> corrected pixels of the same shape and dtype."""


# --------------------------------------------------------------------------------------------- correctors


def method_corrector(name: str, model: str, single_view: bool = False) -> Corrector:
    """A method of ``deepexpose enhance`` as a corrector (``single_view``: the agent's ``--single-view``)."""
    from deepexpose.methods import load_method, view_options

    method = load_method(name, None if name in MODEL_FREE else (model or None), **view_options(name, single_view))
    return lambda px: method.plan(px).render(px, 1.0)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    PILImage.fromarray(pixels, "RGB").save(path, format="PNG")


def _read_u8(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    px = np.asarray(read_image(path, dtype="native").pixels)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=-1)
    if px.dtype == np.uint16:
        px = quantize(px.astype(np.float32) / 65535, 8)
    if px.shape != shape:
        raise RuntimeError(f"{path.name}: the tool returned {px.shape[1]}x{px.shape[0]} pixels, expected "
                           f"{shape[1]}x{shape[0]}")
    return np.ascontiguousarray(px, dtype=np.uint8)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")


def aaphoto_corrector(binary: str, tmp: Path) -> Corrector:
    """Debian's ``aaphoto`` with its default automatic correction (``-a``) on a PNG copy."""
    def correct(px: np.ndarray) -> np.ndarray:
        work = Path(tempfile.mkdtemp(dir=tmp))
        (work / "out").mkdir()
        _write_png(work / "in.png", px)
        _run([binary, "-a", "--png", "--silent", "-o", str(work / "out"), str(work / "in.png")])
        outs = sorted((work / "out").glob("*.png"))
        if len(outs) != 1:
            raise RuntimeError(f"aaphoto wrote {len(outs)} PNG files, expected one")
        result = _read_u8(outs[0], px.shape)
        shutil.rmtree(work)
        return result
    return correct


def imagemagick_command() -> list[str] | None:
    """``["magick"]`` (ImageMagick 7) or ``["convert"]`` (6) when that is ImageMagick, else ``None``."""
    for name in ("magick", "convert"):
        path = shutil.which(name)
        if not path:
            continue
        try:
            done = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and "ImageMagick" in done.stdout:
            return [path]
    return None


def imagemagick_corrector(cmd: list[str], tmp: Path) -> Corrector:
    """ImageMagick's ``-auto-level -auto-gamma`` on a PNG copy (8-bit RGB output forced with ``PNG24:``)."""
    def correct(px: np.ndarray) -> np.ndarray:
        work = Path(tempfile.mkdtemp(dir=tmp))
        _write_png(work / "in.png", px)
        _run([*cmd, str(work / "in.png"), "-auto-level", "-auto-gamma", f"PNG24:{work / 'out.png'}"])
        result = _read_u8(work / "out.png", px.shape)
        shutil.rmtree(work)
        return result
    return correct


# --------------------------------------------------------------------------------------------- scoring


def score(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from deepexpose.metrics import capped_psnr, delta_e2000

    return {"psnr": capped_psnr(pred, target), "delta_e2000": delta_e2000(pred, target)}


def summarise(cases: list[dict], rows: list[str], errors: list[str]) -> dict[str, dict]:
    """Per row: mean PSNR / CIEDE2000 per error and over all, and the count of cases beating the input."""
    out: dict[str, dict] = {}
    for row in rows:
        entry: dict = {}
        for err in [*errors, "all"]:
            got = [c["scores"][row] for c in cases if row in c["scores"] and err in ("all", c["error"])]
            if got:
                entry[err] = {"psnr": float(np.mean([g["psnr"] for g in got])),
                              "delta_e2000": float(np.mean([g["delta_e2000"] for g in got])), "n": len(got)}
        scored = [c for c in cases if row in c["scores"]]
        entry["beats_input_psnr"] = sum(c["scores"][row]["psnr"] > c["scores"]["input"]["psnr"] for c in scored)
        entry["beats_input_delta_e2000"] = sum(
            c["scores"][row]["delta_e2000"] < c["scores"]["input"]["delta_e2000"] for c in scored)
        entry["cases"] = len(scored)
        entry["seconds_per_photo"] = float(np.mean([c["seconds"][row] for c in scored])) if scored else math.nan
        out[row] = entry
    return out


def table(summary: dict[str, dict], errors: list[str]) -> str:
    head = ["method", *[f"{e} (dB / ΔE00)" for e in errors], "all (dB / ΔE00)", "beats input (PSNR, ΔE00)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, s in summary.items():
        cells = [row]
        for err in [*errors, "all"]:
            cells.append(f"{s[err]['psnr']:.2f} / {s[err]['delta_e2000']:.2f}" if err in s else "–")
        cells.append("–" if row == "input" else
                     f"{s['beats_input_psnr']}/{s['cases']}, {s['beats_input_delta_e2000']}/{s['cases']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="agent,classic",
                   help="comma-separated deepexpose methods (agent, classic, identity, classifier, histogram, cgan)")
    p.add_argument("--model", default="", help="model file for the methods that take one (default: bundled)")
    p.add_argument("--single-view", action="store_true", help="the agent chooses on the whole-photo view alone")
    p.add_argument("--tools", default="aaphoto,imagemagick",
                   help="external tools to compare with (aaphoto, imagemagick; '' for none)")
    p.add_argument("--errors", default=",".join(UNSEEN_ERRORS),
                   help=f"cases: the unseen errors ({', '.join(UNSEEN_ERRORS)}) and 'basic' (the exposure, white "
                        "balance, contrast and saturation errors of training) or 'untouched' (do no harm)")
    p.add_argument("--size", type=int, default=512, help="short side the photos are shrunk to (never enlarged)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N held-out photos (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the error draws")
    p.add_argument("--holdout", default=HOLDOUT, help="held-out demo photos")
    p.add_argument("--no-library", action="store_true", help="demo photos only, not the Debian photo library")
    p.add_argument("--library", default="", help="photo library cache (default: the deepexpose cache)")
    p.add_argument("--out", default="runs/unseen/compare_unseen.json", help="JSON results")
    p.add_argument("--overwrite", action="store_true", help="replace the JSON of --out if it exists")
    args = p.parse_args(argv)
    if Path(args.out).is_dir():
        p.error(f"--out {args.out} is a folder; name the JSON file to write")
    if Path(args.out).exists() and not args.overwrite:
        p.error(f"--out {args.out} exists (an earlier comparison?): pass --overwrite to replace it, or choose another "
                "--out")

    from deepexpose.data.folders import shrink_short_side

    if args.size < 16:
        p.error("--size must be at least 16")
    errors = [e.strip() for e in args.errors.split(",") if e.strip()]
    known = [*UNSEEN_ERRORS, *TRAINED_CASES]
    unknown = [e for e in errors if e not in known]
    if unknown or not errors:
        p.error(f"unknown --errors {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    if len(set(errors)) < len(errors):  # each case was scored twice
        p.error(f"--errors lists a case twice: {args.errors}")
    from deepexpose.methods import METHODS

    if args.limit < 0:
        p.error(f"--limit must be >= 0 (0: all), got {args.limit}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if bad := [m for m in methods if m not in METHODS]:
        p.error(f"unknown --methods {', '.join(bad)}; choose from {', '.join(METHODS)}")
    if args.single_view and "agent" not in methods:
        p.error("--single-view applies to the agent, which --methods does not list")
    if args.model and all(m in MODEL_FREE for m in methods):  # it was ignored without a word
        p.error(f"--model applies to the methods that take a model, and --methods lists none: {args.methods}")
    if args.library and (args.no_library or not Path(args.library).is_dir()):  # it measured the demo photos only
        p.error(f"--library {args.library}: " + ("--no-library leaves it out" if args.no_library else
                                                 "no such folder (scripts/get_photos.py --cache fetches one there)"))
    try:  # before the scoring, not after it
        writable_folder(Path(args.out).parent, "--out")
    except (OSError, ValueError) as e:
        p.error(str(e))
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if bad := [t for t in tools if t not in ("aaphoto", "imagemagick")]:
        p.error(f"unknown --tools {', '.join(bad)}; choose from aaphoto, imagemagick")

    photos, notes = held_out_photos(args.holdout, library=not args.no_library, cache=args.library)
    if args.limit > 0:
        photos = photos[:args.limit]

    with tempfile.TemporaryDirectory(prefix="compare_unseen_") as tmp_name:
        tmp = Path(tmp_name)
        correctors: dict[str, Corrector] = {}
        for name in methods:
            try:
                correctors[name] = method_corrector(name, args.model, args.single_view)
            except (FileNotFoundError, ValueError, RuntimeError) as e:  # asked for by name: not silently left out
                raise SystemExit(f"method {name} cannot be compared: {e}") from None
        if "aaphoto" in tools:
            if binary := shutil.which("aaphoto"):
                correctors["aaphoto"] = aaphoto_corrector(binary, tmp)
            else:
                notes.append("aaphoto skipped: not installed (Debian: apt-get install aaphoto)")
        if "imagemagick" in tools:
            if cmd := imagemagick_command():
                correctors["imagemagick"] = imagemagick_corrector(cmd, tmp)
            else:
                notes.append("imagemagick skipped: neither magick nor convert is ImageMagick here "
                             "(Debian: apt-get install imagemagick)")
        for note in notes:
            print(f"note: {note}", file=sys.stderr)

        cases: list[dict] = []
        for i, (photo, load) in enumerate(photos):
            original = shrink_short_side(load(), args.size).unsqueeze(0)
            target = quantize(from_tensor(original), 8)
            print(f"[{i + 1}/{len(photos)}] {photo} {target.shape[1]}x{target.shape[0]}", file=sys.stderr, flush=True)
            for err in errors:
                g = torch.Generator().manual_seed(case_seed(args.seed, photo, err))
                detuned, record = apply_case(original, err, g)
                pixels = quantize(from_tensor(detuned), 8)
                pixels.setflags(write=False)  # no corrector may edit the shared input in place
                scores, seconds = {"input": score(pixels, target)}, {"input": 0.0}
                for row, correct in list(correctors.items()):
                    start = time.perf_counter()
                    try:
                        result = correct(pixels)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                        notes.append(f"{row} failed on {photo} / {err}: {e}")
                        print(f"note: {notes[-1]}", file=sys.stderr)
                        continue
                    seconds[row] = time.perf_counter() - start
                    scores[row] = score(np.asarray(result, dtype=np.uint8), target)
                cases.append({"photo": photo, "error": err, "params": record, "scores": scores, "seconds": seconds})

    rows = ["input", *correctors]
    summary = summarise(cases, rows, errors)
    text = table(summary, errors)
    print(f"\n{len(photos)} held-out photos x {len(errors)} cases, short side {args.size}, seed {args.seed}; "
          "mean PSNR (dB, higher is better) / CIEDE2000 (lower is better) against the untouched photo\n")
    print(text)
    for note in notes:
        print(f"\nnote: {note}")
    result = {"settings": vars(args), "photos": [name for name, _ in photos], "errors": errors,
              "ranges": {e: dict(UNSEEN_ERRORS[e].ranges) for e in errors if e in UNSEEN_ERRORS}, "notes": notes,
              "summary": summary, "table": text, "cases": cases}
    atomic_write_bytes(Path(args.out), json.dumps(result, indent=2).encode(), overwrite=True)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
