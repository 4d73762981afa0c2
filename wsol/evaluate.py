"""Streaming localization metrics, and COCO AP through pycocotools.

Evaluators share one interface: ``reset()``, ``update(results)`` and ``compute() -> dict``.
Their state is a handful of counters, so memory does not grow with the dataset.

The unit of scoring is an (image, class) pair for every class with at least one
non-ignored GT box in the image (VOC ``difficult`` / COCO ``iscrowd`` boxes are
ignored; a pair whose boxes are all ignored is left out). A predicted box is correct
when its IoU with any GT box of the class (ignored ones included, so a hit on a
difficult object is not penalised) is at least ``delta``.

- ``corloc``: the pair's top-scoring box at the operating threshold is correct.
- ``gt_known_loc``: the largest component of the GT class's map at the operating
  threshold is correct (computed when maps exist for every GT class, ``targets=gt``).
- ``top1_loc``: per image, the most probable class is a GT class and its largest box
  at the operating threshold is correct.
- ``maxboxacc`` (Choe et al., CVPR 2020, V1): ``max_tau mean_pairs 1[IoU(largest box at
  tau) >= 0.5]``, tau one global value on min-max normalized maps.
- ``maxboxacc_v2``: the mean over delta in {0.3, 0.5, 0.7} of
  ``max_tau mean_pairs 1[max IoU over all components' boxes >= delta]``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np

from wsol.boxes import box_iou
from wsol.data.base import Sample
from wsol.localize import Detections, boxes_at

V2_DELTAS = (0.3, 0.5, 0.7)


@dataclass
class ClassResult:
    """What the pipeline produced for one (image, dataset class)."""

    dataset_class: int
    prob: float
    detections: Detections
    norm_map: np.ndarray | None  # [H, W] normalized map (None if unusable)
    cut: float  # the operating threshold on ``norm_map``


@dataclass
class ImageResult:
    """All maps of one image, with its GT and the dataset-class probabilities ``[D]``."""

    sample: Sample
    probs: np.ndarray
    classes: list[ClassResult] = field(default_factory=list)


def _gt_pairs(sample: Sample) -> dict[int, np.ndarray]:
    """Class -> all GT boxes of that class, for classes with a non-ignored box."""
    out = {}
    for c in np.unique(sample.box_labels[~sample.ignore]):
        out[int(c)] = sample.boxes[sample.box_labels == c]
    return out


def _hit(boxes: np.ndarray, gt: np.ndarray, delta: float) -> bool:
    return len(boxes) > 0 and bool((box_iou(boxes, gt) >= delta).any())


class BoxAccuracy:
    """CorLoc, GT-known Loc, Top-1 Loc, MaxBoxAcc and MaxBoxAccV2, streaming.

    Args:
        num_classes: dataset classes, for the per-class breakdown.
        thresholds: the sweep of normalized thresholds ``[T]`` for MaxBoxAcc.
        iou: delta for corloc, gt_known_loc, top1_loc and maxboxacc.
    """

    def __init__(self, num_classes: int, thresholds: np.ndarray, iou: float = 0.5):
        self.num_classes = num_classes
        self.thresholds = np.asarray(thresholds, np.float64)
        self.iou = iou
        self.reset()

    def reset(self) -> None:
        t = len(self.thresholds)
        self.pairs = 0
        self.corloc_hits = 0
        self.known_hits = 0
        self.known_pairs = 0
        self.top1_hits = 0
        self.top1_images = 0
        self.v1_hits = np.zeros(t, np.int64)  # [T]
        self.v2_hits = np.zeros((t, len(V2_DELTAS)), np.int64)  # [T, 3]
        self.class_pairs = np.zeros(self.num_classes, np.int64)
        self.class_hits = np.zeros(self.num_classes, np.int64)

    def update(self, results: list[ImageResult]) -> None:
        for r in results:
            gt = _gt_pairs(r.sample)
            if not gt:
                continue
            by_class = {c.dataset_class: c for c in r.classes}
            for cls, gt_boxes in gt.items():
                self.pairs += 1
                self.class_pairs[cls] += 1
                res = by_class.get(cls)
                if res is None:
                    continue
                self.known_pairs += 1
                if _hit(res.detections.boxes[:1], gt_boxes, self.iou):
                    self.corloc_hits += 1
                    self.class_hits[cls] += 1
                if res.norm_map is None:
                    continue
                if _hit(boxes_at(res.norm_map, res.cut, "largest"), gt_boxes, self.iou):
                    self.known_hits += 1
                self._sweep(res.norm_map, gt_boxes)
            self.top1_images += 1
            top1 = int(np.argmax(r.probs)) if len(r.probs) else -1
            res = by_class.get(top1)
            if top1 in gt and res is not None and res.norm_map is not None and _hit(
                    boxes_at(res.norm_map, res.cut, "largest"), gt[top1], self.iou):
                self.top1_hits += 1

    def _sweep(self, norm_map: np.ndarray, gt_boxes: np.ndarray) -> None:
        for j, tau in enumerate(self.thresholds):
            boxes = boxes_at(norm_map, tau, "all")
            if len(boxes) == 0:
                continue
            iou = box_iou(boxes, gt_boxes).max(axis=1)  # [N] best GT overlap per box
            largest = np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
            self.v1_hits[j] += iou[largest] >= self.iou
            self.v2_hits[j] += iou.max() >= np.asarray(V2_DELTAS)

    def curve(self) -> dict:
        """The sweep: thresholds and the box accuracy at each, for the report."""
        n = max(self.pairs, 1)
        return {
            "thresholds": self.thresholds.round(6).tolist(),
            "maxboxacc": (self.v1_hits / n).round(6).tolist(),
            **{f"maxboxacc_v2_iou{int(d * 100)}": (self.v2_hits[:, i] / n).round(6).tolist()
               for i, d in enumerate(V2_DELTAS)},
        }

    def compute(self) -> dict:
        if self.pairs == 0:
            return {}
        n = self.pairs
        v1 = self.v1_hits / n
        v2 = self.v2_hits / n  # [T, 3]
        out = {
            "corloc": self.corloc_hits / n,
            "top1_loc": self.top1_hits / max(self.top1_images, 1),
            "maxboxacc": float(v1.max()),
            "maxboxacc_threshold": float(self.thresholds[int(np.argmax(v1))]),
            "maxboxacc_v2": float(v2.max(axis=0).mean()),
        }
        for i, d in enumerate(V2_DELTAS):
            out[f"maxboxacc_v2_iou{int(d * 100)}"] = float(v2[:, i].max())
        if self.known_pairs == n:
            out["gt_known_loc"] = self.known_hits / n
        out["num_pairs"] = n
        return out

    def per_class(self, class_names: list[str]) -> dict:
        return {
            name: {"pairs": int(self.class_pairs[c]),
                   "corloc": (float(self.class_hits[c] / self.class_pairs[c])
                              if self.class_pairs[c] else None)}
            for c, name in enumerate(class_names)
        }


def coco_ap(gt: dict, predictions: list[dict]) -> dict:
    """COCO box AP of ``predictions`` (a COCO results list) against the GT dict.

    Runs pycocotools' ``COCOeval`` (evaluate, accumulate, summarize) with its printing
    captured. Returns ``coco_ap`` (AP@[.5:.95]), ``coco_ap50`` and ``coco_ap75``; an
    empty prediction list scores 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not any(True for a in gt.get("annotations", []) if not a.get("iscrowd", 0)):
        return {}
    if not predictions:
        return {"coco_ap": 0.0, "coco_ap50": 0.0, "coco_ap75": 0.0}
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
    return {n: float(v) for n, v in zip(names, ev.stats[:3], strict=True) if v >= 0}
