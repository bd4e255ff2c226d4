"""Asynchronous actor-critic for DeepExposure: workers update shared networks without waiting for each other.

After A3C (Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning", ICML 2016): the policy, the
discriminator and their Adam moments live in shared memory; each worker process runs its own batch of
episodes and applies its gradients to the shared parameters lock-free (Hogwild). Two actor losses:

- ``adpg`` (default), the "asynchronous deterministic policy gradient" of DeepExposure (seed 003): the filters
  and the reward's scorer (PSNR against the target, or the discriminator, which serves as the value) are
  differentiable, so the gradient of the episode's return with respect to each action is computed exactly by
  backpropagating through the filters (Silver et al., "Deterministic Policy Gradient Algorithms", 2014, with
  the known critic in place of a learned one).
- ``a3c``: a Gaussian policy trained by the advantage actor-critic loss with Monte-Carlo returns of the
  ``K + 1``-step episode and the learned value head as baseline; the environment is a black box.

With adversarial or mixed rewards every worker also takes a WGAN-GP step on the discriminator (good photos
against the agent's edits) after each policy update. One worker runs in the calling process and is exactly
reproducible, killed-and-resumed runs included (and may use CUDA); N workers run in spawned processes on the
CPU.

Every evaluation also scores the policy on the validation pool (a share of the training photos, see
:class:`~deepexpose.agents.train.TrainConfig`); when its :func:`~deepexpose.agents.train.selection_score` is the
best so far, the run writes ``best.safetensors`` (+ ``.json``, the checkpoint format). The held-out results are
recorded beside it for reporting and never influence anything. A fresh run is evaluated before it trains too: its
actor starts from "change nothing", so ``best.safetensors`` never scores below leaving the validation photos as
they are.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import Tensor

from deepexpose import DeepExposeWarning
from deepexpose.device import resolve_device
from deepexpose.discriminator import Critic, critic_loss
from deepexpose.envs.core import EditCore
from deepexpose.envs.pool import PairPool
from deepexpose.io import atomic_write_bytes, writable_folder

from .checkpoint import checkpoint_exists, load_checkpoint, read_meta, save_checkpoint, update_meta
from .networks import ActorCritic
from .train import (TrainConfig, build_split_pools, check_resume, evaluate, make_core, make_model, num_workers,
                    check_fresh_out, remove_run_files, resolve_data, save_config,
                    rescored_best, selection_score, stale_best, warn_if_done)

ENTROPY_COEF = 1e-3
VALUE_COEF = 0.5
MAX_GRAD_NORM = 1.0
CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
"""The checkpoint with the best validation score so far (same format as ``checkpoint.safetensors``)."""
EVALUATED = "evaluated"
"""Folder of the policies kept at every evaluation (``TrainConfig.keep_evaluated``): ``step-N.safetensors``. Like
``best.safetensors``, those of a killed run newer than its checkpoint stay when it is resumed."""


class SharedAdam(torch.optim.Adam):
    """Adam whose moments are created up front so they can be moved to shared memory (A3C's shared optimiser)."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def share_memory(self) -> SharedAdam:
        for state in self.state.values():
            for value in state.values():
                value.share_memory_()
        return self


def adpg_loss(model: ActorCritic, core: EditCore, x: Tensor, t: Tensor | None) -> tuple[Tensor, Tensor]:
    """Minus the episode's return, differentiable through the filters; also returns the mean return."""
    core.begin(x, t)
    total, done, policy = torch.zeros(x.shape[0], device=x.device), False, model.episode()
    while not done:
        action, _ = policy(core.observation())
        reward, done = core.step(action)
        total = total + reward
    return -total.mean(), total.detach().mean()


def a3c_loss(model: ActorCritic, core: EditCore, x: Tensor, t: Tensor | None,
             generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Advantage actor-critic loss of one batch of episodes (Monte-Carlo returns, value baseline)."""
    core.begin(x, t)
    log_probs, values, rewards, entropies, done = [], [], [], [], False
    std, policy = model.log_std.exp(), model.episode()
    while not done:
        mean, value = policy(core.observation())
        dist = torch.distributions.Normal(mean, std)
        action = (mean + std * torch.randn(mean.shape, generator=generator).to(mean.device)).detach()
        with torch.no_grad():
            reward, done = core.step(action)
        log_probs.append(dist.log_prob(action).sum(1))
        entropies.append(dist.entropy().sum(1))
        values.append(value)
        rewards.append(reward)
    returns = torch.stack(rewards).flip(0).cumsum(0).flip(0)  # undiscounted: episodes are K + 1 steps
    values_t, log_probs_t = torch.stack(values), torch.stack(log_probs)
    advantage = returns - values_t.detach()
    loss = (-(log_probs_t * advantage).mean() + VALUE_COEF * (returns - values_t).pow(2).mean()
            - ENTROPY_COEF * torch.stack(entropies).mean())
    return loss, returns[0].mean()


def worker_loop(rank: int, cfg: TrainConfig, model: ActorCritic, critic: Critic | None, opt: torch.optim.Optimizer,
                critic_opt: torch.optim.Optimizer | None, counter, stats, pool: PairPool, deadline: float,
                generator_state: Tensor | None = None, hook=None, threads: int | None = None,
                parent: int | None = None) -> torch.Generator:
    """One worker: draw a batch, compute the loss, step the shared optimiser; until a budget is spent (the time
    budget only once some update was made: one that ended before the first wrote the untrained policy as trained).

    ``counter`` (a shared ``mp.Value``) counts image-steps across workers; ``hook(step, generator)`` is called
    after each update (the in-process monitor). ``parent``: the pid of the process that started this worker, which
    stops when that process is gone (killed with SIGKILL, say), see :func:`_end_with_parent`. Returns the worker's
    generator (its state is resumable).
    """
    if parent is not None:
        _end_with_parent(parent)
    if threads:
        torch.set_num_threads(threads)
    device = next(model.parameters()).device
    g = torch.Generator()
    if generator_state is not None:
        g.set_state(generator_state)
    else:  # a resumed multi-process run starts new streams: seeded by the step it resumes from
        g.manual_seed(hash((cfg.seed, rank, counter.value)) % 2**63)
    core = make_core(cfg, critic)
    begun = counter.value  # a fresh or a resumed run's step: the time budget ends it only after an update past it
    while (time.time() < deadline or counter.value == begun) and not (parent is not None and os.getppid() != parent):
        with counter.get_lock():
            left = cfg.steps - counter.value
            if left <= 0:
                break
            batch = min(cfg.batch, -(-left // core.steps))  # the last update takes only the episodes still due
            counter.value += batch * core.steps
        idx = torch.randint(len(pool), (batch,), generator=g)
        x, t = pool.get(idx, device)
        if cfg.algo == "adpg":
            loss, ret = adpg_loss(model, core, x, t)
        else:
            loss, ret = a3c_loss(model, core, x, t, g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        opt.step()
        if critic is not None and critic_opt is not None:
            real_idx = torch.randint(len(pool), (batch,), generator=g)
            real = pool.get(real_idx, device)[1 if pool.paired else 0]
            c_loss = critic_loss(critic, real, core.current.detach(), generator=g)
            critic_opt.zero_grad()
            c_loss.backward()
            critic_opt.step()
        with stats.get_lock():
            stats[0] += float(ret)
            stats[1] += 1
        if hook is not None:
            hook(counter.value, g)
    return g


def _end_with_parent(parent: int) -> None:
    """Have this worker process end when its parent does: a parent killed with SIGKILL cannot stop its workers,
    which would train on, orphaned, for the rest of the budget. On Linux the kernel sends SIGTERM at the parent's
    death (``prctl(PR_SET_PDEATHSIG)``), which also frees a worker waiting on a lock the parent held; on other POSIX
    systems :func:`worker_loop` checks before each update that ``os.getppid()`` is still the parent's pid (it becomes
    the adopting process's). On Windows, where a dead parent's pid is still returned, the check never fires."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # already gone before the request above
        os._exit(0)


def format_eval(r: dict) -> str:
    """One line for a result of :func:`evaluate`."""
    parts = []
    if "psnr" in r:
        parts.append(f"PSNR {r['psnr']:.2f} dB (input {r['input_psnr']:.2f}), "
                     f"CIEDE2000 {r['delta_e2000']:.2f} (input {r['input_delta_e2000']:.2f})")
    if "good_psnr" in r:
        parts.append(f"good photos kept at {r['good_psnr']:.2f} dB"
                     + (f" ({r['good_within']:.0%} within 38 dB)" if "good_within" in r else ""))
    return "; ".join(parts)


class Monitor:
    """Progress bar, TensorBoard, periodic evaluation (validation and held-out), checkpoints and the best
    checkpoint (in the main process). ``best`` is the best validation result so far (``None``: none yet)."""

    def __init__(self, cfg: TrainConfig, model: ActorCritic, critic: Critic | None, opt, critic_opt, stats,
                 eval_pool: PairPool, start: int, history: list[dict], val_pool: PairPool | None = None,
                 best: dict | None = None, validation_source: str = "") -> None:
        self.cfg, self.model, self.critic, self.opt, self.critic_opt = cfg, model, critic, opt, critic_opt
        self.stats, self.eval_pool, self.history = stats, eval_pool, history
        self.val_pool, self.best, self.validation_source = val_pool, best, validation_source
        self.out = Path(cfg.out)
        self.core = make_core(cfg, critic)
        self.next_eval = self._next(start, cfg.eval_every)
        self.next_ckpt = self._next(start, cfg.checkpoint_every)
        self.step = start
        self.bar = None
        if cfg.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.steps, initial=start, unit="img-step", dynamic_ncols=True, disable=None)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"))
        except ImportError:
            pass

    @staticmethod
    def _next(step: int, every: int) -> float:
        return (step // every + 1) * every if every > 0 else math.inf

    def tick(self, step: int, generators: list[torch.Generator] | None = None) -> None:
        with self.stats.get_lock():
            mean_return = self.stats[0] / max(1.0, self.stats[1])
            self.stats[0], self.stats[1] = 0.0, 0.0
        if self.bar is not None:
            self.bar.update(max(0, step - self.step))
            postfix = {"return": f"{mean_return:.3f}"}
            if self.history and "psnr" in self.history[-1]:
                postfix["psnr"] = f"{self.history[-1]['psnr']:.2f}"
            self.bar.set_postfix(postfix)
        if self.tb is not None:
            self.tb.add_scalar("train/return", mean_return, step)
        self.step = step
        if step >= self.cfg.steps and generators is None:
            return  # worker processes are finishing their last updates: train_async evaluates and saves after them
        if step >= self.next_eval:
            self.next_eval = self._next(step, self.cfg.eval_every)
            self.evaluate(step, generators)
        if step >= self.next_ckpt:
            self.next_ckpt = self._next(step, self.cfg.checkpoint_every)
            self.checkpoint(step, generators)

    def evaluate(self, step: int, generators: list[torch.Generator] | None = None) -> dict:
        """Held-out results at the top level (reporting), ``validation`` (with its ``score``) and ``best_step``;
        writes ``best.safetensors`` when the validation score is the best so far. Worker processes go on updating
        the shared policy meanwhile, so a copy taken first is what is scored and what ``best.safetensors`` (and
        ``evaluated/``) keep."""
        device = next(self.model.parameters()).device
        scored = copy.deepcopy(self.model)
        held = evaluate(scored, self.core, self.eval_pool, device=device)
        result = {"step": step, **held}
        message = f"step {step}: held-out " + format_eval(held)
        if self.val_pool is not None:
            val = evaluate(scored, self.core, self.val_pool, device=device)
            score = selection_score(val)
            result["validation"] = {**val, "score": score}
            if self.best is None or score > self.best["score"]:
                self.best = {"step": step, "score": score, "validation": val, "held_out": held}
                self.checkpoint(step, generators, BEST, policy=scored)
            result["best_step"] = self.best["step"]
            message += (f"\n  validation {format_eval(val)}; score {score:.2f} "
                        f"(best {self.best['score']:.2f} at step {self.best['step']})")
        self.history.append(result)
        if self.cfg.keep_evaluated:
            self.checkpoint(step, generators, f"{EVALUATED}/step-{step:09d}.safetensors", policy=scored,
                            policy_only=True)
        if self.tb is not None:
            for key in ("psnr", "delta_e2000", "good_psnr", "good_shortfall", "good_within"):
                if key in result:
                    self.tb.add_scalar(f"eval/{key}", result[key], step)
                if key in result.get("validation", {}):
                    self.tb.add_scalar(f"validation/{key}", result["validation"][key], step)
            if "validation" in result:
                self.tb.add_scalar("validation/score", result["validation"]["score"], step)
                self.tb.add_scalar("validation/best_step", result["best_step"], step)
        (self.bar.write if self.bar is not None else print)(message)
        return result

    def checkpoint(self, step: int, generators: list[torch.Generator] | None, name: str = CHECKPOINT,
                   policy: ActorCritic | None = None, policy_only: bool = False) -> None:
        """Write ``out/name``: everything a resumed run needs, or with ``policy_only`` the policy alone (loadable
        by :func:`~deepexpose.agents.policy.load_agent`, not resumable); ``policy``: the weights to write instead
        of the shared ones (an evaluated copy)."""
        policy = self.model if policy is None else policy
        modules = {"policy": policy, **({"critic": self.critic} if self.critic is not None else {})}
        optimizers = {"policy": self.opt, **({"critic": self.critic_opt} if self.critic_opt is not None else {})}
        tensors = {f"generator.{i}": g.get_state() for i, g in enumerate(generators or [])}
        if policy_only:
            modules, optimizers, tensors = {"policy": policy}, {}, {}
        meta = {"step": step, "config": dataclasses.asdict(self.cfg), "model": policy.config(),
                "critic": {"width": self.critic.width} if self.critic is not None else None,
                "history": self.history, "reward": self.cfg.reward, "k": self.cfg.k, "best": self.best,
                "validation_source": self.validation_source}
        save_checkpoint(self.out / name, modules=modules, optimizers=optimizers, tensors=tensors, meta=meta)

    def rescore_best(self, path: Path) -> None:
        """Score the weights of ``path`` (the best checkpoint) on the validation pool again, when its record was
        scored before session 30 (:func:`~deepexpose.agents.train.stale_best`); see
        :func:`~deepexpose.agents.train.rescored_best`."""
        if self.val_pool is None or not stale_best(self.best):
            return
        policy = copy.deepcopy(self.model)
        load_checkpoint(path, modules={"policy": policy})
        val = evaluate(policy, self.core, self.val_pool, device=next(policy.parameters()).device)
        self.best = rescored_best(self.best, val)
        update_meta(path, best=self.best)  # scored once: a later resume finds it scored by the present rule

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def train_async(cfg: TrainConfig) -> dict:
    """Train with ``cfg.algo`` in ``adpg``/``a3c``; returns the final evaluation (held-out results at the top
    level, ``validation``, and ``best``: the step, score, validation and held-out results of best.safetensors)."""
    cfg = resolve_data(cfg)
    torch.manual_seed(cfg.seed)
    out = writable_folder(cfg.out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    workers = num_workers(cfg)
    device = resolve_device(cfg.device)
    if device.type != "cpu" and workers > 1:
        raise ValueError("worker processes share CPU memory: use --workers 1 with --device cuda")
    critic = Critic().to(device) if cfg.reward in ("adversarial", "mixed") else None
    core = make_core(cfg, critic)
    model = make_model(cfg, core).to(device)
    opt = SharedAdam(model.parameters(), cfg.lr)
    critic_opt = SharedAdam(critic.parameters(), cfg.critic_lr) if critic is not None else None
    start, history, gen_states, best = 0, [], [], None
    ckpt, best_path = out / CHECKPOINT, out / BEST
    stale: list[str] = []  # an earlier run's files, removed once this run's photos are read
    if cfg.resume and not checkpoint_exists(ckpt):  # as stable-baselines3's runs do
        warnings.warn(f"--resume: no checkpoint in {out}, starting afresh", DeepExposeWarning, stacklevel=2)
        stale = check_fresh_out(out, overwrite=True)  # what a run killed before its first checkpoint left
    elif cfg.resume:
        saved = read_meta(ckpt)
        check_resume(saved["config"], cfg, out)
        ActorCritic.from_config(saved["model"])  # refuses, by name, a model of another log-chroma histogram
        modules = {"policy": model, **({"critic": critic} if critic is not None else {})}
        optimizers = {"policy": opt, **({"critic": critic_opt} if critic_opt is not None else {})}
        meta, tensors = load_checkpoint(ckpt, modules=modules, optimizers=optimizers)
        start, history = int(meta["step"]), list(meta["history"])
        warn_if_done(start, cfg, out)
        gen_states = [tensors[k] for k in sorted(tensors) if k.startswith("generator.")]
        if best_path.with_suffix(".json").is_file():  # the best so far, possibly newer than the checkpoint
            best = read_meta(best_path)["best"]
    else:
        stale = check_fresh_out(out, cfg.overwrite)
    pools = build_split_pools(cfg)  # once the run in --out is known to be this one to continue or to start
    train_pool, eval_pool = pools.train, pools.held
    remove_run_files(out, stale)
    save_config(cfg, out)
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", start)
    stats = ctx.Array("d", 2)
    monitor = Monitor(cfg, model, critic, opt, critic_opt, stats, eval_pool, start, history, pools.validation, best,
                      pools.validation_source)
    monitor.rescore_best(best_path)
    try:
        if start == 0 and pools.validation is not None:  # "change nothing" is the first candidate for the best
            monitor.evaluate(0)
        deadline = time.time() + cfg.minutes * 60 if cfg.minutes > 0 else math.inf  # the budget is for training
        if workers == 1:
            state = gen_states[0] if gen_states else None
            g = worker_loop(0, cfg, model, critic, opt, critic_opt, counter, stats, train_pool, deadline, state,
                            hook=lambda step, gen: monitor.tick(step, [gen]))
            generators = [g]
        else:
            generators = _run_processes(ctx, cfg, workers, model, critic, opt, critic_opt, counter, stats,
                                        train_pool, deadline, monitor)
        step = counter.value
        # one worker stops after its last update; several may still have been updating during an evaluation at
        # the final count, so they get a final one of their own
        done = workers == 1 and history and history[-1]["step"] == step
        final = history[-1] if done else monitor.evaluate(step, generators)
        monitor.checkpoint(step, generators)
    finally:
        monitor.close()
    result = {**final, "algo": cfg.algo, "steps": step, "best": monitor.best,
              "validation_source": pools.validation_source, "trained_on": pools.trained_on, "history": history}
    atomic_write_bytes(out / "eval.json", json.dumps(result, indent=2).encode(), overwrite=True)
    return result


def _run_processes(ctx, cfg, workers, model, critic, opt, critic_opt, counter, stats, pool, deadline, monitor):
    """Start ``workers`` spawned processes on the shared networks and poll the counter until they finish."""
    model.share_memory()
    opt.share_memory()
    if critic is not None:
        critic.share_memory()
        critic_opt.share_memory()
    pool.inputs.share_memory_()
    if pool.targets is not None:
        pool.targets.share_memory_()
    procs = [ctx.Process(target=worker_loop, args=(rank, cfg, model, critic, opt, critic_opt, counter, stats, pool,
                                                  deadline, None, None, 1, os.getpid()), daemon=True)
             for rank in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            monitor.tick(counter.value)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise RuntimeError(f"{len(failed)} worker process(es) failed (exit codes {failed})")
    return []
