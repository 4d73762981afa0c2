"""Box conventions, pinned in one place.

Inside wsol every box is ``(x1, y1, x2, y2)``: continuous, 0-based, float, in
original-image pixels. Pixel ``(i, j)`` covers the square ``[j, j + 1) x [i, i + 1)``,
so a box that exactly covers pixel columns ``a..b`` (inclusive) is ``x1 = a, x2 = b + 1``.

Formats at the edges of the program:

- COCO ``bbox``: ``[x, y, w, h]``, continuous, 0-based.
- PASCAL VOC XML: ``(xmin, ymin, xmax, ymax)``, 1-based and inclusive, so
  ``(xmin - 1, ymin - 1, xmax, ymax)`` is the continuous box.
- YOLO label files: ``(cx, cy, w, h)``, centre and size as fractions of the image.
- Label Studio rectangles: ``(x, y, width, height)``, top-left corner and size in percent
  of the image.

IoU is computed on continuous boxes (no ``+1`` on widths). All functions here are pure
and work on ``numpy`` arrays of shape ``[N, 4]``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "box_area",
    "box_iou",
    "clip_boxes",
    "coco_to_percent",
    "coco_to_xyxy",
    "coco_to_yolo",
    "group_boxes",
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


def coco_to_yolo(boxes, height: int, width: int) -> np.ndarray:
    """COCO ``[N, 4]`` ``(x, y, w, h)`` in pixels of a ``height`` x ``width`` image ->
    YOLO ``(cx, cy, w, h)``, fractions of the image clipped to ``[0, 1]``."""
    b = _as_boxes(boxes)
    scale = np.array([width, height, width, height], np.float64)
    centred = np.concatenate([b[:, :2] + b[:, 2:] / 2, b[:, 2:]], axis=1)
    return np.clip(centred / scale, 0.0, 1.0)


def coco_to_percent(boxes, height: int, width: int) -> np.ndarray:
    """COCO ``[N, 4]`` ``(x, y, w, h)`` in pixels of a ``height`` x ``width`` image ->
    Label Studio's ``(x, y, width, height)`` in percent of the image, clipped to
    ``[0, 100]``."""
    b = _as_boxes(boxes)
    scale = np.array([width, height, width, height], np.float64)
    return np.clip(100.0 * b / scale, 0.0, 100.0)


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


def _intersection_wh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return rb - lt  # [N, M, 2]; a side <= 0 means the boxes do not overlap


def _min_label_components(adjacent: np.ndarray) -> np.ndarray:
    """Connected components of a symmetric boolean graph ``[G, G]``: each node gets the
    smallest node index of its component (label propagation to a fixed point)."""
    n = len(adjacent)
    label = np.arange(n)
    linked = adjacent | np.eye(n, dtype=bool)
    while True:
        new = np.where(linked, label[None, :], n).min(axis=1)
        if np.array_equal(new, label):
            return label
        label = new


def group_boxes(boxes, mode: str) -> np.ndarray:
    """Which boxes ``[N, 4]`` (xyxy) merge together: a group id ``[N]`` in ``0..G-1``,
    numbered in order of each group's first box.

    - ``nested``: a box inside another box joins the largest box that contains it (on
      ties, the earliest); boxes inside no other box stay apart. Identical boxes group.
      The group's union is its outermost box.
    - ``overlap``: boxes whose intersection has positive area group together, to a fixed
      point: groups whose union boxes overlap are joined until none do. Boxes that only
      touch along an edge stay apart.
    """
    b = _as_boxes(boxes)
    n = len(b)
    if n == 0:
        return np.zeros(0, np.int64)
    if mode == "nested":
        # inside[i, j]: box i lies within box j.
        inside = (b[None, :, :2] <= b[:, None, :2]).all(-1) & (
            b[:, None, 2:] <= b[None, :, 2:]
        ).all(-1)
        area = box_area(b)
        idx = np.arange(n)
        # j dominates i: j contains i and is larger, or identical and earlier.
        dominates = inside & (
            (area[None, :] > area[:, None])
            | ((area[None, :] == area[:, None]) & (idx[None, :] < idx[:, None]))
        )
        # The root is the largest dominating box, earliest on ties; it is dominated by none.
        key = np.where(dominates, area[None, :], -np.inf)
        best = key.max(axis=1, keepdims=True)
        root = np.where(dominates & (key == best), idx[None, :], n).min(axis=1)
        root = np.where(dominates.any(axis=1), root, idx)
        return np.unique(root, return_inverse=True)[1].astype(np.int64)
    if mode == "overlap":
        group = np.arange(n)
        while True:
            ids, inv = np.unique(group, return_inverse=True)
            union = np.empty((len(ids), 4))
            union[:, :2] = np.inf
            union[:, 2:] = -np.inf
            np.minimum.at(union[:, :2], inv, b[:, :2])
            np.maximum.at(union[:, 2:], inv, b[:, 2:])
            wh = _intersection_wh(union, union)
            overlap = (wh > 0).all(-1)
            np.fill_diagonal(overlap, False)
            if not overlap.any():
                return inv.astype(np.int64)
            group = _min_label_components(overlap)[inv]
    raise ValueError(f"unknown merge mode {mode!r}; valid: nested, overlap")
