"""VOC XML pseudo-labels: one annotation file per image, boxes 1-based and inclusive."""

from __future__ import annotations

from pathlib import Path

from wsol.boxes import coco_to_xyxy
from wsol.data.voc import voc_xml
from wsol.export.coco import by_image
from wsol.export.names import per_image_names
from wsol.fileio import atomic_write_text

VOC_DIR = "voc"


def write_voc(doc: dict, out_dir: Path) -> list[Path]:
    """A COCO pseudo-label dict as ``out_dir/voc/<image name>.xml``, so that the folder
    can serve as a VOC ``Annotations/``. Images with no box get an annotation without
    objects. No two images share a file (see :func:`~wsol.export.names.per_image_names`).
    Returns the files written."""
    folder = Path(out_dir) / VOC_DIR
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_image = by_image(doc)
    written = []
    targets = per_image_names(doc["images"], ".xml")
    for im in doc["images"]:
        anns = per_image.get(im["id"], [])
        boxes = coco_to_xyxy([a["bbox"] for a in anns]).reshape(-1, 4)
        xml = voc_xml(
            Path(im["file_name"]).name,
            im["height"],
            im["width"],
            [names[a["category_id"]] for a in anns],
            boxes,
            [a["score"] for a in anns],
        )
        path = folder / targets[im["id"]]
        atomic_write_text(path, xml)
        written.append(path)
    return written
