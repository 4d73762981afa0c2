"""COCO detection results: the flat list a detector's output is scored from.

``[{image_id, category_id, bbox, score}]`` with ``bbox`` ``[x, y, w, h]`` in original
pixels, as pycocotools ``COCO.loadRes`` and ``COCOeval`` take it against the ground truth.
"""

from __future__ import annotations

from pathlib import Path

from wsol.export.coco import results_list
from wsol.fileio import atomic_write_json

RESULTS = "results.json"


def write_results(doc: dict, out_dir: Path) -> list[Path]:
    """``out_dir/results.json``: the document's annotations as a results list."""
    path = Path(out_dir) / RESULTS
    atomic_write_json(path, results_list(doc))
    return [path]
