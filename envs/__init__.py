"""Gymnasium environments (installed as ``deepexpose.envs``): the DeepExposure episode and its batched form."""

from .core import EditCore
from .deepexpose_env import DeepExposureEnv, default_pool
from .pool import PairPool
from .rewards import REWARDS
from .vector import DeepExposureVecEnv

__all__ = ["DeepExposureEnv", "DeepExposureVecEnv", "EditCore", "PairPool", "REWARDS", "default_pool"]
