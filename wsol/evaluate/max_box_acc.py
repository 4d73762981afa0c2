"""The threshold sweep: MaxBoxAcc and MaxBoxAccV2 (Choe et al., CVPR 2020).

Thresholds ``tau`` are cuts on min-max normalized maps (``norm >= tau``), one global
value for the whole dataset, not one per image.

- ``maxboxacc`` (V1): ``max_tau mean_pairs 1[IoU(largest box at tau) >= delta]``,
  delta = ``iou`` (0.5).
- ``maxboxacc_v2``: the mean over delta in {0.3, 0.5, 0.7} of
  ``max_tau mean_pairs 1[max IoU over all components' boxes >= delta]``.
- optionally CorLoc at every tau (full box extraction per tau), for calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from wsol.boxes import box_iou
from wsol.data.base import Sample
from wsol.evaluate.base import Evaluator, any_hit, image_key, ratio, scored_pairs
from wsol.localize.components import detect, sweep_components
from wsol.localize.params import BoxParams
from wsol.localize.results import ImageResult

V2_DELTAS = (0.3, 0.5, 0.7)


class MaxBoxAcc(Evaluator):
    """MaxBoxAcc, MaxBoxAccV2 and (optionally) swept CorLoc, streaming.

    Args:
        num_classes: dataset classes, for the per-class breakdown.
        thresholds: the sweep of normalized thresholds ``[T]``.
        iou: delta for MaxBoxAcc (V1) and the swept CorLoc.
        corloc_sweep: how a run's maps become boxes (:class:`~wsol.localize.BoxParams`;
            its cut is ignored: the sweep sets it); if given, CorLoc is also swept over
            the thresholds (slower), for calibration.
        class_agnostic: score one pair per image (see
            :func:`wsol.evaluate.base.scored_pairs`).
        per_image: also keep per-image rows (:mod:`wsol.evaluate.per_image`).

    State: per class, the pairs ``[C]`` and the hit counters ``[C, T]`` (V1, swept
    CorLoc) and ``[C, T, 3]`` (V2), so a per-class optimum can be read off as well as the
    global one. Rows, per scored image: its resolved path (``key``), its ``pairs``,
    ``v1`` ``[T]`` and ``v2`` ``[T, 3]`` hits.
    """

    state_fields = ("class_pairs", "v1_hits", "v2_hits", "top_hits")
    row_fields = ("key", "pairs", "v1", "v2")

    def __init__(
        self,
        num_classes: int,
        thresholds: np.ndarray,
        iou: float = 0.5,
        corloc_sweep: BoxParams | None = None,
        class_agnostic: bool = False,
        per_image: bool = False,
    ):
        self.num_classes = num_classes
        self.thresholds = np.asarray(thresholds, np.float64)
        self.iou = iou
        self.corloc_sweep = corloc_sweep
        self.class_agnostic = class_agnostic
        self.per_image = per_image
        self.reset()

    @property
    def needs_maps(self) -> bool:
        """The swept CorLoc boxes each map at every threshold; the sweep alone reads
        the maps' levels."""
        return self.corloc_sweep is not None

    @property
    def sweep_thresholds(self) -> np.ndarray:
        return self.thresholds

    def init_args(self) -> dict:
        return {
            "num_classes": self.num_classes,
            "thresholds": self.thresholds,
            "iou": self.iou,
            "corloc_sweep": self.corloc_sweep,
            "class_agnostic": self.class_agnostic,
            "per_image": self.per_image,
        }

    def reset(self) -> None:
        c, t = self.num_classes, len(self.thresholds)
        self.class_pairs = np.zeros(c, np.int64)
        self.v1_hits = np.zeros((c, t), np.int64)
        self.v2_hits = np.zeros((c, t, len(V2_DELTAS)), np.int64)
        self.top_hits = np.zeros((c, t), np.int64)
        self._new_rows(self.per_image)

    @property
    def pairs(self) -> int:
        return int(self.class_pairs.sum())

    def update(
        self,
        samples: Sequence[Sample],
        results: Sequence[ImageResult],
        map_fn: Callable = map,
    ) -> None:
        """Sweep every scored pair; ``map_fn`` (``map``, or a thread pool's: cv2 and numpy
        release the GIL) runs the pairs' sweeps, whose hits are then added in order."""
        jobs, owner, rows = [], [], []  # owner: the job's image, a position in rows
        for sample, r in zip(samples, results, strict=True):
            by_class = {c.dataset_class: c for c in r.classes}
            pairs = scored_pairs(sample, r, self.class_agnostic)
            if pairs and self.rows is not None:
                t = len(self.thresholds)
                rows.append((sample, len(pairs), np.zeros(t, np.int64), np.zeros((t, 3), np.int64)))
            for cls, gt_boxes in pairs.items():
                self.class_pairs[cls] += 1
                res = by_class.get(cls)
                if res is None:
                    continue
                levels = res.sweep.levels if res.sweep is not None else None
                if levels is not None and not res.sweep.matches(self.thresholds):
                    levels = None
                if levels is not None or res.norm_map is not None:
                    # An unusable map misses at every threshold.
                    jobs.append((cls, res.norm_map, levels, res.to_map(gt_boxes)))
                    owner.append(len(rows) - 1)
        hits = zip(jobs, owner, map_fn(self._hits, jobs), strict=True)
        for (cls, *_), i, (v2, v1, top) in hits:
            self.v2_hits[cls] += v2
            self.v1_hits[cls] += v1
            if top is not None:
                self.top_hits[cls] += top
            if rows:
                rows[i][2][:] += v1
                rows[i][3][:] += v2
        for sample, n, v1, v2 in rows:
            self.rows["key"].append(image_key(sample.path))
            self.rows["pairs"].append(n)
            self.rows["v1"].append(v1)
            self.rows["v2"].append(v2)

    def _hits(self, job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One pair's hits at every threshold: V2 ``[T, 3]``, V1 ``[T]`` and, if swept,
        CorLoc ``[T]``. The job is ``(class, norm_map or None, levels or None, GT boxes in
        map pixels)``."""
        _, norm_map, levels, gt_boxes = job
        t = len(self.thresholds)
        v2, v1 = np.zeros((t, len(V2_DELTAS)), bool), np.zeros(t, bool)
        comps = sweep_components(norm_map, self.thresholds, levels)
        if len(comps.areas):
            iou = box_iou(comps.boxes, gt_boxes).max(axis=1)  # [M] best GT overlap per box
            best = np.zeros(t)
            np.maximum.at(best, comps.index, iou)  # [T] best over all components (V2)
            v2 = best[:, None] >= np.asarray(V2_DELTAS)[None, :]
            largest = comps.largest()
            has = largest >= 0
            v1[has] = iou[largest[has]] >= self.iou
        top = None
        if self.corloc_sweep is not None:
            top = np.zeros(t, bool)
            for j, tau in enumerate(self.thresholds):
                b = self.corloc_sweep
                det = detect(
                    norm_map, float(tau), 1.0, b.components, b.min_area, b.score, b.merge, b.nms_iou
                )
                top[j] = any_hit(det.boxes[:1], gt_boxes, self.iou)
        return v2, v1, top

    def curve(self) -> dict:
        """The sweep: thresholds and the global box accuracies at each, for the report."""
        n = max(self.pairs, 1)
        v1 = self.v1_hits.sum(0)
        v2 = self.v2_hits.sum(0)
        out = {
            "thresholds": self.thresholds.round(6).tolist(),
            "maxboxacc": (v1 / n).round(6).tolist(),
        }
        for i, d in enumerate(V2_DELTAS):
            out[f"maxboxacc_v2_iou{round(d * 100)}"] = (v2[:, i] / n).round(6).tolist()
        if self.corloc_sweep is not None:
            out["corloc"] = (self.top_hits.sum(0) / n).round(6).tolist()
        return out

    def sweep(self, class_names: list[str]) -> dict:
        """What ``sweep.json`` holds: :meth:`curve` plus exact per-class hit counts
        (``maxboxacc`` ``[T]``, ``maxboxacc_v2`` ``[T][3]``, ``corloc`` ``[T]`` if swept)
        for every class with pairs; the input of threshold calibration."""
        per_class = {}
        for c, name in enumerate(class_names):
            if not self.class_pairs[c]:
                continue
            entry = {
                "pairs": int(self.class_pairs[c]),
                "maxboxacc": self.v1_hits[c].tolist(),
                "maxboxacc_v2": self.v2_hits[c].tolist(),
            }
            if self.corloc_sweep is not None:
                entry["corloc"] = self.top_hits[c].tolist()
            per_class[name] = entry
        return {
            **self.curve(),
            "iou": self.iou,
            "v2_deltas": list(V2_DELTAS),
            "num_pairs": self.pairs,
            "per_class": per_class,
        }

    def compute(self) -> dict:
        return sweep_metrics(self.v1_hits.sum(0), self.v2_hits.sum(0), self.pairs, self.thresholds)

    def per_class(self, class_names: list[str]) -> dict[str, dict]:
        """Per class: maxboxacc at the global best tau, maxboxacc_v2, and the class's own
        best tau and accuracy (``None`` where a class has no pairs)."""
        t_best = int(np.argmax(self.v1_hits.sum(0))) if self.pairs else 0
        out = {}
        for c, name in enumerate(class_names):
            p = int(self.class_pairs[c])
            own = int(np.argmax(self.v1_hits[c])) if p else 0
            out[name] = {
                "maxboxacc": ratio(self.v1_hits[c, t_best], p),
                "maxboxacc_v2": (float((self.v2_hits[c] / p).max(axis=0).mean()) if p else None),
                "best_threshold": float(self.thresholds[own]) if p else None,
                "best_maxboxacc": ratio(self.v1_hits[c, own], p),
            }
        return out


def sweep_metrics(
    v1_hits: np.ndarray, v2_hits: np.ndarray, pairs: int, thresholds: np.ndarray
) -> dict:
    """MaxBoxAcc and MaxBoxAccV2 (and the threshold of each maximum) from hit counts
    summed over pairs: ``v1_hits [T]``, ``v2_hits [T, 3]`` (one column per
    :data:`V2_DELTAS`) out of ``pairs``; ``{}`` when there is no pair. Both
    :meth:`MaxBoxAcc.compute` and :func:`wsol.evaluate.per_image.metrics_from_rows` call
    it, so the two agree to the last digit."""
    n = int(pairs)
    if n == 0:
        return {}
    v1 = np.asarray(v1_hits) / n  # [T]
    v2 = np.asarray(v2_hits) / n  # [T, 3]
    out = {
        "maxboxacc": float(v1.max()),
        "maxboxacc_threshold": float(thresholds[int(np.argmax(v1))]),
        "maxboxacc_v2": float(v2.max(axis=0).mean()),
    }
    for i, d in enumerate(V2_DELTAS):
        out[f"maxboxacc_v2_iou{round(d * 100)}"] = float(v2[:, i].max())
        out[f"maxboxacc_v2_iou{round(d * 100)}_threshold"] = float(
            thresholds[int(np.argmax(v2[:, i]))]
        )
    return out
