"""``DeepExposureEnv``: one episode edits one photo, as in DeepExposure (Yu et al., NeurIPS 2018, seed 003).

Observation (a ``Dict``): ``image`` the current result, ``input`` the low-resolution input, ``mask`` the current
sub-image mask (all ones at the final step), as uint8 channel-first ``S x S`` views, and ``step`` a one-hot of
the step index. Action: ``Box(-1, 1, (A,))`` with ``A`` the number of global filter parameters; at the K local
steps only its first component is used (the sub-image's exposure), at the final step all of it. Rewards: see
:mod:`deepexpose.envs.rewards`. Registered as ``DeepExpose-v0`` when :mod:`deepexpose` is imported.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from .core import EditCore
from .pool import PairPool


def observation_space(size: int, steps: int) -> spaces.Dict:
    image = spaces.Box(0, 255, (3, size, size), np.uint8)
    return spaces.Dict({
        "image": image,
        "input": image,
        "mask": spaces.Box(0, 255, (1, size, size), np.uint8),
        "step": spaces.Box(0.0, 1.0, (steps,), np.float32),
    })


def default_pool(size: int = 64, count: int = 64, seed: int = 0) -> PairPool:
    """Detuned views of the bundled demo photos' training split (the hold-out photos are never used)."""
    from deepexpose.data.demo import DemoSet

    photos = [item["image"] for item in DemoSet(split="train")]
    return PairPool.from_photos(photos, count, size=size, scheme="mixed", seed=seed)


def checked_pool(pool: PairPool | None, core: EditCore, reward: str | None) -> PairPool:
    """``pool`` (default: :func:`default_pool`), refused when it is not a :class:`PairPool` or lacks the targets
    ``reward`` scores against."""
    pool = pool if pool is not None else default_pool()
    if not isinstance(pool, PairPool):
        raise TypeError(f"pool must be a PairPool (PairPool(inputs, targets), PairPool.from_photos or from_pairs), "
                        f"got {type(pool).__name__}")
    if core.reward is not None and core.reward.needs_target and not pool.paired:
        raise ValueError(f"the {reward!r} reward needs a pool with targets")
    return pool


def check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")


def reset_index(options: dict | None, size: int, rng: np.random.Generator) -> int:
    """The pool view a reset starts: ``options["index"]`` (checked), else a draw of ``rng``; other options are
    refused (the single and the batched environment alike)."""
    if unknown := sorted(map(str, set(options or {}) - {"index"})):
        raise ValueError(f"unknown reset option(s) {', '.join(unknown)}; the only one is 'index'")
    if not options or "index" not in options:
        return int(rng.integers(size))
    index = options["index"]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"options['index'] must be an int, got {index!r}")
    if not 0 <= index < size:
        raise IndexError(f"index {index} outside the pool of {size} views")
    return int(index)


class DeepExposureEnv(gym.Env):
    """A Gymnasium environment over a :class:`PairPool` of views (default: detuned demo photos).

    Each reset draws a view of the pool with the environment's ``np_random``; ``options={"index": i}`` picks
    view ``i`` instead. ``info`` holds ``score`` (the reward's score of the current result) and, at the end,
    ``edit``: every chosen parameter in physical units.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}  # fps: for video recorders, one frame per step

    def __init__(self, pool: PairPool | None = None, k: int = 3, reward: str = "paired",
                 critic: torch.nn.Module | None = None, segmentation: str = "luminosity",
                 render_mode: str | None = None, **core_options: Any) -> None:
        check_render_mode(render_mode)
        self.core = EditCore(k=k, reward=reward, critic=critic, segmentation=segmentation, **core_options)
        self.pool = checked_pool(pool, self.core, reward)
        self.observation_space = observation_space(self.pool.size, self.core.steps)
        self.action_space = spaces.Box(-1.0, 1.0, (self.core.action_dim,), np.float32)
        self.render_mode = render_mode
        self.index = -1

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0].cpu().numpy() for k, v in self.core.observation().items()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.index = reset_index(options, len(self.pool), self.np_random)
        inputs, targets = self.pool.get([self.index])
        with torch.no_grad():
            self.core.begin(inputs, targets)
        return self._obs(), {"score": float(self.core.score[0]), "index": self.index}

    def step(self, action):
        with torch.no_grad():
            action = np.asarray(action, dtype=np.float32)
            if action.shape != self.action_space.shape:
                raise ValueError(f"an action must have shape {self.action_space.shape}, got {action.shape}")
            if np.isnan(action).any():  # checked here, in numpy: on the core's device it would stall each step
                raise ValueError("the action has NaN values")
            reward, done = self.core.step(torch.from_numpy(action).view(1, -1))
        info: dict[str, Any] = {"score": float(self.core.score[0])}
        if done:
            info["edit"] = self.core.describe()[0]
        return self._obs(), float(reward[0]), done, False, info

    def render(self):
        if self.render_mode == "rgb_array":
            return self.core.observation()["image"][0].permute(1, 2, 0).cpu().numpy()
        return None
