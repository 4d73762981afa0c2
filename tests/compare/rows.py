"""Synthetic per-image rows for the statistics tests: counters that a run could write."""

from __future__ import annotations

import numpy as np

from wsol.evaluate.per_image import PerImage


def synthetic_rows(
    n: int = 60, t: int = 11, seed: int = 0, skill: float = 0.6, pxap: bool = True
) -> PerImage:
    """``n`` images of 1-3 pairs each whose hits at each threshold are drawn with
    probability ``skill`` (highest mid-sweep), so that the counts are consistent: hits
    never exceed pairs and V2's hits fall as the IoU level rises."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(1, 4, n)
    bump = skill * np.exp(-(((np.arange(t) - t / 2) / (t / 3)) ** 2))  # [T]
    v1 = rng.binomial(pairs[:, None], bump[None, :])
    v2 = np.stack(
        [rng.binomial(pairs[:, None], np.minimum(bump * f, 1.0)[None, :]) for f in (1.3, 1.0, 0.5)],
        axis=-1,
    )
    v2 = np.minimum.accumulate(v2, axis=-1)  # a hit at IoU 0.7 is one at 0.5 and 0.3
    corloc = rng.binomial(pairs, skill)
    fields = {}
    if pxap:
        fg = rng.integers(50, 500, n)
        frac = np.linspace(1.0, 0.0, t)  # [T] share of pixels at or above each threshold
        tp = np.floor(fg[:, None] * frac[None, :] ** (1 - skill)).astype(np.int64)
        bg = rng.integers(500, 5000, n)
        fp = np.floor(bg[:, None] * frac[None, :] ** (1 + skill)).astype(np.int64)
        fields = {"pxap_tp": tp, "pxap_fp": fp, "pxap_fg": fg.astype(np.int64)}
    return PerImage(
        keys=np.array([f"/data/img_{i:04d}.jpg" for i in range(n)]),
        thresholds=np.round(np.linspace(0, 1, t, endpoint=False), 12),
        pairs=pairs.astype(np.int64),
        v1=v1.astype(np.int64),
        v2=v2.astype(np.int64),
        corloc=corloc.astype(np.int64),
        top1_hits=(corloc > 0).astype(np.int64),
        top1_images=np.ones(n, np.int64),
        gt_known=rng.binomial(pairs, skill).astype(np.int64),
        **fields,
    )
