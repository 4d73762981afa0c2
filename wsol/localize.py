"""From maps to boxes: upsample, normalize, threshold, connected components.

Maps stay on the device through upsampling, normalization and thresholding; only the
normalized map of each (image, class) leaves it, for the connected-components step
(cv2, 8-connectivity), which is per map by nature.

Boxes follow :mod:`wsol.boxes`: a component spanning pixel columns ``a..b`` gives
``x1 = a, x2 = b + 1``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

THRESHOLD_MODES = ("fraction", "absolute")
COMPONENT_MODES = ("largest", "all")
SCORE_MODES = ("mean", "max")


@dataclass
class Detections:
    """Boxes ``[N, 4]`` (xyxy, original pixels) and scores ``[N]`` for one (image, class).

    ``reason`` says why there are none when the map was unusable (constant, NaN, Inf).
    """

    boxes: np.ndarray
    scores: np.ndarray
    reason: str | None = None

    @classmethod
    def empty(cls, reason: str | None = None) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros((0,)), reason)


def upsample_by_size(maps: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Bilinearly resize each image's maps ``[K, h, w]`` to its ``(H, W)``.

    ``maps`` is ``[B, K, h, w]``; images of the same size are resized in one call. Uses
    ``align_corners=False`` so that pixel centres line up with the input's.
    """
    out: list[torch.Tensor | None] = [None] * len(sizes)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, s in enumerate(sizes):
        groups[tuple(s)].append(i)
    for size, idx in groups.items():
        up = F.interpolate(maps[idx].float(), size=size, mode="bilinear", align_corners=False)
        for j, i in enumerate(idx):
            out[i] = up[j]
    return out  # type: ignore[return-value]


def minmax_normalize(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-map min-max normalization of ``[..., H, W]`` to ``[0, 1]``.

    Returns ``(normalized, peak, ok)``: ``peak`` is the raw max ``[...]`` and ``ok``
    ``[...]`` is False for maps that are constant or hold NaN/Inf; those come back as
    zeros, never NaN.
    """
    flat = maps.flatten(-2)
    finite = torch.isfinite(flat).all(-1)
    safe = torch.where(torch.isfinite(flat), flat, torch.zeros((), device=flat.device))
    lo = safe.amin(-1)
    hi = safe.amax(-1)
    ok = finite & (hi > lo)
    span = torch.where(ok, hi - lo, torch.ones_like(hi))
    norm = (safe - lo[..., None]) / span[..., None]
    norm = torch.where(ok[..., None], norm, torch.zeros_like(norm)).clamp_(0.0, 1.0)
    return norm.view_as(maps), hi, ok


def normalized_threshold(mode: str, tau: float, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The cut on the min-max normalized map that implements threshold ``tau``.

    ``fraction``: keep raw values ``>= tau * max`` (the CAM / Grad-CAM papers' rule);
    ``absolute``: keep normalized values ``>= tau``.
    """
    if mode == "absolute":
        return torch.full_like(hi, float(tau))
    if mode == "fraction":
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return ((tau * hi - lo) / span).clamp(0.0, 1.0)
    raise ValueError(f"unknown boxes.threshold_mode {mode!r}; valid: {', '.join(THRESHOLD_MODES)}")


def component_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask ``[H, W]``.

    Returns ``(boxes [N, 4] xyxy, areas [N] in pixels, labels [H, W] int32)``;
    component ``n`` has label ``n + 1`` in ``labels``.
    """
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8, copy=False), connectivity=8, ltype=cv2.CV_32S)
    st = stats[1:].astype(np.float64)
    boxes = np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1)
    return boxes.reshape(-1, 4), st[:, 4], labels


def select_components(areas: np.ndarray, components: str, min_area_px: float) -> np.ndarray:
    """Indices of the components to keep: the largest (first on ties), or all above
    ``min_area_px``."""
    if len(areas) == 0:
        return np.zeros((0,), np.int64)
    if components == "largest":
        return np.array([int(np.argmax(areas))])
    if components == "all":
        return np.flatnonzero(areas >= min_area_px)
    valid = ", ".join(COMPONENT_MODES)
    raise ValueError(f"unknown boxes.components {components!r}; valid: {valid}")


def boxes_at(norm_map: np.ndarray, cut: float, components: str = "largest",
             min_area_px: float = 0.0) -> np.ndarray:
    """Boxes ``[N, 4]`` of the region ``norm_map >= cut`` (no scores; for sweeps)."""
    boxes, areas, _ = component_boxes(norm_map >= cut)
    return boxes[select_components(areas, components, min_area_px)]


def detect(norm_map: np.ndarray, cut: float, class_prob: float, components: str = "largest",
           min_area: float = 0.0, score: str = "mean") -> Detections:
    """Boxes and scores for one normalized map ``[H, W]`` at normalized threshold ``cut``.

    A box's score is the mean (or max) of the normalized map inside its component times
    the class probability. ``min_area`` is a fraction of the image area.
    """
    boxes, areas, labels = component_boxes(norm_map >= cut)
    keep = select_components(areas, components, min_area * norm_map.size)
    if len(keep) == 0:
        return Detections.empty("no pixel above the threshold")
    flat_labels = labels.ravel()
    if score == "mean":
        sums = np.bincount(flat_labels, weights=norm_map.ravel(), minlength=len(areas) + 1)
        stat = sums[1:] / np.maximum(areas, 1.0)
    elif score == "max":
        stat = np.zeros(len(areas) + 1)
        np.maximum.at(stat, flat_labels, norm_map.ravel())
        stat = stat[1:]
    else:
        raise ValueError(f"unknown boxes.score {score!r}; valid: {', '.join(SCORE_MODES)}")
    order = keep[np.argsort(-stat[keep], kind="stable")]
    return Detections(boxes[order], stat[order] * float(class_prob))
