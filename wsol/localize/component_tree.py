"""Every threshold's components from one pass over a map: the component tree.

The masks ``norm_map >= tau`` of a sweep are nested: raising tau only removes pixels.
Going down the thresholds instead, pixels only arrive, and a component at one tau is the
union of components at the tau above plus the pixels that arrived between the two. One
union-find over the pixels, fed each pixel once when the sweep first reaches it, therefore
holds every tau's components in turn: after the pixels of tau_j have arrived, its roots
are exactly the 8-connected components of ``norm_map >= tau_j``, and each root carries its
area, bounding box and the first 2x2 block it touches (which orders components as cv2's
labeller numbers them). The work is one pass over the pixels plus, per tau, one look at
each component, instead of one labelling of the whole mask per tau.

The tree reads a map's *levels* (:func:`wsol.localize.cut.levels_of`): per pixel, how
many of the ascending thresholds it reaches. A run computes them on the model's device
(:func:`wsol.localize.cut.device_levels`) and sends those small integers to the host
instead of the float map.

Compiled with numba; :data:`sweep_tree` is None where numba is missing, and the caller
then labels each tau's mask with cv2 (:func:`wsol.localize.components.sweep_components`).
"""

from __future__ import annotations

import numpy as np

from wsol.localize.cut import levels_of

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a fallback
    numba = None


def _find(parent: np.ndarray, p: int) -> int:
    """The root of ``p``, halving the path on the way (no write when ``p``'s parent is
    already the root, the common case)."""
    q = parent[p]
    while q != p:
        g = parent[q]
        if g == q:
            return q
        parent[p] = g
        p = g
        q = parent[p]
    return p


def _tree(levels: np.ndarray, num_thresholds: int):
    """``levels [H, W]`` (integers in ``0..num_thresholds``): how many thresholds each
    pixel reaches. Returns ``(stats [M, 5], key [M], index [M])``: per component and
    tau, ``left, top, right, bottom`` (exclusive) and area, the first 2x2 block it
    touches, and the tau, from the highest tau down.

    The union-find runs on a grid padded by one never-reached pixel on every side, so a
    neighbour needs no bounds check; a component's statistics live at its root."""
    h, w = levels.shape
    n = h * w
    # counting sort of the pixels by level (stable: raster order within a level)
    counts = np.zeros(num_thresholds + 2, np.int64)
    for y in range(h):
        for x in range(w):
            counts[levels[y, x]] += 1
    starts = np.zeros(num_thresholds + 2, np.int64)
    for lev in range(1, num_thresholds + 2):
        starts[lev] = starts[lev - 1] + counts[lev - 1]
    order = np.empty(n, np.int32)
    fill = starts.copy()
    for y in range(h):
        for x in range(w):
            lev = levels[y, x]
            order[fill[lev]] = y * w + x
            fill[lev] += 1

    pw = w + 2  # padded row length
    size = (h + 2) * pw
    parent = np.full(size, -1, np.int32)  # -1: not reached (the border never is)
    area = np.empty(size, np.int32)
    x0 = np.empty(size, np.int32)
    y0 = np.empty(size, np.int32)
    x1 = np.empty(size, np.int32)
    y1 = np.empty(size, np.int32)
    block = np.empty(size, np.int32)  # first 2x2 block (raster order of blocks)
    offsets = np.array([-pw - 1, -pw, -pw + 1, -1, 1, pw - 1, pw, pw + 1], np.int64)
    blocks_per_row = (w + 1) // 2
    roots = np.empty(max(n, 1), np.int32)
    num_roots = 0
    cap = 64
    out_stats = np.empty((cap, 5), np.int64)
    out_key = np.empty(cap, np.int64)
    out_index = np.empty(cap, np.int64)
    m = 0
    # Where every pixel reaches the lowest tau (tau_0 = 0 on a normalized map), its region
    # is the whole map: one component, set down as a root of its own instead of feeding
    # those pixels one by one (a rectified map's zeros are often half of it). The root is
    # the last padding cell, which no pixel ever reaches.
    whole = counts[0] == 0 and num_thresholds > 0
    for j in range(num_thresholds - 1, -1, -1):
        if j == 0 and whole:
            r = size - 1
            parent[r] = r
            area[r] = n
            x0[r] = 0
            y0[r] = 0
            x1[r] = w - 1
            y1[r] = h - 1
            block[r] = 0
            roots[0] = r
            num_roots = 1
            counts[1] = 0  # the pixels of tau_0 need not arrive
        lev = j + 1  # pixels that reach tau_j and no higher arrive now
        for k in range(starts[lev], starts[lev] + counts[lev]):
            p = order[k]
            y = p // w
            x = p - y * w
            q0 = (y + 1) * pw + x + 1
            bk = (y // 2) * blocks_per_row + x // 2
            r = -1  # the root p joins: its first reached neighbour's, merged with the rest
            for d in offsets:
                q = q0 + d
                pq = parent[q]
                if pq < 0 or pq == r:
                    continue
                rq = _find(parent, q)
                if r < 0:
                    r = rq
                elif rq != r:  # two components meet at p: the smaller joins the larger
                    if area[rq] > area[r]:
                        r, rq = rq, r
                    parent[rq] = r
                    area[r] += area[rq]
                    x0[r] = min(x0[r], x0[rq])
                    y0[r] = min(y0[r], y0[rq])
                    x1[r] = max(x1[r], x1[rq])
                    y1[r] = max(y1[r], y1[rq])
                    block[r] = min(block[r], block[rq])
            if r < 0:  # a new component
                parent[q0] = q0
                area[q0] = 1
                x0[q0] = x
                y0[q0] = y
                x1[q0] = x
                y1[q0] = y
                block[q0] = bk
                roots[num_roots] = q0
                num_roots += 1
            else:
                parent[q0] = r
                area[r] += 1
                x0[r] = min(x0[r], x)
                y0[r] = min(y0[r], y)
                x1[r] = max(x1[r], x)
                y1[r] = max(y1[r], y)
                block[r] = min(block[r], bk)
        # the components at tau_j: the roots still roots
        live = 0
        for i in range(num_roots):
            r = roots[i]
            if parent[r] == r:
                roots[live] = r
                live += 1
        num_roots = live
        if m + live > cap:
            cap = max(2 * cap, m + live)
            grown = np.empty((cap, 5), np.int64)
            grown[:m] = out_stats[:m]
            out_stats = grown
            key = np.empty(cap, np.int64)
            key[:m] = out_key[:m]
            out_key = key
            idx = np.empty(cap, np.int64)
            idx[:m] = out_index[:m]
            out_index = idx
        for i in range(live):
            r = roots[i]
            out_stats[m, 0] = x0[r]
            out_stats[m, 1] = y0[r]
            out_stats[m, 2] = x1[r] + 1
            out_stats[m, 3] = y1[r] + 1
            out_stats[m, 4] = area[r]
            out_key[m] = block[r]
            out_index[m] = j
            m += 1
    return out_stats[:m], out_key[:m], out_index[:m]


if numba is not None:
    _find_py, _tree_py = _find, _tree
    try:
        _find = numba.njit(cache=True, nogil=True)(_find_py)
        _tree = numba.njit(cache=True, nogil=True)(_tree_py)
    except RuntimeError:  # numba finds no writable folder for its cache: compile per process
        _find = numba.njit(nogil=True)(_find_py)
        _tree = numba.njit(nogil=True)(_tree_py)


def sweep_levels(levels: np.ndarray, num_thresholds: int) -> tuple[np.ndarray, np.ndarray]:
    """``(stats [M, 5] float64, index [M] int64)``: every tau's components from a map's
    levels (see :func:`_tree`), tau ascending and, within a tau, in cv2's label order."""
    levels = np.ascontiguousarray(levels)
    if levels.ndim != 2:
        raise ValueError(f"expected levels [H, W], got shape {levels.shape}")
    if levels.size and (int(levels.min()) < 0 or int(levels.max()) > num_thresholds):
        raise ValueError(f"levels must lie in 0..{num_thresholds}")
    stats, key, index = _tree(levels, num_thresholds)
    order = np.lexsort((key, index))  # tau ascending; within a tau, cv2's label order
    return stats[order].astype(np.float64), index[order]


def _sweep_tree(norm_map: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sweep_levels` of a normalized map at strictly ascending ``taus``."""
    return sweep_levels(levels_of(norm_map, taus), len(taus))


sweep_tree = _sweep_tree if numba is not None else None
