"""Synthetic benchmark pairs: good photos given a known error (the input) and the photos themselves (the target).

The photos are a folder of good photos, or by default the photos the bundled models were *never trained on*: the
held-out scikit-image demo photos (:data:`HELD_OUT_DEMO`) and the held-out 20 % of the Debian photo library's scene
groups (the packages of :data:`BUNDLED_LIBRARY`, split exactly as ``deepexpose train --data library`` split them for
the bundled models), when ``scripts/get_photos.py`` has fetched the library. Each photo is shrunk to a short side of
``size`` and given each *case*:

- a detuning scheme of :mod:`deepexpose.data.detune` (``basic``: exposure, white balance, contrast and
  saturation errors, the errors the agent is trained to undo; ``mixed``, ``single``, ``afifi``);
- an error no model was trained on, from :mod:`deepexpose.data.unseen` (``crosstalk``, ``highlight_rolloff``,
  ``falloff``);
- ``untouched``: the photo itself, whose right answer is to change nothing ("do no harm").

The draw of photo ``p`` and case ``c`` is seeded by ``(seed, p, c)`` alone, so subsets (``limit``) and other
cases do not change it. Input and target are quantised to 8 bits, as files hold them.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .detune import SCHEMES, detune
from .folders import DatasetLayoutError, shrink_short_side
from .unseen import UNSEEN_ERRORS, unseen_error

__all__ = ["BUNDLED_LIBRARY", "CASES", "EXCLUDED_PACKAGES", "HELD_OUT_DEMO", "SyntheticPairs", "apply_case",
           "case_seed", "folder_photos", "held_out_photos"]

HELD_OUT_DEMO = "coffee,chelsea,motorcycle"
"""Demo photos no bundled model was trained on (``scripts/train_default_model.py``, ``train_baselines.py``)."""
EXCLUDED_PACKAGES = ("kphotoalbum",)
"""Photo-library packages the bundled models leave out entirely (photos of identifiable people)."""
BUNDLED_LIBRARY = ("enlightenment-data", "gcompris-qt-data", "jigzo-data", "lomiri-wallpapers-16.04",
                   "lomiri-wallpapers-20.04", "lxqt-themes", "palapeli-data", "scribus-template", "sddm-theme-maldives")
"""The photo-library packages the bundled models were trained on (their configs' ``library_packages``). The
held-out photos are the held-out scene groups of these packages only: the split depends on every photo in it,
so a package fetched later would move some training groups into the held-out set. Retraining the bundled models
with more packages means updating this list (a test compares it with the models' configs)."""
LIBRARY_HOLDOUT = 0.2
"""Share of the library's scene groups held out of training (``TrainConfig.library_holdout``)."""

CASES: tuple[str, ...] = (*SCHEMES, *UNSEEN_ERRORS, "untouched")

Photo = tuple[str, Callable[[], torch.Tensor]]
"""``(name, load)``: ``load()`` gives the photo as ``3 x H x W`` floats in [0, 1]."""


def case_seed(seed: int, photo: str, case: str) -> int:
    """The generator seed of one photo's case: a hash of ``(seed, photo, case)``, independent of the others (a
    name that is not UTF-8 counts as its bytes on disk, surrogateescape)."""
    key = f"{seed}:{photo}:{case}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


def apply_case(image: torch.Tensor, case: str, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """``1 x 3 x H x W`` photo -> (the photo with ``case`` applied, the record of what was done)."""
    if case == "untouched":
        return image.clone(), {"scheme": "untouched", "edits": {}}
    if case in UNSEEN_ERRORS:
        return unseen_error(image, case, generator)
    if case in SCHEMES:
        return detune(image, case, generator, identity_fraction=0.0)
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def held_out_photos(holdout: str = HELD_OUT_DEMO, *, library: bool = True, cache: str | os.PathLike = ""
                    ) -> tuple[list[Photo], list[str]]:
    """The photos no bundled model trained on, listed without decoding them, and notes on what is missing."""
    from .demo import DemoSet
    from .folders import load_image_tensor
    from .packages import default_cache_dir, load_library, split_records

    notes: list[str] = []
    names = tuple(n.strip() for n in holdout.split(",") if n.strip())
    demo = DemoSet(split="holdout", holdout=names)
    photos: list[Photo] = [(f"demo/{p.name}", (lambda i=i: demo[i]["image"])) for i, p in enumerate(demo.photos)]
    if library:
        root = Path(cache) if cache else default_cache_dir()
        cached = sorted({r.package for r in load_library(root)}) if root.is_dir() else []
        packages = [p for p in cached if p in BUNDLED_LIBRARY]
        if not packages:
            notes.append(f"no photo library in {root} (scripts/get_photos.py fetches it): demo photos only")
        else:
            if len(packages) < len(BUNDLED_LIBRARY):
                missing = sorted(set(BUNDLED_LIBRARY) - set(packages))
                notes.append(f"the photo library in {root} lacks {', '.join(missing)}, so the held-out split "
                             "differs from the bundled models' and may hold photos they trained on "
                             "(scripts/get_photos.py fetches them)")
            _, held = split_records(load_library(root, packages), holdout_fraction=LIBRARY_HOLDOUT, seed=0)
            photos += [(f"{r.package}/{r.name}", (lambda path=r.path: load_image_tensor(path))) for r in held]
    return photos, notes


def folder_photos(root: str | os.PathLike) -> list[Photo]:
    """Every photo under ``root`` (recursively), named by relative path without extension; photos whose names
    differ only by the extension (``IMG_1.CR2`` and ``IMG_1.JPG``) keep it, so that no two share a name, a draw
    or a saved output (compared without case, as macOS and Windows name files)."""
    from .folders import UnpairedFolder

    folder = UnpairedFolder(root)
    stems = Counter(name.casefold() for name in folder.names)
    names = [Path(s.paths["image"]).relative_to(folder.root).as_posix() if stems[s.name.casefold()] > 1 else s.name
             for s in folder.samples]
    return [(name, (lambda i=i: folder[i]["image"])) for i, name in enumerate(names)]


def photo_of(name: str) -> str:
    """The photo a :class:`SyntheticPairs` image name was made from: the name before ``@`` (case) and ``#``
    (draw)."""
    return name.split("@")[0].split("#")[0]


class SyntheticPairs(Dataset):
    """``{"input", "target", "name", "case", "params"}`` for every photo and case (see the module docstring).

    Args:
        root: a folder of good photos; ``None`` or ``""``: the held-out photos of the bundled models.
        cases: names of :data:`CASES`. With more than one, names read ``<photo>@<case>``.
        seed: seed of the draws.
        draws: errors drawn per photo and case (``untouched`` is drawn once); the first draw is the one of
            ``draws=1``, named as it, the others are named ``<photo>@<case>#<d>`` and seeded by that name.
        size: short side the photos are shrunk to (never enlarged; 0 keeps them whole).
        limit: use only the first ``limit`` photos (0: all).
        library: the photo-library cache for the default photos (``""``: the deepexpose cache);
            ``None`` leaves the library out.
    """

    def __init__(self, root: str | os.PathLike | None = None, cases: Sequence[str] | str = ("basic",), *,
                 seed: int = 0, size: int = 512, limit: int = 0, library: str | os.PathLike | None = "",
                 draws: int = 1) -> None:
        cases = [c.strip() for c in cases.split(",")] if isinstance(cases, str) else [str(c) for c in cases]
        cases = [c for c in cases if c]
        if not cases:
            raise ValueError(f"no cases given; choose from {', '.join(CASES)}")
        if bad := [c for c in cases if c not in CASES]:
            raise ValueError(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
        if twice := sorted({c for c in cases if cases.count(c) > 1}):
            raise ValueError(f"case(s) listed twice: {', '.join(twice)}")
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        if root:
            photos, self.notes = folder_photos(root), []
        else:
            photos, self.notes = held_out_photos(library=library is not None, cache=library or "")
        if 0 < limit < len(photos):
            self.notes.append(f"--limit {limit}: the first {limit} of the {len(photos)} photos")
            photos = photos[:limit]
        if not photos:
            raise DatasetLayoutError(f"no photos to make synthetic pairs from in {root or 'the held-out photos'}")
        self.photos, self.cases, self.seed, self.size, self.draws = photos, cases, seed, size, draws
        self.skipped: list[str] = []
        self._items = [(p, case, d) for p in range(len(photos)) for case in cases
                       for d in range(1 if case == "untouched" else draws)]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def names(self) -> list[str]:
        return [self._name(i) for i in range(len(self))]

    def _name(self, index: int) -> str:
        p, case, d = self._items[index]
        photo = self.photos[p][0]
        if d:
            return f"{photo}@{case}#{d}"
        return photo if len(self.cases) == 1 else f"{photo}@{case}"

    def __getitem__(self, index: int) -> dict:
        from deepexpose.io import from_tensor, quantize

        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic pairs")
        p, case, d = self._items[index]
        photo, load = self.photos[p]
        original = load()
        if self.size:
            original = shrink_short_side(original, self.size)
        g = torch.Generator().manual_seed(case_seed(self.seed, photo, f"{case}#{d}" if d else case))
        detuned, record = apply_case(original.unsqueeze(0), case, g)

        def as_8bit(t: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(quantize(from_tensor(t), 8)).permute(2, 0, 1).float() / 255

        return {"input": as_8bit(detuned), "target": as_8bit(original), "name": self._name(index), "case": case,
                "params": record}

    def __repr__(self) -> str:
        return (f"SyntheticPairs(photos={len(self.photos)}, cases={self.cases}, seed={self.seed}, size={self.size}"
                f"{f', draws={self.draws}' if self.draws > 1 else ''})")
