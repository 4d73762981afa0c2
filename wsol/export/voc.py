"""VOC XML pseudo-labels: one annotation file per image, boxes 1-based and inclusive."""

from __future__ import annotations

from pathlib import Path

from wsol.boxes import coco_to_xyxy
from wsol.data.voc import voc_xml
from wsol.fileio import atomic_write_text

VOC_DIR = "voc"


def write_voc(doc: dict, out_dir: Path) -> list[Path]:
    """A COCO pseudo-label dict as ``out_dir/voc/<image stem>.xml``, so that the folder
    can serve as a VOC ``Annotations/``. Images with no box get an annotation without
    objects. Returns the files written."""
    folder = Path(out_dir) / VOC_DIR
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    written = []
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
        path = folder / f"{Path(im['file_name']).stem}.xml"
        atomic_write_text(path, xml)
        written.append(path)
    return written
