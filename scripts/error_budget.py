"""What each basic error is worth, how well a photo reveals it, and how the agent answers it: the arithmetic
behind the quality target of issues 3 and 4 (>= 28 dB and CIEDE2000 <= 4 on photos never seen).

    .venv/bin/python scripts/error_budget.py                       # the bundled agent and its split
    .venv/bin/python scripts/error_budget.py --model runs/agent/best.safetensors

The photos are split as the agent's training run split them (the config saved with the model); every view is a
random crop at the agent's view size (64 x 64) with ``basic`` errors (exposure, white balance, contrast,
saturation; each drawn with p = 0.75, as in training and evaluation), scored in 8 bits as ``deepexpose train``
scores them.

1. **Partial oracles** (held-out photos): a corrector that undoes some of the errors *exactly* and leaves the
   others, i.e. the view made with only the remaining errors: none undone (the input), exposure, exposure and
   white balance, and also contrast. Each line is the ceiling of a corrector that can tell only those errors.
2. **Predictability** (fitted on training photos, scored on held-out photos): the R^2 of a ridge regression of
   each error's size on the view's colour statistics (per-channel log-linear mean, spread and quantiles, and
   the red-blue and green-magenta balance of the means). It shows how much of each error such statistics
   reveal in photos with their own casts and contrasts; a CNN may see more (sky, skin, grey surfaces).
   With ``--chroma-epochs N`` the same question is asked of the log-chroma histogram network the agent can use
   (``--chroma``, :mod:`deepexpose.agents.chroma`), trained by regression of the white-balance error on
   ``--chroma-views`` training views for N epochs: the held-out R^2 of its temperature and tint, and the
   first partial oracle again with the white balance then set by the network (its correction applied after the
   exposure is undone exactly, on the same views).
3. **Error size** (held-out photos): the input and the agent's output on views whose basic errors are drawn from
   the ranges shrunk toward "no error" by each of ``--sizes`` (1: the ranges of training and evaluation): how
   small the errors must be for the agent to reach a target.
4. **The agent's answer** (held-out photos, one error at a time): the correlation and the slope of the
   parameter the agent chooses against the error's size (its global EV plus the mean of its sub-image EVs for
   exposure; log factors for saturation). Undoing an error exactly means a slope near -1; an agent that sees
   an error with correlation r, and corrects it as well as that allows, has a slope of about -r^2 on it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from deepexpose.agents.policy import default_model_path, load_agent
from deepexpose.agents.train import TrainConfig, good_photo_split, run_policy
from deepexpose.apply import to_view
from deepexpose.config import from_dict
from deepexpose.data.detune import BASIC_RANGES, MIXED_FILTERS, random_edit
from deepexpose.envs.pool import random_crop
from deepexpose.filters import FilterPipeline
from deepexpose.filters.base import srgb_to_linear
from deepexpose.metrics import capped_psnr, delta_e2000

ERRORS = tuple(f"{f}.{p}" for f, p, _, _ in BASIC_RANGES)
"""The basic errors, named ``filter.parameter``."""
UNDONE = {"none (the input)": (), "exposure": ("exposure",), "exposure, white balance": ("exposure", "white_balance"),
          "exposure, white balance, contrast": ("exposure", "white_balance", "contrast")}
"""The partial oracles: which filters' errors each one undoes exactly."""
_PIPE = FilterPipeline(MIXED_FILTERS)


MIN_COUNT = 10
"""Fewest views measured: the correlations and fits need errors that vary."""

def detuned_views(photos: Sequence[torch.Tensor], count: int, seed: int, size: int = 64,
                  ranges: Sequence[tuple[str, str, float, float]] = BASIC_RANGES, p_each: float = 0.75,
                  skip: Sequence[str] = ()) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """``count`` 8-bit-valued views (random crops, ``count x 3 x size x size``) of ``photos`` cycled in order,
    their targets, and the errors :func:`~deepexpose.data.detune.random_edit` drew for each
    (``{filter: {parameter: value}}``; each entry of ``ranges`` with probability ``p_each``). The filters in
    ``skip`` are drawn but not applied: the same views with those errors undone exactly."""
    inputs, targets, errors = [], [], []
    for i in range(count):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        target = (to_view(random_crop(photos[i % len(photos)], g).unsqueeze(0), size) * 255).round() / 255
        x, record = random_edit(target, g, p_each=p_each, max_curve=0.0, noise=0.0, ranges=ranges)
        drawn = record["edits"]
        applied = {f: v for f, v in drawn.items() if f not in skip}
        if applied != drawn:
            x = _PIPE(target, _PIPE.action_from_description(applied)) if applied else target
        inputs.append((x * 255).round() / 255)
        targets.append(target)
        errors.append(drawn)
    return torch.cat(inputs), torch.cat(targets), errors


def error_sizes(errors: Sequence[dict]) -> np.ndarray:
    """``N x 5`` sizes of the basic errors (0 where not drawn; saturation as ``log(factor)``)."""
    rows = []
    for e in errors:
        row = []
        for name in ERRORS:
            filt, param = name.split(".")
            value = e.get(filt, {}).get(param)
            row.append(0.0 if value is None else math.log(value) if filt == "saturation" else value)
        rows.append(row)
    return np.asarray(rows, np.float64)


def scores(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Mean 8-bit PSNR (capped at ``PSNR_CAP``) and CIEDE2000 of ``outputs`` against ``targets``."""
    p = [capped_psnr(o, t) for o, t in zip(outputs, targets, strict=True)]
    d = [delta_e2000(o, t) for o, t in zip(outputs, targets, strict=True)]
    return {"psnr": float(np.mean(p)), "delta_e2000": float(np.mean(d))}


def partial_oracles(photos: Sequence[torch.Tensor], count: int, seed: int, size: int = 64
                    ) -> dict[str, dict[str, float]]:
    """The score of each partial oracle of ``UNDONE`` on the same ``count`` views (a view left without any
    error counts ``PSNR_CAP`` dB)."""
    out = {}
    for name, skip in UNDONE.items():
        x, t, _ = detuned_views(photos, count, seed, size, skip=skip)
        out[name] = scores(x, t)
    return out


def colour_statistics(views: torch.Tensor) -> np.ndarray:
    """``N x 17`` statistics of ``N x 3 x H x W`` views: per channel the mean, standard deviation and 10/50/90 %
    quantiles of ``log(linear + 1e-3)``, and the red-blue and green-magenta differences of the means."""
    lin = srgb_to_linear(views.clamp(0, 1)).flatten(2) + 1e-3
    lg = lin.log()
    mean = lg.mean(2)
    q = torch.quantile(lg, torch.tensor([0.1, 0.5, 0.9], dtype=lg.dtype), dim=2).permute(1, 2, 0).flatten(1)
    balance = torch.stack([mean[:, 0] - mean[:, 2], mean[:, 1] - (mean[:, 0] + mean[:, 2]) / 2], 1)
    return torch.cat([mean, lg.std(2), q, balance], 1).double().numpy()


def predictability(train_views: torch.Tensor, train_sizes: np.ndarray, test_views: torch.Tensor,
                   test_sizes: np.ndarray, ridge: float = 1.0) -> dict[str, float]:
    """Held-out R^2 of each error's size, ridge-regressed (standardised statistics, penalty ``ridge``) on the
    :func:`colour_statistics` of the training views."""
    a, b = colour_statistics(train_views), colour_statistics(test_views)
    mu, sd = a.mean(0), a.std(0) + 1e-8
    design = np.c_[(a - mu) / sd, np.ones(len(a))]
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(design.T @ design + penalty, design.T @ train_sizes)
    return held_out_r2(np.c_[(b - mu) / sd, np.ones(len(b))] @ w, test_sizes, ERRORS)


def held_out_r2(pred: np.ndarray, sizes: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """R^2 of each column of ``pred`` against the same column of ``sizes``, by name (NaN where the error never
    varies)."""
    out = {}
    for j, name in enumerate(names):
        var = sizes[:, j].var()
        out[name] = float(1.0 - ((pred[:, j] - sizes[:, j]) ** 2).mean() / var) if var > 0 else float("nan")
    return out


def train_chroma_net(views: torch.Tensor, sizes: np.ndarray, epochs: int, seed: int = 0, batch: int = 128):
    """A :class:`~deepexpose.agents.chroma.ChromaNet` regressed on ``views`` (mean squared error of its correction
    against minus the white-balance errors, the first two columns of ``sizes``; Adam, learning rate 1e-3,
    ``epochs`` passes in a seeded order)."""
    from deepexpose.agents.chroma import ChromaNet, log_chroma_histogram

    torch.manual_seed(seed)
    net = ChromaNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    hist = torch.cat([log_chroma_histogram(views[i:i + 1024]) for i in range(0, len(views), 1024)])
    answer = -torch.as_tensor(sizes[:, :2], dtype=torch.float32)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(hist), generator=order)
        for i in range(0, len(hist), batch):
            b = perm[i:i + batch]
            loss = (net.from_histogram(hist[b]) - answer[b]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def chroma_predictability(net: torch.nn.Module, views: torch.Tensor, sizes: np.ndarray) -> dict[str, float]:
    """Held-out R^2 of the white-balance errors (temperature, tint) as estimated by ``net``
    (:func:`train_chroma_net`) on ``views``."""
    with torch.no_grad():
        return held_out_r2(-net(views).double().numpy(), sizes, ERRORS[:2])


def chroma_corrected(net: torch.nn.Module, views: torch.Tensor) -> torch.Tensor:
    """``views`` with the white balance ``net`` chooses for each applied, in 8 bits."""
    wb = _PIPE.filters[_PIPE.names.index("white_balance")]
    with torch.no_grad():
        return (wb.apply(views, net(views)) * 255).round() / 255


def answered_size(edit: dict, name: str) -> float:
    """The size of the correction ``edit`` makes of error ``name`` (see the module notes)."""
    filt, param = name.split(".")
    if filt == "exposure":
        local = edit.get("local_exposure", {}).get("ev", [])
        return edit.get("exposure", {}).get("ev", 0.0) + (float(np.mean(local)) if local else 0.0)
    value = edit.get(filt, {}).get(param)
    if filt == "saturation":
        return math.log(value) if value is not None else 0.0
    return 0.0 if value is None else float(value)


def scaled_ranges(scale: float) -> list[tuple[str, str, float, float]]:
    """``BASIC_RANGES`` shrunk toward "no error" by ``scale`` (saturation factors in log space)."""
    out = []
    for filt, param, low, high in BASIC_RANGES:
        if filt == "saturation":
            out.append((filt, param, math.exp(scale * math.log(low)), math.exp(scale * math.log(high))))
        else:
            out.append((filt, param, scale * low, scale * high))
    return out


def by_size(correct: Callable[[torch.Tensor], torch.Tensor], photos: Sequence[torch.Tensor], count: int, seed: int,
            size: int = 64, scales: Sequence[float] = (0.25, 0.5, 0.75, 1.0), batch: int = 128
            ) -> dict[str, dict[str, dict[str, float]]]:
    """For each scale, the scores of the ``input`` and of ``correct`` (views -> corrected views) on ``count`` views
    with basic errors drawn from :func:`scaled_ranges` (each with p = 0.75, as in evaluation)."""
    out = {}
    for scale in scales:
        x, t, _ = detuned_views(photos, count, seed, size, ranges=scaled_ranges(scale))
        y = torch.cat([correct(x[b:b + batch]) for b in range(0, len(x), batch)])
        out[f"{scale:g}"] = {"input": scores(x, t), "output": scores(y, t)}
    return out


def agent_answers(choose: Callable[[torch.Tensor], list[dict]], photos: Sequence[torch.Tensor], count: int,
                  seed: int, size: int = 64, batch: int = 128) -> dict[str, dict[str, float]]:
    """For each basic error alone (``count`` views each), the correlation and least-squares slope of the size
    of the correction ``choose`` (views -> edits) makes against the error's size."""
    out = {}
    for (filt, param, low, high), name in zip(BASIC_RANGES, ERRORS, strict=True):
        x, _, errors = detuned_views(photos, count, seed, size, ranges=[(filt, param, low, high)], p_each=1.0)
        truth = error_sizes(errors)[:, ERRORS.index(name)]
        edits = [e for b in range(0, len(x), batch) for e in choose(x[b:b + batch])]
        answer = np.array([answered_size(e, name) for e in edits])
        corr = float(np.corrcoef(truth, answer)[0, 1]) if answer.std() > 0 else 0.0
        slope = float(np.polyfit(truth, answer, 1)[0])
        out[name] = {"correlation": corr, "slope": slope, "answer_sd": float(answer.std()),
                     "error_sd": float(truth.std())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="an exported agent or a run's checkpoint (default: bundled)")
    parser.add_argument("--count", type=int, default=1000,
                        help="held-out views per measurement (default: 1000); the regression fits 4 times as many")
    parser.add_argument("--seed", type=int, default=11, help="seed of the views and their errors (default: 11)")
    parser.add_argument("--chroma-epochs", type=int, default=0,
                        help="also train the log-chroma network on --chroma-views views for this many epochs and "
                             "report its R^2 for the white balance (default: 0, skipped)")
    parser.add_argument("--chroma-views", type=int, default=20000,
                        help="training views for --chroma-epochs (default: 20000)")
    parser.add_argument("--sizes", default="0.25,0.5,0.75,1",
                        help="scales of the basic errors' ranges for part 3 (default: 0.25,0.5,0.75,1)")
    args = parser.parse_args()
    try:
        scales = [float(v) for v in args.sizes.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--sizes takes comma-separated numbers, got {args.sizes!r}")
    if not scales or not all(0 < s <= 1 for s in scales):
        parser.error(f"--sizes scales the ranges down: each must be in (0, 1], got {args.sizes!r}")
    if args.count < MIN_COUNT:  # one view gave R² nan, slopes of no spread, and NaN in the JSON
        parser.error(f"--count must be >= {MIN_COUNT}: the correlations, slopes and fits need views that vary, got "
                     f"{args.count}")
    if (args.chroma_epochs > 0 and args.chroma_views < 1) or args.chroma_epochs < 0:
        parser.error("--chroma-views with --chroma-epochs must be >= 1; --chroma-epochs >= 0")
    path = Path(args.model) if args.model else default_model_path()
    agent = load_agent(path)
    saved = agent.meta["trained"]["config"] if "trained" in agent.meta else agent.meta["config"]
    cfg = from_dict(TrainConfig, saved)
    train, _, held = good_photo_split(cfg)
    if not train or not held:
        raise SystemExit("error_budget.py: the model's split has no training or no held-out photos")
    report: dict = {"model": str(path), "data": cfg.data, "views": args.count, "seed": args.seed,
                    "photos": {"train": len(train), "held_out": len(held)}}

    report["partial_oracles"] = oracles = partial_oracles(held, args.count, args.seed, cfg.view)
    for name, r in oracles.items():
        print(f"undone exactly: {name:<36} {r['psnr']:6.2f} dB / CIEDE2000 {r['delta_e2000']:5.2f}", flush=True)

    xa, _, ea = detuned_views(train, 4 * args.count, args.seed + 1, cfg.view)
    xb, _, eb = detuned_views(held, args.count, args.seed, cfg.view)
    report["predictability_r2"] = r2 = predictability(xa, error_sizes(ea), xb, error_sizes(eb))
    print("held-out R^2 from colour statistics: " + ", ".join(f"{k} {v:+.2f}" for k, v in r2.items()), flush=True)
    if args.chroma_epochs > 0:
        xc, _, ec = detuned_views(train, args.chroma_views, args.seed + 2, cfg.view)
        net = train_chroma_net(xc, error_sizes(ec), args.chroma_epochs, args.seed)
        report["chroma_r2"] = r2 = chroma_predictability(net, xb, error_sizes(eb))
        print("held-out R^2 from the log-chroma network: " + ", ".join(f"{k} {v:+.2f}" for k, v in r2.items()),
              flush=True)
        xe, te, _ = detuned_views(held, args.count, args.seed, cfg.view, skip=("exposure",))
        report["chroma_oracle"] = r = {"exposure undone exactly": scores(xe, te),
                                       "and white balance by the network": scores(chroma_corrected(net, xe), te)}
        print("exposure undone exactly, white balance by the log-chroma network: "
              f"{r['and white balance by the network']['psnr']:6.2f} dB / CIEDE2000 "
              f"{r['and white balance by the network']['delta_e2000']:5.2f}", flush=True)

    report["by_size"] = sizes = by_size(lambda v: run_policy(agent.model, agent.core, v)[0], held, args.count,
                                        args.seed, cfg.view, scales)
    for scale, r in sizes.items():
        print(f"errors at {scale:>4} x their ranges: input {r['input']['psnr']:6.2f} dB / CIEDE2000 "
              f"{r['input']['delta_e2000']:5.2f} -> agent {r['output']['psnr']:6.2f} dB / "
              f"{r['output']['delta_e2000']:5.2f}", flush=True)

    report["agent_answers"] = answers = agent_answers(agent.choose, held, args.count, args.seed, cfg.view)
    for name, r in answers.items():
        print(f"agent on {name} alone: correlation {r['correlation']:+.2f}, slope {r['slope']:+.3f} "
              f"(answer sd {r['answer_sd']:.3f}, error sd {r['error_sd']:.3f})", flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    from deepexpose.cli import run_script

    raise SystemExit(run_script(main, __file__))
