"""Where an agent's quality is lost: the same errors on its training, validation and held-out photos.

    .venv/bin/python scripts/generalisation_gap.py                       # the bundled agent
    .venv/bin/python scripts/generalisation_gap.py --model runs/agent/best.safetensors

The photos are split exactly as the agent's training run split them (the config saved with the model): views
(random crops, 64 x 64) of each part get ``basic`` errors (exposure, white balance, contrast, saturation), with
15 % left untouched, and the agent's edits are scored as ``deepexpose train`` scores them (8-bit PSNR and
CIEDE2000 to the original; untouched views: PSNR to themselves). A held-out score far below the training score
means the agent memorised its photos; a training score itself far from the target means the budget or the
policy, not the photos, is what limits it. ``scripts/oracle_fit.py`` gives the filter family's own ceiling.

``--by-error`` adds the held-out photos with one error at a time (each of the basic errors alone, its size
drawn from the same range): which of them the agent undoes, and which it makes worse than it found them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deepexpose.agents.policy import default_model_path, load_agent
from deepexpose.agents.train import TrainConfig, evaluate, good_photo_split, make_core
from deepexpose.apply import to_view
from deepexpose.config import from_dict
from deepexpose.data.detune import BASIC_RANGES, random_edit
from deepexpose.envs.pool import PairPool, random_crop


def one_error_pool(photos: list[torch.Tensor], count: int, size: int, error: tuple, seed: int) -> PairPool:
    """``count`` views (random crops) of ``photos``, each with the single basic ``error`` (a ``BASIC_RANGES``
    entry) at a uniformly drawn size; views that the error leaves unchanged in 8 bits are dropped."""
    inputs, targets = [], []
    for i in range(count):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        target = (to_view(random_crop(photos[i % len(photos)], g).unsqueeze(0), size) * 255).round().byte()
        x, _ = random_edit(target.float() / 255, g, p_each=1.0, max_curve=0.0, noise=0.0, ranges=[error])
        x = (x * 255).round().byte()
        if not torch.equal(x, target):
            inputs.append(x)
            targets.append(target)
    return PairPool(torch.cat(inputs), torch.cat(targets), [{"class": "basic"}] * len(inputs))


def verdict(r: dict) -> str:
    """better, unchanged or WORSE: the CIEDE2000 of the agent's edits against that of the inputs."""
    if r["delta_e2000"] == r["input_delta_e2000"]:
        return "unchanged"
    return "better" if r["delta_e2000"] < r["input_delta_e2000"] else "WORSE"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--count", type=int, default=512, help="views of each part (default: 512)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the views and their errors (default: 11)")
    parser.add_argument("--by-error", action="store_true", help="also each basic error alone, on held-out photos")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
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
        print(f"{name:<10} {len(photos):>4} photos: basic errors {r['input_psnr']:.2f} dB / "
              f"{r['input_delta_e2000']:.2f} -> {r['psnr']:.2f} dB / {r['delta_e2000']:.2f}; untouched kept at {kept}",
              flush=True)
    if args.by_error and parts["held_out"]:
        report["held_out_by_error"] = {}
        for error in BASIC_RANGES:
            name = f"{error[0]}.{error[1]}"
            pool = one_error_pool(parts["held_out"], args.count, cfg.view, error, args.seed)
            r = report["held_out_by_error"][name] = {"views": len(pool), **evaluate(agent.model, core, pool)}
            print(f"held-out, {name} alone ({len(pool)} views): {r['input_psnr']:.2f} dB / "
                  f"{r['input_delta_e2000']:.2f} -> {r['psnr']:.2f} dB / {r['delta_e2000']:.2f} ({verdict(r)})",
                  flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
