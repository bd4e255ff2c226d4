"""Where an agent's quality is lost: the same errors on its training, validation and held-out photos.

    .venv/bin/python scripts/generalisation_gap.py                       # the bundled agent
    .venv/bin/python scripts/generalisation_gap.py --model runs/agent/best.safetensors

The photos are split exactly as the agent's training run split them (the config saved with the model): views
(random crops, 64 x 64) of each part get ``basic`` errors (exposure, white balance, contrast, saturation), with
15 % left untouched, and the agent's edits are scored as ``deepexpose train`` scores them (8-bit PSNR and
CIEDE2000 to the original; untouched views: PSNR to themselves). A held-out score far below the training score
means the agent memorised its photos; a training score itself far from the target means the budget or the
policy, not the photos, is what limits it. ``scripts/oracle_fit.py`` gives the filter family's own ceiling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deepexpose.agents.policy import default_model_path, load_agent
from deepexpose.agents.train import TrainConfig, evaluate, good_photo_split, make_core
from deepexpose.config import from_dict
from deepexpose.envs.pool import PairPool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--count", type=int, default=512, help="views of each part (default: 512)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the views and their errors (default: 11)")
    args = parser.parse_args()
    path = Path(args.model) if args.model else default_model_path()
    agent = load_agent(path)
    saved = agent.meta["trained"]["config"] if "trained" in agent.meta else agent.meta["config"]
    cfg = from_dict(TrainConfig, saved)
    core = make_core(cfg)
    parts = dict(zip(("train", "validation", "held_out"), good_photo_split(cfg), strict=True))
    report = {"model": str(path), "data": cfg.data, "views": args.count, "seed": args.seed}
    for name, photos in parts.items():
        if not photos:
            report[name] = None
            continue
        pool = PairPool.from_photos(photos, args.count, size=cfg.view, scheme="basic", identity_fraction=0.15,
                                    seed=args.seed)
        report[name] = {"photos": len(photos), **evaluate(agent.model, core, pool)}
        r = report[name]
        kept = f"{r['good_psnr']:.2f} dB" if "good_psnr" in r else "(no untouched views)"
        print(f"{name:<10} {len(photos):>4} photos: basic errors {r['input_psnr']:.2f} dB / {r['input_delta_e2000']:.2f}"
              f" -> {r['psnr']:.2f} dB / {r['delta_e2000']:.2f}; untouched kept at {kept}", flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
