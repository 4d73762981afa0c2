"""PASCAL VOC layout: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``.

VOC XML boxes are 1-based and inclusive; they are converted to continuous 0-based xyxy
on reading. ``difficult`` objects are kept and marked ignored for scoring. Class names
come from the XML, so any VOC-format dataset works, however many classes it has.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from wsol.boxes import voc_to_xyxy, xyxy_to_voc
from wsol.data.base import AnnotationError, DataNotFoundError, Dataset, Sample, sanitize_boxes

logger = logging.getLogger(__name__)

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def parse_voc_xml(text: str) -> dict:
    """Parse one VOC annotation into ``{filename, height, width, objects}``.

    Each object is ``{name, box (continuous xyxy), difficult, truncated}``.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise AnnotationError(f"malformed XML: {e}") from None
    size = root.find("size")

    def _int(node, tag):
        el = node.find(tag) if node is not None else None
        if el is None or el.text is None or not el.text.strip():
            return None
        try:
            return int(float(el.text))
        except ValueError:
            raise AnnotationError(f"<{tag}> is not a number: {el.text!r}") from None

    objects = []
    for obj in root.iter("object"):
        name_el = obj.find("name")
        bb = obj.find("bndbox")
        if name_el is None or not (name_el.text or "").strip() or bb is None:
            raise AnnotationError("an <object> lacks <name> or <bndbox>")
        try:
            corners = [float(bb.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise AnnotationError("a <bndbox> lacks a numeric xmin/ymin/xmax/ymax") from None
        objects.append(
            {
                "name": name_el.text.strip(),
                "box": voc_to_xyxy([corners])[0],
                "difficult": bool(_int(obj, "difficult") or 0),
                "truncated": bool(_int(obj, "truncated") or 0),
            }
        )
    fn = root.findtext("filename")
    return {
        "filename": fn.strip() if fn else None,
        "height": _int(size, "height"),
        "width": _int(size, "width"),
        "objects": objects,
    }


def voc_xml(
    file_name: str,
    height: int,
    width: int,
    names: list[str],
    boxes,
    scores=None,
    folder: str = "wsol",
) -> str:
    """One VOC annotation: ``boxes [N, 4]`` continuous xyxy become 1-based inclusive
    corners (widened to the pixels they touch). ``scores``, if given, are written as a
    ``<score>`` element, which VOC readers ignore."""
    objects = []
    for k, (name, box) in enumerate(zip(names, xyxy_to_voc(boxes), strict=True)):
        score = f"    <score>{float(scores[k]):.6f}</score>\n" if scores is not None else ""
        objects.append(
            "  <object>\n"
            f"    <name>{escape(name)}</name>\n"
            "    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
            f"    <difficult>0</difficult>\n{score}"
            f"    <bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
            f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>\n"
            "  </object>\n"
        )
    return (
        f"<annotation>\n  <folder>{escape(folder)}</folder>\n"
        f"  <filename>{escape(file_name)}</filename>\n"
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
        "  <segmented>0</segmented>\n" + "".join(objects) + "</annotation>\n"
    )


def _find_image(image_dir: Path, stem: str, filename: str | None) -> Path:
    if filename and (image_dir / filename).exists():
        return image_dir / filename
    for suffix in _IMAGE_SUFFIXES:
        if (image_dir / f"{stem}{suffix}").exists():
            return image_dir / f"{stem}{suffix}"
    return image_dir / (filename or f"{stem}.jpg")  # missing: a per-image failure later


def _instance_masks(png: Path, num_objects: int) -> list | None:
    """RLE masks from ``SegmentationObject/<stem>.png`` when it exists (for PxAP)."""
    if not png.is_file():
        return None
    from wsol.data.masks import voc_instance_segmentations

    try:
        return voc_instance_segmentations(png, num_objects)
    except (OSError, ValueError) as e:
        logger.warning("%s: instance masks unreadable (%s); PxAP leaves this image out", png, e)
        return None


_CLASS_SPLIT_FLAGS = {"-1", "0", "1"}


def split_ids(text: str) -> list[str]:
    """The image ids of a split file, one per line and read whole (ids may hold spaces),
    except in VOC's per-class files (``aeroplane_train.txt``), where every line ends
    with a -1/0/1 flag after the id."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    flagged = all(len(ln.split()) > 1 and ln.split()[-1] in _CLASS_SPLIT_FLAGS for ln in lines)
    return [ln.rsplit(maxsplit=1)[0].strip() for ln in lines] if lines and flagged else lines


def load_voc(
    root: str | Path, split: str, classes: list[str] | None = None, limit: int | None = None
) -> Dataset:
    """Read a VOC-layout dataset.

    Args:
        root: folder holding ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/``.
        split: split file name (``ImageSets/Main/<split>.txt``).
        classes: fixes the class order; default: sorted names found in the split, or
            the 20 VOC classes when all names found are VOC classes.
        limit: keep only the first ``limit`` ids of the split.

    Image ids are the 1-based position in the split file. Objects of a class outside
    ``classes`` raise an error naming it.
    """
    root = Path(root)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        avail = (
            sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt"))
            if (root / "ImageSets" / "Main").is_dir()
            else []
        )
        raise DataNotFoundError(
            f"VOC split file {split_file} not found"
            + (
                f"; splits here: {', '.join(avail)}"
                if avail
                else "; data.root must hold Annotations/, JPEGImages/ and ImageSets/Main/"
            )
        )
    ids = split_ids(split_file.read_text())
    if limit is not None:
        ids = ids[:limit]
    parsed: list[dict | None] = []
    failures = []
    for i, stem in enumerate(ids):
        xml_path = root / "Annotations" / f"{stem}.xml"
        try:
            parsed.append(parse_voc_xml(xml_path.read_text()))
        except (OSError, UnicodeDecodeError, AnnotationError) as e:
            # One bad annotation costs one image, not the run.
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            logger.warning("%s: %s; image skipped", xml_path, reason)
            failures.append(
                {"image_id": i + 1, "path": str(xml_path), "stage": "annotation", "reason": reason}
            )
            parsed.append(None)
    names = sorted({o["name"] for p in parsed if p for o in p["objects"]})
    if classes is None:
        classes = list(VOC_CLASSES) if set(names) <= set(VOC_CLASSES) else names
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise AnnotationError(
            f"classes {unknown} appear in {split_file.name} but not in data.classes={classes}"
        )
    samples = []
    fixed = 0
    for i, (stem, p) in enumerate(zip(ids, parsed, strict=True)):
        if p is None:
            continue
        objs = p["objects"]
        raw = np.array([o["box"] for o in objs], np.float64).reshape(-1, 4)
        boxes, keep = sanitize_boxes(raw, p["height"], p["width"])
        fixed += int(((boxes != raw).any(1) | ~keep).sum())
        segs = _instance_masks(root / "SegmentationObject" / f"{stem}.png", len(objs))
        objs = [o for o, k in zip(objs, keep, strict=True) if k]
        box_labels = np.array([index[o["name"]] for o in objs], np.int64)
        path = _find_image(root / "JPEGImages", stem, p["filename"])
        samples.append(
            Sample(
                image_id=i + 1,
                path=str(path),
                file_name=path.name,
                height=p["height"],
                width=p["width"],
                labels=np.unique(box_labels),
                boxes=boxes[keep],
                box_labels=box_labels,
                ignore=np.array([o["difficult"] for o in objs], bool),
                segmentations=[g for g, k in zip(segs, keep, strict=True) if k] if segs else None,
            )
        )
    if fixed:
        logger.warning(
            "%s: %d GT boxes were outside the image (clipped) or empty (dropped)",
            split_file.name,
            fixed,
        )
    masks = [root / "SegmentationObject" / f"{stem}.png" for stem in ids]
    return Dataset(
        name=f"voc:{root.name}/{split}",
        classes=list(classes),
        samples=samples,
        category_ids=list(range(1, len(classes) + 1)),
        failures=failures,
        sources=[str(split_file)]
        + [str(root / "Annotations" / f"{stem}.xml") for stem in ids]
        + [str(m) for m in masks if m.is_file()],
    )
