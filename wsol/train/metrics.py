"""Classification metrics of a validation pass: average precision per class and its mean."""

from __future__ import annotations

import math

import numpy as np


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Non-interpolated AP of ``scores [N]`` against ``{0, 1} targets [N]``: the mean of
    the precision at each positive, ranked by score (ties in input order). NaN when
    there is no positive."""
    pos = targets > 0
    if not pos.any():
        return math.nan
    order = np.argsort(-scores, kind="stable")
    hits = pos[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def classification_report(scores: np.ndarray, targets: np.ndarray, classes: list[str]) -> dict:
    """``{"map", "ap": {class: AP or None}, "classes_scored"}`` for ``scores [N, C]``.

    The mean is over the classes with at least one positive; the others have no AP
    (``None``) and are counted out."""
    aps = [average_precision(scores[:, c], targets[:, c]) for c in range(len(classes))]
    finite = [a for a in aps if not math.isnan(a)]
    return {
        "map": float(np.mean(finite)) if finite else None,
        "ap": {n: (None if math.isnan(a) else a) for n, a in zip(classes, aps, strict=True)},
        "classes_scored": len(finite),
    }
