"""Image-folder datasets and the machinery every dataset layout in :mod:`deepexpose.data` shares.

* :class:`UnpairedFolder` - a folder of (good) photos, e.g. the target distribution of unpaired /
  reinforcement-learning training as in DeepExposure (Yu et al., NeurIPS 2018) and White-Box
  (Hu et al., SIGGRAPH 2018).
* :class:`PairedFolder` - ``input/`` and ``target/`` folders matched by relative path, extension
  ignored (``input/a/x.png`` <-> ``target/a/x.jpg``).

Every dataset returns float32 tensors ``3xHxW`` in [0, 1] (read with :func:`deepexpose.io.read_image`)
and shares the options of :class:`ImageFileDataset`: ``resize`` (antialiased), ``crop_size``
(random crop), ``flip`` (random horizontal flip) and ``seed``. The images of one sample (input and
target) are always resized, cropped and flipped identically. Files are found recursively with
:func:`deepexpose.io.is_image_file`, hidden files (``.name``, e.g. macOS ``._x.jpg``) are skipped,
and lists are sorted, so the order is deterministic. A wrong layout raises
:class:`DatasetLayoutError` naming what is missing and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = [
    "DatasetLayoutError",
    "Sample",
    "ImageFileDataset",
    "UnpairedFolder",
    "PairedFolder",
    "find_images",
    "read_id_list",
    "load_image_tensor",
    "require_dir",
]

Size = int | tuple[int, int]


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the expected layout (missing/empty folder, list file, pair)."""


# ----------------------------------------------------------------------------------------------
# file discovery


def _io():
    from deepexpose import io as _deepexpose_io  # imported lazily: written alongside this module

    return _deepexpose_io


def require_dir(path: str | os.PathLike, what: str, expected: str = "") -> Path:
    """Return ``path`` as a Path, or raise :class:`DatasetLayoutError` if it is not a directory."""
    p = Path(path)
    if not p.is_dir():
        state = "is not a directory" if p.exists() else "does not exist"
        msg = f"{what} {state}: {p}"
        if expected:
            msg += f"\nExpected layout: {expected}"
        raise DatasetLayoutError(msg)
    return p


def check_choice(value: Any, choices: Sequence[Any], name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the valid choices unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


MISSING_CHOICES = ("error", "skip")


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def find_images(
    folder: str | os.PathLike, what: str = "image folder", expected: str = "", *, allow_empty=False
) -> list[Path]:
    """All image files under ``folder`` (recursive, sorted, hidden files skipped; symbolic links to folders followed,
    each real folder once), and the symbolic links named as images that lead nowhere, so that reading them fails with
    that reason instead of their pair's other image being reported without them.

    Raises :class:`DatasetLayoutError` if ``folder`` is missing or holds no image file.
    """
    root = require_dir(folder, what, expected)
    is_image_file, extensions = _io().is_image_file, _io().SUPPORTED_EXTENSIONS
    found: list[Path] = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and (real := os.path.realpath(os.path.join(dirpath, d))) not in seen and not seen.add(real)]
        for fn in filenames:
            if fn.startswith("."):
                continue
            p = Path(dirpath) / fn
            if is_image_file(p) or (p.is_symlink() and not p.exists() and p.suffix.lower() in extensions):
                found.append(p)
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    if not found and not allow_empty:
        exts = ", ".join(sorted(getattr(_io(), "SUPPORTED_EXTENSIONS", ())))
        msg = f"{what} holds no image files: {root}"
        if exts:
            msg += f" (looked recursively for {exts})"
        if expected:
            msg += f"\nExpected layout: {expected}"
        raise DatasetLayoutError(msg)
    return found


def read_id_list(path: str | os.PathLike, what: str = "list file", expected: str = "") -> list[str]:
    """Read one id per line; blank lines and ``#`` comment lines are ignored, whitespace stripped.

    Raises :class:`DatasetLayoutError` if the file is missing or lists no id.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"{what} not found: {p}"
        if expected:
            msg += f"\nExpected layout: {expected}"
        raise DatasetLayoutError(msg)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetLayoutError(f"{what} {p} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    ids = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            ids.append(s)
    if not ids:
        raise DatasetLayoutError(f"{what} lists no ids (one per line expected): {p}")
    return ids


def _stem_key(path: Path, root: Path) -> str:
    """Relative path without extension, POSIX separators: the matching/naming key."""
    return path.relative_to(root).with_suffix("").as_posix()


def _index_by_stem(files: Sequence[Path], root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """``(index, ambiguous)``: ``files`` by :func:`_stem_key`, and the keys that several of them share (``a.jpg``
    and ``a.png``), which match no file, each with why (the FiveK layout leaves such an id out the same way)."""
    groups: dict[str, list[Path]] = {}
    for p in files:
        groups.setdefault(_stem_key(p, root), []).append(p)
    index = {k: ps[0] for k, ps in groups.items() if len(ps) == 1}
    ambiguous = {k: f"several files in {root}, so it is ambiguous: {' / '.join(p.name for p in ps)}"
                 for k, ps in groups.items() if len(ps) > 1}
    return index, ambiguous


def _preview(names: Sequence[str], n: int = 5) -> str:
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names) - n} more)" if len(names) > n else "")


# ----------------------------------------------------------------------------------------------
# loading and augmentation


def load_image_tensor(path: str | os.PathLike, max_pixels: int | None = None) -> torch.Tensor:
    """Read an image with :func:`deepexpose.io.read_image` as a float32 ``3xHxW`` tensor in [0, 1]."""
    io = _io()
    img = io.read_image(path) if max_pixels is None else io.read_image(path, max_pixels=max_pixels)
    pix = np.ascontiguousarray(img.pixels, dtype=np.float32)
    if pix.ndim != 3 or pix.shape[-1] != 3:
        raise ValueError(f"{path}: expected HxWx3 pixels from read_image, got {pix.shape}")
    return torch.from_numpy(pix).permute(2, 0, 1).contiguous()


def _as_hw(size: Size | None, what: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, bool):
        raise ValueError(f"{what} must be a positive int or (height, width), got {size!r}")
    if isinstance(size, int):
        h = w = size
    else:
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be a positive int or (height, width), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return h, w


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    y = F.interpolate(x[None], size=hw, mode="bilinear", align_corners=False, antialias=True)[0]
    return y.clamp_(0.0, 1.0)


def _short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    if h <= w:
        return short, max(1, round(w * short / h))
    return max(1, round(h * short / w)), short


def shrink_short_side(image: torch.Tensor, short: int) -> torch.Tensor:
    """Resize a ``3 x H x W`` image so its short side is at most ``short`` (antialiased; never enlarges)."""
    h, w = image.shape[-2:]
    return image if min(h, w) <= short else _resize(image, _short_side_size(h, w, short))


@dataclass(frozen=True)
class Sample:
    """One dataset item: a name, the image files to load (by output key) and extra values."""

    name: str
    paths: Mapping[str, Path]
    extra: Mapping[str, Any] = field(default_factory=dict)


class ImageFileDataset(Dataset):
    """Base dataset over :class:`Sample` records, with the shared augmentation options.

    Args:
        samples: the records; each key of ``Sample.paths`` becomes a tensor in the output dict.
        crop_size: random crop ``int`` (square) or ``(h, w)``; ``None`` keeps the whole image.
            Images smaller than the crop are first enlarged (antialiased) just enough to fit.
        flip: random horizontal flip with probability 1/2.
        resize: applied before cropping. ``int``: scale so the short side has this length;
            ``(h, w)``: exact size (e.g. ``(256, 256)`` for square low-res views). Antialiased
            bilinear (``torch.nn.functional.interpolate(..., antialias=True)``).
        seed: makes crops/flips reproducible. The random state of item ``i`` is derived from
            ``(seed, epoch, i)``, so results do not depend on DataLoader workers or access order;
            call :meth:`set_epoch` to draw new crops each epoch. ``None``: torch's global RNG.
        max_pixels: passed to :func:`deepexpose.io.read_image` when given.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        crop_size: Size | None = None,
        flip: bool = False,
        resize: Size | None = None,
        seed: int | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.samples = list(samples)
        self.crop_hw = _as_hw(crop_size, "crop_size")
        self.resize = resize
        self._resize_short: int | None = None
        self._resize_hw: tuple[int, int] | None = None
        if isinstance(resize, int) and not isinstance(resize, bool):
            if resize <= 0:
                raise ValueError(f"resize must be positive, got {resize!r}")
            self._resize_short = resize
        elif resize is not None:
            self._resize_hw = _as_hw(resize, "resize")
        self.flip = bool(flip)
        self.seed = seed
        self.max_pixels = max_pixels
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops/flips a seeded dataset produces."""
        self.epoch = int(epoch)

    def _generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        state = np.random.SeedSequence([int(self.seed) % (1 << 64), self.epoch, index])
        return torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0] >> 1))

    def augment(self, images: Sequence[torch.Tensor], index: int = 0, name: str = "",
                keys: Sequence[str] = ()) -> list[torch.Tensor]:
        """Resize, random-crop and flip ``images`` (all ``3xHxW`` of one size; ``keys``: what each is, for the
        message when they are not) identically."""
        imgs = list(images)
        hw = tuple(imgs[0].shape[-2:])
        for x in imgs[1:]:
            if tuple(x.shape[-2:]) != hw:
                labels = list(keys) if len(keys) == len(imgs) else [f"image {i + 1}" for i in range(len(imgs))]
                sizes = ", ".join(f"{k} {t.shape[-1]}x{t.shape[-2]}" for k, t in zip(labels, imgs, strict=True))
                raise ValueError(f"sample {name!r}: images of one pair differ in size ({sizes}; width x height)")
        h, w = hw
        if self._resize_hw is not None or self._resize_short is not None:
            size = self._resize_hw or _short_side_size(h, w, self._resize_short)
            imgs = [_resize(x, size) for x in imgs]
            h, w = size
        g = self._generator(index)
        if self.crop_hw is not None:
            ch, cw = self.crop_hw
            if h < ch or w < cw:  # enlarge just enough for the crop to fit
                scale = max(ch / h, cw / w)
                size = (max(ch, round(h * scale)), max(cw, round(w * scale)))
                imgs = [_resize(x, size) for x in imgs]
                h, w = size
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            imgs = [x[:, top : top + ch, left : left + cw] for x in imgs]
        if self.flip and bool(torch.rand((), generator=g) < 0.5):
            imgs = [x.flip(-1) for x in imgs]
        return [x.contiguous() for x in imgs]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for dataset of length {len(self)}")
        s = self.samples[index]
        keys = list(s.paths)
        tensors = [load_image_tensor(s.paths[k], self.max_pixels) for k in keys]
        tensors = self.augment(tensors, index, s.name, keys)
        out: dict[str, Any] = dict(zip(keys, tensors))
        out["name"] = s.name
        out.update(s.extra)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"


# ----------------------------------------------------------------------------------------------
# folder layouts


class UnpairedFolder(ImageFileDataset):
    """All photos under ``root`` (recursively): ``{"image": 3xHxW, "name": relative path sans ext}``."""

    def __init__(self, root: str | os.PathLike, **options: Any) -> None:
        self.root = Path(root)
        files = find_images(self.root, "image folder", "<root>/**/<name>.<jpg|png|tif|...>")
        super().__init__(
            [Sample(_stem_key(p, self.root), {"image": p}) for p in files], **options
        )


class PairedFolder(ImageFileDataset):
    """Pairs ``<root>/<input_dir>/<rel>.<ext>`` with ``<root>/<target_dir>/<rel>.<ext2>``.

    Matched by relative path with the extension ignored. Returns
    ``{"input": 3xHxW, "target": 3xHxW, "name": rel}``. Inputs without a target, and names that several files
    of one folder share (``a.jpg`` and ``a.png``: ambiguous), raise :class:`DatasetLayoutError` listing a few of
    them (``missing="error"``) or are left out (``missing="skip"``, listed in ``self.skipped``, each with why in
    ``self.reasons``); targets without an input are listed in ``self.without_input``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        input_dir: str = "input",
        target_dir: str = "target",
        *,
        missing: Literal["error", "skip"] = "error",
        **options: Any,
    ) -> None:
        check_choice(missing, MISSING_CHOICES, "missing")
        self.root = require_dir(root, "dataset root")
        expected = f"<root>/{input_dir}/<name>.<ext> and <root>/{target_dir}/<name>.<ext>"
        in_root, tg_root = self.root / input_dir, self.root / target_dir
        inputs, in_twins = _index_by_stem(find_images(in_root, f"input folder '{input_dir}'", expected), in_root)
        targets, tg_twins = _index_by_stem(find_images(tg_root, f"target folder '{target_dir}'", expected), tg_root)
        in_keys, tg_keys = [*inputs, *in_twins], {*targets, *tg_twins}
        unmatched = [k for k in in_keys if k not in tg_keys]
        if unmatched and missing == "error":
            raise DatasetLayoutError(
                f"{len(unmatched)} of {len(in_keys)} inputs in {in_root} have no target in {tg_root} "
                f"(matched by relative path, extension ignored): {_preview(unmatched)}. "
                "Pass missing='skip' to leave them out."
            )
        reasons = {k: f"no target in {tg_root}" for k in unmatched}
        for k in in_keys:
            if k in tg_keys and (why := "; ".join(t[k] for t in (in_twins, tg_twins) if k in t)):
                reasons[k] = why
        ambiguous = [f"{k} ({why})" for k, why in reasons.items() if k not in unmatched]
        if ambiguous and missing == "error":
            raise DatasetLayoutError(
                f"{len(ambiguous)} name(s) match several files with different extensions, so their pairs are "
                f"ambiguous: {_preview(ambiguous, 3)}. Pass missing='skip' to leave them out."
            )
        samples = [Sample(k, {"input": p, "target": targets[k]}) for k, p in inputs.items() if k in targets]
        if not samples:
            raise DatasetLayoutError(
                f"no input in {in_root} has a matching target in {tg_root} "
                "(matched by relative path, extension ignored"
                + (f"; {len(ambiguous)} ambiguous: {_preview(ambiguous, 3)})" if ambiguous else ")")
            )
        self.skipped, self.reasons = list(reasons), reasons
        self.without_input = [k for k in [*targets, *tg_twins] if k not in in_keys]
        super().__init__(samples, **options)
