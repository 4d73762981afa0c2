"""PxAP (Choe et al., CVPR 2020): area under the pixel precision-recall curve."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from wsol.data.base import Sample
from wsol.data.masks import class_mask
from wsol.evaluate.base import Evaluator, gt_pairs
from wsol.localize.cut import levels_of
from wsol.localize.results import ImageResult

logger = logging.getLogger(__name__)


class PixelAP(Evaluator):
    """PxAP (Choe et al., CVPR 2020): area under the pixel precision-recall curve.

    For every pair whose class has masks, each pixel is foreground (the class's
    non-ignored instances), ignored (its ignored instances; left out) or background, and
    scored by the normalized map (an unusable map scores 0 everywhere). Counters per
    class and threshold: ``TP[c, j]`` and ``FP[c, j]``, the foreground and background
    pixels with ``score >= tau_j``, and ``FG[c]``. With ``P_j = TP_j / (TP_j + FP_j)``
    and ``R_j = TP_j / FG`` over ascending thresholds, ``PxAP = sum_j (R_j - R_{j+1}) P_j``
    with ``R_T = 0`` (thresholds where nothing is predicted add nothing).

    With ``per_image``, rows per image with a scored pair (:mod:`wsol.evaluate.per_image`):
    its ``tp`` ``[T]``, ``fp`` ``[T]`` and ``fg`` over its classes (zeros without masks).
    """

    state_fields = ("tp", "fp", "fg")
    row_fields = ("tp", "fp", "fg")

    def __init__(self, num_classes: int, thresholds: np.ndarray, per_image: bool = False):
        self.num_classes = num_classes
        self.thresholds = np.unique(np.asarray(thresholds, np.float64))
        self.per_image = per_image
        self._warned = False
        self.reset()

    def init_args(self) -> dict:
        return {
            "num_classes": self.num_classes,
            "thresholds": self.thresholds,
            "per_image": self.per_image,
        }

    def reset(self) -> None:
        c, t = self.num_classes, len(self.thresholds)
        self.tp = np.zeros((c, t), np.int64)
        self.fp = np.zeros((c, t), np.int64)
        self.fg = np.zeros(c, np.int64)
        self._new_rows(self.per_image)

    @property
    def sweep_thresholds(self) -> np.ndarray:
        """PxAP reads each map's levels at its thresholds (made on the device in a run)."""
        return self.thresholds

    def _passes(self, levels: np.ndarray) -> np.ndarray:
        """``[T]``: how many pixels of ``levels`` (thresholds reached) are ``>= tau_j``."""
        hist = np.bincount(levels.ravel(), minlength=len(self.thresholds) + 1)
        return hist[::-1].cumsum()[::-1][1:]

    def update(
        self, samples: Sequence[Sample], results: Sequence[ImageResult], map_fn: Callable = map
    ) -> None:
        t = len(self.thresholds)
        for sample, r in zip(samples, results, strict=True):
            gt = gt_pairs(sample)
            row = (np.zeros(t, np.int64), np.zeros(t, np.int64), 0)
            for c in r.classes:
                if c.dataset_class not in gt:
                    continue
                counts = self._counts(sample, c)
                if counts is None:
                    continue
                tp, fp, fg = counts
                self.tp[c.dataset_class] += tp
                self.fp[c.dataset_class] += fp
                self.fg[c.dataset_class] += fg
                row = (row[0] + tp, row[1] + fp, row[2] + fg)
            if gt and self.rows is not None:
                for k, v in zip(self.row_fields, row, strict=True):
                    self.rows[k].append(v)

    def _counts(self, sample: Sample, c) -> tuple[np.ndarray, np.ndarray, int] | None:
        """One pair's ``(TP [T], FP [T], FG)``, or None where it is not scored (no masks
        for its class, or an unusable map of an image whose size is unknown)."""
        levels = c.sweep.levels if c.sweep is not None else None
        if levels is not None and not c.sweep.matches(self.thresholds):
            levels = None
        if levels is None and c.norm_map is not None:
            levels = levels_of(c.norm_map, self.thresholds)
        shape = levels.shape if levels is not None else (sample.height or 0, sample.width or 0)
        if not shape[0] or not shape[1]:
            return None  # an unusable map of an image whose size is unknown
        sx, sy = c.scale
        full = (round(shape[0] * sy), round(shape[1] * sx))
        try:
            masks = class_mask(sample, c.dataset_class, *full)
            if masks is not None and full != tuple(shape):  # map below max_side
                masks = tuple(
                    cv2.resize(
                        m.astype(np.uint8),
                        (shape[1], shape[0]),
                        interpolation=cv2.INTER_NEAREST,
                    ).astype(bool)
                    for m in masks
                )
        except ValueError as e:
            if not self._warned:
                logger.warning("PxAP skips %s: %s", sample.path, e)
                self._warned = True
            return None
        if masks is None:
            return None
        fg, ign = masks
        if levels is None:  # an unusable map scores 0 everywhere
            levels = levels_of(np.zeros(shape), self.thresholds)
        keep = ~ign
        return self._passes(levels[fg]), self._passes(levels[keep & ~fg]), int(fg.sum())

    def compute(self) -> dict:
        ap = pixel_ap(self.tp.sum(0), self.fp.sum(0), int(self.fg.sum()))
        return {} if ap is None else {"pxap": ap}

    def per_class(self, class_names: list[str]) -> dict:
        return {
            name: {"pxap": pixel_ap(self.tp[c], self.fp[c], int(self.fg[c]))}
            for c, name in enumerate(class_names)
            if self.fg[c] > 0
        }


def pixel_ap(tp: np.ndarray, fp: np.ndarray, fg: int) -> float | None:
    """PxAP from pixel counts over ascending thresholds, ``tp [T]``, ``fp [T]`` and the
    foreground pixels ``fg`` (None when ``fg`` is 0). Shared by :meth:`PixelAP.compute`
    and :func:`wsol.evaluate.per_image.metrics_from_rows`."""
    if fg <= 0:
        return None
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = tp / fg
    drop = recall - np.r_[recall[1:], 0.0]
    return float((drop * precision).sum())
