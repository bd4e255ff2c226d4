"""Image-steps per second of the DeepExposure environment: N single Gymnasium envs vs the batched VecEnv.

    .venv/bin/python scripts/bench_env.py [--envs 128] [--view 64] [--seconds 10] [--device cpu] [--threads N]

Random actions; one image-step is one step of one image's episode. Target (issue 3): >= 5,000 image-steps/s
batched at 64 x 64 on 2 CPU cores. The figures depend strongly on torch's thread count: on a busy machine, threads
that wait for each other can make a step many times slower; ``--threads`` sets it (default: torch's own, printed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from deepexpose.device import resolve_device
from deepexpose.envs import DeepExposureEnv, DeepExposureVecEnv, default_pool


def bench_single(pool, seconds: float) -> float:
    env = DeepExposureEnv(pool)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, done, _, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        n += 1
        if done:
            env.reset()
    return n / (time.perf_counter() - start)


def bench_batched(pool, num_envs: int, seconds: float, device: str) -> float:
    vec = DeepExposureVecEnv(num_envs, pool, device=device)
    vec.seed(0)
    vec.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (num_envs, vec.action_space.shape[0])).astype(np.float32)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(actions)
        n += num_envs
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, default=128, help="environments in the batch")
    p.add_argument("--view", type=int, default=64, help="view size")
    p.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch's CPU threads (default 0: torch's own choice)")
    args = p.parse_args()
    if args.envs < 1 or args.view < 16 or not 0 < args.seconds < float("inf") or args.threads < 0:  # inf: no end
        p.error("--envs must be >= 1, --view >= 16, --seconds a finite number > 0 and --threads >= 0")
    args.device = str(resolve_device(args.device))  # unknown, or CUDA where there is none: said before measuring
    if args.threads:
        torch.set_num_threads(args.threads)
    pool = default_pool(size=args.view, count=512)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, view {args.view}x{args.view}")
    print(f"single env:            {bench_single(pool, args.seconds):9.0f} image-steps/s")
    print(f"batched ({args.envs} envs, {args.device}): {bench_batched(pool, args.envs, args.seconds, args.device):9.0f}"
          " image-steps/s")


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
