"""Score images or folders of images against targets with :mod:`deepexpose.metrics`."""

from __future__ import annotations

from pathlib import Path

from .data.folders import DatasetLayoutError, _index_by_stem, _preview, find_images, load_image_tensor
from .metrics import capped_pair, mean_metrics


def score_paths(prediction: str | Path, target: str | Path) -> tuple[list[tuple[str, dict]], dict]:
    """Per-image metrics and their mean; folders are matched by relative path with the extension ignored, and a
    target without a prediction is an error as a prediction without a target is. An exact match scores
    :data:`~deepexpose.metrics.PSNR_CAP` dB, as in ``deepexpose evaluate``, so that means stay finite."""
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
                raise FileNotFoundError(f"no such file or folder: {p}")
        raise FileNotFoundError(f"prediction and target must both be image files or both folders: {pred}, {tgt}")
    rows = []
    for name, p, t in pairs:
        a, b = load_image_tensor(p), load_image_tensor(t)
        if a.shape != b.shape:
            raise ValueError(f"{name}: prediction is {tuple(a.shape[1:])} but target is {tuple(b.shape[1:])}")
        try:
            rows.append((name, capped_pair(a, b)))
        except ValueError as e:  # e.g. too small for SSIM
            raise ValueError(f"{name}: {e}") from None
    return rows, mean_metrics(m for _, m in rows)
