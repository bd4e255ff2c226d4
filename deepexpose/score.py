"""Score images or folders of images against targets with :mod:`deepexpose.metrics`."""

from __future__ import annotations

from pathlib import Path

from .data.folders import DatasetLayoutError, _index_by_stem, _preview, find_images, load_image_tensor
from .metrics import capped_pair, mean_metrics


def score_paths(prediction: str | Path, target: str | Path, failed: list[tuple[str, str]] | None = None
                ) -> tuple[list[tuple[str, dict]], dict]:
    """Per-image metrics and their mean; folders are matched by relative path with the extension ignored, and a
    target without a prediction is an error as a prediction without a target is. An exact match scores
    :data:`~deepexpose.metrics.PSNR_CAP` dB, as in ``deepexpose evaluate``, so that means stay finite.
    A pair that cannot be scored (unreadable, of two sizes, too small) raises, or with ``failed`` is appended to it
    as ``(name, reason)`` and left out of the mean, the others scored; with none scored it raises all the same."""
    from .io import ImageIOError

    pred, tgt = Path(prediction), Path(target)
    if pred.is_file() and tgt.is_file():
        pairs = [(pred.name, pred, tgt)]
    elif pred.is_dir() and tgt.is_dir():
        preds = _index_by_stem(find_images(pred, "prediction folder"), pred, "prediction folder")
        tgts = _index_by_stem(find_images(tgt, "target folder"), tgt, "target folder")
        missing = sorted(set(preds) - set(tgts))
        if missing:
            raise DatasetLayoutError(f"no target in {tgt} for {len(missing)} prediction(s): {_preview(missing)}")
        unscored = sorted(set(tgts) - set(preds))
        if unscored:
            raise DatasetLayoutError(f"no prediction in {pred} for {len(unscored)} target(s): {_preview(unscored)}")
        pairs = [(key, preds[key], tgts[key]) for key in sorted(preds)]
    else:
        for p in (pred, tgt):
            if not p.exists():
                what = "a symbolic link to nothing (or a link loop)" if p.is_symlink() else "no such file or folder"
                raise FileNotFoundError(f"{what}: {p}")
        raise FileNotFoundError(f"prediction and target must both be image files or both folders: {pred}, {tgt}")
    rows, lost = [], []
    for name, p, t in pairs:
        try:
            a, b = load_image_tensor(p), load_image_tensor(t)
            if a.shape != b.shape:
                raise ValueError(f"prediction is {tuple(a.shape[1:])} but target is {tuple(b.shape[1:])}")
            rows.append((name, capped_pair(a, b)))  # ValueError, e.g., when too small for SSIM
        except (ImageIOError, ValueError) as e:
            if failed is None:
                raise ValueError(f"{name}: {e}") from None
            lost.append((name, str(e)))
    if failed is not None:
        failed += lost
    if not rows:
        raise ValueError("nothing could be scored: " + "; ".join(f"{n}: {r}" for n, r in lost[:3]))
    return rows, mean_metrics(m for _, m in rows)
