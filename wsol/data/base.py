"""What every dataset reader produces: a class list and a list of samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wsol.boxes import box_area, clip_boxes, xyxy_to_coco
from wsol.errors import WsolError


class DataError(WsolError):
    """A dataset that cannot be read as configured."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset folder or annotation file that does not exist."""


class AnnotationError(DataError, ValueError):
    """An annotation file that cannot be read."""


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float64)


def _no_ints() -> np.ndarray:
    return np.zeros((0,), np.int64)


def _no_flags() -> np.ndarray:
    return np.zeros((0,), bool)


@dataclass
class Sample:
    """One image and its ground truth.

    Attributes:
        image_id: the integer id used in COCO output (unique within the dataset).
        path: where the image file is.
        file_name: the name written into COCO ``images``.
        height, width: the size the annotation declares (``None`` if unknown).
        labels: image-level class indices ``[L]`` (into ``Dataset.classes``), sorted.
        boxes: ``[N, 4]`` continuous 0-based xyxy GT boxes in original pixels.
        box_labels: ``[N]`` class index of each box.
        ignore: ``[N]`` boxes scoring ignores (VOC ``difficult``, COCO ``iscrowd``).
        segmentations: per box, a COCO polygon list or RLE dict, or ``None``.
        left_out: names of this image's GT classes that :meth:`Dataset.restrict_classes`
            left out (``model.skip_unmapped``: the model's class map has no entry).
    """

    image_id: int
    path: str
    file_name: str
    height: int | None = None
    width: int | None = None
    labels: np.ndarray = field(default_factory=_no_ints)
    boxes: np.ndarray = field(default_factory=_no_boxes)
    box_labels: np.ndarray = field(default_factory=_no_ints)
    ignore: np.ndarray = field(default_factory=_no_flags)
    segmentations: list | None = None
    left_out: tuple[str, ...] = ()


def sanitize_boxes(
    boxes: np.ndarray, height: int | None, width: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Clip GT boxes ``[N, 4]`` to the declared image size and flag the ones left with no
    area. Returns ``(clipped boxes, keep mask [N])``."""
    if height and width:
        boxes = clip_boxes(boxes, height, width)
    keep = box_area(boxes) > 0 if len(boxes) else np.zeros(0, bool)
    return boxes, keep


def box_problem(box: np.ndarray) -> str:
    """Why a GT box ``[4]`` (continuous xyxy, as read) was dropped by
    :func:`sanitize_boxes`: the words of a warning record."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.isfinite(box).all():
        return f"box ({x1}, {y1}, {x2}, {y2}) has a corner that is not a finite number"
    if x2 < x1 or y2 < y1:
        return f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has swapped corners (x2 < x1 or y2 < y1)"
    return f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has no area inside the image"


def dropped_box_warnings(
    image_id: int, path: str, raw: np.ndarray, keep: np.ndarray, names: list[str]
) -> list[dict]:
    """One warning record per GT box that :func:`sanitize_boxes` dropped: the file, the
    object's class and why. The image keeps the class as an image-level label."""
    return [
        {
            "image_id": image_id,
            "path": path,
            "stage": "annotation",
            "reason": f"{names[j]!r}: {box_problem(raw[j])}; box dropped, label kept",
        }
        for j in np.flatnonzero(~keep)
    ]


@dataclass
class Dataset:
    """A list of samples plus the class names their indices refer to.

    ``category_ids[c]`` is the COCO category id written for class ``c`` (the source
    ids for COCO data, COCO's official ids for a run with the ``imagenet_to_coco`` map,
    ``c + 1`` otherwise), ``supercategories[c]`` its COCO group where
    the source names one (empty: none). ``has_boxes`` says whether scoring is possible.
    """

    name: str
    classes: list[str]
    samples: list[Sample]
    category_ids: list[int]
    has_boxes: bool = True
    failures: list[dict] = field(default_factory=list)  # images dropped while reading labels
    # the annotation files read (split file, XMLs, masks, COCO JSON, labels file): what a
    # resumed run checks for changes, besides the images
    sources: list[str] = field(default_factory=list)
    supercategories: list[str] = field(default_factory=list)
    # what was read but looks wrong (a dropped GT box, an image listed twice): one record
    # per file, as failures are, written to warnings.jsonl by a run
    warnings: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def restrict_classes(self, keep: list[str]) -> Dataset:
        """A copy with only the classes in ``keep`` (in this dataset's order); boxes and
        labels of the other classes are dropped, images are all kept."""
        old = [i for i, c in enumerate(self.classes) if c in set(keep)]
        remap = np.full(len(self.classes), -1, np.int64)
        remap[old] = np.arange(len(old))
        samples = []
        for s in self.samples:
            k = remap[s.box_labels] >= 0 if len(s.box_labels) else np.zeros(0, bool)
            labels = remap[s.labels] if len(s.labels) else s.labels
            had = {*s.labels.tolist(), *s.box_labels.tolist()}
            gone = tuple(self.classes[c] for c in sorted(had) if remap[c] < 0)
            samples.append(
                Sample(
                    image_id=s.image_id,
                    path=s.path,
                    file_name=s.file_name,
                    height=s.height,
                    width=s.width,
                    labels=labels[labels >= 0],
                    boxes=s.boxes[k],
                    box_labels=remap[s.box_labels][k] if len(k) else s.box_labels,
                    ignore=s.ignore[k],
                    segmentations=(
                        [g for g, f in zip(s.segmentations, k, strict=True) if f]
                        if s.segmentations is not None
                        else None
                    ),
                    left_out=(*s.left_out, *gone),
                )
            )
        return Dataset(
            self.name,
            [self.classes[i] for i in old],
            samples,
            [self.category_ids[i] for i in old],
            self.has_boxes,
            self.failures,
            self.sources,
            [self.supercategories[i] for i in old] if self.supercategories else [],
            self.warnings,
        )

    def coco_categories(self) -> list[dict]:
        """COCO ``categories``: ``id`` and ``name``, and ``supercategory`` where known."""
        groups = self.supercategories or [""] * len(self.classes)
        return [
            {"id": cid, "name": n, **({"supercategory": g} if g else {})}
            for cid, n, g in zip(self.category_ids, self.classes, groups, strict=True)
        ]

    def to_coco(self) -> dict:
        """The ground truth as a COCO instances dict (ignored boxes become ``iscrowd=1``,
        which is how ``COCOeval`` leaves a region out of the score)."""
        images, anns = [], []
        for s in self.samples:
            images.append(
                {
                    "id": s.image_id,
                    "file_name": s.file_name,
                    "height": s.height or 0,
                    "width": s.width or 0,
                }
            )
            areas = box_area(s.boxes)
            for j, (box, label) in enumerate(zip(xyxy_to_coco(s.boxes), s.box_labels, strict=True)):
                ann = {
                    "id": len(anns) + 1,
                    "image_id": s.image_id,
                    "category_id": self.category_ids[int(label)],
                    "bbox": [float(v) for v in box],
                    "area": float(areas[j]),
                    "iscrowd": int(bool(s.ignore[j])),
                }
                if s.segmentations is not None and s.segmentations[j] is not None:
                    ann["segmentation"] = s.segmentations[j]
                anns.append(ann)
        return {"images": images, "annotations": anns, "categories": self.coco_categories()}
