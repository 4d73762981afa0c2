"""From maps to boxes: upsample, normalize, threshold, connected components.

Maps stay on the device through upsampling, normalization and thresholding; only the
normalized map of each (image, class) leaves it, for the connected-components step
(cv2, 8-connectivity), which is per map by nature.

Boxes follow :mod:`wsol.boxes`: a component spanning pixel columns ``a..b`` gives
``x1 = a, x2 = b + 1``. Every threshold below is a cut on the min-max normalized map:
a pixel belongs to the region when ``norm >= cut``, compared in float64 (a float32 map
against a float64 cut), so the operating threshold, the sweep and the calibrated cuts
draw the same regions for the same tau.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from wsol.boxes import box_iou, group_boxes

THRESHOLD_MODES = ("fraction", "absolute", "otsu")
COMPONENT_MODES = ("largest", "all")
SCORE_MODES = ("mean", "max")
MERGE_MODES = ("none", "nested", "overlap")
OTSU_BINS = 256

# Why a map gave no box; ``map_problems`` returns an index into this tuple.
MAP_OK, MAP_CONSTANT, MAP_NONFINITE = 0, 1, 2
MAP_REASONS = (None, "map is constant", "map has NaN or Inf values")
NO_COMPONENT = "no component of at least boxes.min_area"


@dataclass
class Detections:
    """Boxes ``[N, 4]`` (xyxy, original pixels) and scores ``[N]`` for one (image, class),
    best first.

    ``reason`` says why there are none when the map was unusable (constant, NaN, Inf)
    or no component passed the filters.
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


def smooth_maps(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``maps [B, K, h, w]`` with standard deviation ``sigma`` times the
    map's long side (separable, reflect-padded, on the maps' device).

    Pixel-level saliency (guided backprop, gradients) is a scatter of edges; a blur of a
    few percent of the image turns it into regions (on the demo, guided backprop's PxAP
    goes from 0.68 to 0.82 at ``sigma=0.03``). NaN/Inf spread, so an unusable map stays
    unusable.
    """
    if sigma <= 0:
        return maps
    b, k, h, w = maps.shape
    s = sigma * max(h, w)
    radius = max(1, min(int(3 * s + 0.5), max(h, w) - 1))
    x = torch.arange(-radius, radius + 1, device=maps.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / s) ** 2)
    flat = maps.float().reshape(b * k, 1, h, w)

    def cut(pad: int) -> torch.Tensor:
        # Reflect padding needs pad < size, so a tiny map keeps the middle of the kernel
        # that fits, renormalized so that a constant map stays constant.
        part = kernel[radius - pad:radius + pad + 1]
        return part / part.sum()

    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
    if pad_w:
        flat = F.conv2d(F.pad(flat, (pad_w, pad_w, 0, 0), mode="reflect"),
                        cut(pad_w).view(1, 1, 1, -1))
    if pad_h:
        flat = F.conv2d(F.pad(flat, (0, 0, pad_h, pad_h), mode="reflect"),
                        cut(pad_h).view(1, 1, -1, 1))
    return flat.reshape(b, k, h, w)


def map_problems(maps: torch.Tensor) -> torch.Tensor:
    """Per map of ``[..., H, W]``: ``MAP_OK``, ``MAP_CONSTANT`` or ``MAP_NONFINITE``
    (int64 ``[...]``); ``MAP_REASONS[code]`` is the message."""
    flat = maps.flatten(-2)
    finite = torch.isfinite(flat).all(-1)
    span = flat.amax(-1) - flat.amin(-1)
    code = torch.where(span > 0, MAP_OK, MAP_CONSTANT)
    return torch.where(finite, code, MAP_NONFINITE)


def minmax_normalize(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-map min-max normalization of ``[..., H, W]`` to ``[0, 1]``.

    Returns ``(normalized, peak, ok)``: ``peak`` is the raw max ``[...]`` (0 for maps
    that are not ok) and ``ok`` ``[...]`` is False for maps that are constant or hold
    NaN/Inf; those come back as zeros, never NaN. A usable map's maximum normalizes to
    exactly 1.0.
    """
    norm, _lo, hi, ok = _minmax(maps)
    return norm, hi, ok


def _minmax(maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(normalized, lo, hi, ok)`` in three passes over the maps (min and max together,
    subtract, divide): NaN propagates through min and max and an Inf lands in them, so a
    non-finite ``lo`` or ``hi`` is how a NaN/Inf map shows. Not-ok maps are zeros and get
    ``lo = hi = 0``. No clamp is needed: rounding is monotone, so ``x <= hi`` gives
    ``(x - lo) / (hi - lo) <= 1`` exactly."""
    flat = maps.flatten(-2)
    lo, hi = torch.aminmax(flat, dim=-1)
    ok = torch.isfinite(lo) & torch.isfinite(hi) & (hi > lo)
    all_ok = bool(ok.all())
    if not all_ok:
        lo = torch.where(ok, lo, torch.zeros_like(lo))
        hi = torch.where(ok, hi, torch.zeros_like(hi))
    span = torch.where(ok, hi - lo, torch.ones_like(hi))
    norm = flat.sub(lo[..., None]).div_(span[..., None])
    if not all_ok:
        norm.masked_fill_(~ok[..., None], 0.0)
    return norm.view_as(maps), lo, hi, ok


def otsu_cut(norm: torch.Tensor, bins: int = OTSU_BINS) -> torch.Tensor:
    """Otsu's threshold (Otsu 1979) of each normalized map ``[..., H, W]``, as a cut ``[...]``.

    The histogram has ``bins`` equal bins on ``[0, 1]`` (pixel ``v`` in bin
    ``floor(v * bins)``, 1.0 in the last), as cv2 does for 8-bit images. The split ``t``
    maximizes the between-class variance ``w0 w1 (mu0 - mu1)^2``, the first on ties; the
    foreground is bins ``> t``, returned as the smallest normalized value in them, so
    ``norm >= cut`` selects exactly those pixels. Batched, on the maps' device.
    """
    flat = norm.flatten(-2)
    idx = (flat * bins).long().clamp_(0, bins - 1)
    hist = torch.zeros((*flat.shape[:-1], bins), dtype=torch.float64, device=flat.device)
    hist.scatter_add_(-1, idx, torch.ones_like(flat, dtype=torch.float64))
    p = hist / flat.shape[-1]
    w0 = p.cumsum(-1)  # weight of the background (bins <= t)
    level = torch.arange(bins, dtype=torch.float64, device=flat.device)
    m0 = (p * level).cumsum(-1)
    mt = m0[..., -1:]
    w1 = 1.0 - w0
    # A split with an empty class has no between-class variance (guards 0/0).
    valid = (w0 > 1e-12) & (w1 > 1e-12)
    denom = torch.where(valid, w0 * w1, torch.ones_like(w0))
    between = torch.where(valid, (mt * w0 - m0) ** 2 / denom, torch.zeros_like(w0))
    t = between.argmax(-1, keepdim=True)
    above = torch.where(idx > t, flat, torch.full_like(flat, float("inf")))
    cut = above.amin(-1)
    return torch.where(torch.isfinite(cut), cut, torch.ones_like(cut)).view(norm.shape[:-2])


def normalized_threshold(mode: str, tau: float | torch.Tensor, lo: torch.Tensor,
                         hi: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
    """The cut ``[...]`` (float64) on the min-max normalized map that implements ``tau``.

    ``lo`` and ``hi`` are the raw maps' min and max ``[...]``; ``tau`` is a number or a
    tensor broadcastable to them (per-class calibrated cuts).

    - ``fraction``: keep raw values ``>= tau * max`` (the CAM / Grad-CAM papers' rule);
    - ``absolute``: keep normalized values ``>= tau``;
    - ``otsu``: Otsu's cut of each normalized map ``norm [..., H, W]`` (``tau`` unused).
    """
    # Cuts are float64 so that tau = 0.29 stays 0.29 and cuts the map exactly where the
    # float64 sweep does (float32 would round it to 0.28999999).
    lo, hi = lo.double(), hi.double()
    tau_t = torch.as_tensor(tau, dtype=torch.float64, device=hi.device)
    if mode == "absolute":
        return torch.broadcast_to(tau_t, hi.shape).clone()
    if mode == "fraction":
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return ((tau_t * hi - lo) / span).clamp(0.0, 1.0)
    if mode == "otsu":
        if norm is None:
            raise ValueError("boxes.threshold_mode=otsu needs the normalized maps")
        return otsu_cut(norm).double()
    raise ValueError(f"unknown boxes.threshold_mode {mode!r}; valid: {', '.join(THRESHOLD_MODES)}")


@dataclass
class PreparedMaps:
    """One image's maps after the device stage, on the host: normalized maps
    ``[K, H, W]`` (float32), their cuts ``[K]`` (float64) and ``problems [K]``
    (``MAP_OK`` or the index of the reason in ``MAP_REASONS``)."""

    norm: np.ndarray
    cuts: np.ndarray
    problems: np.ndarray


def resample_region(maps: torch.Tensor, size: tuple[int, int],
                    region: tuple[float, float]) -> torch.Tensor:
    """Bilinearly resample the top-left ``region = (fy, fx)`` fraction of ``maps
    [G, K, h, w]`` to ``size = (H, W)``.

    Samples output pixel centres like ``F.interpolate(..., align_corners=False)`` (edge
    values repeat), of which it is the ``region == (1, 1)`` case. Used for letterboxed
    inputs, where only that part of the map covers the image.
    """
    g, _, _, _ = maps.shape
    h_out, w_out = size
    fy, fx = region
    ys = (torch.arange(h_out, device=maps.device, dtype=torch.float32) + 0.5) * (2 * fy / h_out)
    xs = (torch.arange(w_out, device=maps.device, dtype=torch.float32) + 0.5) * (2 * fx / w_out)
    grid = torch.stack(torch.meshgrid(ys - 1, xs - 1, indexing="ij")[::-1], dim=-1)
    return F.grid_sample(maps, grid.expand(g, h_out, w_out, 2), mode="bilinear",
                         padding_mode="border", align_corners=False)


def prepare_maps(maps: torch.Tensor, sizes: list[tuple[int, int]], mode: str,
                 tau: float | torch.Tensor,
                 regions: list[tuple[float, float]] | None = None) -> list[PreparedMaps]:
    """The device stage for a batch: upsample ``maps [B, K, h, w]`` to each image's
    ``(H, W)``, min-max normalize, cut, then copy to the host once per image size.
    A map that is constant, NaN or Inf before upsampling is flagged and zeroed.

    ``tau`` is a number or a ``[B, K]`` tensor of per-map thresholds (calibrated cuts).
    ``regions``: per image, the ``(fy, fx)`` top-left fraction of the input that holds the
    image (letterboxing); only that part of each map is resampled.
    Images of the same size are processed as one tensor, so the number of device calls
    and transfers does not grow with the batch.
    """
    out: list[PreparedMaps | None] = [None] * len(sizes)
    regions = regions or [(1.0, 1.0)] * len(sizes)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (s, r) in enumerate(zip(sizes, regions, strict=True)):
        groups[(tuple(s), tuple(r))].append(i)
    for (size, region), idx in groups.items():
        low = maps[idx].float()
        # Judge the maps as computed: interpolation weights do not sum to exactly 1, so a
        # constant map can come out of upsampling as rounding noise that min-max
        # normalization would blow up to [0, 1].
        problems = map_problems(low)
        if region == (1.0, 1.0):
            up = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        else:
            up = resample_region(low, size, region)
        norm, lo, hi, ok = _minmax(up)  # [G, K, H, W], [G, K] x 3
        problems = torch.where((problems == MAP_OK) & ~ok, MAP_CONSTANT, problems)
        bad = problems != MAP_OK
        if bool(bad.any()):
            norm.masked_fill_(bad[..., None, None], 0.0)
        t = tau[idx] if isinstance(tau, torch.Tensor) else tau
        cuts = normalized_threshold(mode, t, lo, hi, norm)
        norm_h, cuts_h, prob_h = norm.cpu().numpy(), cuts.cpu().numpy(), problems.cpu().numpy()
        for j, i in enumerate(idx):  # copies: a kept map must not pin the whole group
            out[i] = PreparedMaps(norm_h[j].copy(), cuts_h[j].copy(), prob_h[j].copy())
    return out  # type: ignore[return-value]


def component_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask ``[H, W]``.

    Returns ``(boxes [N, 4] xyxy, areas [N] in pixels, labels [H, W] int32)``;
    component ``n`` has label ``n + 1`` in ``labels``, in cv2's order (raster order of
    each component's first pixel).
    """
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8, copy=False), connectivity=8, ltype=cv2.CV_32S)
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
    valid = ", ".join(COMPONENT_MODES)
    raise ValueError(f"unknown boxes.components {components!r}; valid: {valid}")


def boxes_at(norm_map: np.ndarray, cut: float, components: str = "largest",
             min_area_px: float = 0.0) -> np.ndarray:
    """Boxes ``[N, 4]`` of the region ``norm_map >= cut`` (no scores)."""
    boxes, areas, _ = component_boxes(norm_map >= np.float64(cut))
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


def detect(norm_map: np.ndarray, cut: float, class_prob: float, components: str = "largest",
           min_area: float = 0.0, score: str = "mean", merge: str = "none",
           nms_iou: float | None = None) -> Detections:
    """Boxes and scores for one normalized map ``[H, W]`` at normalized threshold ``cut``.

    Steps: 8-connected components of ``norm_map >= cut``; keep the largest, or all of at
    least ``min_area`` (a fraction of the image area); with ``components="all"``,
    optionally ``merge`` boxes nested in others or overlapping (see
    :func:`wsol.boxes.group_boxes`; a merged box covers its group's components); score
    each box by the mean (or max) of the normalized map over its components' pixels,
    times ``class_prob``; sort best first; optional NMS at ``nms_iou`` (None or 0: off).
    """
    if score not in SCORE_MODES:
        raise ValueError(f"unknown boxes.score {score!r}; valid: {', '.join(SCORE_MODES)}")
    if merge not in MERGE_MODES:
        raise ValueError(f"unknown boxes.merge {merge!r}; valid: {', '.join(MERGE_MODES)}")
    boxes, areas, labels = component_boxes(norm_map >= np.float64(cut))
    keep = select_components(areas, components, min_area * norm_map.size)
    if len(keep) == 0:
        return Detections.empty(NO_COMPONENT if len(areas) else "no pixel above the threshold")
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
    return Detections(boxes, stat * float(class_prob))


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


def sweep_components(norm_map: np.ndarray, thresholds: np.ndarray) -> SweepComponents:
    """All components of ``norm_map [H, W] >= tau`` for each tau in ``thresholds [T]``.

    Exactly what :func:`component_boxes` gives at each tau, but cheaper: each tau's mask
    is first cropped to the rows and columns holding a pixel ``>= tau`` (from the row and
    column maxima, for all taus at once), so the labelling touches fewer pixels as tau
    rises; taus above the map's maximum are skipped; boxes are assembled once at the end.
    Cropping keeps the raster order of the pixels, so the label order (and the ties of
    :func:`select_components`) is unchanged.
    """
    taus = np.asarray(thresholds, np.float64).reshape(-1)
    h, w = norm_map.shape
    rows = norm_map.max(axis=1)[None, :] >= taus[:, None]  # [T, H]
    cols = norm_map.max(axis=0)[None, :] >= taus[:, None]  # [T, W]
    y0, y1 = rows.argmax(1), h - rows[:, ::-1].argmax(1)
    x0, x1 = cols.argmax(1), w - cols[:, ::-1].argmax(1)
    present = np.flatnonzero(rows.any(1))
    if len(present) == 0:
        return SweepComponents(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), len(taus))
    stats, counts = [], np.empty(len(present), np.int64)
    for k, j in enumerate(present):
        crop = norm_map[y0[j]:y1[j], x0[j]:x1[j]] >= taus[j]
        n, _, st, _ = cv2.connectedComponentsWithStats(crop.view(np.uint8), connectivity=8,
                                                       ltype=cv2.CV_32S)
        stats.append(st[1:])
        counts[k] = n - 1
    st = np.concatenate(stats).astype(np.float64)  # [M, 5]: left, top, width, height, area
    index = np.repeat(present, counts)
    st[:, 0] += x0[index]  # back from crop to image coordinates
    st[:, 1] += y0[index]
    boxes = np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1)
    return SweepComponents(boxes, st[:, 4], index, len(taus))
