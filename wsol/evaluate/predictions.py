"""Scoring a pseudo-label file: ``wsol eval --gt GT --pred PRED``.

Any COCO-format predictions (a dataset dict with annotations, or a results list) are
scored against COCO or VOC ground truth from boxes alone: CorLoc from each (image, class)
pair's top box, and COCO AP through pycocotools. Categories are matched by name and
images by file name, so files written by other tools score too.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from wsol.data import load_coco, load_voc
from wsol.data.base import Dataset, Sample
from wsol.data.coco import unique_names
from wsol.errors import UsageError, did_you_mean, quote
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
    (``fmt="auto"`` picks VOC for a folder). A VOC root with a single split file, or with
    no ``ImageSets/Main`` (every annotation file is read), needs no ``split``."""
    p = Path(path)
    if fmt == "auto":
        fmt = "voc" if p.is_dir() else "coco"
    if fmt == "voc":
        if split is None:
            main = p / "ImageSets" / "Main"
            splits = sorted(f.stem for f in main.glob("*.txt")) if main.is_dir() else []
            if not main.is_dir():
                splits = [""]  # no split files: every annotation file, as wsol run reads it
            if len(splits) != 1:
                raise UsageError(
                    f"{p}: name the VOC split (--split); splits here: "
                    f"{', '.join(splits) or 'none (expected ImageSets/Main/<split>.txt)'}"
                )
            split = splits[0]
        gt = load_voc(p, split, classes)
        if gt.failures:  # (the reader logs each at INFO: -v lists them)
            f = gt.failures[0]
            logger.warning(
                "%s: %d images' annotations could not be read; they are left out of the "
                "ground truth (e.g. %s: %s)",
                p,
                len(gt.failures),
                f["path"],
                f["reason"],
            )
        return gt
    if fmt == "coco":
        return load_coco(p.parent, p, classes)
    raise UsageError(f"unknown GT format {quote(fmt)}; valid: auto, coco, voc")


_INT64 = 2**63


def _is_id(x) -> bool:
    """An id pycocotools can hold: an integer (not a boolean) within 64 bits."""
    return isinstance(x, int) and not isinstance(x, bool) and -_INT64 <= x < _INT64


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _bad_annotation(a) -> str | None:
    """Why a prediction cannot be scored, or None."""
    if not isinstance(a, dict):
        return "not an object"
    for key in ("image_id", "category_id"):
        if not _is_id(a.get(key)):
            return f"{key} {quote(a.get(key), 40)} is not an integer id"
    box = a.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        return f"bbox {quote(box, 60)} is not 4 finite numbers"
    if box[2] < 0 or box[3] < 0:
        return f"bbox {quote(box, 60)} has a negative width or height"
    if "score" in a and not _is_number(a["score"]):
        return f"score {quote(a['score'], 40)} is not a finite number"
    return None


_NO_FILE_MATCH = (
    "no image file name of the predictions matches one of the ground truth (another "
    "split?); pass --match-ids to match images by id instead"
)


def _id_maps(doc: dict, dataset, match_ids: bool) -> tuple[dict | None, dict | None]:
    """``(category map, image map)`` from the file's ids to the GT's (categories by
    name, images by ``file_name``); None for the ids as they are, which :func:`_tie_ids`
    allows only with ``match_ids``."""
    cats, images = doc.get("categories"), doc.get("images")
    cat_map = img_map = None
    if cats:
        if not isinstance(cats, list) or not all(
            isinstance(c, dict) and _is_id(c.get("id")) and isinstance(c.get("name"), str)
            for c in cats
        ):
            raise UsageError("'categories' must be a list of objects with an integer id and a name")
        by_name = dict(zip(dataset.classes, dataset.category_ids, strict=True))
        cat_map = {c["id"]: by_name.get(c["name"]) for c in unique_names(cats, "predictions")}
    if images and not match_ids:
        if not isinstance(images, list) or not all(
            isinstance(im, dict) and _is_id(im.get("id")) and isinstance(im.get("file_name"), str)
            for im in images
        ):
            raise UsageError(
                "'images' must be a list of objects with an integer id and a file_name"
            )
        by_file = {s.file_name: s.image_id for s in dataset.samples}
        if not any(im["file_name"] in by_file for im in images):
            raise UsageError(_NO_FILE_MATCH)
        img_map = {im["id"]: by_file.get(im["file_name"]) for im in images}
    if doc.get("annotations"):
        _tie_ids("prediction file", [("'categories'", cat_map), ("'images'", img_map)], match_ids)
    return cat_map, img_map


def _named(entries: list[dict], id_key: str, name_key: str, gt: dict, none: str) -> dict | None:
    """``{id: GT id or None}`` from the ``name_key`` each result gives its ``id_key``
    (``file_name`` for ``image_id``, ``category_name`` for ``category_id``); None when
    no result names it. ``none`` is the error when no name is one of ``gt``'s."""
    named = [a for a in entries if name_key in a]
    if not named:
        return None
    if len(named) < len(entries):
        raise UsageError(
            f"{len(entries) - len(named)} of {len(entries)} results have no {name_key!r} "
            "while the others have one"
        )
    names: dict = {}
    for a in named:
        name, key = a[name_key], a.get(id_key)
        if not isinstance(name, str):
            raise UsageError(f"{name_key} {quote(name)} is not a string")
        if _is_id(key) and names.setdefault(key, name) != name:
            raise UsageError(f"{id_key} {key} is named both {quote(names[key])} and {quote(name)}")
    if not any(n in gt for n in names.values()):
        raise UsageError(none)
    return {key: gt.get(name) for key, name in names.items()}


def _list_maps(doc: list, dataset, match_ids: bool) -> tuple[dict | None, dict | None]:
    """``(category map, image map)`` of a results list: by the names wsol's results
    export gives each box (``category_name``, ``file_name``); None for the ids as they
    are, which :func:`_tie_ids` allows only with ``match_ids``."""
    entries = [a for a in doc if isinstance(a, dict)]
    by_name = dict(zip(dataset.classes, dataset.category_ids, strict=True))
    none = (
        "no category_name of the predictions is a class of the ground truth "
        f"({quote(dataset.classes)})"
    )
    cat_map = _named(entries, "category_id", "category_name", by_name, none)
    img_map = None
    if not match_ids:
        by_file = {s.file_name: s.image_id for s in dataset.samples}
        img_map = _named(entries, "image_id", "file_name", by_file, _NO_FILE_MATCH)
    if entries:
        _tie_ids(
            "results list",
            [("category_name", cat_map), ("file_name", img_map)],
            match_ids,
        )
    return cat_map, img_map


def _tie_ids(what: str, maps: list[tuple[str, dict | None]], match_ids: bool) -> None:
    """Refuse predictions whose image or category ids nothing ties to the ground
    truth's (``maps``: each name key and the map it gave, None for none), unless
    ``match_ids`` asserts that the ids are the GT's.

    Raises:
        UsageError: one line naming what is missing and the ways out.
    """
    missing = [key for key, m in maps if m is None]
    if not missing or match_ids:
        return
    raise UsageError(
        f"the {what} has no {' and no '.join(missing)}, so its ids cannot be tied to the "
        "ground truth's images and categories (a run numbers them its own way); score the "
        "run's pseudo_labels.json or its results.json (both name them), or pass "
        "--match-ids if the ids are the ground truth's"
    )


def load_predictions(doc, dataset, match_ids: bool = False) -> tuple[list[dict], dict]:
    """A COCO results list for ``dataset`` from a pseudo-label file.

    ``doc`` is a COCO dataset dict (``annotations``; its ``categories`` tie their ids
    to the GT's by name, its ``images`` theirs by ``file_name``) or a results list (by
    each box's ``category_name`` and ``file_name``, as wsol's ``results`` export writes
    them). ``match_ids`` asserts that the file's image ids are the GT's (images are
    then matched by id), and its category ids too where it names no category. A
    prediction that cannot be scored (non-finite or malformed box or score, ids that
    are not integers) is refused and counted; predictions on images or categories the
    GT lacks are dropped and counted; a missing ``score`` counts as 1. Returns
    ``(results, counts)``: counts has ``num_predictions``, ``num_invalid`` and
    ``num_dropped``.

    Raises:
        UsageError: the file's structure is not a COCO dict or results list; it names
            no image (no ``images``, no ``file_name``) or no category (no
            ``categories``, no ``category_name``) and ``match_ids`` is not set, so its
            ids cannot be tied to the GT's; no image file name matches the ground
            truth's (without ``match_ids``), or no category name its classes; or
            predictions there are, and none is on an image and a category of the
            ground truth (the ids are not the GT's).
    """
    if isinstance(doc, dict):
        anns = doc.get("annotations")
        if not isinstance(anns, list):
            raise UsageError("a prediction dict needs an 'annotations' list")
        cat_map, img_map = _id_maps(doc, dataset, match_ids)
    elif isinstance(doc, list):
        anns = doc
        cat_map, img_map = _list_maps(doc, dataset, match_ids)
    else:
        raise UsageError("predictions must be a COCO dict or a results list")
    known_images = {s.image_id for s in dataset.samples}
    known_cats = set(dataset.category_ids)
    out, dropped, unscored, invalid = [], 0, 0, {}
    for a in anns:
        why = _bad_annotation(a)
        if why is not None:
            invalid.setdefault(why, 0)
            invalid[why] += 1
            continue
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
    num_invalid = sum(invalid.values())
    if dropped and not out:
        raise UsageError(
            f"none of the {dropped} predictions is on an image and a category of the "
            "ground truth: their ids are not the GT's (another split or dataset?)"
        )
    if num_invalid:
        first = next(iter(invalid))
        logger.warning("%d predictions refused (e.g. %s)", num_invalid, first)
    if dropped:
        logger.warning("%d predictions are on images or categories the GT lacks; dropped", dropped)
    if unscored:
        logger.warning("%d predictions have no score; they count as score 1", unscored)
    counts = {"num_predictions": len(out), "num_invalid": num_invalid, "num_dropped": dropped}
    return out, counts


def scored_classes(dataset: Dataset, doc, which: str = "all") -> list[str]:
    """The GT classes to score, in the GT's order.

    ``which`` is ``all`` (every GT class), ``pred`` (the classes the prediction file's
    ``categories`` name, by name: what a ``wsol run`` localized, which leaves out the
    classes ``model.skip_unmapped`` dropped) or comma-separated class names.

    Raises:
        UsageError: ``pred`` for a file without categories, or a name the GT lacks.
    """
    if which == "all":
        return list(dataset.classes)
    if which == "pred":
        cats = doc.get("categories") if isinstance(doc, dict) else None
        if not cats:
            raise UsageError(
                "--classes pred needs a prediction file with 'categories' (a results list "
                "has none; name the classes instead)"
            )
        wanted = {c.get("name") for c in cats if isinstance(c, dict)}
    else:
        wanted = {n.strip() for n in which.split(",") if n.strip()}
        unknown = sorted(wanted - set(dataset.classes))
        if unknown or not wanted:
            named = ", ".join(f"{u}{did_you_mean(u, dataset.classes)}" for u in unknown)
            raise UsageError(
                f"--classes: {named or 'no class named'} not among the GT's "
                f"classes ({', '.join(dataset.classes)})"
            )
    return [c for c in dataset.classes if c in wanted]


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
