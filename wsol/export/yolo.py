"""YOLO pseudo-labels: one text file per image, boxes as normalized centres and sizes.

``out/yolo/labels/<image>.txt`` holds one line per box, ``class cx cy w h``: the class
index is 0-based in the order of the document's categories (the run's class list) and
the four numbers are fractions of the image's width and height. ``classes.txt`` lists
the names, one a line, and ``data.yaml`` gives them as Ultralytics and Datumaro read
them. Put the images in ``out/yolo/images/`` with the same stems to train on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from wsol.boxes import coco_to_yolo
from wsol.export.coco import by_image
from wsol.export.names import per_image_names
from wsol.fileio import atomic_write_text

YOLO_DIR = "yolo"
LABELS = "labels"
CLASSES = "classes.txt"
DATA_YAML = "data.yaml"


def yolo_lines(class_indices: list[int], boxes: np.ndarray) -> str:
    """The text of one label file: ``class cx cy w h`` a line, fixed-point with 6
    decimals (no exponent, which some readers reject); empty for no box."""
    return "".join(
        f"{c} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}\n"
        for c, b in zip(class_indices, boxes, strict=True)
    )


def data_yaml(names: list[str]) -> str:
    """``data.yaml``: the class names by index, as Ultralytics' dataset files give them."""
    head = (
        "# wsol pseudo-labels: labels/<image>.txt, one 'class cx cy w h' line per box\n"
        "# (fractions of the image). Put the images in images/ beside labels/, same stems.\n"
    )
    body = {"nc": len(names), "names": dict(enumerate(names))}
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def write_yolo(doc: dict, out_dir: Path) -> list[Path]:
    """The document as ``out_dir/yolo/``: ``labels/<image name>.txt`` for every image
    (empty for an image with no box; names as VOC's, see
    :func:`~wsol.export.names.per_image_names`), ``classes.txt`` and ``data.yaml``.
    Returns the files written."""
    folder = Path(out_dir) / YOLO_DIR
    names = [c["name"] for c in doc["categories"]]
    index = {c["id"]: k for k, c in enumerate(doc["categories"])}
    per_image = by_image(doc)
    targets = per_image_names(doc["images"], ".txt")
    written = []
    for im in doc["images"]:
        anns = per_image.get(im["id"], [])
        boxes = coco_to_yolo([a["bbox"] for a in anns], im["height"], im["width"])
        path = folder / LABELS / targets[im["id"]]
        atomic_write_text(path, yolo_lines([index[a["category_id"]] for a in anns], boxes))
        written.append(path)
    for name, text in ((CLASSES, "".join(f"{n}\n" for n in names)), (DATA_YAML, data_yaml(names))):
        atomic_write_text(folder / name, text)
        written.append(folder / name)
    return written
