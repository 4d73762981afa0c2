"""The host stage: 8-connected components of a thresholded map -> boxes and scores.

Components come from cv2 (8-connectivity), per map by nature. Boxes follow
:mod:`wsol.boxes`: a component spanning pixel columns ``a..b`` gives ``x1 = a,
x2 = b + 1``, in the map's pixels.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from wsol.boxes import box_iou, group_boxes
from wsol.errors import unknown_choice
from wsol.localize.cut import cut_mask, levels_of
from wsol.localize.results import Detections

logger = logging.getLogger(__name__)

COMPONENT_MODES = ("largest", "all")
SCORE_MODES = ("mean", "max")
MERGE_MODES = ("none", "nested", "overlap")
NO_COMPONENT = "no component of at least boxes.min_area"


def component_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask ``[H, W]``.

    Returns ``(boxes [N, 4] xyxy, areas [N] in pixels, labels [H, W] int32)``;
    component ``n`` has label ``n + 1`` in ``labels``, in cv2's order (raster order of
    each component's first pixel).
    """
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8, copy=False), connectivity=8, ltype=cv2.CV_32S
    )
    st = stats[1:].astype(np.float64)
    boxes = np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1)
    return boxes.reshape(-1, 4), st[:, 4], labels


def select_components(areas: np.ndarray, components: str, min_area_px: float) -> np.ndarray:
    """Indices of the components to keep: the largest (first on ties; ``min_area_px`` is
    not applied), or all of at least ``min_area_px`` pixels."""
    if len(areas) == 0:
        return np.zeros((0,), np.int64)
    if components == "largest":
        return np.array([int(np.argmax(areas))])
    if components == "all":
        return np.flatnonzero(areas >= min_area_px)
    raise ValueError(unknown_choice("boxes.components", components, COMPONENT_MODES))


def boxes_at(
    norm_map: np.ndarray, cut: float, components: str = "largest", min_area_px: float = 0.0
) -> np.ndarray:
    """Boxes ``[N, 4]`` of the region ``norm_map >= cut`` (no scores)."""
    boxes, areas, _ = component_boxes(cut_mask(norm_map, cut))
    return boxes[select_components(areas, components, min_area_px)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    A box is dropped when its IoU with a kept, higher-scoring box exceeds ``iou`` (the
    torchvision rule); ties in score keep the earlier box.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    ious = box_iou(boxes, boxes)
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= ious[i] > iou
    return np.asarray(keep, np.int64)


def detect(
    norm_map: np.ndarray,
    cut: float,
    class_prob: float,
    components: str = "largest",
    min_area: float = 0.0,
    score: str = "mean",
    merge: str = "none",
    nms_iou: float | None = None,
) -> Detections:
    """Boxes and scores for one normalized map ``[H, W]`` at normalized threshold ``cut``.

    Steps: 8-connected components of ``norm_map >= cut``; keep the largest, or all of at
    least ``min_area`` (a fraction of the image area); with ``components="all"``,
    optionally ``merge`` boxes nested in others or overlapping (see
    :func:`wsol.boxes.group_boxes`; a merged box covers its group's components); score
    each box by the mean (or max) of the normalized map over its components' pixels,
    times ``class_prob``; sort best first; optional NMS at ``nms_iou`` (None or 0: off).
    ``Detections.largest`` is the largest component's box whatever the filters (what
    GT-known and Top-1 Loc score).
    """
    if score not in SCORE_MODES:
        raise ValueError(unknown_choice("boxes.score", score, SCORE_MODES))
    if merge not in MERGE_MODES:
        raise ValueError(unknown_choice("boxes.merge", merge, MERGE_MODES))
    boxes, areas, labels = component_boxes(cut_mask(norm_map, cut))
    largest = boxes[select_components(areas, "largest", 0.0)]
    keep = select_components(areas, components, min_area * norm_map.size)
    if len(keep) == 0:
        empty = Detections.empty(NO_COMPONENT if len(areas) else "no pixel above the threshold")
        empty.largest = largest
        return empty
    flat_labels = labels.ravel()
    if score == "mean":
        stat = np.bincount(flat_labels, weights=norm_map.ravel(), minlength=len(areas) + 1)[1:]
    else:
        stat = np.zeros(len(areas) + 1)
        np.maximum.at(stat, flat_labels, norm_map.ravel())
        stat = stat[1:]
    boxes, areas, stat = boxes[keep], areas[keep], stat[keep]
    if components == "all" and merge != "none" and len(keep) > 1:
        group = group_boxes(boxes, merge)  # [N] group id, 0..G-1
        n = int(group.max()) + 1
        merged = np.empty((n, 4))
        merged[:, :2] = np.inf
        merged[:, 2:] = -np.inf
        np.minimum.at(merged[:, :2], group, boxes[:, :2])
        np.maximum.at(merged[:, 2:], group, boxes[:, 2:])
        if score == "mean":
            stat = np.bincount(group, weights=stat, minlength=n)
        else:
            pooled = np.zeros(n)
            np.maximum.at(pooled, group, stat)
            stat = pooled
        areas = np.bincount(group, weights=areas, minlength=n)
        boxes = merged
    if score == "mean":
        stat = stat / np.maximum(areas, 1.0)  # sums -> means over the pixels
    order = np.argsort(-stat, kind="stable")
    boxes, stat = boxes[order], stat[order]
    if nms_iou and len(boxes) > 1:
        kept = nms(boxes, stat, nms_iou)
        boxes, stat = boxes[kept], stat[kept]
    return Detections(boxes, stat * float(class_prob), largest=largest)


@dataclass
class SweepComponents:
    """Every 8-connected component of ``norm_map >= tau`` for each tau of a sweep.

    ``boxes [M, 4]`` xyxy and ``areas [M]`` (pixels); ``index [M]`` is the tau each
    belongs to, nondecreasing, and within one tau components come in cv2's label order.
    """

    boxes: np.ndarray
    areas: np.ndarray
    index: np.ndarray
    num_thresholds: int

    def largest(self) -> np.ndarray:
        """Per tau, the position in ``boxes`` of its largest component (first on ties),
        or -1 where the region is empty: ``[T]`` int64."""
        out = np.full(self.num_thresholds, -1, np.int64)
        if len(self.areas):
            order = np.lexsort((np.arange(len(self.areas)), -self.areas, self.index))
            first = np.r_[True, self.index[order][1:] != self.index[order][:-1]]
            out[self.index[order][first]] = order[first]
        return out


def sweep_components(
    norm_map: np.ndarray | None, thresholds: np.ndarray, levels: np.ndarray | None = None
) -> SweepComponents:
    """All components of ``norm_map [H, W] >= tau`` for each tau in ``thresholds [T]``:
    exactly what :func:`component_boxes` gives at each tau, in cv2's label order.

    ``levels [H, W]`` (:func:`wsol.localize.cut.levels_of` of the map at the
    ascending ``thresholds``, e.g. computed on the model's device) replaces the map.
    One pass over the pixels feeds every tau (:mod:`wsol.localize.component_tree`, three
    to five times faster than labelling each tau's mask) once it is compiled; until
    then (see :func:`prepare_sweep`) or without numba each level's mask is labelled
    (:func:`label_levels`), and thresholds that do not ascend go to
    :func:`sweep_by_labelling`. All give the same arrays.
    """
    taus = np.asarray(thresholds, np.float64).reshape(-1)
    if levels is None:
        if not (len(taus) < 2 or bool(np.all(np.diff(taus) > 0))):
            return sweep_by_labelling(norm_map, taus)
        levels = levels_of(norm_map, taus)
    tree = _compiled_sweep
    if tree is None:
        prepare_sweep()
        return label_levels(levels, len(taus))
    st, index = tree(levels, len(taus))
    return SweepComponents(st[:, :4], st[:, 4], index, len(taus))


_compiled_sweep = None  # the component tree's sweep, once compiled or loaded from cache
_sweep_loader: threading.Thread | None = None
_sweep_lock = threading.Lock()


def prepare_sweep() -> threading.Thread:
    """Import and compile the component tree (or load it from numba's cache, under a
    second) on a daemon thread, once per process; sweeps label each tau until it is
    ready, with the same results. The first run on a machine compiles for about 10 s,
    so a scoring run starts this early (:func:`wsol.run.build.plan_run`)."""
    global _sweep_loader
    with _sweep_lock:
        if _sweep_loader is None:
            _sweep_loader = threading.Thread(target=_load_sweep, name="wsol-sweep", daemon=True)
            _sweep_loader.start()
    return _sweep_loader


def _load_sweep() -> None:
    global _compiled_sweep
    try:
        # imported here: numba's import and compilation are for runs that score
        from wsol.localize.component_tree import sweep_levels, sweep_tree

        if sweep_tree is not None:
            # 100 thresholds: levels in uint8, the type a run's sweep compiles for
            sweep_tree(np.zeros((2, 2), np.float32), np.arange(100) / 100)
            _compiled_sweep = sweep_levels
    except Exception as e:  # a broken numba: every sweep labels each threshold instead
        logger.warning("the component tree did not compile (%s); sweeps label each threshold", e)


def sweep_by_labelling(norm_map: np.ndarray, thresholds: np.ndarray) -> SweepComponents:
    """:func:`sweep_components` by one cv2 labelling per tau (the reference), for
    thresholds in any order: each tau's region is ``norm_map >= tau``
    (:func:`wsol.localize.cut.cut_mask`'s rule, through the map's levels at the sorted
    thresholds), labelled by :func:`label_levels`."""
    taus = np.asarray(thresholds, np.float64).reshape(-1)
    order = np.argsort(taus, kind="stable")
    comps = label_levels(levels_of(norm_map, taus[order]), len(taus))
    if np.array_equal(order, np.arange(len(taus))):
        return comps
    back = order[comps.index]  # each component's tau in the caller's order
    perm = np.argsort(back, kind="stable")
    return SweepComponents(comps.boxes[perm], comps.areas[perm], back[perm], len(taus))


def label_levels(levels: np.ndarray, num_thresholds: int) -> SweepComponents:
    """:func:`sweep_components` from a map's levels by one cv2 labelling per threshold:
    tau_j's region is ``levels > j``.

    Each mask is first cropped to the rows and columns holding a pixel of it (from the
    row and column maxima of the levels, for all taus at once), so the labelling touches
    fewer pixels as tau rises; taus above the map's maximum are skipped; boxes are
    assembled once at the end. cv2's 8-connected labeller numbers components by the 2x2
    pixel blocks they first touch, so crops start on even rows and columns: the blocks,
    hence the label order and the ties of :func:`select_components`, are those of the
    whole map.
    """
    levels = np.asarray(levels)
    h, w = levels.shape
    t = np.arange(num_thresholds)[:, None]
    rows = levels.max(axis=1, initial=0)[None, :] > t  # [T, H]
    cols = levels.max(axis=0, initial=0)[None, :] > t  # [T, W]
    y0, y1 = rows.argmax(1) & ~1, h - rows[:, ::-1].argmax(1)  # & ~1: even, see above
    x0, x1 = cols.argmax(1) & ~1, w - cols[:, ::-1].argmax(1)
    present = np.flatnonzero(rows.any(1))
    if len(present) == 0:
        return SweepComponents(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), num_thresholds)
    stats, counts = [], np.empty(len(present), np.int64)
    for k, j in enumerate(present):
        crop = levels[y0[j] : y1[j], x0[j] : x1[j]] > j
        n, _, st, _ = cv2.connectedComponentsWithStats(
            crop.view(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        stats.append(st[1:])
        counts[k] = n - 1
    st = np.concatenate(stats).astype(np.float64)  # [M, 5]: left, top, width, height, area
    index = np.repeat(present, counts)
    st[:, 0] += x0[index]  # back from crop to image coordinates
    st[:, 1] += y0[index]
    boxes = np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1)
    return SweepComponents(boxes, st[:, 4], index, num_thresholds)
