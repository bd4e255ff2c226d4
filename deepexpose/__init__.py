"""deepexpose: learn to fix exposure and colour the way a colourist would (DeepExposure, NeurIPS 2018)."""

import gymnasium as _gym

__version__ = "0.1.0"


class DeepExposeWarning(UserWarning):
    """The category of deepexpose's own warnings, which the ``deepexpose`` command prints as one line."""

# gymnasium.make("DeepExpose-v0") after `import deepexpose`; the environment module loads only when made.
if "DeepExpose-v0" not in _gym.registry:
    _gym.register(id="DeepExpose-v0", entry_point="deepexpose.envs.deepexpose_env:DeepExposureEnv")
