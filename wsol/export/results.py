"""COCO detection results: the flat list a detector's output is scored from.

``[{image_id, category_id, bbox, score, file_name, category_name}]`` with ``bbox``
``[x, y, w, h]`` in original pixels, as pycocotools ``COCO.loadRes`` and ``COCOeval``
take it against the ground truth. ``file_name`` and ``category_name`` are extra keys
(pycocotools ignores them): the ids are the run's, which another file of the same
images may number otherwise (a VOC-layout run and the COCO JSON of the same data), so
``wsol eval`` ties a list to the ground truth by these names, as it does a COCO dict.
"""

from __future__ import annotations

from pathlib import Path

from wsol.export.coco import results_list
from wsol.fileio import atomic_write_json

RESULTS = "results.json"


def named_results(doc: dict) -> list[dict]:
    """The document's annotations as a results list, each with its image's
    ``file_name`` and its category's ``category_name``."""
    files = {im["id"]: im["file_name"] for im in doc["images"]}
    names = {c["id"]: c["name"] for c in doc["categories"]}
    return [
        {**r, "file_name": files[r["image_id"]], "category_name": names[r["category_id"]]}
        for r in results_list(doc)
    ]


def write_results(doc: dict, out_dir: Path) -> list[Path]:
    """``out_dir/results.json``: the document's annotations as a named results list."""
    path = Path(out_dir) / RESULTS
    atomic_write_json(path, named_results(doc))
    return [path]
