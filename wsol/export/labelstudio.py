"""Label Studio pre-annotations: one task per image, the boxes as a model's predictions.

``out/labelstudio.json`` is a list of tasks to import into a project whose labeling
config is ``out/labelstudio_config.xml`` (paste it under Settings > Labeling Interface).
Each task is ``{"data": {"image": ...}, "predictions": [{"model_version", "score",
"result"}]}``; each region of ``result`` is a ``rectanglelabels`` box whose ``x``, ``y``
(top-left corner), ``width`` and ``height`` are percents (0-100) of the image's width and
height, with its own ``score``. A task's ``score`` is the mean of its regions' (0 for an
image with no box), which Label Studio can sort tasks by. Format:
https://labelstud.io/guide/predictions (image bounding boxes).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from wsol.boxes import coco_to_percent
from wsol.export.coco import by_image
from wsol.fileio import atomic_write_json, atomic_write_text

TASKS = "labelstudio.json"
CONFIG = "labelstudio_config.xml"
# The names that tie regions to the labeling config (from_name, to_name, $image).
CONTROL, OBJECT, DATA_KEY = "label", "image", "image"


def model_version(info: dict) -> str:
    """The predictions' ``model_version``: ``wsol`` with the run's method and model."""
    return "-".join(["wsol", *(str(info[k]) for k in ("method", "model") if info.get(k))])


def tasks(doc: dict, image_root: str = "") -> list[dict]:
    """The Label Studio tasks of a COCO document, one per image in document order;
    ``data.image`` is ``image_root + file_name`` (a plain concatenation)."""
    names = {c["id"]: c["name"] for c in doc["categories"]}
    version = model_version(doc.get("info") or {})
    per_image = by_image(doc)
    out = []
    for im in doc["images"]:
        anns = per_image.get(im["id"], [])
        pct = coco_to_percent([a["bbox"] for a in anns], im["height"], im["width"])
        result = [
            {
                "id": str(a["id"]),
                "type": "rectanglelabels",
                "from_name": CONTROL,
                "to_name": OBJECT,
                "original_width": im["width"],
                "original_height": im["height"],
                "image_rotation": 0,
                "value": {
                    "x": round(float(p[0]), 4),
                    "y": round(float(p[1]), 4),
                    "width": round(float(p[2]), 4),
                    "height": round(float(p[3]), 4),
                    "rotation": 0,
                    "rectanglelabels": [names[a["category_id"]]],
                },
                "score": a["score"],
            }
            for a, p in zip(anns, pct, strict=True)
        ]
        score = round(float(np.mean([a["score"] for a in anns])), 6) if anns else 0.0
        out.append(
            {
                "data": {DATA_KEY: f"{image_root}{im['file_name']}"},
                "predictions": [{"model_version": version, "score": score, "result": result}],
            }
        )
    return out


def labeling_config(names: list[str]) -> str:
    """The labeling config XML the tasks fit: an image and a rectangle label per class."""
    labels = "".join(f"    <Label value={quoteattr(n)}/>\n" for n in names)
    return (
        "<View>\n"
        f'  <Image name="{OBJECT}" value="${DATA_KEY}"/>\n'
        f'  <RectangleLabels name="{CONTROL}" toName="{OBJECT}">\n'
        f"{labels}"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def write_labelstudio(doc: dict, out_dir: Path, image_root: str = "") -> list[Path]:
    """``out_dir/labelstudio.json`` (the tasks, see :func:`tasks`) and
    ``out_dir/labelstudio_config.xml`` (:func:`labeling_config`)."""
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / TASKS, tasks(doc, image_root))
    atomic_write_text(out_dir / CONFIG, labeling_config([c["name"] for c in doc["categories"]]))
    return [out_dir / TASKS, out_dir / CONFIG]
