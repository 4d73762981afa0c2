"""Scoring a pseudo-label file: ``wsol eval --gt GT --pred PRED``.

Any COCO-format predictions (a dataset dict with annotations, or a results list) are
scored against COCO or VOC ground truth from boxes alone: CorLoc from each (image, class)
pair's top box, and COCO AP through pycocotools. Categories are matched by name and
images by file name, so files written by other tools score too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from wsol.data import load_coco, load_voc
from wsol.data.base import Dataset, Sample
from wsol.errors import UsageError
from wsol.evaluate.base import any_hit, gt_pairs, ratio
from wsol.evaluate.coco_ap import add_coco_ap

logger = logging.getLogger(__name__)


def prediction_corloc(
    samples: list[Sample], predictions: list[dict], category_ids: list[int], iou: float = 0.5
) -> tuple[dict, np.ndarray, np.ndarray]:
    """CorLoc of a COCO results list (boxes alone, no maps).

    For every (image, class) pair with a non-ignored GT box, the top-scoring predicted
    box of that image and category (first on ties) is correct at IoU ``>= iou`` with a
    GT box of the class. Returns ``({"corloc", "num_pairs"}, hits [C], pairs [C])``.
    """
    cls_of = {cid: c for c, cid in enumerate(category_ids)}
    top: dict[tuple[int, int], tuple[float, list]] = {}
    for p in predictions:
        key = (p["image_id"], cls_of.get(p["category_id"], -1))
        score = float(p.get("score", 1.0))
        if key not in top or score > top[key][0]:
            top[key] = (score, p["bbox"])
    hits = np.zeros(len(category_ids), np.int64)
    pairs = np.zeros(len(category_ids), np.int64)
    for s in samples:
        for cls, gt_boxes in gt_pairs(s).items():
            pairs[cls] += 1
            best = top.get((s.image_id, cls))
            if best is not None:
                x, y, w, h = best[1]
                hits[cls] += any_hit(np.array([[x, y, x + w, y + h]], np.float64), gt_boxes, iou)
    n = int(pairs.sum())
    metrics = {"corloc": float(hits.sum() / n), "num_pairs": n} if n else {}
    return metrics, hits, pairs


def load_ground_truth(
    path, fmt: str = "auto", split: str | None = None, classes: list[str] | None = None
) -> Dataset:
    """GT as a :class:`wsol.data.Dataset`: a COCO instances JSON, or a VOC root folder
    (``fmt="auto"`` picks VOC for a folder). A VOC root with a single split file needs no
    ``split``."""
    p = Path(path)
    if fmt == "auto":
        fmt = "voc" if p.is_dir() else "coco"
    if fmt == "voc":
        if split is None:
            main = p / "ImageSets" / "Main"
            splits = sorted(f.stem for f in main.glob("*.txt")) if main.is_dir() else []
            if len(splits) != 1:
                raise UsageError(
                    f"{p}: name the VOC split (--split); splits here: "
                    f"{', '.join(splits) or 'none (expected ImageSets/Main/<split>.txt)'}"
                )
            split = splits[0]
        return load_voc(p, split, classes)
    if fmt == "coco":
        return load_coco(p.parent, p, classes)
    raise UsageError(f"unknown GT format {fmt!r}; valid: auto, coco, voc")


def load_predictions(doc, dataset) -> tuple[list[dict], dict]:
    """A COCO results list for ``dataset`` from a pseudo-label file.

    ``doc`` is a COCO dataset dict (``annotations``; with ``categories`` their ids are
    matched to the GT's by name, with ``images`` theirs by ``file_name``) or a results
    list (ids are the GT's). Predictions on images or categories the GT lacks are
    dropped; a missing ``score`` counts as 1. Returns ``(results, counts)`` where counts
    has ``num_predictions`` and ``num_dropped``.
    """
    if isinstance(doc, dict):
        if "annotations" not in doc:
            raise UsageError("a prediction dict needs an 'annotations' list")
        anns = doc["annotations"]
        cat_map = None
        if doc.get("categories"):
            by_name = dict(zip(dataset.classes, dataset.category_ids, strict=True))
            cat_map = {c["id"]: by_name.get(c["name"]) for c in doc["categories"]}
        img_map = None
        if doc.get("images"):
            by_file = {s.file_name: s.image_id for s in dataset.samples}
            if any(im.get("file_name") in by_file for im in doc["images"]):
                img_map = {im["id"]: by_file.get(im.get("file_name")) for im in doc["images"]}
    elif isinstance(doc, list):
        anns, cat_map, img_map = doc, None, None
    else:
        raise UsageError("predictions must be a COCO dict or a results list")
    known_images = {s.image_id for s in dataset.samples}
    known_cats = set(dataset.category_ids)
    out, dropped, unscored = [], 0, 0
    for a in anns:
        for key in ("image_id", "category_id", "bbox"):
            if key not in a:
                raise UsageError(f"prediction {a.get('id')} lacks {key!r}")
        image_id = img_map.get(a["image_id"]) if img_map is not None else a["image_id"]
        cat = cat_map.get(a["category_id"]) if cat_map is not None else a["category_id"]
        if image_id not in known_images or cat not in known_cats:
            dropped += 1
            continue
        unscored += "score" not in a
        out.append(
            {
                "image_id": image_id,
                "category_id": cat,
                "bbox": [float(v) for v in a["bbox"]],
                "score": float(a.get("score", 1.0)),
            }
        )
    if dropped:
        logger.warning("%d predictions are on images or categories the GT lacks; dropped", dropped)
    if unscored:
        logger.warning("%d predictions have no score; they count as score 1", unscored)
    return out, {"num_predictions": len(out), "num_dropped": dropped}


def evaluate_predictions(
    dataset: Dataset, predictions: list[dict], iou: float = 0.5
) -> tuple[dict, dict]:
    """Box-level metrics of a results list against ``dataset``: ``corloc`` (top box per
    pair) and ``coco_ap*``. Returns ``(metrics, per_class)``."""
    metrics, hits, pairs = prediction_corloc(
        dataset.samples, predictions, dataset.category_ids, iou
    )
    per_class = {
        name: {"pairs": int(pairs[c]), "corloc": ratio(hits[c], pairs[c])}
        for c, name in enumerate(dataset.classes)
        if pairs[c]
    }
    add_coco_ap(
        metrics, per_class, dataset.to_coco(), predictions, dataset.classes, dataset.category_ids
    )
    metrics["num_images"] = len(dataset)
    return metrics, per_class
