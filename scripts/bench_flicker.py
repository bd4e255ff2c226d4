"""The flicker figure of DESIGN.md on the synthetic clip the tests make, with and without parameter smoothing.

    .venv/bin/python scripts/bench_flicker.py                 # classic and the bundled agent
    .venv/bin/python scripts/bench_flicker.py --methods classic --windows 1,5,9

The clip (:func:`deepexpose.video.flicker_test_clip`, as in ``tests/test_video.py``): 48 frames of equal mean that alternate irregularly
between flat grey and a dark/bright split. Its flicker is near zero, but a per-frame auto exposure sees
different mean linear light in the two kinds of frame, so correcting frames one by one makes the output
flicker; smoothing the parameters over ``--temporal-window`` frames removes it. Prints the mean absolute
frame-to-frame change of the mean luminance (and of the channel means) of input and output, in 8-bit levels.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from deepexpose.enhance import EnhanceConfig, enhance_paths
from deepexpose.video import flicker_test_clip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="classic,agent", help="methods to run (default: classic,agent)")
    parser.add_argument("--windows", default="1,9", help="temporal windows to compare (default: 1,9)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seq = Path(tmp) / "clip"
        seq.mkdir()
        for i, f in enumerate(flicker_test_clip(n=48, h=96, w=128)):
            Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"frame{i:03d}.png")
        for method in [m for m in args.methods.split(",") if m]:
            for window in [int(w) for w in args.windows.split(",")]:
                out = Path(tmp) / f"{method}-{window}"
                cfg = EnhanceConfig(out=str(out), method=method, frames=True, temporal_window=window,
                                    sidecar=True, progress=False)
                summary = enhance_paths([seq], cfg)
                if summary.failed:
                    raise SystemExit(str(summary))
                doc = json.loads((out / "clip.json").read_text())
                rows.append((method, window, doc["flicker_input"], doc["flicker_output"]))
    print("| method | temporal window | input flicker (luminance / RGB) | output flicker (luminance / RGB) |")
    print("|---|---|---|---|")
    for method, window, fin, fout in rows:
        print(f"| {method} | {window} | {255 * fin['luminance']:.2f} / {255 * fin['rgb']:.2f} | "
              f"{255 * fout['luminance']:.2f} / {255 * fout['rgb']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
