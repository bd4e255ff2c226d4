"""The flicker figure on a clip (by default the synthetic one the tests make), with and without parameter
smoothing: the mean absolute frame-to-frame change of the mean luminance and of the channel means
(:func:`deepexpose.video.flicker`).

    .venv/bin/python scripts/bench_flicker.py                 # classic and the bundled agent
    .venv/bin/python scripts/bench_flicker.py --methods classic --windows 1,5,9
    .venv/bin/python scripts/bench_flicker.py --clip pan      # a slow pan across a held-out photo
    .venv/bin/python scripts/bench_flicker.py --clip CLIP.avi --methods agent --windows 1,9,25  # a real clip
    .venv/bin/python scripts/bench_flicker.py --methods agent --model prev/agent.safetensors  # another agent

``--clip pan`` measures footage whose neighbouring frames look alike instead: 48 frames of a 96 x 128 window
moving 4 pixels a frame across the held-out demo photo coffee (never trained on), left as it is or, with
``--ev -1``, a stop darker.

The clip (:func:`deepexpose.video.flicker_test_clip`, as in ``tests/test_video.py``): 48 frames of equal mean that
alternate irregularly between flat grey and a dark/bright split. Its flicker is near zero, but a per-frame auto
exposure sees different mean linear light in the two kinds of frame, so correcting frames one by one makes the
output flicker; smoothing the parameters over ``--temporal-window`` frames removes it. Prints the mean absolute
frame-to-frame change of the mean luminance (and of the channel means) of input and output, in 8-bit levels.

``--clip PATH`` measures a video file (any format ``deepexpose enhance`` reads) or a folder of numbered frames,
enhanced as it is: real footage, whose flicker the two clips above only model.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from deepexpose.enhance import VIDEO_EXTENSIONS, EnhanceConfig, collect_jobs, enhance_paths, side_path
from deepexpose.video import flicker_test_clip


def pan_clip(photo: np.ndarray, n: int = 48, h: int = 96, w: int = 128, step: int = 4) -> list[np.ndarray]:
    """``n`` float frames: an ``h x w`` window moving ``step`` pixels a frame to the right (and down when the
    photo is too narrow) across ``photo`` (``H x W x 3`` in [0, 1])."""
    height, width = photo.shape[:2]
    frames = []
    for i in range(n):
        x, y = i * step, 0
        if x + w > width:
            x, y = width - w, x + w - width
        if x < 0 or y + h > height:
            raise ValueError(f"a {height} x {width} photo is too small for {n} frames of {h} x {w} moving {step}")
        frames.append(photo[y:y + h, x:x + w])
    return frames


def clip_frames(kind: str, ev: float) -> list[np.ndarray]:
    """The frames of ``--clip``: the synthetic alternating clip, or a pan across coffee shifted by ``ev`` stops."""
    if kind == "synthetic":
        return flicker_test_clip(n=48, h=96, w=128)
    from deepexpose.data.demo import DemoSet
    from deepexpose.filters import adjust_exposure

    demo = DemoSet(split="holdout", holdout=("coffee",))
    photo = demo[[p.name for p in demo.photos].index("coffee")]["image"].unsqueeze(0)
    if ev:
        photo = adjust_exposure(photo, ev)
    return pan_clip(photo[0].permute(1, 2, 0).numpy())


MODEL_METHODS = ("agent", "cgan", "classifier", "histogram")


def measure(source: Path, frames: bool, methods: list[str], windows: list[int], tmp: Path,
            model: str = "") -> list[tuple]:
    """``(method, window, input flicker, output flicker, frames, repeated frames)`` of ``deepexpose enhance`` on the
    clip ``source`` (a video file, or with ``frames`` a folder of frames) for each method and temporal window,
    outputs under ``tmp``; a repeated frame has the same pixels as the frame before it. ``model``: the model file
    of the method of ``methods`` that has one (default: its bundled model)."""
    rows = []
    for method in methods:
        for window in windows:
            out = tmp / f"{method}-{window}"
            cfg = EnhanceConfig(out=str(out), method=method, frames=frames, temporal_window=window,
                                sidecar=True, progress=False, model=model if method in MODEL_METHODS else "")
            summary = enhance_paths([source], cfg)
            if summary.failed:
                raise SystemExit(str(summary))
            (job,), _, _ = collect_jobs([source], out, frames=frames)  # where enhance put it
            doc = json.loads(side_path(job.output, ".json").read_text())
            rows.append((method, window, doc["flicker_input"], doc["flicker_output"], doc["frames"],
                         doc["repeated_frames"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="classic,agent", help="methods to run (default: classic,agent)")
    parser.add_argument("--windows", default="1,9", help="temporal windows to compare (default: 1,9)")
    parser.add_argument("--clip", default="synthetic",
                        help="synthetic (the tests' alternating clip, default), pan (a pan across a held-out photo), "
                             "or a video file or folder of frames (write ./pan for a file or folder named pan)")
    parser.add_argument("--ev", type=float, default=0.0, help="--clip pan: exposure error in stops (default: 0)")
    parser.add_argument("--model", default="", help="model file of the one method of --methods that has a model "
                                                    "(default: the bundled one)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:  # it printed an empty table
        parser.error("--methods names no method")
    if args.model and sum(m in MODEL_METHODS for m in methods) != 1:
        parser.error(f"--model applies to exactly one of {', '.join(MODEL_METHODS)} in --methods, got {args.methods}")
    if args.model and not Path(args.model).is_file():
        parser.error(f"--model: no such file: {args.model}")
    windows = [int(w) for w in args.windows.split(",")]
    if any(w < 1 or w % 2 == 0 for w in windows):
        parser.error(f"--windows must be odd and >= 1 (frames averaged around each frame), got {args.windows}")
    for name, values in (("--methods", methods), ("--windows", windows)):  # the second run found the first's frames
        if len(set(values)) < len(values):
            parser.error(f"{name} lists a value twice: {', '.join(map(str, values))}")
    if not math.isfinite(args.ev):
        parser.error(f"--ev must be finite, got {args.ev}")
    if args.ev and args.clip != "pan":
        parser.error("--ev applies to --clip pan only")
    if args.clip not in ("synthetic", "pan"):
        if not Path(args.clip).exists():
            parser.error(f"--clip: no such file or folder: {args.clip}")
        if Path(args.clip).is_file() and Path(args.clip).suffix.lower() not in VIDEO_EXTENSIONS:
            parser.error(f"--clip: not a video ({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder of frames")
    with tempfile.TemporaryDirectory() as tmp:
        if args.clip in ("synthetic", "pan"):
            seq = Path(tmp) / "clip"
            seq.mkdir()
            for i, f in enumerate(clip_frames(args.clip, args.ev)):
                Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"frame{i:03d}.png")
            rows = measure(seq, True, methods, windows, Path(tmp), args.model)
        else:
            source = Path(args.clip)
            rows = measure(source, source.is_dir(), methods, windows, Path(tmp), args.model)
    print("| method | temporal window | input flicker (luminance / RGB) | output flicker (luminance / RGB) |")
    print("|---|---|---|---|")
    for method, window, fin, fout, _, _ in rows:
        print(f"| {method} | {window} | {255 * fin['luminance']:.2f} / {255 * fin['rgb']:.2f} | "
              f"{255 * fout['luminance']:.2f} / {255 * fout['rgb']:.2f} |")
    if rows:
        print(f"\n{rows[0][4]} frames, {rows[0][5]} of them repeating the frame before them pixel for pixel")
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
