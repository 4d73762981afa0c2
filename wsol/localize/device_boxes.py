"""Connected components and boxes of a batch of cut maps, on the maps' device.

The batched twin of :mod:`wsol.localize.components`: masks ``[N, H, W]`` (one per
(image, class) map; maps of images of other sizes sit on one padded canvas, see
:mod:`wsol.localize.canvas`) are labelled in one call. What a run needs from them, each
map's largest component with its box and score (:func:`largest_dense`), then comes from
one histogram of the labels and dense reductions over the maps: no Python loop over
masks or components, and no scatter of every foreground pixel into a few components
(atomic operations that contend on the same addresses, the old bottleneck on a GPU).
:func:`component_stats` gives every component (scatter reductions) for checks.

Conventions (those of :mod:`wsol.boxes` and of the host path):

- 8-connectivity; pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so a component
  spanning columns ``a..b`` and rows ``c..d`` has the box ``(a, c, b + 1, d + 1)``.
- Components come in **cv2's label order** within each mask, and masks in order. cv2's
  default 8-connected labeller (Spaghetti, built on 2x2 blocks) numbers components by the
  first 2x2 block (in raster order of blocks) that holds one of their pixels, *not* by
  their first pixel: in ``[[0, 0, 0, 1], [1, 0, 0, 0]]`` the pixel at row 1, column 0
  gets label 1. A 2x2 block lies in at most one 8-connected component, so the key
  ``(row // 2) * ceil(W / 2) + col // 2`` of a component's first block orders them
  uniquely; it is computed here, so the result does not depend on the labeller's order.
  Ties in area go to the first component in that order (the host's ``np.argmax``).
- Scores are those of :func:`wsol.localize.components.detect`: the mean (or max) of the
  normalized map over the component's *pixels* (not over its box), in float64, times
  the class probability. On the CPU the mean's sum runs in raster order, as the host's
  ``np.bincount`` does, so it is the same to the bit; on a GPU it is a tree reduction,
  which can differ in the last bit.

Labelling is :mod:`wsol.localize.labelling` (CuPy on a GPU, scipy or cv2 on the host).
"""

from __future__ import annotations

import torch

from wsol.errors import unknown_choice
from wsol.localize.cut import cut_masks
from wsol.localize.labelling import label_components

SCORE_MODES = ("mean", "max")


def _segment_sum(seg: torch.Tensor, src: torch.Tensor, count: int) -> torch.Tensor:
    """``out[s] = sum of src where seg == s``, ``[count]``, in ``src``'s dtype.

    On the CPU the sum runs in the order of ``src`` (``torch.bincount``'s sequential
    loop, as ``np.bincount`` on the host), so float64 sums match the host bit for bit.
    On CUDA it is a ``scatter_add_`` (atomics, no device sync): the order is not fixed,
    which only matters where a partial sum is not exactly representable.
    """
    if seg.device.type == "cpu":
        if src.is_floating_point():
            return torch.bincount(seg, weights=src, minlength=count).to(src.dtype)
        return torch.bincount(seg, minlength=count).to(src.dtype)
    return torch.zeros(count, dtype=src.dtype, device=seg.device).scatter_add_(0, seg, src)


def component_stats(
    labels: torch.Tensor, count: int, values: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Every component of a labelled batch ``labels [N, H, W]`` (from
    :func:`label_components`, ``count`` labels), on the labels' device.

    Returns a dict of ``[M]`` tensors (``M = count``), sorted by mask and, within a mask,
    in cv2's label order (see the module docstring), so that the rows of mask ``n`` are
    exactly ``wsol.localize.components.component_boxes(masks[n])`` in order:

    - ``index`` int64: which of the ``N`` masks holds the component (nondecreasing);
    - ``area`` int64: its number of pixels;
    - ``boxes`` float64 ``[M, 4]``: continuous xyxy ``(min col, min row, max col + 1,
      max row + 1)``;
    - ``order`` int64: the cv2 ordering key, ``index * B + first 2x2 block`` (``B`` =
      blocks per mask);
    - with ``values [N, H, W]`` (the normalized maps): ``sum`` float64, the sum of the
      values over the component's pixels (in raster order, as ``np.bincount`` adds
      them on the host), ``mean`` = ``sum / area`` and ``max`` float64 (the max of the
      values and 0, like the host's ``np.maximum.at`` on zeros).
    """
    if labels.ndim != 3:
        raise ValueError(f"expected labels [N, H, W], got shape {tuple(labels.shape)}")
    _, h, w = labels.shape
    dev = labels.device
    flat = labels.reshape(-1).long()
    # Foreground pixels in raster order (nonzero is sorted), so sums add as the host does.
    pix = torch.nonzero(flat, as_tuple=True)[0]
    lab = flat[pix] - 1
    mask_i, rest = torch.div(pix, h * w, rounding_mode="floor"), pix % (h * w)
    row, col = torch.div(rest, w, rounding_mode="floor"), rest % w
    blocks_w, blocks = (w + 1) // 2, ((h + 1) // 2) * ((w + 1) // 2)
    key = mask_i * blocks + torch.div(row, 2, rounding_mode="floor") * blocks_w
    key += torch.div(col, 2, rounding_mode="floor")

    def reduce(src: torch.Tensor, how: str) -> torch.Tensor:
        fill = torch.iinfo(torch.int64).max if how == "amin" else -1
        out = torch.full((count,), fill, dtype=torch.int64, device=dev)
        return out.scatter_reduce_(0, lab, src, how, include_self=False)

    area = _segment_sum(lab, torch.ones_like(lab), count)
    order = reduce(key, "amin")
    x1, y1 = reduce(col, "amin"), reduce(row, "amin")
    x2, y2 = reduce(col, "amax") + 1, reduce(row, "amax") + 1
    boxes = torch.stack([x1, y1, x2, y2], 1).double()
    stats = {"index": reduce(mask_i, "amin"), "area": area, "boxes": boxes, "order": order}
    if values is not None:
        if values.shape != labels.shape:
            raise ValueError(
                f"values {tuple(values.shape)} and labels {tuple(labels.shape)} differ"
            )
        v = values.reshape(-1)[pix].double()
        total = _segment_sum(lab, v, count)
        peak = torch.zeros(count, dtype=torch.float64, device=dev)
        peak.scatter_reduce_(0, lab, v, "amax", include_self=True)
        stats.update(sum=total, mean=total / area.clamp(min=1).double(), max=peak)
    perm = torch.argsort(order)
    return {k: t[perm] for k, t in stats.items()}


def largest_components(stats: dict[str, torch.Tensor], num_masks: int) -> torch.Tensor:
    """Per mask, the row in ``stats`` (from :func:`component_stats`) of its largest
    component, the first in cv2's order on ties (the host's ``np.argmax(areas)``), or -1
    for a mask with no component: int64 ``[num_masks]``."""
    index, area = stats["index"], stats["area"]
    dev = area.device
    best = torch.full((num_masks,), -1, dtype=torch.int64, device=dev)
    best.scatter_reduce_(0, index, area, "amax", include_self=True)
    rows = torch.arange(len(area), device=dev)
    big = torch.iinfo(torch.int64).max
    cand = torch.where(area == best[index], rows, torch.full_like(rows, big))
    first = torch.full((num_masks,), big, dtype=torch.int64, device=dev)
    first.scatter_reduce_(0, index, cand, "amin", include_self=True)
    return torch.where(first == big, torch.full_like(first, -1), first)


def largest_boxes(
    stats: dict[str, torch.Tensor],
    num_masks: int,
    score: str = "mean",
    class_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per mask, the largest component's box and score, batched.

    Returns ``(boxes float64 [N, 4] xyxy, scores float64 [N], empty bool [N])``; a mask
    with no pixel gets a zero box, score 0 and ``empty = True``. ``score`` is ``"mean"``
    or ``"max"`` of the values over the component's pixels (``stats`` must then hold
    them), times ``class_probs [N]`` when given. Equals, per mask, what
    ``wsol.localize.components.detect(norm, cut, prob, "largest", score=score)`` returns
    as its one box, ``Detections.largest`` and score (see :func:`detect_largest`).
    """
    if score not in SCORE_MODES:
        raise ValueError(unknown_choice("boxes.score", score, SCORE_MODES))
    pick = largest_components(stats, num_masks)
    empty = pick < 0
    safe = pick.clamp(min=0)
    boxes = stats["boxes"].new_zeros((num_masks, 4))
    scores = torch.zeros(num_masks, dtype=torch.float64, device=pick.device)
    if len(stats["area"]):
        boxes = torch.where(empty[:, None], boxes, stats["boxes"][safe])
        if score in stats:
            scores = torch.where(empty, scores, stats[score][safe])
    if class_probs is not None:
        # float64 like the host's ``stat * float(class_prob)``: float32 probs widen exactly.
        scores = scores * class_probs.to(device=scores.device, dtype=torch.float64)
    return boxes, scores, empty


def _block_keys(h: int, w: int, device: torch.device) -> torch.Tensor:
    """``[H * W]`` int32: each pixel's 2x2 block in raster order of blocks (cv2's order)."""
    rows = torch.arange(h, device=device, dtype=torch.int32).div_(2, rounding_mode="floor")
    cols = torch.arange(w, device=device, dtype=torch.int32).div_(2, rounding_mode="floor")
    return (rows[:, None] * ((w + 1) // 2) + cols[None, :]).reshape(-1)


def _first_true(rows: torch.Tensor) -> torch.Tensor:
    """``[N, L]`` bool -> ``[N]`` int64, the first True position (0 where none)."""
    return rows.to(torch.uint8).argmax(1)


def _masked_sums(values: torch.Tensor, sel: torch.Tensor, ordered: bool) -> torch.Tensor:
    """``[N]`` float64: per row of ``values [N, P]``, the sum over ``sel [N, P]``.
    ``ordered``: added one by one in raster order (the host's ``np.bincount``, bit for
    bit); else a dense reduction (a GPU's: no atomics, the last bit may differ)."""
    if ordered:
        rows = torch.nonzero(sel, as_tuple=True)[0]  # raster order
        picked = values[sel].double()
        return torch.bincount(rows, weights=picked, minlength=len(values)).double()
    return torch.where(sel, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum(
        1, dtype=torch.float64
    )


# Above this many labels a GPU histogram no longer fits in shared memory and adds into
# global memory, where every background pixel would hit one bin: spread them over many.
SPREAD_ABOVE = 4096
SPREAD_BINS = 1024


def component_areas(labels: torch.Tensor, count: int, spread: bool | None = None) -> torch.Tensor:
    """``[count + 1]`` int32: the pixels of each label of ``labels [P]`` (``0``:
    background, reported as 0), by one histogram.

    ``spread`` (default: on a GPU, past :data:`SPREAD_ABOVE` labels) counts background
    pixels into :data:`SPREAD_BINS` bins by position instead of one, so that a histogram
    in global memory has no single hot address; the areas are the same."""
    if spread is None:
        spread = labels.device.type == "cuda" and count + 1 > SPREAD_ABOVE
    if not spread:
        areas = torch.bincount(labels, minlength=count + 1).to(torch.int32)
    else:
        slot = torch.arange(len(labels), device=labels.device, dtype=labels.dtype) % SPREAD_BINS
        keys = torch.where(labels > 0, labels + (SPREAD_BINS - 1), slot)
        hist = torch.bincount(keys, minlength=count + SPREAD_BINS)
        areas = hist[SPREAD_BINS - 1 :].to(torch.int32)
    areas[0] = 0
    return areas


def largest_dense(
    labels: torch.Tensor,
    count: int,
    values: torch.Tensor | None = None,
    score: str = "mean",
    class_probs: torch.Tensor | None = None,
    ordered_sums: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per mask of a labelled batch ``labels [N, H, W]`` (from :func:`label_components`,
    ``count`` labels), its largest component's box and score, on the labels' device.

    One histogram of the labels gives every component's area; each pixel looks up its
    component's area, and per mask the largest area is a dense max. The chosen component
    is the one owning the first 2x2 block (cv2's order) among the pixels of largest
    components, so ties go where the host sends them. Its box and score are dense
    reductions of ``labels == chosen``: rows and columns that hold it, the sum (or max)
    of ``values [N, H, W]`` over it.

    Returns ``(boxes float64 [N, 4] xyxy, scores float64 [N], empty bool [N])`` as
    :func:`largest_boxes` does (``score`` and ``class_probs [N]`` likewise; without
    ``values`` the scores are 0). ``ordered_sums``: see :func:`_masked_sums`; default
    ordered on the CPU, dense elsewhere.
    """
    if score not in SCORE_MODES:
        raise ValueError(unknown_choice("boxes.score", score, SCORE_MODES))
    if labels.ndim != 3:
        raise ValueError(f"expected labels [N, H, W], got shape {tuple(labels.shape)}")
    n, h, w = labels.shape
    dev = labels.device
    if n == 0 or h * w == 0:
        zeros = torch.zeros(n, dtype=torch.float64, device=dev)
        return zeros.new_zeros((n, 4)), zeros, torch.ones(n, dtype=torch.bool, device=dev)
    flat = labels.reshape(n, h * w)
    areas = component_areas(flat.reshape(-1), count)
    pixel_area = areas.index_select(0, flat.reshape(-1)).view(n, h * w)  # each pixel's area
    best = pixel_area.amax(1)
    empty = best == 0
    big = torch.iinfo(torch.int32).max
    keys = _block_keys(h, w, dev)
    candidate = torch.where(
        (pixel_area == best[:, None]) & ~empty[:, None], keys[None, :], torch.full_like(keys, big)
    )
    first = candidate.argmin(1)
    chosen = flat.gather(1, first[:, None]).masked_fill_(empty[:, None], -1)  # [N, 1]
    sel = flat == chosen  # [N, HW]; -1 matches nothing
    grid = sel.view(n, h, w)
    rows, cols = grid.any(2), grid.any(1)
    y1, x1 = _first_true(rows), _first_true(cols)
    y2, x2 = h - _first_true(rows.flip(1)), w - _first_true(cols.flip(1))
    boxes = torch.stack([x1, y1, x2, y2], 1).double().masked_fill_(empty[:, None], 0.0)
    scores = torch.zeros(n, dtype=torch.float64, device=dev)
    if values is not None:
        if values.shape != labels.shape:
            raise ValueError(
                f"values {tuple(values.shape)} and labels {tuple(labels.shape)} differ"
            )
        v = values.reshape(n, h * w)
        if score == "mean":
            ordered = dev.type == "cpu" if ordered_sums is None else ordered_sums
            scores = _masked_sums(v, sel, ordered) / best.clamp(min=1).double()
        else:  # the max of the values and 0, as the host's np.maximum.at on zeros
            zero = torch.zeros((), dtype=v.dtype, device=dev)
            scores = torch.where(sel, v, zero).amax(1).double()
    if class_probs is not None:
        scores = scores * class_probs.to(device=dev, dtype=torch.float64)
    return boxes, scores, empty


def detect_largest(
    norm: torch.Tensor,
    cuts: torch.Tensor | float,
    class_probs: torch.Tensor | None = None,
    score: str = "mean",
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The largest component's box and score for each normalized map of ``norm
    [..., H, W]`` (float32, from :func:`wsol.localize.maps.minmax_normalize`) at its cut
    (``cuts [...]`` float64 or a number); ``class_probs [...]`` scales the scores.

    Returns ``(boxes float64 [..., 4], scores float64 [...], empty bool [...])``, the
    batched form of ``detect(norm_map, cut, class_prob, components="largest",
    score=score)``: where ``empty`` is False, ``boxes`` is its box (and
    ``Detections.largest``) and ``scores`` its score; where True it found "no pixel
    above the threshold".
    """
    lead, (h, w) = norm.shape[:-2], norm.shape[-2:]
    flat = norm.reshape(-1, h, w)
    c = torch.as_tensor(cuts, dtype=torch.float64, device=norm.device)
    masks = cut_masks(flat, torch.broadcast_to(c, lead).reshape(-1))
    labels, count = label_components(masks, backend)
    probs = None if class_probs is None else class_probs.reshape(-1)
    boxes, scores, empty = largest_dense(labels, count, flat, score, probs)
    return boxes.reshape(*lead, 4), scores.reshape(lead), empty.reshape(lead)
