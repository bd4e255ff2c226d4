"""Write detuned copies of a folder of good photos as a paired-folder layout, with every edit recorded."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io import (ImageReadError, atomic_write_bytes, from_tensor, output_folder, read_image, shown_name, to_tensor,
                  write_image)
from .detune import SCHEMES, detune
from .folders import DatasetLayoutError, find_images


@dataclass
class PairsSummary:
    """What :func:`detune_folder` did: photos done, pairs written, failures with reasons."""

    output: Path
    photos: int = 0
    pairs: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.photos} photo(s) detuned into {self.pairs} pair(s) under {shown_name(self.output)}; "
                 f"{len(self.failed)} failed"]
        lines += [f"  failed: {shown_name(name)}: {reason}" for name, reason in self.failed]
        if self.removed:
            lines.append(f"  removed {len(self.removed)} pair(s) of the earlier run that this run did not write again")
        if self.unlisted:
            lines.append(f"  left alone {len(self.unlisted)} photo(s) in input/ or target/ that no finished detune run "
                         f"listed (a paired training or evaluation would use them too): "
                         + ", ".join(map(shown_name, self.unlisted[:5])) + (", ..." if len(self.unlisted) > 5 else ""))
        return "\n".join(lines)


def pair_seed(seed: int, name: str, copy: int) -> int:
    """The generator seed of copy ``copy`` of the photo at relative path ``name``: 63 bits of SHA-256 of all three
    (the same on every machine and Python, unlike ``hash``). A name that is not UTF-8 counts as its bytes on disk
    (surrogateescape, PEP 383)."""
    digest = hashlib.sha256(f"{seed}\0{name}\0{copy}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def detune_folder(input_dir: str | Path, output_dir: str | Path, *, scheme: str = "mixed", copies: int = 1,
                  seed: int = 0, identity_fraction: float = 0.0, overwrite: bool = False) -> PairsSummary:
    """Detune every photo under ``input_dir`` into ``output_dir/input`` with originals in ``output_dir/target``.

    Copy ``c`` of a photo is drawn from a generator seeded with ``(seed, its relative path, c)``
    (:func:`pair_seed`), so that adding or removing other photos changes none of its pairs, and named
    ``<relative stem>_<c>.png``; 16-bit photos stay 16-bit and ICC profiles are
    kept. ``output_dir/detuning.jsonl`` has one record per pair. A photo that cannot be read is reported in
    the summary and skipped; inputs are never modified. With ``overwrite``, the pairs an earlier run listed in
    its ``detuning.jsonl`` and this run does not write again are removed, so that the folder holds this run's
    pairs only; photos in ``input/``/``target/`` that no record lists are left alone and named in the summary.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown detuning scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    if copies < 1:
        raise ValueError(f"--copies must be >= 1, got {copies}")
    root, out = Path(input_dir).resolve(), output_folder(output_dir, "-o").resolve()
    if out == root or root in out.parents:
        raise ValueError(f"the output folder {out} must not lie inside the input folder {root}")
    if out in root.parents:
        raise ValueError(f"the input folder {root} must not lie inside the output folder {out} (its pairs would be "
                         "written among the photos)")
    if (out / "detuning.jsonl").exists() and not overwrite:
        raise FileExistsError(f"{out} holds detuned pairs already (detuning.jsonl): choose another output folder, "
                              "or pass --overwrite to replace them")
    earlier = _listed_pairs(out / "detuning.jsonl")
    files = find_images(root, "input folder")
    summary = PairsSummary(output=out)
    records = []
    stems: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root)
        first = stems.setdefault(rel.with_suffix("").as_posix(), rel.as_posix())
        if first != rel.as_posix():  # x.png and x.jpg would both make x_0.png
            summary.failed.append((rel.as_posix(), f"its pairs would have the names of {first}'s (same name but "
                                                   "the extension); rename one"))
            continue
        try:
            img = read_image(path)
        except ImageReadError as e:
            summary.failed.append((rel.as_posix(), e.reason))
            continue
        x = to_tensor(img)
        for c in range(copies):
            g = torch.Generator().manual_seed(pair_seed(seed, rel.as_posix(), c))
            y, record = detune(x, scheme, g, identity_fraction=identity_fraction)
            name = f"{rel.with_suffix('').as_posix()}_{c}.png"
            for folder, pixels in (("input", y), ("target", x)):
                write_image(out / folder / name, from_tensor(pixels), bit_depth=img.bit_depth,
                            icc_profile=img.icc_profile, overwrite=overwrite)
            records.append({"name": name, "source": rel.as_posix(), "seed": seed, **record})
            summary.pairs += 1
        summary.photos += 1
    if not records:
        raise DatasetLayoutError(f"no photo under {root} could be read:\n{summary}")
    written = {r["name"] for r in records}
    for name in sorted(earlier - written):
        for folder in ("input", "target"):
            (out / folder / name).unlink(missing_ok=True)
        summary.removed.append(name)
    summary.unlisted = sorted({f"{folder}/{p.relative_to(out / folder).as_posix()}" for folder in ("input", "target")
                               if (out / folder).is_dir() for p in find_images(out / folder, folder, allow_empty=True)
                               if p.relative_to(out / folder).as_posix() not in written})
    jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
    atomic_write_bytes(out / "detuning.jsonl", jsonl, overwrite=overwrite)
    return summary


def _listed_pairs(jsonl: Path) -> set[str]:
    """The pair names an earlier run recorded in ``jsonl`` (none if there is no record). A record that is not
    this tool's (unreadable, or a name that leaves its folder) is refused rather than trusted for removal."""
    if not jsonl.exists():
        return set()
    names = set()
    for n, line in enumerate(jsonl.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            name = json.loads(line)["name"]
        except (ValueError, KeyError, TypeError):
            name = None
        path = Path(name) if isinstance(name, str) else None
        if path is None or path.is_absolute() or ".." in path.parts or path.suffix != ".png":
            raise DatasetLayoutError(f"{jsonl} line {n} is not a detune record: remove the folder {jsonl.parent} "
                                     "or choose another output folder")
        names.add(path.as_posix())
    return names
