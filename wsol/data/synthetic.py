"""Procedural shapes on clutter: the embedded dataset behind ``wsol demo``.

Every image is a pure function of ``(seed, split, index)``, so a split can be rendered
in any order, in parallel, and always comes out the same. Objects are drawn with a gap
between them so that each one is its own connected region, and each comes with an
instance mask from which its box is taken.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsol.boxes import mask_extent_to_xyxy, xyxy_to_coco
from wsol.data.voc import voc_xml

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")


@dataclass(frozen=True)
class ShapeSpec:
    """How the generator draws objects; the defaults are the demo's."""

    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: float = 22.0
    max_size: float = 48.0
    gap: int = 4


@dataclass
class RenderedImage:
    image: np.ndarray  # uint8 [H, W, 3], BGR
    labels: np.ndarray  # int64 [N] class indices into SHAPES
    masks: np.ndarray  # bool [N, H, W] instance masks
    boxes: np.ndarray  # float64 [N, 4] continuous xyxy, tight around each mask


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour gradient + blurred noise texture + thin clutter strokes and dots."""
    c0, c1 = rng.uniform(30, 220, size=(2, 3))
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * t + np.sin(angle) * t.transpose(1, 0, 2)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    img = c0 * (1 - ramp) + c1 * ramp
    noise = rng.normal(0, 1, size=(size // 4, size // 4, 3)).astype(np.float32)
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    img = img + 18.0 * noise + rng.normal(0, 6, size=(size, size, 3))
    img = img.clip(0, 255).astype(np.uint8)
    for _ in range(rng.integers(6, 14)):
        p = rng.integers(0, size, size=4)
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), color, 1, cv2.LINE_AA)
    for _ in range(rng.integers(10, 30)):
        p = rng.integers(0, size, size=2)
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cv2.circle(img, (int(p[0]), int(p[1])), int(rng.integers(1, 3)), color, -1)
    return img


def _polygon(center, radius, angle, unit: np.ndarray) -> np.ndarray:
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = unit @ rot.T * radius + np.asarray(center)
    return np.round(pts * 16).astype(np.int32)  # 4 fractional bits for cv2


def _regular(n: int) -> np.ndarray:
    a = np.arange(n) * 2 * np.pi / n
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _star() -> np.ndarray:
    a = np.arange(10) * np.pi / 5
    r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _cross() -> np.ndarray:
    w = 0.33
    return np.array(
        [
            [-w, -1],
            [w, -1],
            [w, -w],
            [1, -w],
            [1, w],
            [w, w],
            [w, 1],
            [-w, 1],
            [-w, w],
            [-1, w],
            [-1, -w],
            [-w, -w],
        ],
        dtype=np.float64,
    )


_UNITS = {
    "square": _regular(4) * np.sqrt(2) / 1.15,
    "triangle": _regular(3) * 1.1,
    "star": _star() * 1.1,
    "cross": _cross(),
}


def _shape_mask(kind: str, size: int, center, diameter: float, angle: float) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    radius = diameter / 2
    c16 = (round(center[0] * 16), round(center[1] * 16))
    if kind == "circle":
        cv2.circle(mask, c16, round(radius * 16), 1, -1, cv2.LINE_8, 4)
    elif kind == "ring":
        cv2.circle(mask, c16, round(radius * 16), 1, -1, cv2.LINE_8, 4)
        cv2.circle(mask, c16, round(radius * 0.55 * 16), 0, -1, cv2.LINE_8, 4)
    else:
        pts = _polygon(center, radius, angle, _UNITS[kind])
        cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _object_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(140, 256), rng.integers(120, 256)]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def render(seed: int, split: str, index: int, spec: ShapeSpec = ShapeSpec()) -> RenderedImage:
    """Render one image of the split; deterministic in ``(seed, split, index)``."""
    rng = _rng(seed, split, index)
    size = spec.image_size
    img = _background(rng, size).astype(np.float32)
    occupied = np.zeros((size, size), np.uint8)
    kernel = np.ones((2 * spec.gap + 1, 2 * spec.gap + 1), np.uint8)
    labels, masks = [], []
    wanted = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    for _ in range(wanted * 12):
        if len(labels) == wanted:
            break
        kind = int(rng.integers(len(SHAPES)))
        diameter = rng.uniform(spec.min_size, spec.max_size)
        margin = diameter / 2 + 1
        center = rng.uniform(margin, size - margin, size=2)
        mask = _shape_mask(SHAPES[kind], size, center, diameter, rng.uniform(0, 2 * np.pi))
        if not mask.any() or (occupied[mask] > 0).any():
            continue
        occupied |= cv2.dilate(mask.astype(np.uint8), kernel)
        shade = 1.0 + 0.12 * cv2.resize(
            rng.normal(0, 1, size=(8, 8)).astype(np.float32), (size, size)
        )
        img[mask] = (_object_color(rng)[None, :] * shade[mask][:, None]).clip(0, 255)
        labels.append(kind)
        masks.append(mask)
    masks_arr = np.stack(masks) if masks else np.zeros((0, size, size), bool)
    boxes = np.zeros((len(masks), 4))
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[i] = mask_extent_to_xyxy(xs.min(), ys.min(), xs.max(), ys.max())
    return RenderedImage(img.astype(np.uint8), np.asarray(labels, np.int64), masks_arr, boxes)


def write_dataset(
    root: str | Path,
    splits: dict[str, int],
    seed: int = 0,
    spec: ShapeSpec = ShapeSpec(),
) -> Path:
    """Write the shapes dataset in VOC layout under ``root`` and return ``root``.

    Layout: ``JPEGImages/``, ``Annotations/`` (VOC XML), ``ImageSets/Main/<split>.txt``,
    ``SegmentationObject/`` and ``SegmentationClass/`` (PNG, VOC palette indices), and
    ``annotations/instances_<split>.json`` (COCO, RLE masks). COCO image ids are the
    1-based position in the split file, matching what the VOC reader assigns.
    """
    from pycocotools import mask as mask_utils

    root = Path(root)
    for sub in (
        "JPEGImages",
        "Annotations",
        "ImageSets/Main",
        "SegmentationObject",
        "SegmentationClass",
        "annotations",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPES)]
    for split, count in splits.items():
        names, images, anns = [], [], []
        for index in range(count):
            name = f"{split}_{index:05d}"
            r = render(seed, split, index, spec)
            h, w = r.image.shape[:2]
            cv2.imwrite(
                str(root / "JPEGImages" / f"{name}.jpg"), r.image, [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
            (root / "Annotations" / f"{name}.xml").write_text(
                voc_xml(
                    f"{name}.jpg",
                    h,
                    w,
                    [SHAPES[k] for k in r.labels],
                    r.boxes,
                    folder="wsol-shapes",
                )
            )
            inst = np.zeros((h, w), np.uint8)
            cls = np.zeros((h, w), np.uint8)
            for k, (label, m) in enumerate(zip(r.labels, r.masks, strict=True)):
                inst[m] = k + 1
                cls[m] = label + 1
            cv2.imwrite(str(root / "SegmentationObject" / f"{name}.png"), inst)
            cv2.imwrite(str(root / "SegmentationClass" / f"{name}.png"), cls)
            image_id = index + 1
            names.append(name)
            images.append({"id": image_id, "file_name": f"{name}.jpg", "height": h, "width": w})
            for label, m, box in zip(r.labels, r.masks, xyxy_to_coco(r.boxes), strict=True):
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": image_id,
                        "category_id": int(label) + 1,
                        "bbox": [float(v) for v in box],
                        "area": float(m.sum()),
                        "segmentation": rle,
                        "iscrowd": 0,
                    }
                )
        (root / "ImageSets/Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
        coco = {"images": images, "annotations": anns, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return root
