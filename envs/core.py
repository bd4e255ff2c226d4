"""The episode mechanics of DeepExposure (Yu et al., NeurIPS 2018), batched over images as tensors.

One episode edits one image in ``K + 1`` steps. At step ``k < K`` the action's first component sets the
exposure of luminosity sub-image ``k`` (the K locally exposed versions are fused with the sub-image masks);
at the final step the whole action sets the global filters (:data:`DEFAULT_GLOBAL_FILTERS`). The reward of a
step is the improvement of a score (:mod:`rewards`), minus a small penalty for actions at the edge of their
range. Every image of a batch is at the same step, so a batch of episodes runs in lock step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from deepexpose.filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline, get_filter, srgb_to_linear
from deepexpose.filters.base import encode_gained
from deepexpose.filters.local_exposure import adjust_local_exposure, exposure_gain_map
from deepexpose.fusion import refine_masks
from deepexpose.segment import SEGMENTERS, segment

from .rewards import get_reward


def quantize(x: Tensor) -> Tensor:
    """[0, 1] floats to uint8 (round to nearest), detached."""
    return x.detach().clamp(0, 1).mul_(255).round_().to(torch.uint8)


class EditCore:
    """Batched episodes on ``B x 3 x S x S`` views; see the module docstring.

    Args:
        k: number of luminosity sub-images (local steps).
        filters: global filters of the final step, in order.
        segmentation: a method of :data:`deepexpose.segment.SEGMENTERS`.
        refine_radius: guided-filter radius for the sub-image masks (0: no refinement).
        reward: a name of :data:`rewards.REWARDS`, or ``None`` to apply edits without scoring them (inference).
        critic: the discriminator, for adversarial and mixed rewards.
        edge_penalty: reward subtracted per action component beyond ``edge`` (scaled to 1 at +-1).
    """

    def __init__(self, k: int = 3, filters: Sequence[str] = DEFAULT_GLOBAL_FILTERS, segmentation: str = "luminosity",
                 refine_radius: int = 0, reward: str | None = "paired", critic: nn.Module | None = None,
                 edge_penalty: float = 0.01, edge: float = 0.9) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        if segmentation not in SEGMENTERS:
            raise ValueError(f"unknown segmentation {segmentation!r}; choose from {', '.join(SEGMENTERS)}")
        if not (0 <= edge < 1 and edge_penalty >= 0):  # edge 1 divided 0 by 0: every reward NaN
            raise ValueError(f"edge must be in [0, 1) and edge_penalty >= 0, got {edge} and {edge_penalty}")
        self.k, self.segmentation, self.refine_radius = int(k), segmentation, refine_radius
        self.pipeline = FilterPipeline(filters)
        self.local_spec = get_filter("local_exposure").params[0]
        self.reward = get_reward(reward) if reward is not None else None
        if reward in ("adversarial", "mixed") and critic is None:
            raise ValueError(f"the {reward} reward scores with a critic (discriminator): pass critic=")
        self.critic = critic
        self.edge_penalty, self.edge = edge_penalty, edge
        self.t = 0
        self.inputs: Tensor | None = None  # set by begin

    def _begun(self) -> Tensor:
        if self.inputs is None:
            raise RuntimeError("no episode has begun: reset the environment first (EditCore.begin)")
        return self.inputs

    @property
    def action_dim(self) -> int:
        return self.pipeline.num_params

    @property
    def steps(self) -> int:
        return self.k + 1

    def masks_for(self, inputs: Tensor) -> Tensor:
        masks = segment(inputs, self.k, self.segmentation)
        return refine_masks(masks, inputs, radius=self.refine_radius) if self.refine_radius > 0 else masks

    def prepare(self, inputs: Tensor, targets: Tensor | None = None) -> dict[str, Tensor]:
        """The constants of episodes on these views, which depend on the views only (never on the step).

        ``masks`` (sub-images), ``linear`` (the input in linear light), ``input_u8`` and ``masks_u8`` (their
        quantised observations), ``reference`` (the reward's, when it has one) and, when the score needs no
        critic (the critic may change between episodes), ``score`` of the input. Computed by :meth:`begin`, or
        once per view by a caller that reuses views (the VecEnv).
        """
        with torch.no_grad():
            masks = self.masks_for(inputs)
            constants = {"masks": masks, "linear": srgb_to_linear(inputs), "input_u8": quantize(inputs),
                         "masks_u8": quantize(masks)}
            if self.reward is not None:
                reference = self.reward.reference(targets)
                if reference is not None:
                    constants["reference"] = reference
                if self.critic is None:
                    constants["score"] = self.reward.score(inputs, reference, None)
        return constants

    def begin(self, inputs: Tensor, targets: Tensor | None = None,
              constants: dict[str, Tensor] | None = None) -> None:
        """Start episodes on a batch of views (and their targets for paired rewards).

        ``constants`` may pass :meth:`prepare` of these views, computed earlier.
        """
        if constants is None:
            constants = self.prepare(inputs, targets)
        self.inputs, self.targets = inputs, targets
        self.masks, self.linear = constants["masks"], constants["linear"]
        self.reference = constants.get("reference", targets if self.reward is not None else None)
        self.ev = torch.zeros(inputs.shape[0], self.k, dtype=inputs.dtype, device=inputs.device)
        self.local = inputs
        self.local_linear: Tensor | None = self.linear  # srgb_to_linear(self.local) when known
        self.current = inputs
        self.global_action = torch.zeros(inputs.shape[0], self.action_dim, dtype=inputs.dtype, device=inputs.device)
        self.t = 0
        # the uint8 input and masks of the observation, quantised once per view
        self._input_u8, self._masks_u8 = constants["input_u8"], constants["masks_u8"]
        if "score" in constants:
            self.score = constants["score"]
        else:
            with torch.no_grad():
                self.score = self._score(inputs)

    def step(self, action: Tensor) -> tuple[Tensor, bool]:
        """Apply a ``B x A`` action in [-1, 1]; returns the rewards ``B`` and whether the episodes ended.

        Differentiable: with gradients enabled the rewards are functions of the actions through the filters
        (and the critic), which is what the deterministic policy gradient trainer uses.
        """
        inputs = self._begun()
        if self.t >= self.steps:
            raise RuntimeError("the episodes have ended: reset the environment (EditCore.begin) first")
        expected = (inputs.shape[0], self.action_dim)
        if tuple(action.shape) != expected:
            raise ValueError(f"an action must be {expected[0]} x {expected[1]} (views x action_dim; the local steps "
                             f"use the first value), got shape {tuple(action.shape)}")
        action = action.to(self.inputs).clamp(-1, 1)
        fast = not torch.is_grad_enabled()
        linear = None  # the linear light of the result, when the step knows it
        if self.t < self.k:
            self.ev = self.ev.clone()
            self.ev[:, self.t] = self.local_spec.to_value(action[:, 0])
            if fast:  # adjust_local_exposure, keeping its clipped linear light for the score and the final step
                gain = exposure_gain_map(self.masks, self.ev)
                linear = (self.linear * gain).clamp_(0.0, 1.0)
                self.local = encode_gained(self.inputs, gain == 1, linear)
            else:
                self.local = adjust_local_exposure(self.inputs, self.masks, self.ev, self.linear)
            self.local_linear = linear
            self.current = self.local
            used = action[:, :1]
        else:
            self.global_action = action
            self.current = self.pipeline(self.local, action, linear=self.local_linear if fast else None)
            used = action
        self.t += 1
        score = self._score(self.current, linear)
        over = ((used.abs() - self.edge).clamp(min=0) / (1 - self.edge)).sum(1)
        scale = self.reward.scale if self.reward is not None else 0.0
        reward = scale * (score - self.score) - self.edge_penalty * over
        self.score = score
        return reward, self.t == self.steps

    def rescore(self) -> None:
        """Score the current results again, after the critic changed in the middle of episodes, so that the next
        step's reward compares two scores by the same critic."""
        self._begun()
        with torch.no_grad():
            self.score = self._score(self.current)

    def _score(self, image: Tensor, linear: Tensor | None = None) -> Tensor:
        """The reward's score of ``image``; ``linear`` may pass its linear light in [0, 1] (no gradient)."""
        if self.reward is None:
            return torch.zeros(image.shape[0], dtype=image.dtype, device=image.device)
        if linear is not None and self.reward.score_linear is not None:
            return self.reward.score_linear(linear, self.reference, self.critic)
        return self.reward.score(image, self.reference, self.critic)

    def observation(self) -> dict[str, Tensor]:
        """The observation of seed 003: current result, low-resolution input, current sub-image mask, step.

        Images are quantised to uint8 (detached), exactly what a Gymnasium agent sees.
        """
        b = self._begun().shape[0]
        if self.t < self.k:
            mask = self._masks_u8[:, self.t:self.t + 1].clone()
        else:
            mask = torch.full_like(self._masks_u8[:, :1], 255)
        step = torch.zeros(b, self.steps, dtype=torch.float32, device=self.inputs.device)
        step[:, min(self.t, self.steps - 1)] = 1.0
        return {"image": quantize(self.current), "input": self._input_u8.clone(), "mask": mask, "step": step}

    def describe(self) -> list[dict]:
        """The edit chosen so far for each image, in physical units (JSON-ready)."""
        self._begun()
        globals_ = self.pipeline.describe(self.global_action.detach())
        return [{"local_exposure": {"ev": [round(v, 6) for v in ev]}, **g}
                for ev, g in zip(self.ev.detach().cpu().tolist(), globals_, strict=True)]
