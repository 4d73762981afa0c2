"""Box accuracy at the operating cut: CorLoc, GT-known Loc and Top-1 Loc.

- ``corloc``: the pair's top-scoring box at the operating threshold is correct (the
  VOC CorLoc of the weakly supervised detection literature).
- ``gt_known_loc``: the largest component of the GT class's map at the operating
  threshold is correct (computed when maps exist for every GT class, ``targets=gt``).
- ``top1_loc``: per image, the most probable class is a GT class and its largest box
  at the operating threshold is correct.

The threshold sweep (MaxBoxAcc) is :mod:`wsol.evaluate.max_box_acc`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from wsol.data.base import Sample
from wsol.evaluate.base import Evaluator, any_hit, ratio, scored_pairs
from wsol.localize.results import ImageResult


class BoxAccuracy(Evaluator):
    """CorLoc, GT-known Loc and Top-1 Loc at the operating cut, streaming.

    Args:
        num_classes: dataset classes, for the per-class breakdown.
        iou: delta, the IoU a box needs to be correct.
        class_agnostic: score one pair per image (see
            :func:`wsol.evaluate.base.scored_pairs`); GT-known Loc is then not defined.
        per_image: also keep per-image rows (:mod:`wsol.evaluate.per_image`).

    State: per class, the pairs ``[C]``, the pairs with a map, and the CorLoc and
    GT-known hits; per image, the Top-1 hits and images. Rows, per scored image: its
    ``corloc`` and ``gt_known`` hits, its pairs ``with_map``, and ``top1_hits`` and
    ``top1_images``.
    """

    state_fields = (
        "class_pairs",
        "class_corloc",
        "class_known",
        "class_with_map",
        "top1_hits",
        "top1_images",
    )
    row_fields = ("corloc", "gt_known", "with_map", "top1_hits", "top1_images")

    def __init__(
        self,
        num_classes: int,
        iou: float = 0.5,
        class_agnostic: bool = False,
        per_image: bool = False,
    ):
        self.num_classes = num_classes
        self.iou = iou
        self.class_agnostic = class_agnostic
        self.per_image = per_image
        self.reset()

    def init_args(self) -> dict:
        return {
            "num_classes": self.num_classes,
            "iou": self.iou,
            "class_agnostic": self.class_agnostic,
            "per_image": self.per_image,
        }

    def reset(self) -> None:
        c = self.num_classes
        self.class_pairs = np.zeros(c, np.int64)
        self.class_corloc = np.zeros(c, np.int64)
        self.class_known = np.zeros(c, np.int64)
        self.class_with_map = np.zeros(c, np.int64)
        self.top1_hits = 0
        self.top1_images = 0
        self._new_rows(self.per_image)

    @property
    def pairs(self) -> int:
        return int(self.class_pairs.sum())

    def update(
        self, samples: Sequence[Sample], results: Sequence[ImageResult], map_fn: Callable = map
    ) -> None:
        for sample, r in zip(samples, results, strict=True):
            gt = scored_pairs(sample, r, self.class_agnostic)
            if not gt:
                continue
            by_class = {c.dataset_class: c for c in r.classes}
            row = dict.fromkeys(self.row_fields, 0)
            for cls, gt_boxes in gt.items():
                self.class_pairs[cls] += 1
                res = by_class.get(cls)
                if res is None:
                    continue
                det = res.detections
                corloc = int(any_hit(det.boxes[:1], gt_boxes, self.iou))
                known = int(any_hit(det.largest, gt_boxes, self.iou))
                self.class_with_map[cls] += 1
                self.class_corloc[cls] += corloc
                self.class_known[cls] += known
                row["with_map"] += 1
                row["corloc"] += corloc
                row["gt_known"] += known
            self.top1_images += 1
            row["top1_images"] = 1
            top1 = int(np.argmax(r.probs)) if len(r.probs) else -1
            res = by_class.get(top1)
            if top1 in gt and res is not None:
                row["top1_hits"] = int(any_hit(res.detections.largest, gt[top1], self.iou))
                self.top1_hits += row["top1_hits"]
            if self.rows is not None:
                for k, v in row.items():
                    self.rows[k].append(v)

    @property
    def defines_gt_known(self) -> bool:
        """Whether GT-known Loc is defined: every pair had its class's map."""
        return bool(self.class_with_map.sum() == self.pairs and not self.class_agnostic)

    def compute(self) -> dict:
        known = int(self.class_known.sum()) if self.defines_gt_known else None
        return box_metrics(
            self.pairs, int(self.class_corloc.sum()), known, self.top1_hits, self.top1_images
        )

    def per_class(self, class_names: list[str]) -> dict[str, dict]:
        """Per class: pairs, corloc and gt_known_loc (``None`` where a class has no pairs)."""
        return {
            name: {
                "pairs": int(self.class_pairs[c]),
                "corloc": ratio(self.class_corloc[c], self.class_pairs[c]),
                "gt_known_loc": ratio(self.class_known[c], self.class_pairs[c]),
            }
            for c, name in enumerate(class_names)
        }


def box_metrics(
    pairs: int, corloc_hits: int, known_hits: int | None, top1_hits: int, top1_images: int
) -> dict:
    """CorLoc, Top-1 Loc and (unless ``known_hits`` is None) GT-known Loc from hit
    counts: the first two out of ``pairs``, Top-1 out of ``top1_images``; ``{}`` when
    there is no pair. Shared by :meth:`BoxAccuracy.compute` and
    :func:`wsol.evaluate.per_image.metrics_from_rows`, so the two agree to the last
    digit."""
    n = int(pairs)
    if n == 0:
        return {}
    out = {
        "corloc": int(corloc_hits) / n,
        "top1_loc": int(top1_hits) / max(int(top1_images), 1),
    }
    if known_hits is not None:
        out["gt_known_loc"] = int(known_hits) / n
    out["num_pairs"] = n
    return out
