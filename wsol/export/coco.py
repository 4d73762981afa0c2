"""COCO pseudo-labels: the document, built from per-image records, and its writer.

The builder is pure: records in, a COCO dataset dict out (``info``, ``licenses``,
``images``, ``annotations`` with ids from 1, ``categories``). ``bbox`` is ``[x, y, w, h]``
in original pixels (:mod:`wsol.boxes`).
"""

from __future__ import annotations

from pathlib import Path

from wsol.boxes import box_area, xyxy_to_coco
from wsol.fileio import atomic_write_json
from wsol.localize.results import Detections

PSEUDO_LABELS = "pseudo_labels.json"


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


def build_document(
    images: list[dict], annotations: list[dict], categories: list[dict], info: dict | None = None
) -> dict:
    """The COCO dataset dict: annotations get ids from 1, in order, and ``iscrowd: 0``."""
    anns = [{"id": i + 1, **a, "iscrowd": 0} for i, a in enumerate(annotations)]
    return {
        "info": info or {},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories,
    }


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
