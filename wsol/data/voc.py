"""PASCAL VOC layout: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``.

The two folders may have other names (``data.ann_dir``, ``data.image_dir``), and the
split file may be absent: then every annotation file is read (:func:`voc_ids`).

VOC XML boxes are 1-based and inclusive; they are converted to continuous 0-based xyxy
on reading. ``difficult`` objects are kept and marked ignored for scoring. Class names
come from the XML, so any VOC-format dataset works, however many classes it has.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from wsol.boxes import voc_to_xyxy, xyxy_to_voc
from wsol.data.base import (
    AnnotationError,
    DataNotFoundError,
    Dataset,
    Sample,
    dropped_box_warnings,
    sanitize_boxes,
)
from wsol.errors import guesses, plain_reason, quote
from wsol.readfile import InputFileError, read_text

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


class _ImageFolder:
    """Finds an annotation's image in the image folder. The extension's case does not
    matter (``x.JPG`` for ``<filename>x.jpg</filename>``, as cameras write them), as in
    folder datasets; the folder is listed once, on the first name not found as given."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._by_stem: dict[tuple[str, str], str] | None = None

    def _listing(self) -> dict[tuple[str, str], str]:
        if self._by_stem is None:
            names = sorted(os.listdir(self.folder)) if self.folder.is_dir() else []
            self._by_stem = {}
            for n in names:
                self._by_stem.setdefault((Path(n).stem, Path(n).suffix.lower()), n)
        return self._by_stem

    def find(self, stem: str, filename: str | None) -> Path:
        if filename and (self.folder / filename).exists():
            return self.folder / filename
        for suffix in _IMAGE_SUFFIXES:
            if (self.folder / f"{stem}{suffix}").exists():
                return self.folder / f"{stem}{suffix}"
        wanted = [filename] if filename and "/" not in filename else []
        wanted += [f"{stem}{suffix}" for suffix in _IMAGE_SUFFIXES]
        listing = self._listing()
        for name in wanted:
            found = listing.get((Path(name).stem, Path(name).suffix.lower()))
            if found is not None:
                return self.folder / found
        return self.folder / (filename or f"{stem}.jpg")  # missing: a per-image failure later


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` stays inside ``root`` by its name (no ``..`` or absolute part
    leads out); a symlink in the user's tree is their layout, so links are not resolved."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root))


def _relative_name(path: Path, image_root: Path) -> str:
    """The image's name relative to the image folder (its COCO ``file_name``)."""
    try:
        return path.relative_to(image_root).as_posix()
    except ValueError:
        return path.name


def _instance_masks(png: Path, num_objects: int) -> list | None:
    """RLE masks from ``SegmentationObject/<stem>.png`` when it exists (for PxAP)."""
    if not png.is_file():
        return None
    from wsol.data.masks import voc_instance_segmentations

    try:
        return voc_instance_segmentations(png, num_objects)
    except (OSError, ValueError) as e:
        why = plain_reason(str(e), str(png))
        logger.warning("%s: instance masks unreadable (%s); PxAP leaves this image out", png, why)
        return None


_CLASS_SPLIT_FLAGS = {"-1", "0", "1"}


def split_ids(text: str) -> list[str]:
    """The image ids of a split file, one per line and read whole (ids may hold spaces),
    except in VOC's per-class files (``aeroplane_train.txt``), where every line ends
    with a -1/0/1 flag after the id."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    flagged = all(len(ln.split()) > 1 and ln.split()[-1] in _CLASS_SPLIT_FLAGS for ln in lines)
    return [ln.rsplit(maxsplit=1)[0].strip() for ln in lines] if lines and flagged else lines


def voc_ids(root: Path, split: str, ann_dir: str = "Annotations") -> tuple[list[str], Path | None]:
    """The image ids (annotation stems) a VOC-layout dataset lists, and the split file
    they came from.

    ``ImageSets/Main/<split>.txt`` when it exists. Without it, every ``<ann_dir>/*.xml``
    (sorted by name) when ``split`` is empty or the dataset has no ``ImageSets/Main``
    folder at all, as sets shipped as ``images/`` + ``annots/`` do; then the file is
    None. A split named but missing among other split files is an error (a typo, most
    likely), naming the splits there.
    """
    split_dir = root / "ImageSets" / "Main"
    split_file = split_dir / f"{split}.txt"
    if split and split_file.exists():  # (a FIFO or a folder is refused, not waited on)
        try:
            return split_ids(read_text(split_file)), split_file
        except InputFileError as e:
            raise AnnotationError(f"{split_file}: {e}") from None
    avail = sorted(p.stem for p in split_dir.glob("*.txt")) if split_dir.is_dir() else []
    if split and avail:
        raise DataNotFoundError(
            f"VOC split file {split_file} not found; splits here: {', '.join(avail)} "
            '(data.split="" uses every annotation file)'
        )
    if not (root / ann_dir).is_dir():
        raise DataNotFoundError(
            f"no {ann_dir}/ folder in {root}: data.root must hold the VOC annotations "
            "(set data.ann_dir and data.image_dir if they have other names)"
        )
    return sorted(p.stem for p in (root / ann_dir).glob("*.xml") if p.is_file()), None


def load_voc(
    root: str | Path,
    split: str,
    classes: list[str] | None = None,
    limit: int | None = None,
    image_dir: str = "JPEGImages",
    ann_dir: str = "Annotations",
    allow_outside_root: bool = False,
) -> Dataset:
    """Read a VOC-layout dataset.

    Args:
        root: folder holding ``<ann_dir>/`` (the XML files), ``<image_dir>/`` and,
            optionally, ``ImageSets/Main/``.
        split: split file name (``ImageSets/Main/<split>.txt``); see :func:`voc_ids`
            for datasets without one.
        classes: fixes the class order; default: sorted names found in the split, or
            the 20 VOC classes when all names found are VOC classes.
        limit: keep only the first ``limit`` ids of the split.
        image_dir, ann_dir: the image and annotation folders, relative to ``root``.
        allow_outside_root: read annotation files that a split line names outside
            ``root`` (``../x``); else each is a recorded failure, as images are.

    Image ids are the 1-based position in the split file (or in the sorted list of
    annotation files); an id listed again is read once (a warning). Objects of a class
    outside ``classes`` raise an error naming it. A GT box with no area (swapped
    corners, NaN, outside the image) is dropped with a warning naming the file; the
    image keeps its class as an image-level label.
    """
    root = Path(root)
    ids, split_file = voc_ids(root, split, ann_dir)
    listing = split_file.name if split_file else f"{ann_dir}/"
    if limit is not None:
        ids = ids[:limit]
    parsed: list[dict | None] = []
    failures: list[dict] = []
    warnings: list[dict] = []
    first: dict[str, int] = {}
    for i, stem in enumerate(ids):
        xml_path = root / ann_dir / f"{stem}.xml"
        problem = None  # (the list it goes to, stage, reason), for an image not read
        if stem in first:
            logger.warning("%s lists %r twice; it is read once", listing, stem)
            why = f"listed again in {listing} (image {first[stem]}); read once"
            problem = (warnings, "split", why)
        elif not allow_outside_root and not _inside(xml_path, root):
            logger.info("%s: outside data.root; image skipped", xml_path)
            why = "outside data.root (data.allow_outside_root=true allows it)"
            problem = (failures, "path", why)
        else:
            first[stem] = i + 1
            try:
                parsed.append(parse_voc_xml(read_text(xml_path)))
                continue
            except (InputFileError, AnnotationError) as e:
                # One bad annotation costs one image, not the run.
                logger.info("%s: %s; image skipped", xml_path, e)
                problem = (failures, "annotation", str(e))
        into, stage, reason = problem
        into.append({"image_id": i + 1, "path": str(xml_path), "stage": stage, "reason": reason})
        parsed.append(None)
    names = sorted({o["name"] for p in parsed if p for o in p["objects"]})
    if classes is None:
        classes = list(VOC_CLASSES) if set(names) <= set(VOC_CLASSES) else names
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise AnnotationError(
            f"classes {quote(unknown)} appear in {listing} but not in data.classes="
            f"{quote(classes)}{guesses(unknown, classes)}"
        )
    samples = []
    clipped: list[str] = []
    images = _ImageFolder(root / image_dir)
    for i, (stem, p) in enumerate(zip(ids, parsed, strict=True)):
        if p is None:
            continue
        objs = p["objects"]
        raw = np.array([o["box"] for o in objs], np.float64).reshape(-1, 4)
        boxes, keep = sanitize_boxes(raw, p["height"], p["width"])
        xml_path = str(root / ann_dir / f"{stem}.xml")
        warnings += dropped_box_warnings(i + 1, xml_path, raw, keep, [o["name"] for o in objs])
        if ((boxes != raw).any(1) & keep).any():
            clipped.append(xml_path)
        segs = _instance_masks(root / "SegmentationObject" / f"{stem}.png", len(objs))
        all_labels = np.array([index[o["name"]] for o in objs], np.int64)
        objs = [o for o, k in zip(objs, keep, strict=True) if k]
        box_labels = np.array([index[o["name"]] for o in objs], np.int64)
        path = images.find(stem, p["filename"])
        samples.append(
            Sample(
                image_id=i + 1,
                path=str(path),
                file_name=_relative_name(path, root / image_dir),
                height=p["height"],
                width=p["width"],
                labels=np.unique(all_labels),
                boxes=boxes[keep],
                box_labels=box_labels,
                ignore=np.array([o["difficult"] for o in objs], bool),
                segmentations=[g for g, k in zip(segs, keep, strict=True) if k] if segs else None,
            )
        )
    for w in warnings:
        if w["stage"] == "annotation":
            logger.warning("%s: %s", w["path"], w["reason"])
    if clipped:
        logger.warning(
            "%s: GT boxes partly outside the image were clipped to it in %d files (e.g. %s)",
            listing,
            len(clipped),
            clipped[0],
        )
    masks = [root / "SegmentationObject" / f"{stem}.png" for stem in first]
    return Dataset(
        name=f"voc:{root.name}/{split_file.stem if split_file else 'all'}",
        classes=list(classes),
        samples=samples,
        category_ids=list(range(1, len(classes) + 1)),
        failures=failures,
        sources=([str(split_file)] if split_file else [])
        + [str(root / ann_dir / f"{stem}.xml") for stem in first]
        + [str(m) for m in masks if m.is_file()],
        warnings=warnings,
    )
