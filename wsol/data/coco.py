"""COCO instances JSON plus an image folder.

COCO ``bbox`` is ``[x, y, w, h]``, continuous and 0-based. Category ids may be
non-contiguous: class index ``c`` maps to ``Dataset.category_ids[c]``. ``iscrowd``
regions are kept and marked ignored. Images without annotations are kept.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from wsol.boxes import coco_to_xyxy
from wsol.data.base import (
    AnnotationError,
    DataNotFoundError,
    Dataset,
    Sample,
    dropped_box_warnings,
    sanitize_boxes,
)
from wsol.errors import guesses, quote
from wsol.readfile import MAX_JSON_BYTES, InputFileError, InputMissingError, read_text

logger = logging.getLogger(__name__)


_INT64 = 2**63


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_id(x) -> bool:
    """An id pycocotools can hold: an integer within 64 bits (a larger one silently
    drops its image or class from COCO AP)."""
    return _is_int(x) and -_INT64 <= x < _INT64


def _check_structure(data, where: Path) -> None:
    """Types and required keys of an instances file, so a bad file is a clear error."""

    def bad(msg: str):
        raise AnnotationError(f"{where}: {msg}")

    if not isinstance(data, dict):
        bad("the top level must be an object with images, categories and annotations")
    for key in ("images", "categories"):
        if key not in data:
            bad(f"missing top-level key {key!r}")
    for key in ("images", "categories", "annotations"):
        if not isinstance(data.get(key, []), list):
            bad(f"{key!r} must be a list")
    for im in data["images"]:
        if (
            not isinstance(im, dict)
            or not _is_int(im.get("id"))
            or not isinstance(im.get("file_name"), str)
        ):
            bad(f"each image needs an integer 'id' and a 'file_name', got {quote(im, 80)}")
        if not _is_id(im["id"]):
            bad(f"image id {im['id']} does not fit in 64 bits (pycocotools cannot hold it)")
        for k in ("height", "width"):
            if im.get(k) is not None and not (_is_int(im[k]) and im[k] > 0):
                bad(f"image {im['id']}: {k!r} must be a positive integer")
    for c in data["categories"]:
        if (
            not isinstance(c, dict)
            or not _is_int(c.get("id"))
            or not isinstance(c.get("name"), str)
        ):
            bad(f"each category needs an integer 'id' and a 'name', got {quote(c, 80)}")
        if not _is_id(c["id"]):
            bad(f"category id {c['id']} does not fit in 64 bits (pycocotools cannot hold it)")
    for a in data.get("annotations", []):
        if not isinstance(a, dict):
            bad(f"each annotation must be an object, got {quote(a, 80)}")
        for key in ("image_id", "category_id", "bbox"):
            if key not in a:
                bad(f"annotation {quote(a.get('id'))} lacks {key!r}")
        box = a["bbox"]
        if not (
            _is_int(a["image_id"])
            and _is_int(a["category_id"])
            and isinstance(box, list)
            and len(box) == 4
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in box
            )
        ):
            bad(
                f"annotation {quote(a.get('id'))}: integer image_id/category_id and a bbox of 4 "
                "finite numbers expected"
            )


def load_coco(
    root: str | Path,
    ann_file: str | Path,
    classes: list[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """Read a COCO instances file; ``root`` is the folder the ``file_name``s are in.

    Classes are the file's categories in id order, or ``classes`` (names) to select
    and order a subset; annotations of other categories are then dropped.
    """
    ann_file = Path(ann_file)
    try:
        data = json.loads(read_text(ann_file, MAX_JSON_BYTES))
    except InputMissingError:
        raise DataNotFoundError(f"COCO annotation file {ann_file} not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{ann_file}: not valid JSON: {e}") from None
    except InputFileError as e:
        raise AnnotationError(f"{ann_file}: {e}") from None
    _check_structure(data, ann_file)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    if len(set(cat_ids)) != len(cat_ids):
        raise AnnotationError(f"{ann_file}: duplicate category ids")
    cats = unique_names(cats, ann_file.name)
    by_name = {c["name"]: c["id"] for c in cats}
    if classes is not None:
        missing = [n for n in classes if n not in by_name]
        if missing:
            raise AnnotationError(
                f"data.classes {quote(missing)} are not categories of {ann_file}"
                f"{guesses(missing, by_name)}"
            )
        by_id = {c["id"]: c for c in cats}
        cats = [by_id[by_name[n]] for n in classes]
    index = {c["id"]: i for i, c in enumerate(cats)}
    image_ids = [im["id"] for im in data["images"]]
    if len(set(image_ids)) != len(image_ids):
        raise AnnotationError(f"{ann_file}: duplicate image ids")

    per_image: dict[int, list[dict]] = defaultdict(list)
    known = set(image_ids)
    all_cats = set(cat_ids)
    for ann in data.get("annotations", []):
        if ann["image_id"] not in known:
            raise AnnotationError(
                f"{ann_file}: annotation {ann.get('id')} refers to unknown image {ann['image_id']}"
            )
        if ann["category_id"] not in all_cats:
            raise AnnotationError(
                f"{ann_file}: annotation {ann.get('id')} has unknown category {ann['category_id']}"
            )
        if ann["category_id"] in index:
            per_image[ann["image_id"]].append(ann)

    images = data["images"][:limit] if limit is not None else data["images"]
    root = Path(root)
    samples, warnings = [], []
    clipped = 0
    first: dict[str, int] = {}
    names = [c["name"] for c in cats]
    for im in images:
        anns = per_image.get(im["id"], [])
        path = str(root / im["file_name"])
        if im["file_name"] in first:
            warnings.append(
                {
                    "image_id": int(im["id"]),
                    "path": path,
                    "stage": "annotation",
                    "reason": f"the same file as image {first[im['file_name']]}; read once, "
                    f"as that image (this id's {len(anns)} annotations are left out)",
                }
            )
            continue
        first[im["file_name"]] = int(im["id"])
        raw = coco_to_xyxy([a["bbox"] for a in anns]).reshape(-1, 4)
        boxes, keep = sanitize_boxes(raw, im.get("height"), im.get("width"))
        clipped += int(((boxes != raw).any(1) & keep).sum())
        crowd_all = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        all_labels = np.array([index[a["category_id"]] for a in anns], np.int64)
        warnings += dropped_box_warnings(
            int(im["id"]), path, raw, keep, [names[c] for c in all_labels]
        )
        anns = [a for a, k in zip(anns, keep, strict=True) if k]
        box_labels = np.array([index[a["category_id"]] for a in anns], np.int64)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        samples.append(
            Sample(
                image_id=int(im["id"]),
                path=path,
                file_name=im["file_name"],
                height=im.get("height"),
                width=im.get("width"),
                labels=np.unique(all_labels[~crowd_all]),
                boxes=boxes[keep],
                box_labels=box_labels,
                ignore=crowd,
                segmentations=[a.get("segmentation") for a in anns],
            )
        )
    for w in warnings:
        logger.warning("%s: %s", w["path"], w["reason"])
    if clipped:
        logger.warning(
            "%s: %d GT boxes partly outside their image were clipped to it",
            ann_file.name,
            clipped,
        )
    return Dataset(
        name=f"coco:{ann_file.name}",
        classes=names,
        samples=samples,
        category_ids=[c["id"] for c in cats],
        sources=[str(ann_file)],
        supercategories=[str(c.get("supercategory") or "") for c in cats],
        warnings=warnings,
    )


# The 80 classes of COCO 2017 in id order, and the ids that COCO's 91-id numbering of
# 2014 left unused: the official ids run 1..90 with these gaps.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip
_COCO_UNUSED_IDS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})
COCO_CATEGORY_IDS: dict[str, int] = dict(
    zip(COCO_CLASSES, (i for i in range(1, 91) if i not in _COCO_UNUSED_IDS), strict=True)
)


def official_coco_ids(classes: list[str]) -> list[int] | None:
    """COCO's official category ids of ``classes`` (``parking meter`` is 14), or None
    when one of them is not a COCO class name."""
    if not all(c in COCO_CATEGORY_IDS for c in classes):
        return None
    return [COCO_CATEGORY_IDS[c] for c in classes]


def unique_names(categories: list[dict], where: str = "") -> list[dict]:
    """``categories`` with every name that two or more of them share made unique as
    ``name (id)``: wsol keys classes by name (metrics per class, matching predictions),
    so two categories called ``cat`` would count as one. Other entries are unchanged."""
    counts: dict[str, int] = {}
    for c in categories:
        counts[c["name"]] = counts.get(c["name"], 0) + 1
    shared = sorted(n for n, k in counts.items() if k > 1)
    if not shared:
        return categories
    logger.warning(
        "%s: categories share the names %s; each is named 'name (id)'",
        where or "categories",
        ", ".join(map(repr, shared[:5])),
    )
    return [
        {**c, "name": f"{c['name']} ({c['id']})"} if counts[c["name"]] > 1 else c
        for c in categories
    ]
