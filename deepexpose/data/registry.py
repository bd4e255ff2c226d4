"""Dataset layouts by name. Adding a layout = one module in ``deepexpose.data`` + one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from .afifi import AfifiExposure
from .demo import DemoSet
from .fivek import FiveK, FiveKExposureSplit
from .folders import PairedFolder, UnpairedFolder
from .synthetic import SyntheticPairs

__all__ = ["DATASETS", "make_dataset"]

DATASETS: dict[str, Callable[..., Dataset]] = {
    "folder": UnpairedFolder,  # a folder of good photos (unpaired)
    "pairs": PairedFolder,  # input/ + target/ folders matched by relative path
    "fivek": FiveK,  # FiveK 480p, Zeng et al. 3D-LUT layout and lists
    "exposure-split": FiveKExposureSplit,  # FiveK 2000/2000/1000 split of Hu et al. (Exposure)
    "afifi": AfifiExposure,  # Afifi et al. CVPR 2021 multi-exposure renders
    "demo": DemoSet,  # photos bundled with scikit-image
    "synthetic": SyntheticPairs,  # good photos given known errors (default: the bundled models' held-out photos)
}


def make_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build the dataset registered as ``name`` (case and ``_``/``-`` insensitive, in the name given and in the
    registered ones alike) with ``kwargs``."""
    found = [k for k in DATASETS if _key(k) == _key(name)]
    if not found:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    if len(found) > 1:
        raise ValueError(f"dataset {name!r} is ambiguous: {', '.join(found)} are registered")
    return DATASETS[found[0]](**kwargs)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")
