"""COCO pseudo-labels: the document, built from per-image records, and its writer.

The builder is pure: records in, a COCO dataset dict out (``info``, ``licenses``,
``images``, ``annotations`` with ids from 1, ``categories``). ``bbox`` is ``[x, y, w, h]``
in original pixels (:mod:`wsol.boxes`). Every annotation has ``iscrowd: 0``, an empty
``segmentation`` (boxes only) and its ``area`` and ``score``; every category has a
``supercategory``, so that strict readers (Datumaro, CVAT) find every field they expect.
Each image's ``file_name`` is as the dataset names it: relative to the image folder.
"""

from __future__ import annotations

from pathlib import Path

from wsol.boxes import box_area, xyxy_to_coco
from wsol.fileio import atomic_write_json
from wsol.localize.results import Detections

PSEUDO_LABELS = "pseudo_labels.json"
# The supercategory of a class whose dataset gives none: one group for every class.
DEFAULT_SUPERCATEGORY = "object"


def image_entry(image_id: int, file_name: str, size: tuple[int, int]) -> dict:
    """A COCO ``images`` entry for an image of ``size = (height, width)``."""
    return {"id": image_id, "file_name": file_name, "height": int(size[0]), "width": int(size[1])}


def annotations_for(image_id: int, category_id: int, det: Detections) -> list[dict]:
    """COCO annotations (without ``id``) for one (image, class): ``bbox`` is xywh floats."""
    areas = box_area(det.boxes)
    return [
        {
            "image_id": image_id,
            "category_id": category_id,
            "bbox": [round(float(v), 3) for v in box],
            "area": round(float(a), 3),
            "score": round(float(s), 6),
        }
        for box, a, s in zip(xyxy_to_coco(det.boxes), areas, det.scores, strict=True)
    ]


def category_entry(category: dict) -> dict:
    """A COCO ``categories`` entry: ``id``, ``name`` and a ``supercategory`` (the
    dataset's, else :data:`DEFAULT_SUPERCATEGORY`), then any other keys it had."""
    return {
        "id": category["id"],
        "name": category["name"],
        "supercategory": category.get("supercategory") or DEFAULT_SUPERCATEGORY,
        **{k: v for k, v in category.items() if k not in ("id", "name", "supercategory")},
    }


def build_document(
    images: list[dict], annotations: list[dict], categories: list[dict], info: dict | None = None
) -> dict:
    """The COCO dataset dict: annotations get ids from 1, in order, ``iscrowd: 0`` and
    ``segmentation: []``; categories keep their ids (the dataset's
    :attr:`~wsol.data.Dataset.category_ids`: COCO data's own, COCO's official ids with
    the ``imagenet_to_coco`` map, else from 1) and get a ``supercategory``
    (:func:`category_entry`)."""
    anns = [{"id": i + 1, **a, "iscrowd": 0, "segmentation": []} for i, a in enumerate(annotations)]
    return {
        "info": info or {},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [category_entry(c) for c in categories],
    }


def by_image(doc: dict) -> dict[int, list[dict]]:
    """The annotations of a document grouped by ``image_id``, each group in file order."""
    groups: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        groups.setdefault(a["image_id"], []).append(a)
    return groups


def results_list(doc: dict) -> list[dict]:
    """The annotations of a pseudo-label dict as a COCO results list (for ``loadRes``)."""
    return [
        {k: a[k] for k in ("image_id", "category_id", "bbox", "score")} for a in doc["annotations"]
    ]


def write_coco(doc: dict, out_dir: Path) -> list[Path]:
    """``out_dir/pseudo_labels.json``, compact."""
    path = Path(out_dir) / PSEUDO_LABELS
    atomic_write_json(path, doc)
    return [path]
