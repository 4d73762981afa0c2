"""Box conventions, pinned in one place.

Inside wsol every box is ``(x1, y1, x2, y2)``: continuous, 0-based, float, in
original-image pixels. Pixel ``(i, j)`` covers the square ``[j, j + 1) x [i, i + 1)``,
so a box that exactly covers pixel columns ``a..b`` (inclusive) is ``x1 = a, x2 = b + 1``.

Formats at the edges of the program:

- COCO ``bbox``: ``[x, y, w, h]``, continuous, 0-based.
- PASCAL VOC XML: ``(xmin, ymin, xmax, ymax)``, 1-based and inclusive, so
  ``(xmin - 1, ymin - 1, xmax, ymax)`` is the continuous box.

All functions here are pure and work on ``numpy`` arrays of shape ``[N, 4]``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "box_area",
    "box_iou",
    "clip_boxes",
    "coco_to_xyxy",
    "mask_extent_to_xyxy",
    "voc_to_xyxy",
    "xyxy_to_coco",
    "xyxy_to_voc",
]


def _as_boxes(boxes) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape [N, 4], got {arr.shape}")
    return arr


def voc_to_xyxy(boxes) -> np.ndarray:
    """VOC ``[N, 4]`` 1-based inclusive ``(xmin, ymin, xmax, ymax)`` -> continuous xyxy."""
    b = _as_boxes(boxes).copy()
    b[:, :2] -= 1.0
    return b


def xyxy_to_voc(boxes) -> np.ndarray:
    """Continuous xyxy ``[N, 4]`` -> VOC 1-based inclusive integer corners.

    Fractional corners are widened outward to the pixels they touch, so the VOC box
    always covers the continuous one.
    """
    b = _as_boxes(boxes)
    out = np.empty_like(b)
    out[:, :2] = np.floor(b[:, :2]) + 1.0
    out[:, 2:] = np.ceil(b[:, 2:])
    return out.astype(np.int64)


def coco_to_xyxy(boxes) -> np.ndarray:
    """COCO ``[N, 4]`` ``(x, y, w, h)`` -> continuous xyxy."""
    b = _as_boxes(boxes).copy()
    b[:, 2:] += b[:, :2]
    return b


def xyxy_to_coco(boxes) -> np.ndarray:
    """Continuous xyxy ``[N, 4]`` -> COCO ``(x, y, w, h)``."""
    b = _as_boxes(boxes).copy()
    b[:, 2:] -= b[:, :2]
    return b


def mask_extent_to_xyxy(x_min, y_min, x_max, y_max) -> np.ndarray:
    """Inclusive pixel extents of a region -> the continuous box that covers it."""
    return np.array([x_min, y_min, x_max + 1.0, y_max + 1.0], dtype=np.float64)


def clip_boxes(boxes, height: int, width: int) -> np.ndarray:
    """Clip continuous xyxy boxes ``[N, 4]`` to the image ``[0, width] x [0, height]``."""
    b = _as_boxes(boxes).copy()
    b[:, 0::2] = b[:, 0::2].clip(0.0, width)
    b[:, 1::2] = b[:, 1::2].clip(0.0, height)
    return b


def box_area(boxes) -> np.ndarray:
    """Areas ``[N]`` of continuous xyxy boxes; degenerate boxes have area 0."""
    b = _as_boxes(boxes)
    return (b[:, 2] - b[:, 0]).clip(min=0.0) * (b[:, 3] - b[:, 1]).clip(min=0.0)


def box_iou(boxes1, boxes2) -> np.ndarray:
    """Pairwise IoU ``[N, M]`` of continuous xyxy boxes.

    No ``+1`` is added to widths: boxes are continuous, unlike the inclusive-pixel
    convention of the VOC devkit. Two empty boxes have IoU 0, never NaN.
    """
    a = _as_boxes(boxes1)
    b = _as_boxes(boxes2)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clip(min=0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou
