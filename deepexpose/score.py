"""Score images or folders of images against targets with :mod:`deepexpose.metrics`."""

from __future__ import annotations

from pathlib import Path

from .data.folders import DatasetLayoutError, _index_by_stem, _preview, find_images, load_image_tensor
from .metrics import capped_pair, mean_metrics


def score_paths(prediction: str | Path, target: str | Path, failed: list[tuple[str, str]] | None = None
                ) -> tuple[list[tuple[str, dict]], dict]:
    """Per-image metrics and their mean; folders are matched by relative path with the extension ignored. An exact
    match scores :data:`~deepexpose.metrics.PSNR_CAP` dB, as in ``deepexpose evaluate``, so that means stay finite.
    A pair that cannot be scored (a prediction without a target or a target without a prediction, unreadable, of two
    sizes, too small, or a name that several files of one folder share, such as ``a.jpg`` and ``a.png``) raises, or
    with ``failed`` is appended to it as ``(name, reason)`` and left out of the mean, the others scored; with none
    scored it raises all the same."""
    from .io import ImageIOError

    pred, tgt = Path(prediction), Path(target)
    lost: list[tuple[str, str]] = []
    if pred.is_file() and tgt.is_file():
        pairs = [(pred.name, pred, tgt)]
    elif pred.is_dir() and tgt.is_dir():
        preds, pred_twins = _index_by_stem(find_images(pred, "prediction folder"), pred)
        tgts, tgt_twins = _index_by_stem(find_images(tgt, "target folder"), tgt)
        pred_keys, tgt_keys = {*preds, *pred_twins}, {*tgts, *tgt_twins}
        missing, unscored = sorted(pred_keys - tgt_keys), sorted(tgt_keys - pred_keys)
        if missing and failed is None:
            raise DatasetLayoutError(f"no target in {tgt} for {len(missing)} prediction(s): {_preview(missing)}")
        if unscored and failed is None:
            raise DatasetLayoutError(f"no prediction in {pred} for {len(unscored)} target(s): {_preview(unscored)}")
        pairs = [(key, preds[key], tgts[key]) for key in sorted(preds) if key in tgts]
        lost = sorted([(key, "; ".join(t[key] for t in (pred_twins, tgt_twins) if key in t))
                       for key in sorted({*pred_twins, *tgt_twins} & pred_keys & tgt_keys)]
                      + [(key, f"no target in {tgt}") for key in missing]
                      + [(key, f"no prediction in {pred}") for key in unscored])
        if lost and failed is None:
            raise DatasetLayoutError(f"{lost[0][0]}: {lost[0][1]}" + (f" (and {len(lost) - 1} more)"
                                                                        if len(lost) > 1 else ""))
    else:
        for p in (pred, tgt):
            if not p.exists():
                what = "a symbolic link to nothing (or a link loop)" if p.is_symlink() else "no such file or folder"
                raise FileNotFoundError(f"{what}: {p}")
        raise FileNotFoundError(f"prediction and target must both be image files or both folders: {pred}, {tgt}")
    rows = []
    for name, p, t in pairs:
        try:
            a, b = load_image_tensor(p), load_image_tensor(t)
            if a.shape != b.shape:
                raise ValueError(f"prediction is {a.shape[-1]}x{a.shape[-2]} but target is {b.shape[-1]}x{b.shape[-2]} "
                                 "(width x height)")
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
