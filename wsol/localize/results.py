"""What localization produces: boxes per (image, class), with the map and cut behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wsol.localize.maps import PreparedMaps


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4))


@dataclass
class Detections:
    """Boxes ``[N, 4]`` (xyxy, original pixels) and scores ``[N]`` for one (image, class),
    best first.

    ``largest`` ``[0 or 1, 4]`` is the box of the largest component at the cut, before
    any filter, merge or NMS (the box GT-known and Top-1 Loc score). ``reason`` says
    why there are no boxes when the map was unusable (constant, NaN, Inf) or no
    component passed the filters.
    """

    boxes: np.ndarray
    scores: np.ndarray
    reason: str | None = None
    largest: np.ndarray = field(default_factory=_no_boxes)

    @classmethod
    def empty(cls, reason: str | None = None) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros((0,)), reason)

    def scaled(self, sx: float, sy: float) -> Detections:
        """The same detections with boxes scaled by ``sx`` along x and ``sy`` along y."""
        s = np.array([sx, sy, sx, sy])
        return Detections(self.boxes * s, self.scores, self.reason, self.largest * s)


@dataclass
class ClassResult:
    """What localization produced for one (image, dataset class)."""

    dataset_class: int
    prob: float
    detections: Detections
    norm_map: np.ndarray | None  # [h, w] min-max normalized map (None if unusable)
    cut: float  # the operating threshold on ``norm_map``
    # Original pixels per map pixel along (x, y): 1 unless the image was larger than
    # boxes.max_side. Detections are in original pixels; norm_map in map pixels.
    scale: tuple[float, float] = (1.0, 1.0)
    raw_map: np.ndarray | None = None  # the method's map before upsampling, if kept
    model_class: int = -1  # the model class whose map this is (see wsol.cams.targets)

    def to_map(self, boxes: np.ndarray) -> np.ndarray:
        """Original-pixel boxes ``[N, 4]`` in ``norm_map`` pixels (IoU is unchanged by a
        per-axis scaling, so sweeps can compare there)."""
        if self.scale == (1.0, 1.0):
            return boxes
        sx, sy = self.scale
        return boxes / np.array([sx, sy, sx, sy])


@dataclass
class ImageResult:
    """All maps of one image of size ``(H, W)``: the dataset-class probabilities ``[D]``
    and one :class:`ClassResult` per target class."""

    size: tuple[int, int]
    probs: np.ndarray
    classes: list[ClassResult] = field(default_factory=list)

    @property
    def targets(self) -> list[int]:
        """The dataset classes that got a map, in target order."""
        return [c.dataset_class for c in self.classes]


@dataclass
class MapBatch:
    """A batch after the device stage, on the host: each image's prepared maps, the
    target classes ``chosen [B, K]`` (dataset classes, -1 for none) and ``model_targets
    [B, K]``, the class probabilities ``[B, C]``, the raw maps when kept, and the
    original and localization sizes."""

    prepared: list[PreparedMaps]
    chosen: np.ndarray
    model_targets: np.ndarray
    probs: np.ndarray
    raw: np.ndarray | None
    sizes: list[tuple[int, int]]
    loc_sizes: list[tuple[int, int]]
    # per image, the boxes found on the device: (boxes [K, 4], scores [K], empty [K])
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None


def found_detections(boxes: np.ndarray, scores: np.ndarray, empty: np.ndarray, j: int):
    """Map ``j``'s largest-component box found on the device, as the host's
    :func:`~wsol.localize.components.detect` would return it."""
    if empty[j]:
        return Detections.empty("no pixel above the threshold")
    box = boxes[j : j + 1].astype(np.float64)
    return Detections(box, scores[j : j + 1].astype(np.float64), None, box.copy())
