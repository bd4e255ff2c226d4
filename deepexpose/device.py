"""``--device`` of every command: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto`` (CUDA when present)."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` stands for; asking for CUDA where there is none is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's message lists a dozen device types this project never runs on
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
