"""VOC XML pseudo-labels: one annotation file per image, boxes 1-based and inclusive."""

from __future__ import annotations

from pathlib import Path

from wsol.boxes import coco_to_xyxy
from wsol.data.voc import voc_xml
from wsol.fileio import atomic_write_text

VOC_DIR = "voc"


def _xml_names(images: list[dict]) -> dict[int, str]:
    """Each image's XML name: its file's stem with ``.xml``, flat, as VOC's
    ``Annotations/`` has them; where two images share a stem (``sub1/x.jpg``,
    ``sub2/x.jpg``, ``x.png``), each of those gets its image id appended instead."""
    wanted = {im["id"]: (Path(im["file_name"]).stem or str(im["id"])) for im in images}
    counts: dict[str, int] = {}
    for stem in wanted.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {
        i: f"{stem}.xml" if counts[stem] == 1 else f"{stem}_{i}.xml" for i, stem in wanted.items()
    }


def write_voc(doc: dict, out_dir: Path) -> list[Path]:
    """A COCO pseudo-label dict as ``out_dir/voc/<image name>.xml``, so that the folder
    can serve as a VOC ``Annotations/``. Images with no box get an annotation without
    objects. No two images share a file (see :func:`_xml_names`). Returns the files
    written."""
    folder = Path(out_dir) / VOC_DIR
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    written = []
    targets = _xml_names(doc["images"])
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
