"""How far the filter family itself can go: fit each held-out view's global filters with the answer known.

    .venv/bin/python scripts/oracle_fit.py --count 128

The project's design notes measured, before any code existed, that the filters reach 38.7 dB when fitted with
the target known, so the agent's gap is generalisation, not expressiveness. This script repeats that measurement on the
agent's own held-out views (the demo photos coffee, chelsea and the motorcycle pair plus a fifth of the photo
library's scene groups, `basic` errors, as ``deepexpose train --data library`` evaluates): Adam on the
actions of :data:`DEFAULT_GLOBAL_FILTERS`, minimising the mean CIE76 difference to the target. It prints the
input's and the fitted views' PSNR and CIEDE2000 (8-bit, as :mod:`deepexpose.metrics`).
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from deepexpose.agents.train import TrainConfig, build_pools
from deepexpose.data.synthetic import BUNDLED_LIBRARY
from deepexpose.envs.rewards import delta_e_score, lab
from deepexpose.filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline
from deepexpose.metrics import capped_psnr, delta_e2000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=128, help="held-out views drawn (default: 128); those left "
                        "untouched (15 %%, as deepexpose train draws them) have nothing to undo and are not fitted")
    parser.add_argument("--iterations", type=int, default=300, help="Adam steps per batch (default: 300)")
    parser.add_argument("--data", default="library", choices=("demo", "library"),
                        help="demo or library (default: library)")
    parser.add_argument("--library-packages", default=",".join(BUNDLED_LIBRARY),
                        help="photo-library packages to use (default: the bundled models' BUNDLED_LIBRARY)")
    args = parser.parse_args()
    if args.count < 1 or args.iterations < 1:
        parser.error("--count and --iterations must be >= 1")
    torch.manual_seed(0)
    cfg = TrainConfig(data=args.data, holdout="coffee,chelsea,motorcycle", pool_size=1, eval_size=args.count,
                      library_packages=args.library_packages)
    with warnings.catch_warnings():  # "training on 2 demo photos": nothing is trained here
        warnings.filterwarnings("ignore", message="training on")
        _, pool = build_pools(cfg)
    idx = [i for i in range(len(pool)) if pool.records[i].get("class") != "correct"]
    if not idx:
        parser.error(f"the {args.count} view(s) drawn are all left untouched: raise --count")
    x, t = pool.get(idx)
    pipe = FilterPipeline(DEFAULT_GLOBAL_FILTERS)
    action = torch.zeros(len(idx), pipe.num_params, requires_grad=True)
    opt = torch.optim.Adam([action], lr=0.02)
    target_lab = lab(t)
    for _ in range(args.iterations):
        loss = -delta_e_score(pipe(x, action.clamp(-1, 1)), target_lab).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = pipe(x, action.clamp(-1, 1))
    rows = [(capped_psnr(x[i], t[i]), delta_e2000(x[i], t[i]), capped_psnr(out[i], t[i]), delta_e2000(out[i], t[i]))
            for i in range(len(idx))]
    mean = [sum(c) / len(c) for c in zip(*rows, strict=True)]
    result = {"views": len(idx), "input_psnr": mean[0], "input_delta_e2000": mean[1], "fitted_psnr": mean[2],
              "fitted_delta_e2000": mean[3]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
