"""How sure a leaderboard is: bootstrap intervals and a paired test over images.

Both resample the images (rows of :class:`~wsol.evaluate.per_image.PerImage`) with
replacement and recompute each metric from the resampled rows' counters
(:func:`~wsol.evaluate.per_image.metrics_from_rows`): a metric over pairs, pixels or
thresholds is resampled by image, its unit of independence. The interval is the
percentile interval of the resampled values (Efron & Tibshirani, *An Introduction to
the Bootstrap*, 1993, ch. 13).

Seeded: the resample indices depend only on the number of images, ``resamples`` and
``seed``, so every candidate scored on the same images is resampled the same way. Two
candidates are compared on the same resamples of their common images (a paired
bootstrap), which removes the variation of the images themselves: candidates whose
intervals overlap can still differ significantly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from wsol.evaluate.per_image import PerImage, metrics_from_rows


def resample_indices(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``[resamples, n]`` row positions drawn with replacement; the same arguments give
    the same indices."""
    if n <= 0:
        raise ValueError("cannot resample an empty set of images")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _quantiles(level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    return (1 - level) / 2, 1 - (1 - level) / 2


def _resampled(rows: PerImage, metrics: Sequence[str], indices: np.ndarray) -> np.ndarray:
    """``[resamples, len(metrics)]``: each metric over each resample (NaN where a
    resample does not define it, e.g. PxAP over images without foreground)."""
    out = np.full((len(indices), len(metrics)), np.nan)
    for r, idx in enumerate(indices):
        m = metrics_from_rows(rows, idx)
        for j, name in enumerate(metrics):
            value = m.get(name)
            if value is not None:
                out[r, j] = value
    return out


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    """The percentile interval of ``values`` (NaNs left out), or None if all are NaN."""
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    lo, hi = np.quantile(values, _quantiles(level))
    return [float(lo), float(hi)]


def bootstrap_ci(
    rows: PerImage,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """The ``level`` percentile bootstrap interval ``[lo, hi]`` of each of ``metrics``
    (names as in ``metrics.json``: ``maxboxacc``, ``maxboxacc_v2``, ``corloc``,
    ``pxap``, ...) over ``resamples`` resamples of the images. A metric the rows do not
    define (``pxap`` without masks, ``gt_known_loc`` where it was not computed) is left
    out.

    Raises:
        ValueError: no rows, ``resamples < 1``, or ``level`` outside (0, 1).
    """
    _quantiles(level)
    full = metrics_from_rows(rows)
    names = [m for m in metrics if full.get(m) is not None]
    values = _resampled(rows, names, resample_indices(len(rows), resamples, seed))
    out = {}
    for j, name in enumerate(names):
        interval = _interval(values[:, j], level)
        if interval is not None:
            out[name] = interval
    return out


def align(a: PerImage, b: PerImage) -> PerImage:
    """``b``'s rows reordered to pair with ``a``'s by key (an image listed twice pairs
    in order of listing).

    Raises:
        ValueError: the two hold different images, naming some of each side's extras.
    """
    ka, kb = np.asarray(a.keys, str), np.asarray(b.keys, str)
    if not np.array_equal(np.sort(ka), np.sort(kb)):
        ca, cb = Counter(ka.tolist()), Counter(kb.tolist())
        only_a, only_b = sorted((ca - cb).elements()), sorted((cb - ca).elements())

        def some(keys: list[str]) -> str:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            return ", ".join(keys[:3]) + more if keys else "none"

        raise ValueError(
            "the two candidates were scored on different images: "
            f"{len(only_a)} only in the first ({some(only_a)}), "
            f"{len(only_b)} only in the second ({some(only_b)})"
        )
    order_a = np.argsort(ka, kind="stable")
    order_b = np.argsort(kb, kind="stable")
    perm = np.empty(len(kb), np.int64)
    perm[order_a] = order_b
    return b.take(perm)


def paired_test(
    a: PerImage,
    b: PerImage,
    metrics: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict]:
    """A paired bootstrap test of ``a - b`` for each of ``metrics``, over the images
    both were scored on (paired by key, resampled with the same indices).

    Returns ``{metric: {"diff": a - b on all images, "ci": [lo, hi], "significant":
    bool}}``, ``significant`` when the ``level`` interval of the difference excludes 0.
    Identical rows give a difference of 0 on every resample: not significant. A metric
    that either side does not define is left out.

    Raises:
        ValueError: the two were scored on different images (naming some of the
            difference), or as :func:`bootstrap_ci`.
    """
    _quantiles(level)
    b = align(a, b)
    full_a, full_b = metrics_from_rows(a), metrics_from_rows(b)
    names = [m for m in metrics if full_a.get(m) is not None and full_b.get(m) is not None]
    indices = resample_indices(len(a), resamples, seed)
    diffs = _resampled(a, names, indices) - _resampled(b, names, indices)
    out = {}
    for j, name in enumerate(names):
        interval = _interval(diffs[:, j], level)
        if interval is None:
            continue
        lo, hi = interval
        out[name] = {
            "diff": float(full_a[name] - full_b[name]),
            "ci": interval,
            "significant": bool(lo > 0 or hi < 0),
        }
    return out
