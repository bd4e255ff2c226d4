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
        self.pool = pool if pool is not None else default_pool()
        self.core = EditCore(k=k, reward=reward, critic=critic, segmentation=segmentation, **core_options)
        if reward in ("paired", "mixed") and not self.pool.paired:
            raise ValueError(f"the {reward!r} reward needs a pool with targets")
        self.observation_space = observation_space(self.pool.size, self.core.steps)
        self.action_space = spaces.Box(-1.0, 1.0, (self.core.action_dim,), np.float32)
        self.render_mode = render_mode
        self.index = -1

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0].cpu().numpy() for k, v in self.core.observation().items()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if unknown := sorted(set(options or {}) - {"index"}):
            raise ValueError(f"unknown reset option(s) {', '.join(map(str, unknown))}; the only one is 'index'")
        if options and "index" in options:
            index = options["index"]
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"options['index'] must be an int, got {index!r}")
            self.index = int(index)
            if not 0 <= self.index < len(self.pool):
                raise IndexError(f"index {self.index} outside the pool of {len(self.pool)} views")
        else:
            self.index = int(self.np_random.integers(len(self.pool)))
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
