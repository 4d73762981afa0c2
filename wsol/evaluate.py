"""Streaming localization metrics, and COCO AP through pycocotools.

Evaluators share one interface: ``reset()``, ``update(results)`` and ``compute() -> dict``.
Their state is a handful of counters (per class and per threshold at most), so memory
does not grow with the dataset.

The unit of scoring is an (image, class) pair for every class with at least one
non-ignored GT box in the image (VOC ``difficult`` / COCO ``iscrowd`` boxes are
ignored; a pair whose boxes are all ignored is left out). A predicted box is correct
when its IoU with any GT box of the class (ignored ones included, so a hit on a
difficult object is not penalised) is at least ``delta``. Thresholds ``tau`` are cuts on
min-max normalized maps (``norm >= tau``).

- ``corloc``: the pair's top-scoring box at the operating threshold is correct.
- ``gt_known_loc``: the largest component of the GT class's map at the operating
  threshold is correct (computed when maps exist for every GT class, ``targets=gt``).
- ``top1_loc``: per image, the most probable class is a GT class and its largest box
  at the operating threshold is correct.
- ``maxboxacc`` (Choe et al., CVPR 2020, V1): ``max_tau mean_pairs 1[IoU(largest box at
  tau) >= delta]``, delta = ``iou`` (0.5), tau one global value, not one per image.
- ``maxboxacc_v2``: the mean over delta in {0.3, 0.5, 0.7} of
  ``max_tau mean_pairs 1[max IoU over all components' boxes >= delta]``.
- ``pxap``: area under the pixel precision-recall curve over the thresholds, pixels of
  all pairs pooled (wsolevaluation's PxAP).
- ``coco_ap*``: pycocotools ``COCOeval`` on the exported boxes.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from wsol.boxes import box_iou
from wsol.data.base import Sample
from wsol.localize import Detections, boxes_at, detect, sweep_components

logger = logging.getLogger(__name__)

V2_DELTAS = (0.3, 0.5, 0.7)


@dataclass
class ClassResult:
    """What the pipeline produced for one (image, dataset class)."""

    dataset_class: int
    prob: float
    detections: Detections
    norm_map: np.ndarray | None  # [h, w] normalized map (None if unusable)
    cut: float  # the operating threshold on ``norm_map``
    # Original pixels per map pixel along (x, y): 1 unless the image was larger than
    # boxes.max_side. Detections are in original pixels; norm_map in map pixels.
    scale: tuple[float, float] = (1.0, 1.0)

    def to_map(self, boxes: np.ndarray) -> np.ndarray:
        """Original-pixel boxes ``[N, 4]`` in ``norm_map`` pixels (IoU is unchanged by a
        per-axis scaling, so sweeps can compare there)."""
        if self.scale == (1.0, 1.0):
            return boxes
        sx, sy = self.scale
        return boxes / np.array([sx, sy, sx, sy])


@dataclass
class ImageResult:
    """All maps of one image, with its GT and the dataset-class probabilities ``[D]``."""

    sample: Sample
    probs: np.ndarray
    classes: list[ClassResult] = field(default_factory=list)


def sweep_thresholds(step: float = 0.01, values: list[float] | None = None) -> np.ndarray:
    """The sweep ``[T]``: ``values`` sorted and deduplicated if given, else
    ``0, step, 2 step, ... < 1`` (wsolevaluation's ``cam_curve_interval``)."""
    if values:
        return np.unique(np.asarray(values, np.float64))
    return np.arange(0.0, 1.0, step)


def gt_pairs(sample: Sample) -> dict[int, np.ndarray]:
    """Class -> all GT boxes of that class, for classes with a non-ignored box."""
    out = {}
    for c in np.unique(sample.box_labels[~sample.ignore]):
        out[int(c)] = sample.boxes[sample.box_labels == c]
    return out


def any_hit(boxes: np.ndarray, gt: np.ndarray, delta: float) -> bool:
    return len(boxes) > 0 and bool((box_iou(boxes, gt) >= delta).any())


def ratio(hits, pairs) -> float | None:
    return float(hits / pairs) if pairs else None


class Evaluator:
    """The shared interface: ``reset``, ``update(list[ImageResult])``, ``compute``.

    The state is a set of integer counters named in ``state_fields``; two evaluators fed
    disjoint streams merge by adding them (:meth:`merge_state`). That is how a resumed
    run restores the scores of the chunks it does not redo.
    """

    state_fields: tuple[str, ...] = ()

    def init_args(self) -> dict:
        """Constructor arguments that build an empty evaluator like this one."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in self.state_fields}

    def merge_state(self, state: dict) -> None:
        for k in self.state_fields:
            cur = getattr(self, k)
            add = np.asarray(state[k], dtype=np.int64)
            if isinstance(cur, np.ndarray):
                if add.shape != cur.shape:
                    raise ValueError(f"cannot merge {k}: shape {add.shape} != {cur.shape}")
                setattr(self, k, cur + add)
            else:
                setattr(self, k, int(cur) + int(add))

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, results: list[ImageResult]) -> None:
        raise NotImplementedError

    def compute(self) -> dict:
        raise NotImplementedError


class BoxAccuracy(Evaluator):
    """CorLoc, GT-known Loc, Top-1 Loc, MaxBoxAcc and MaxBoxAccV2, streaming.

    Args:
        num_classes: dataset classes, for the per-class breakdown.
        thresholds: the sweep of normalized thresholds ``[T]`` for MaxBoxAcc.
        iou: delta for corloc, gt_known_loc, top1_loc and maxboxacc.
        corloc_sweep: keyword arguments of :func:`wsol.localize.detect` (components,
            min_area, score, merge, nms_iou); if given, CorLoc is also swept over the
            thresholds (full box extraction per threshold, so slower), for calibration.
        class_agnostic: score one pair per image instead of per (image, class): the map
            of the image's most probable target class against all its GT boxes, of any
            class. This is wsolevaluation's single-object protocol carried over to
            multi-object images (and what a glue script of pytorch-grad-cam does); the
            pair is filed under that map's class in the per-class breakdown.

    State: hit counters ``[C, T]`` (V1, swept CorLoc) and ``[C, T, 3]`` (V2), so a
    per-class optimum can be read off as well as the global one.
    """

    state_fields = ("class_pairs", "class_corloc", "class_known", "class_with_map", "v1_hits",
                    "v2_hits", "top_hits", "top1_hits", "top1_images")

    def __init__(self, num_classes: int, thresholds: np.ndarray, iou: float = 0.5,
                 corloc_sweep: dict | None = None, class_agnostic: bool = False):
        self.num_classes = num_classes
        self.thresholds = np.asarray(thresholds, np.float64)
        self.iou = iou
        self.corloc_sweep = corloc_sweep
        self.class_agnostic = class_agnostic
        self.reset()

    def init_args(self) -> dict:
        return {"num_classes": self.num_classes, "thresholds": self.thresholds,
                "iou": self.iou, "corloc_sweep": self.corloc_sweep,
                "class_agnostic": self.class_agnostic}

    def reset(self) -> None:
        c, t = self.num_classes, len(self.thresholds)
        self.class_pairs = np.zeros(c, np.int64)
        self.class_corloc = np.zeros(c, np.int64)
        self.class_known = np.zeros(c, np.int64)
        self.class_with_map = np.zeros(c, np.int64)
        self.v1_hits = np.zeros((c, t), np.int64)
        self.v2_hits = np.zeros((c, t, len(V2_DELTAS)), np.int64)
        self.top_hits = np.zeros((c, t), np.int64)
        self.top1_hits = 0
        self.top1_images = 0

    @property
    def pairs(self) -> int:
        return int(self.class_pairs.sum())

    def _pairs(self, r: ImageResult) -> dict[int, np.ndarray]:
        gt = gt_pairs(r.sample)
        if not self.class_agnostic or not gt:
            return gt
        best = max(r.classes, key=lambda c: c.prob, default=None)
        return {best.dataset_class if best else min(gt): r.sample.boxes}

    def update(self, results: list[ImageResult]) -> None:
        for r in results:
            gt = self._pairs(r)
            if not gt:
                continue
            by_class = {c.dataset_class: c for c in r.classes}
            for cls, gt_boxes in gt.items():
                self.class_pairs[cls] += 1
                res = by_class.get(cls)
                if res is None:
                    continue
                self.class_with_map[cls] += 1
                if any_hit(res.detections.boxes[:1], gt_boxes, self.iou):
                    self.class_corloc[cls] += 1
                if res.norm_map is None:
                    continue  # an unusable map misses at every threshold
                gt_map = res.to_map(gt_boxes)
                if any_hit(boxes_at(res.norm_map, res.cut, "largest"), gt_map, self.iou):
                    self.class_known[cls] += 1
                self._sweep(cls, res.norm_map, gt_map)
            self.top1_images += 1
            top1 = int(np.argmax(r.probs)) if len(r.probs) else -1
            res = by_class.get(top1)
            if top1 in gt and res is not None and res.norm_map is not None and any_hit(
                    boxes_at(res.norm_map, res.cut, "largest"), res.to_map(gt[top1]),
                    self.iou):
                self.top1_hits += 1

    def _sweep(self, cls: int, norm_map: np.ndarray, gt_boxes: np.ndarray) -> None:
        comps = sweep_components(norm_map, self.thresholds)
        if len(comps.areas):
            iou = box_iou(comps.boxes, gt_boxes).max(axis=1)  # [M] best GT overlap per box
            best = np.zeros(len(self.thresholds))
            np.maximum.at(best, comps.index, iou)  # [T] best over all components (V2)
            self.v2_hits[cls] += best[:, None] >= np.asarray(V2_DELTAS)[None, :]
            largest = comps.largest()
            has = largest >= 0
            self.v1_hits[cls, has] += iou[largest[has]] >= self.iou
        if self.corloc_sweep is not None:
            for j, tau in enumerate(self.thresholds):
                det = detect(norm_map, float(tau), 1.0, **self.corloc_sweep)
                self.top_hits[cls, j] += any_hit(det.boxes[:1], gt_boxes, self.iou)

    def curve(self) -> dict:
        """The sweep: thresholds and the global box accuracies at each, for the report."""
        n = max(self.pairs, 1)
        v1 = self.v1_hits.sum(0)
        v2 = self.v2_hits.sum(0)
        out = {"thresholds": self.thresholds.round(6).tolist(),
               "maxboxacc": (v1 / n).round(6).tolist()}
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
            entry = {"pairs": int(self.class_pairs[c]),
                     "maxboxacc": self.v1_hits[c].tolist(),
                     "maxboxacc_v2": self.v2_hits[c].tolist()}
            if self.corloc_sweep is not None:
                entry["corloc"] = self.top_hits[c].tolist()
            per_class[name] = entry
        return {**self.curve(), "iou": self.iou, "v2_deltas": list(V2_DELTAS),
                "num_pairs": self.pairs, "per_class": per_class}

    def compute(self) -> dict:
        n = self.pairs
        if n == 0:
            return {}
        v1 = self.v1_hits.sum(0) / n  # [T]
        v2 = self.v2_hits.sum(0) / n  # [T, 3]
        out = {
            "corloc": float(self.class_corloc.sum() / n),
            "top1_loc": self.top1_hits / max(self.top1_images, 1),
            "maxboxacc": float(v1.max()),
            "maxboxacc_threshold": float(self.thresholds[int(np.argmax(v1))]),
            "maxboxacc_v2": float(v2.max(axis=0).mean()),
        }
        for i, d in enumerate(V2_DELTAS):
            out[f"maxboxacc_v2_iou{round(d * 100)}"] = float(v2[:, i].max())
        if self.class_with_map.sum() == n and not self.class_agnostic:
            out["gt_known_loc"] = float(self.class_known.sum() / n)
        out["num_pairs"] = n
        return out

    def per_class(self, class_names: list[str]) -> dict:
        """Per class: pairs, corloc, gt_known_loc, maxboxacc at the global best tau, and
        the class's own best tau and accuracy (``None`` where a class has no pairs)."""
        t_best = int(np.argmax(self.v1_hits.sum(0))) if self.pairs else 0
        out = {}
        for c, name in enumerate(class_names):
            p = int(self.class_pairs[c])
            own = int(np.argmax(self.v1_hits[c])) if p else 0
            out[name] = {
                "pairs": p,
                "corloc": ratio(self.class_corloc[c], p),
                "gt_known_loc": ratio(self.class_known[c], p),
                "maxboxacc": ratio(self.v1_hits[c, t_best], p),
                "maxboxacc_v2": (float((self.v2_hits[c] / p).max(axis=0).mean()) if p
                                 else None),
                "best_threshold": float(self.thresholds[own]) if p else None,
                "best_maxboxacc": ratio(self.v1_hits[c, own], p),
            }
        return out


class PixelAP(Evaluator):
    """PxAP (Choe et al., CVPR 2020): area under the pixel precision-recall curve.

    For every pair whose class has masks, each pixel is foreground (the class's
    non-ignored instances), ignored (its ignored instances; left out) or background, and
    scored by the normalized map (an unusable map scores 0 everywhere). Counters per
    class and threshold: ``TP[c, j]`` and ``FP[c, j]``, the foreground and background
    pixels with ``score >= tau_j``, and ``FG[c]``. With ``P_j = TP_j / (TP_j + FP_j)``
    and ``R_j = TP_j / FG`` over ascending thresholds, ``PxAP = sum_j (R_j - R_{j+1}) P_j``
    with ``R_T = 0`` (thresholds where nothing is predicted add nothing).
    """

    state_fields = ("tp", "fp", "fg")

    def __init__(self, num_classes: int, thresholds: np.ndarray):
        self.num_classes = num_classes
        self.thresholds = np.unique(np.asarray(thresholds, np.float64))
        self._warned = False
        self.reset()

    def init_args(self) -> dict:
        return {"num_classes": self.num_classes, "thresholds": self.thresholds}

    def reset(self) -> None:
        c, t = self.num_classes, len(self.thresholds)
        self.tp = np.zeros((c, t), np.int64)
        self.fp = np.zeros((c, t), np.int64)
        self.fg = np.zeros(c, np.int64)

    def _passes(self, scores: np.ndarray) -> np.ndarray:
        """``[T]``: how many of ``scores`` are ``>= tau_j`` for each j."""
        k = np.searchsorted(self.thresholds, scores, side="right")  # thresholds <= score
        hist = np.bincount(k, minlength=len(self.thresholds) + 1)
        return hist[::-1].cumsum()[::-1][1:]

    def update(self, results: list[ImageResult]) -> None:
        from wsol.data.masks import class_mask

        for r in results:
            gt = gt_pairs(r.sample)
            for c in r.classes:
                if c.dataset_class not in gt:
                    continue
                shape = (c.norm_map.shape if c.norm_map is not None else
                         (r.sample.height or 0, r.sample.width or 0))
                if not shape[0] or not shape[1]:
                    continue  # an unusable map of an image whose size is unknown
                sx, sy = c.scale
                full = (round(shape[0] * sy), round(shape[1] * sx))
                try:
                    masks = class_mask(r.sample, c.dataset_class, *full)
                    if masks is not None and full != tuple(shape):  # map below max_side
                        masks = tuple(cv2.resize(m.astype(np.uint8), (shape[1], shape[0]),
                                                 interpolation=cv2.INTER_NEAREST).astype(bool)
                                      for m in masks)
                except ValueError as e:
                    if not self._warned:
                        logger.warning("PxAP skips %s: %s", r.sample.path, e)
                        self._warned = True
                    continue
                if masks is None:
                    continue
                fg, ign = masks
                score = (c.norm_map if c.norm_map is not None
                         else np.zeros(shape, np.float64))
                keep = ~ign
                self.tp[c.dataset_class] += self._passes(score[fg])
                self.fp[c.dataset_class] += self._passes(score[keep & ~fg])
                self.fg[c.dataset_class] += int(fg.sum())

    @staticmethod
    def _ap(tp: np.ndarray, fp: np.ndarray, fg: int) -> float | None:
        if fg <= 0:
            return None
        predicted = tp + fp
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = tp / fg
        drop = recall - np.r_[recall[1:], 0.0]
        return float((drop * precision).sum())

    def compute(self) -> dict:
        ap = self._ap(self.tp.sum(0), self.fp.sum(0), int(self.fg.sum()))
        return {} if ap is None else {"pxap": ap}

    def per_class(self, class_names: list[str]) -> dict:
        return {name: {"pxap": self._ap(self.tp[c], self.fp[c], int(self.fg[c]))}
                for c, name in enumerate(class_names) if self.fg[c] > 0}


def coco_ap(gt: dict, predictions: list[dict], per_class: bool = False) -> dict:
    """COCO box AP of ``predictions`` (a COCO results list) against the GT dict.

    Runs pycocotools' ``COCOeval`` (evaluate, accumulate, summarize) with its printing
    captured. Returns ``coco_ap`` (AP@[.5:.95], 100 detections per image), ``coco_ap50``
    and ``coco_ap75``; an empty prediction list scores 0. With ``per_class``, also
    ``per_category``: ``{category_id: {"coco_ap", "coco_ap50"}}`` read from
    ``eval["precision"]`` ``[iou T, recall R, category K, area A, max dets M]``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not any(True for a in gt.get("annotations", []) if not a.get("iscrowd", 0)):
        return {}
    if not predictions:
        out: dict = {"coco_ap": 0.0, "coco_ap50": 0.0, "coco_ap75": 0.0}
        if per_class:
            cats = {a["category_id"] for a in gt["annotations"] if not a.get("iscrowd", 0)}
            out["per_category"] = {c: {"coco_ap": 0.0, "coco_ap50": 0.0} for c in sorted(cats)}
        return out
    # pycocotools prints progress to stdout; a library must not, so it is captured.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "info": gt.get("info", {}), "licenses": []}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(predictions)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = sorted(im["id"] for im in gt["images"])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[k] is -1 when no GT exists for that setting; report those as absent.
    names = ("coco_ap", "coco_ap50", "coco_ap75")
    out = {n: float(v) for n, v in zip(names, ev.stats[:3], strict=True) if v >= 0}
    if per_class:
        prec = ev.eval["precision"]  # -1 marks settings without GT
        out["per_category"] = {}
        for k, cat in enumerate(ev.params.catIds):
            allp, p50 = prec[:, :, k, 0, -1], prec[0, :, k, 0, -1]
            if (allp > -1).any():
                out["per_category"][int(cat)] = {
                    "coco_ap": float(allp[allp > -1].mean()),
                    "coco_ap50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else None}
    return out
