"""Which images the report shows: the best, the worst and a random few.

Images are ranked from what the run already wrote, the pseudo-label document and the
ground truth, so that only the shown images' maps need computing again. With GT boxes an
image's quality is the mean, over its GT classes, of the best IoU between a predicted box
of the class and a GT box of the class; without GT it is the image's top box score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wsol.boxes import box_iou, coco_to_xyxy
from wsol.data.base import Sample
from wsol.evaluate.base import gt_pairs

# Group names, in the order the report shows them.
GT_GROUPS = ("best", "worst", "random")
SCORE_GROUPS = ("highest box score", "lowest box score", "random")


@dataclass(frozen=True)
class Pick:
    """One shown image: its dataset ``position``, its ``group`` (see :data:`GT_GROUPS`)
    and the ``quality`` it was ranked by (None when it was not ranked)."""

    position: int
    group: str
    quality: float | None


def _boxes_by_image(doc: dict, category_ids: Sequence[int]) -> dict[int, list[tuple]]:
    """image id -> ``[(class index, xyxy box, score)]`` of the document's annotations."""
    cls_of = {cid: c for c, cid in enumerate(category_ids)}
    out: dict[int, list[tuple]] = {}
    for a in doc.get("annotations", []):
        box = coco_to_xyxy([a["bbox"]])[0]
        out.setdefault(a["image_id"], []).append(
            (cls_of.get(a["category_id"], -1), box, float(a.get("score", 1.0)))
        )
    return out


def image_quality(
    doc: dict, samples: Sequence[Sample], category_ids: Sequence[int]
) -> dict[int, float | None]:
    """Dataset position -> box quality of each image the document holds.

    The quality is the mean over the image's GT classes (those with a non-ignored box)
    of the best IoU of the class's predicted boxes with its GT boxes (0 for a class
    without a box); None for an image without such a class.
    """
    processed = {im["id"] for im in doc.get("images", [])}
    preds = _boxes_by_image(doc, category_ids)
    out: dict[int, float | None] = {}
    for pos, s in enumerate(samples):
        if s.image_id not in processed:
            continue
        pairs = gt_pairs(s)
        if not pairs:
            out[pos] = None
            continue
        mine = preds.get(s.image_id, [])
        best = []
        for cls, gt in pairs.items():
            boxes = np.array([b for c, b, _ in mine if c == cls]).reshape(-1, 4)
            best.append(float(box_iou(boxes, gt).max()) if len(boxes) else 0.0)
        out[pos] = float(np.mean(best))
    return out


def top_scores(doc: dict, samples: Sequence[Sample]) -> dict[int, float | None]:
    """Dataset position -> the highest box score of each image the document holds
    (None for an image without a box): the ranking when there is no GT."""
    processed = {im["id"] for im in doc.get("images", [])}
    scores: dict[int, float] = {}
    for a in doc.get("annotations", []):
        s = float(a.get("score", 1.0))
        scores[a["image_id"]] = max(s, scores.get(a["image_id"], -np.inf))
    return {pos: scores.get(s.image_id) for pos, s in enumerate(samples) if s.image_id in processed}


def pick_images(
    scores: dict[int, float | None],
    n: int,
    seed: int = 0,
    groups: Sequence[str] = GT_GROUPS,
) -> list[Pick]:
    """``n`` distinct images (fewer if there are fewer): ``n // 3`` with the highest
    score (``groups[0]``), ``n // 3`` with the lowest (``groups[1]``) and the rest drawn at
    random (``groups[2]``), among the positions of ``scores`` (None: never ranked, but
    may be drawn). Ties are broken at random; the same ``seed`` gives the same picks.
    Returned in group order: best first, worst first, random by position."""
    if n <= 0 or not scores:
        return []
    rng = np.random.default_rng(seed)
    positions = sorted(scores)
    tiebreak = dict(zip(positions, rng.permutation(len(positions)).tolist(), strict=True))
    ranked = sorted(
        (p for p in positions if scores[p] is not None),
        key=lambda p: (-scores[p], tiebreak[p]),
    )
    k = n // 3
    best = ranked[:k]
    worst = [p for p in reversed(ranked) if p not in set(best)][:k]
    taken = set(best) | set(worst)
    rest = [p for p in positions if p not in taken]
    drawn = rng.choice(len(rest), size=min(n - len(taken), len(rest)), replace=False)
    randoms = sorted(rest[i] for i in drawn.tolist())
    return (
        [Pick(p, groups[0], scores[p]) for p in best]
        + [Pick(p, groups[1], scores[p]) for p in worst]
        + [Pick(p, groups[2], scores[p]) for p in randoms]
    )
