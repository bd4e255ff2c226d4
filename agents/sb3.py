"""stable-baselines3 agents (A2C, PPO, SAC, TD3) on the batched DeepExposure environment.

The policies see the observation through :class:`StatsCnnExtractor` (the project's
:class:`~deepexpose.agents.networks.ObservationEncoder`: global statistics plus a small pooled CNN) instead of
SB3's NatureCNN, which is far larger and made for Atari frames.

Training runs on one :class:`~deepexpose.envs.vector.DeepExposureVecEnv`: ``N`` episodes stepped as one tensor
batch in one process, so many environments are cheap (``--workers`` sets ``N``; 0 means 8). Budgets count
image-steps (one step of one image's episode), which is SB3's ``num_timesteps`` on a ``VecEnv``.

With the ``adversarial`` and ``mixed`` rewards the discriminator that scores the results is trained alongside
the policy, as the asynchronous trainer's workers train it (:class:`DiscriminatorCallback`).

Checkpoints are safetensors + JSON (:mod:`deepexpose.agents.checkpoint`): the policy weights and the optimizer
states (and in ``checkpoint.safetensors`` the discriminator's, when there is one), never SB3's pickled zip
archives. An off-policy replay buffer is not saved: a resumed SAC or TD3 run starts from an empty buffer (which
fills again quickly; training goes on from the first fresh batch). A run resumes only with the settings it was
made with (:func:`~deepexpose.agents.train.check_resume`), the number of image-steps aside.

Each evaluation also scores the policy on the validation pool (a share of the training photos); the best
:func:`~deepexpose.agents.train.selection_score` so far is saved as ``best.safetensors`` (same format). The
held-out results are only reported. A fresh run is evaluated before it trains too: its policy starts from "change
nothing" (:func:`start_from_no_change`), so ``best.safetensors`` never scores below leaving the validation photos
as they are.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecMonitor
from torch import Tensor

from deepexpose import DeepExposeWarning
from deepexpose.device import resolve_device
from deepexpose.discriminator import Critic, critic_loss
from deepexpose.envs.core import EditCore
from deepexpose.envs.pool import PairPool
from deepexpose.envs.vector import DeepExposureVecEnv

from . import train as _train
from .checkpoint import checkpoint_exists, load_checkpoint, read_meta, save_checkpoint, update_meta
from .chroma import HISTOGRAM_VERSION, check_histogram_version
from .networks import INITIAL_LOG_STD, ObservationEncoder
from .train import (SB3_ALGOS, Act, TrainConfig, build_split_pools, check_resume, make_core,
                    check_fresh_out, remove_run_files, resolve_data, save_config,
                    rescored_best, selection_score, stale_best, warn_if_done)

DEFAULT_NUM_ENVS = 8
"""Environments of the batched ``VecEnv`` when ``cfg.workers`` is 0 (they share one process and one batch)."""
CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
"""The checkpoint with the best validation score so far."""
NET_ARCH = [64]
"""Hidden layers of the policy and value (or Q) heads on top of the 128 features."""


class StatsCnnExtractor(BaseFeaturesExtractor):
    """SB3 features extractor wrapping :class:`ObservationEncoder` for the DeepExposure ``Dict`` observation.

    SB3's policies run ``preprocess_obs`` before the extractor. With ``normalize_images=True`` (SB3's default)
    it divides every uint8 ``Box(0, 255)`` sub-space of 3 dimensions by 255 -- here ``image``, ``input`` and
    ``mask`` (a 1-channel image) -- and casts ``step`` to float, so the encoder gets [0, 1] floats as is.
    ``normalize_images`` must equal the policy's: when the policy does not normalise (``False``) the extractor
    divides those image keys by 255 itself, so they are scaled exactly once either way.
    """

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 128, use_cnn: bool = True,
                 normalize_images: bool = True, colour: bool = False, chroma: bool = False) -> None:
        if not isinstance(observation_space, spaces.Dict) or not {"image", "input", "mask", "step"} <= set(
                observation_space.spaces):
            raise ValueError("StatsCnnExtractor needs the DeepExposure Dict observation space "
                             f"(image, input, mask, step), got {observation_space}")
        super().__init__(observation_space, features_dim)
        self.normalize_images = normalize_images
        self.image_keys = tuple(k for k, s in observation_space.spaces.items() if is_image_space(s))
        self.encoder = ObservationEncoder(int(observation_space["step"].shape[0]), features_dim, use_cnn=use_cnn,
                                          colour=colour, chroma=chroma)

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        if not self.normalize_images:  # the policy left the uint8 images at 0..255
            observations = {k: v / 255 if k in self.image_keys else v for k, v in observations.items()}
        return self.encoder(observations)


# -- evaluation --------------------------------------------------------------------------------------------



def sb3_act(model: BaseAlgorithm) -> Act:
    """The deterministic policy of an SB3 model as an :data:`Act` (numpy at SB3's boundary)."""

    def act(obs: dict[str, Tensor]) -> Tensor:
        action, _ = model.predict({k: v.cpu().numpy() for k, v in obs.items()}, deterministic=True)
        return torch.as_tensor(np.asarray(action, dtype=np.float32))

    return act


def evaluate_sb3(model: BaseAlgorithm, core: EditCore, pool: PairPool, batch: int = 64) -> dict[str, float]:
    """Mean PSNR and CIEDE2000 of the model's deterministic edits on ``pool`` (and of its inputs), exactly as
    :func:`deepexpose.agents.train.evaluate` measures the project's own agents."""
    return _train.evaluate(sb3_act(model), core, pool, batch)


# -- checkpoints -------------------------------------------------------------------------------------------

def _optimizers(model: BaseAlgorithm) -> dict[str, torch.optim.Optimizer]:
    if hasattr(model, "actor") and hasattr(model, "critic"):  # SAC, TD3
        opts = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
        if getattr(model, "ent_coef_optimizer", None) is not None:
            opts["ent_coef"] = model.ent_coef_optimizer
        return opts
    return {"policy": model.policy.optimizer}


def _extra_tensors(model: BaseAlgorithm) -> dict[str, Tensor]:
    log_ent_coef = getattr(model, "log_ent_coef", None)  # SAC's learned entropy weight lives outside the policy
    return {"log_ent_coef": log_ent_coef} if isinstance(log_ent_coef, Tensor) else {}


Discriminator = tuple[Critic, torch.optim.Optimizer]
"""The adversarial and mixed rewards' discriminator and its optimizer."""


def save_sb3_checkpoint(model: BaseAlgorithm, path: str | Path, cfg: TrainConfig,
                        discriminator: Discriminator | None = None, **meta: Any) -> Path:
    """Policy weights (target networks included), optimizer states and counters, and the ``discriminator`` with its
    optimizer when given; safetensors + JSON. ``meta`` adds entries to the JSON (e.g. ``best``). ``extractor_colour``
    records that the extractor saw the colour statistics (checkpoints without it were written when it never did)."""
    modules: dict[str, torch.nn.Module] = {"policy": model.policy}
    optimizers = _optimizers(model)
    if discriminator is not None:
        modules["discriminator"], optimizers["discriminator"] = discriminator
    return save_checkpoint(path, modules=modules, optimizers=optimizers, tensors=_extra_tensors(model),
                           meta={"algo": cfg.algo, "num_timesteps": int(model.num_timesteps),
                                 "config": dataclasses.asdict(cfg), "extractor_colour": cfg.colour_stats,
                                 **({"chroma_histogram": HISTOGRAM_VERSION} if cfg.chroma else {}), **meta})


def load_sb3_checkpoint(model: BaseAlgorithm, path: str | Path,
                        discriminator: Discriminator | None = None) -> dict[str, Any]:
    """Load a :func:`save_sb3_checkpoint` into ``model`` (same algorithm and config) and ``discriminator`` in place;
    returns meta."""
    modules: dict[str, torch.nn.Module] = {"policy": model.policy}
    optimizers = _optimizers(model)
    if discriminator is not None:
        modules["discriminator"], optimizers["discriminator"] = discriminator
    meta, extra = load_checkpoint(path, modules=modules, optimizers=optimizers)
    if "log_ent_coef" in extra:
        with torch.no_grad():
            model.log_ent_coef.copy_(extra["log_ent_coef"])  # type: ignore[union-attr]
    model.num_timesteps = int(meta["num_timesteps"])
    return meta


# -- callbacks ---------------------------------------------------------------------------------------------

class _Every(BaseCallback):
    """Runs :meth:`fire` at the start of the first rollout at or past each multiple of ``every`` image-steps (0:
    never): the previous rollout has been trained on, so a checkpoint's weights, optimizer state and
    ``num_timesteps`` agree. On the same grid whether a run was resumed or not, as the project's own trainer."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.next = every, math.inf

    def _on_training_start(self) -> None:
        self.next = self._after(self.model.num_timesteps)

    def _after(self, step: int) -> float:
        return (step // self.every + 1) * self.every if self.every > 0 else math.inf

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self.next:
            self.next = self._after(self.model.num_timesteps)
            self.fire()

    def _on_step(self) -> bool:
        return True

    def fire(self) -> None:
        raise NotImplementedError


class SafetensorsCheckpointCallback(_Every):
    """Writes ``path`` (safetensors + JSON, see :func:`save_sb3_checkpoint`) every ``every`` image-steps, with the
    evaluations so far, ``history`` (:attr:`EvalCallback.history`), which a resumed run goes on from."""

    def __init__(self, path: Path, cfg: TrainConfig, every: int, discriminator: Discriminator | None = None,
                 history: list[dict] | None = None) -> None:
        super().__init__(every)
        self.path, self.cfg, self.discriminator = path, cfg, discriminator
        self.history = history if history is not None else []

    def fire(self) -> None:
        save_sb3_checkpoint(self.model, self.path, self.cfg, self.discriminator, history=self.history)


class EvalCallback(_Every):
    """Evaluates the deterministic policy on the held-out pool every ``every`` image-steps; logs and prints.

    With a ``validation`` pool it also scores the validation views (:func:`selection_score`) and writes
    ``best_path`` (see :func:`save_sb3_checkpoint`, with ``best`` in its JSON) when the score is the best so far
    (``best``: the best so far of an earlier run, or ``None``). ``at_start``: evaluate once more when training
    starts, before any update (a fresh run's "change nothing"), logged at that step. ``history``: the evaluations of
    the run so far (a resumed run's, from its checkpoint), which each evaluation extends.
    """

    def __init__(self, core: EditCore, pool: PairPool, every: int, verbose: bool = True,
                 validation: PairPool | None = None, best_path: Path | None = None, cfg: TrainConfig | None = None,
                 best: dict | None = None, at_start: bool = False, history: list[dict] | None = None) -> None:
        super().__init__(every)
        self.core, self.pool, self.print = core, pool, verbose
        self.validation, self.best_path, self.cfg, self.best = validation, best_path, cfg, best
        self.at_start = at_start
        self.history: list[dict] = list(history or [])

    def _on_training_start(self) -> None:
        super()._on_training_start()
        if self.at_start:  # SB3's logger exists from here on, so step 0 reaches TensorBoard too
            self.at_start = False
            self.fire()
            self.logger.dump(self.model.num_timesteps)

    def fire(self) -> None:
        result = self.evaluate(self.model)
        for key, value in result.items():
            if isinstance(value, float):
                self.logger.record(f"eval/{key}", value)
        for key, value in result.get("validation", {}).items():
            self.logger.record(f"validation/{key}", value)
        self.report(result)

    def report(self, result: dict) -> None:
        """Print an evaluation's held-out scores (when ``verbose``)."""
        if self.print:
            scores = ", ".join(f"{k} {v:.2f}" for k, v in result.items() if isinstance(v, float))
            print(f"[{result['steps']} image-steps] eval: {scores}", flush=True)

    def evaluate(self, model: BaseAlgorithm) -> dict:
        """Held-out results (top level), ``validation`` with its ``score``, ``best_step``; saves a new best."""
        held = evaluate_sb3(model, self.core, self.pool)
        result: dict[str, Any] = {"steps": int(model.num_timesteps), **held}
        if self.validation is not None:
            val = evaluate_sb3(model, self.core, self.validation)
            score = selection_score(val)
            result["validation"] = {**val, "score": score}
            if self.best is None or score > self.best["score"]:
                self.best = {"step": int(model.num_timesteps), "score": score, "validation": val, "held_out": held}
                if self.best_path is not None and self.cfg is not None:
                    save_sb3_checkpoint(model, self.best_path, self.cfg, best=self.best)
            result["best_step"] = self.best["step"]
        self.history.append(result)
        return result


class TimeBudgetCallback(BaseCallback):
    """Stops training after ``minutes`` of wall-clock time (0: never), but not before the first update: a budget
    that ended in the first rollout wrote the policy it started from as the trained one."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.minutes, self.start = minutes, 0.0

    def _on_training_start(self) -> None:
        self.start = time.monotonic()

    def _on_step(self) -> bool:
        return (self.minutes <= 0 or time.monotonic() - self.start < 60 * self.minutes
                or self.model._n_updates == 0)


class DiscriminatorCallback(BaseCallback):
    """Trains the discriminator of the adversarial and mixed rewards alongside a stable-baselines3 algorithm, as the
    asynchronous trainer's workers do: one WGAN-GP step (Gulrajani et al. 2017, :func:`critic_loss`) for every
    ``batch`` finished episodes, their results against as many good views drawn from ``pool`` (its targets, or its
    inputs when it has none).

    The results are the terminal observations' images, 8-bit like the good views (the asynchronous trainer takes
    its float results). After an update the environment's running episodes are scored again by the new critic
    (:meth:`DeepExposureVecEnv.rescore`), so that no reward compares scores of two critics; rewards already in an
    off-policy replay buffer (SAC, TD3) keep the critic they were computed with. Results collected toward the next
    update are not checkpointed: a resumed run starts collecting afresh.
    """

    def __init__(self, discriminator: Discriminator, pool: PairPool, batch: int, seed: int) -> None:
        super().__init__()
        (self.critic, self.opt), self.pool, self.batch = discriminator, pool, batch
        self.g = torch.Generator().manual_seed(seed)
        self.results: list[np.ndarray] = []
        self.updates = 0

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.results.append(info["terminal_observation"]["image"])
        device = next(self.critic.parameters()).device
        updated = False
        while len(self.results) >= self.batch:
            fake = torch.from_numpy(np.stack(self.results[:self.batch])).to(device).float().div_(255)
            del self.results[:self.batch]
            real_idx = torch.randint(len(self.pool), (self.batch,), generator=self.g)
            real = self.pool.get(real_idx, device)[1 if self.pool.paired else 0]
            loss = critic_loss(self.critic, real, fake, generator=self.g)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.updates += 1
            updated = True
            self.logger.record("train/discriminator_loss", float(loss.detach()))
        if updated:
            self.training_env.env_method("rescore")
        return True


# -- training ----------------------------------------------------------------------------------------------

def num_envs_for(cfg: TrainConfig) -> int:
    return cfg.workers if cfg.workers > 0 else DEFAULT_NUM_ENVS


def _largest_divisor_at_most(n: int, cap: int) -> int:
    d = max(1, min(cap, n))
    while n % d:
        d -= 1
    return d


def algo_kwargs(cfg: TrainConfig, num_envs: int, episode_steps: int, action_dim: int) -> dict[str, Any]:
    """Small hyper-parameters for episodes of ``episode_steps`` steps on ``num_envs`` batched environments.

    Every episode has ``K + 1`` steps and its returns are score improvements, so ``gamma = 1`` (the return is
    the final improvement). ``cfg.lr`` is the learning rate; ``cfg.batch`` the minibatch size, and the off-policy
    algorithms' warm-up of random actions.
    """
    common: dict[str, Any] = {"learning_rate": cfg.lr, "gamma": 1.0}
    if cfg.algo == "a2c":  # one episode per environment per update
        return {**common, "n_steps": episode_steps}
    if cfg.algo == "ppo":  # rollouts of >= 8 minibatches (256 image-steps by default) of whole episodes
        per_env = -(-8 * cfg.batch // num_envs)
        n_steps = episode_steps * -(-per_env // episode_steps)
        size = _largest_divisor_at_most(n_steps * num_envs, cfg.batch)
        if size == 1:  # PPO normalises advantages per minibatch, which needs two or more: the next divisor up
            size = next(d for d in range(2, n_steps * num_envs + 1) if n_steps * num_envs % d == 0)
        return {**common, "n_steps": n_steps, "batch_size": size, "n_epochs": 4}
    if cfg.algo in ("sac", "td3"):
        # A transition stores two 7 x S x S uint8 observations (57 kB at S = 64): 10,000 of them are 570 MB.
        # The warm-up is one minibatch: SB3 fills it with uniform random actions over the whole range, nearly all of
        # them ruinous edits; after it, exploration is the policy's own: TD3's noise around "change nothing" at
        # first, SAC's tanh of a Gaussian of SB3's initial spread (about 1 before the tanh; starting it at
        # INITIAL_LOG_STD did not help in a throwaway run).
        off: dict[str, Any] = {**common, "buffer_size": max(cfg.batch, min(cfg.steps, 10_000)),
                               "learning_starts": cfg.batch,
                               "batch_size": cfg.batch, "train_freq": 1, "gradient_steps": 1,
                               "optimize_memory_usage": False}
        if cfg.algo == "td3":
            from stable_baselines3.common.noise import NormalActionNoise

            off["action_noise"] = NormalActionNoise(np.zeros(action_dim), 0.1 * np.ones(action_dim))
        return off
    raise ValueError(f"unknown stable-baselines3 algorithm {cfg.algo!r}; choose from {', '.join(SB3_ALGOS)}")


def _tensorboard_dir(out: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        warnings.warn("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)",
                      DeepExposeWarning, stacklevel=3)
        return None
    return str(out / "tb")


def _progress_bar(wanted: bool) -> bool:
    if not wanted:
        return False
    try:
        import rich  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        warnings.warn("SB3's progress bar needs tqdm and rich (pip install rich): no progress bar",
                      DeepExposeWarning, stacklevel=3)
        return False
    return True


def start_from_no_change(model: BaseAlgorithm) -> None:
    """Zero the layer that outputs the deterministic action (A2C and PPO: the Gaussian's mean, ``action_net``;
    SAC: ``actor.mu``; TD3: the last linear layer of ``actor.mu``, and its target copy), so that training starts
    from "change nothing" (action 0, also through SAC's and TD3's tanh), as the project's own actor does. Its
    gradient is not zero: the layer's input is not."""
    policy = model.policy
    if hasattr(policy, "action_net"):
        head = policy.action_net
    else:
        mu = policy.actor.mu
        head = mu if isinstance(mu, torch.nn.Linear) else [m for m in mu if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    if hasattr(policy, "actor_target"):
        policy.actor_target.load_state_dict(policy.actor.state_dict())


def make_sb3_model(cfg: TrainConfig, env, device: torch.device, tensorboard_log: str | None = None,
                   seed: int | None = None) -> BaseAlgorithm:
    """The SB3 model of ``cfg.algo`` with :class:`StatsCnnExtractor` and small heads on ``env``, starting from
    "change nothing" (:func:`start_from_no_change`); A2C and PPO explore with the standard deviation of the
    project's own a3c at first (:data:`~deepexpose.agents.networks.INITIAL_LOG_STD`) instead of SB3's 1, which
    spans the whole action range."""
    from stable_baselines3 import A2C, PPO, SAC, TD3

    classes = {"a2c": A2C, "ppo": PPO, "sac": SAC, "td3": TD3}
    if cfg.algo not in classes:
        raise ValueError(f"unknown stable-baselines3 algorithm {cfg.algo!r}; choose from {', '.join(SB3_ALGOS)}")
    normalize_images = True  # SB3 divides the uint8 images by 255 before the extractor; the extractor must know
    policy_kwargs = dict(features_extractor_class=StatsCnnExtractor,
                         features_extractor_kwargs=dict(use_cnn=cfg.use_cnn, normalize_images=normalize_images,
                                                        colour=cfg.colour_stats, chroma=cfg.chroma),
                         normalize_images=normalize_images, net_arch=list(NET_ARCH))
    if cfg.algo in ("a2c", "ppo"):
        policy_kwargs["log_std_init"] = INITIAL_LOG_STD
    episode_steps = int(env.observation_space["step"].shape[0])
    kwargs = algo_kwargs(cfg, env.num_envs, episode_steps, int(env.action_space.shape[0]))
    model = classes[cfg.algo]("MultiInputPolicy", env, policy_kwargs=policy_kwargs, device=device,
                              seed=cfg.seed if seed is None else seed, tensorboard_log=tensorboard_log, verbose=0,
                              **kwargs)
    start_from_no_change(model)
    return model


def train_sb3(cfg: TrainConfig, pools: tuple[PairPool, ...] | None = None) -> dict:
    """Train ``cfg.algo`` (a2c, ppo, sac or td3) for ``cfg.steps`` image-steps; returns the final evaluation.

    Writes ``out/checkpoint.safetensors`` (+ ``.json``) every ``cfg.checkpoint_every`` image-steps and at the
    end, ``out/best.safetensors`` (+ ``.json``) at the best validation score so far, ``out/eval.json`` and
    ``out/config.json``; TensorBoard logs in ``out/tb`` when tensorboard is installed. ``cfg.resume`` continues
    from ``out/checkpoint.json`` up to the same total ``cfg.steps``, keeping the best so far. ``pools``
    (train, held-out[, validation]) replaces :func:`build_split_pools` (e.g. in tests; without a validation
    pool nothing is selected).
    """
    if cfg.algo not in SB3_ALGOS:
        raise ValueError(f"unknown stable-baselines3 algorithm {cfg.algo!r}; choose from {', '.join(SB3_ALGOS)}")
    from deepexpose.io import writable_folder

    cfg = resolve_data(cfg)
    out = writable_folder(cfg.out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    device = resolve_device(cfg.device)
    best_path = out / BEST
    best = None

    resume_from: dict[str, Any] | None = None
    stale: list[str] = []  # an earlier run's files, removed once this run's photos are read
    if cfg.resume:
        if checkpoint_exists(ckpt):  # half of one (a run killed between its two files) is read_meta's error
            resume_from = read_meta(ckpt)
            if resume_from.get("algo") != cfg.algo:
                what = (f"a {resume_from['algo']} agent" if resume_from.get("algo") else
                        f"an agent of {resume_from.get('config', {}).get('algo') or 'another trainer'}")
                raise ValueError(f"{ckpt} holds {what}, not a {cfg.algo} one: resume with the --algo it was "
                                 "trained with")
            if "extractor_colour" not in resume_from and cfg.colour_stats:  # the extractor ignored colour_stats
                raise ValueError(f"--resume: the checkpoint in {out} was written when stable-baselines3's extractor "
                                 "never saw the colour statistics: resume it with --no-colour-stats")
            saved = {**resume_from["config"], "colour_stats": resume_from.get("extractor_colour", False)}
            check_resume(saved, cfg, out)
            warn_if_done(int(resume_from.get("num_timesteps", 0)), cfg, out)
            if cfg.chroma:  # a checkpoint without the version was trained on version 1
                check_histogram_version(resume_from.get("chroma_histogram", 1))
        else:  # what a run killed before its first checkpoint left belongs to no run now
            warnings.warn(f"--resume: no checkpoint in {out}, starting afresh", DeepExposeWarning, stacklevel=2)
            stale = check_fresh_out(out, overwrite=True)
    else:
        stale = check_fresh_out(out, cfg.overwrite)
    if pools is None:  # once the run in --out is known to be this one to continue or to start
        split = build_split_pools(cfg)
        train_pool, eval_pool, val_pool, source = split.train, split.held, split.validation, split.validation_source
        trained_on = split.trained_on
    else:
        train_pool, eval_pool, val_pool = (*pools, None)[:3]
        source = "given" if val_pool is not None else "none (no validation pool given)"
        trained_on = None  # views given: the photos they come from are not known here
    remove_run_files(out, stale)
    save_config(cfg, out)
    if resume_from is not None and best_path.with_suffix(".json").is_file():
        best = read_meta(best_path).get("best")

    critic = Critic().to(device) if cfg.reward in ("adversarial", "mixed") else None
    discriminator = (critic, torch.optim.Adam(critic.parameters(), cfg.critic_lr)) if critic is not None else None
    env = VecMonitor(DeepExposureVecEnv(num_envs_for(cfg), train_pool, k=cfg.k, reward=cfg.reward, critic=critic,
                                        device=device))
    model = make_sb3_model(cfg, env, device, _tensorboard_dir(out))
    core = make_core(cfg, critic)
    if resume_from is not None:
        if val_pool is not None and stale_best(best):  # scored by the rule before session 30: score it again
            load_sb3_checkpoint(model, best_path)
            best = rescored_best(best, evaluate_sb3(model, core, val_pool))
            update_meta(best_path, best=best)  # scored once: a later resume finds it scored by the present rule
        load_sb3_checkpoint(model, ckpt, discriminator)
        model.set_random_seed(cfg.seed + model.num_timesteps)  # fresh views and noise, not a replay of the start

    # a fresh run's "change nothing" is the first candidate for the best, scored before the time budget starts
    evals = EvalCallback(core, eval_pool, cfg.eval_every, validation=val_pool, best_path=best_path, cfg=cfg, best=best,
                         at_start=resume_from is None and val_pool is not None,
                         history=(resume_from or {}).get("history"))
    remaining = cfg.steps - model.num_timesteps
    if remaining > 0:
        callbacks: list[BaseCallback] = [  # an evaluation before the checkpoint of the same step, which records it
            evals, SafetensorsCheckpointCallback(ckpt, cfg, cfg.checkpoint_every, discriminator, evals.history),
            TimeBudgetCallback(cfg.minutes)]
        if discriminator is not None:
            callbacks.append(DiscriminatorCallback(discriminator, train_pool, cfg.batch,
                                                   cfg.seed + model.num_timesteps))
        model.learn(total_timesteps=remaining, callback=CallbackList(callbacks),
                    reset_num_timesteps=resume_from is None,
                    progress_bar=_progress_bar(cfg.progress), tb_log_name=cfg.algo)
    # the final evaluation (updates the best if better), unless a resumed finished run has it already
    done = evals.history and evals.history[-1]["steps"] == model.num_timesteps
    result = evals.history[-1] if done else evals.evaluate(model)
    save_sb3_checkpoint(model, ckpt, cfg, discriminator, history=evals.history)
    summary = {**result, "algo": cfg.algo, "steps": int(model.num_timesteps), "best": evals.best,
               "validation_source": source, "trained_on": trained_on, "history": evals.history}
    from deepexpose.io import atomic_write_bytes

    atomic_write_bytes(out / "eval.json", json.dumps(summary, indent=2).encode(), overwrite=True)
    env.close()
    return summary
