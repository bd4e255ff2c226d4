"""``DeepExposureVecEnv``: N DeepExposure environments stepped as one tensor batch (CPU or CUDA).

A stable-baselines3 ``VecEnv`` (numpy at the boundary, ``terminal_observation`` in ``infos`` when episodes end,
usable with ``VecMonitor``). All episodes have ``K + 1`` steps, so the N environments stay in lock step and
reset together. Environment ``i`` draws its views with its own generator seeded ``seed + i``, exactly as a
:class:`~deepexpose.envs.deepexpose_env.DeepExposureEnv` reset with that seed would, so the same seeds and
actions give the same trajectories as N single environments.

Episodes draw their views from a fixed pool, so each view's episode constants (sub-image masks, linear input,
reward reference, initial score, quantised observations: :meth:`EditCore.prepare`) are computed the first time
it is drawn and kept, about ``(K + 6) * S * S`` floats and ``(K + 3) * S * S`` bytes per view of the pool
(``cache_views=False`` recomputes them every reset). A pool whose cache would exceed :data:`CACHE_BYTES` is not
cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv

from deepexpose.device import resolve_device

from .core import EditCore
from .deepexpose_env import check_render_mode, checked_pool, observation_space, reset_index
from .pool import PairPool


CACHE_BYTES = 1 << 30
"""Largest memory the per-view cache may take (1 GiB); bigger pools recompute their constants every reset."""


class DeepExposureVecEnv(VecEnv):
    """Batched DeepExposure episodes over a :class:`PairPool`; arguments as for ``DeepExposureEnv``. Reset
    options (``set_options``) take ``{"index": i}`` per environment, as ``DeepExposureEnv.reset`` does; like seeds,
    they apply to the next ``reset()``, not to the automatic one when episodes end (as in stable-baselines3's
    ``DummyVecEnv``). The N environments are one object: ``env_method`` runs a method once for all of them
    (``env_method("reset", indices=[1])`` resets every one), and ``set_attr`` sets an attribute for all of them
    only."""

    def __init__(self, num_envs: int, pool: PairPool | None = None, k: int = 3, reward: str = "paired",
                 critic: torch.nn.Module | None = None, device: str | torch.device = "cpu",
                 segmentation: str = "luminosity", cache_views: bool = True, render_mode: str | None = None,
                 **core_options: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        check_render_mode(render_mode)
        self.device = resolve_device(str(device))  # CUDA asked for where there is none: said now, not later
        self.core = EditCore(k=k, reward=reward, critic=critic, segmentation=segmentation, **core_options)
        self.pool = checked_pool(pool, self.core, reward)
        self.render_mode = render_mode
        super().__init__(num_envs, observation_space(self.pool.size, self.core.steps),
                         spaces.Box(-1.0, 1.0, (self.core.action_dim,), np.float32))
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self.indices = np.zeros(num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None
        view_bytes = ((k + 6) * 4 + k + 3) * int(np.prod(self.pool.inputs.shape[-2:]))
        self.cache_views = cache_views and len(self.pool) * view_bytes <= CACHE_BYTES
        self._cache: dict[str, torch.Tensor] = {}  # name -> len(pool) x ... constants, rows valid where _cached
        self._cached = torch.zeros(len(self.pool), dtype=torch.bool)

    def _constants(self, indices: np.ndarray, inputs: torch.Tensor, targets: torch.Tensor | None
                   ) -> dict[str, torch.Tensor]:
        """:meth:`EditCore.prepare` of the drawn views, computed once per view of the pool."""
        if not self.cache_views:
            return self.core.prepare(inputs, targets)
        idx = torch.as_tensor(indices, dtype=torch.long)
        new = ~self._cached[idx]
        if bool(new.any()):
            rows = torch.nonzero(new).view(-1)
            fresh = self.core.prepare(inputs[rows], None if targets is None else targets[rows])
            for name, value in fresh.items():
                if name not in self._cache:
                    self._cache[name] = value.new_empty((len(self.pool), *value.shape[1:]))
                self._cache[name][idx[rows]] = value
            self._cached[idx[rows]] = True
        return {name: value.index_select(0, idx) for name, value in self._cache.items()}  # faster than [idx]

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v.cpu().numpy() for k, v in self.core.observation().items()}

    def _begin(self, explicit: bool) -> dict[str, np.ndarray]:
        """New episodes: at ``reset()`` (``explicit``) with the seeds and options set for it, at the end of episodes
        with each environment's own generator."""
        options: list[dict] = [{}] * self.num_envs
        if explicit:
            if len(self._options) != self.num_envs:
                raise ValueError(f"set_options takes one dict, or a list of {self.num_envs} (one per environment), "
                                 f"got {len(self._options)}")
            options = self._options
            for i, seed in enumerate(self._seeds):
                if seed is not None:
                    self._rngs[i] = seeding.np_random(seed)[0]
        self.indices = np.array([reset_index(o, len(self.pool), rng)
                                 for o, rng in zip(options, self._rngs, strict=True)])
        if explicit:
            self._reset_seeds()
            self._reset_options()
        inputs, targets = self.pool.get(self.indices, self.device)
        with torch.no_grad():
            self.core.begin(inputs, targets, self._constants(self.indices, inputs, targets))
        scores = self.core.score.tolist()
        self.reset_infos = [{"score": s, "index": int(i)} for s, i in zip(scores, self.indices, strict=True)]
        return self._obs()

    def reset(self) -> dict[str, np.ndarray]:
        return self._begin(explicit=True)

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, *self.action_space.shape):
            raise ValueError(f"actions must have shape {(self.num_envs, *self.action_space.shape)}, "
                             f"got {actions.shape}")
        if np.isnan(actions).any():  # checked here, in numpy: on the core's device it would stall each step
            raise ValueError("the actions have NaN values")
        self._actions = actions

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called before step_async()")
        with torch.no_grad():
            reward, done = self.core.step(torch.from_numpy(self._actions).to(self.device))
        self._actions = None
        infos: list[dict[str, Any]] = [{"score": s} for s in self.core.score.tolist()]
        if done:
            final = self._obs()
            for i, edit in enumerate(self.core.describe()):
                infos[i]["terminal_observation"] = {k: v[i] for k, v in final.items()}
                infos[i]["edit"] = edit
            obs = self._begin(explicit=False)
        else:
            obs = self._obs()
        return obs, reward.cpu().numpy().astype(np.float32), np.full(self.num_envs, done), infos

    def close(self) -> None:
        pass

    def rescore(self) -> None:
        """:meth:`EditCore.rescore`: after a discriminator update, the running episodes' scores by the new critic."""
        self.core.rescore()

    def get_images(self) -> Sequence[np.ndarray]:
        return list(self.core.observation()["image"].permute(0, 2, 3, 1).cpu().numpy())

    # The N environments are one object: attribute access answers for each requested index, a method runs once
    # and its result is given for each requested index, and an attribute can only be set for all of them.
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        chosen = sorted(self._get_indices(indices))
        if chosen != list(range(self.num_envs)):
            raise ValueError(f"set_attr({attr_name!r}): the {self.num_envs} environments of a DeepExposureVecEnv are "
                             f"one object, so an attribute is set for all of them, not for indices {chosen}")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
