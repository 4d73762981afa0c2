"""What localization produces: boxes per (image, class), with the map and cut behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wsol.localize.maps import PreparedMaps
from wsol.localize.to_host import HostCopies


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


@dataclass(frozen=True)
class SweepLevels:
    """A map's levels for a threshold sweep: ``levels [h, w]``, how many of the ascending
    ``thresholds [T]`` each pixel reaches (:func:`wsol.localize.cut.levels_of`)."""

    levels: np.ndarray
    thresholds: np.ndarray

    def matches(self, thresholds: np.ndarray) -> bool:
        """Whether these levels are for ``thresholds``."""
        return self.thresholds is thresholds or np.array_equal(self.thresholds, thresholds)


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
    # the map's levels for the evaluators' sweep, when the Localizer was asked for them
    sweep: SweepLevels | None = None

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


class MapBatch:
    """A batch after the device stage (:meth:`wsol.localize.Localizer.maps`).

    Its arrays may still be on their way from the device; reading any of the properties
    below (or :meth:`wait`, which :meth:`~wsol.localize.Localizer.boxes_for` calls)
    blocks until they are here. ``sizes`` and ``loc_sizes`` are the original and
    localization sizes; ``sweep`` the thresholds whose levels were made, if any.

    Args:
        copies: the tensors on their way (:class:`~wsol.localize.to_host.HostCopies`):
            ``chosen``, ``model_targets``, ``probs``, ``raw`` and, per canvas ``c``,
            ``norm{c}``, ``levels{c}``, ``cuts{c}``, ``problems{c}``, ``boxes{c}``,
            ``scores{c}`` and ``empty{c}`` (None where not made).
        layout: per canvas, the batch positions of its images and their localization
            sizes.
    """

    def __init__(
        self,
        sizes: list[tuple[int, int]],
        loc_sizes: list[tuple[int, int]],
        copies: HostCopies,
        layout: list[tuple[list[int], list[tuple[int, int]]]],
        sweep: np.ndarray | None = None,
        boxes_on_device: bool = False,
    ):
        self.sizes, self.loc_sizes, self.sweep = sizes, loc_sizes, sweep
        self._copies: HostCopies | None = copies
        self._layout, self._on_device = layout, boxes_on_device
        self._got: dict = {}

    def wait(self) -> MapBatch:
        """Wait for the device's copies (once) and lay them out per image."""
        if self._copies is None:
            return self
        got, self._copies = self._copies.wait(), None
        prepared: list[PreparedMaps | None] = [None] * len(self.sizes)
        found: list = [None] * len(self.sizes)
        for c, (index, sizes) in enumerate(self._layout):
            norm, levels = got[f"norm{c}"], got[f"levels{c}"]
            boxes, scores, empty = got[f"boxes{c}"], got[f"scores{c}"], got[f"empty{c}"]
            for j, (i, (h, w)) in enumerate(zip(index, sizes, strict=True)):
                prepared[i] = PreparedMaps(
                    # a kept map is a copy: it must not pin the whole canvas
                    norm[j, :, :h, :w].copy() if norm is not None else None,
                    got[f"cuts{c}"][j],
                    got[f"problems{c}"][j],
                    levels[j, :, :h, :w] if levels is not None else None,
                )
                if boxes is not None:
                    found[i] = (boxes[j], scores[j], empty[j])
        self._got = {
            "prepared": prepared,
            "found": found if self._on_device else None,
            **{k: got[k] for k in ("chosen", "model_targets", "probs", "raw")},
        }
        return self

    @property
    def prepared(self) -> list[PreparedMaps]:
        """Per image, its maps after the device stage."""
        return self.wait()._got["prepared"]

    @property
    def chosen(self) -> np.ndarray:
        """``[B, K]``: the target dataset classes, -1 for none."""
        return self.wait()._got["chosen"]

    @property
    def model_targets(self) -> np.ndarray:
        """``[B, K]``: the model classes whose maps these are."""
        return self.wait()._got["model_targets"]

    @property
    def probs(self) -> np.ndarray:
        """``[B, C]``: the dataset-class probabilities."""
        return self.wait()._got["probs"]

    @property
    def raw(self) -> np.ndarray | None:
        """``[B, K, h, w]``: the method's maps before upsampling, when kept."""
        return self.wait()._got["raw"]

    @property
    def found(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
        """Per image, the boxes found on the device: ``(boxes [K, 4], scores [K], empty
        [K])``; None when boxes are found on the host."""
        return self.wait()._got["found"]


def found_detections(boxes: np.ndarray, scores: np.ndarray, empty: np.ndarray, j: int):
    """Map ``j``'s largest-component box found on the device, as the host's
    :func:`~wsol.localize.components.detect` would return it."""
    if empty[j]:
        return Detections.empty("no pixel above the threshold")
    box = boxes[j : j + 1].astype(np.float64)
    return Detections(box, scores[j : j + 1].astype(np.float64), None, box.copy())
