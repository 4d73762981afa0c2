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

Compiled with numba; :func:`sweep_tree` is None where numba is missing, and the caller
then labels each tau's mask with cv2 (:func:`wsol.localize.components.sweep_components`).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a fallback
    numba = None


def _find(parent: np.ndarray, p: int) -> int:
    while parent[p] != p:
        parent[p] = parent[parent[p]]  # path halving
        p = parent[p]
    return p


def _tree(levels: np.ndarray, num_thresholds: int):
    """``levels [H, W]`` int64: how many thresholds each pixel reaches (0: none).
    Returns ``(stats [M, 5], key [M], index [M])``: per component and tau, ``left, top,
    right, bottom`` (exclusive) and area, the first 2x2 block it touches, and the tau,
    from the highest tau down."""
    h, w = levels.shape
    n = h * w
    flat = levels.reshape(-1)
    # counting sort of the pixels by level
    counts = np.zeros(num_thresholds + 2, np.int64)
    for p in range(n):
        counts[flat[p]] += 1
    starts = np.zeros(num_thresholds + 2, np.int64)
    for lev in range(1, num_thresholds + 2):
        starts[lev] = starts[lev - 1] + counts[lev - 1]
    order = np.empty(n, np.int64)
    fill = starts.copy()
    for p in range(n):
        order[fill[flat[p]]] = p
        fill[flat[p]] += 1

    parent = np.full(n, -1, np.int32)  # -1: not yet reached
    area = np.zeros(n, np.int32)
    x0 = np.zeros(n, np.int32)
    y0 = np.zeros(n, np.int32)
    x1 = np.zeros(n, np.int32)
    y1 = np.zeros(n, np.int32)
    block = np.zeros(n, np.int64)  # first 2x2 block (raster order of blocks)
    blocks_per_row = (w + 1) // 2
    roots = np.empty(n, np.int32)
    num_roots = 0
    out_stats = np.empty((16, 5), np.int64)
    out_key = np.empty(16, np.int64)
    out_index = np.empty(16, np.int64)
    m = 0
    for j in range(num_thresholds - 1, -1, -1):
        lev = j + 1  # pixels that reach tau_j and no higher arrive now
        for k in range(starts[lev], starts[lev] + counts[lev]):
            p = order[k]
            y, x = p // w, p % w
            parent[p] = p
            area[p] = 1
            x0[p] = x
            y0[p] = y
            x1[p] = x
            y1[p] = y
            block[p] = (y // 2) * blocks_per_row + x // 2
            roots[num_roots] = p
            num_roots += 1
            rp = p  # p's root as p joins its reached neighbours
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= h:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if (dy == 0 and dx == 0) or xx < 0 or xx >= w:
                        continue
                    q = yy * w + xx
                    if parent[q] < 0:
                        continue
                    rq = _find(parent, q)
                    if rq == rp:
                        continue
                    a, b = (rp, rq) if area[rp] >= area[rq] else (rq, rp)
                    parent[b] = a
                    area[a] += area[b]
                    x0[a] = min(x0[a], x0[b])
                    y0[a] = min(y0[a], y0[b])
                    x1[a] = max(x1[a], x1[b])
                    y1[a] = max(y1[a], y1[b])
                    block[a] = min(block[a], block[b])
                    rp = a
        # the components at tau_j: the roots still roots
        live = 0
        for i in range(num_roots):
            r = roots[i]
            if parent[r] == r:
                roots[live] = r
                live += 1
        num_roots = live
        if m + live > len(out_key):
            size = max(2 * len(out_key), m + live)
            grown = np.empty((size, 5), np.int64)
            grown[:m] = out_stats[:m]
            out_stats = grown
            key = np.empty(size, np.int64)
            key[:m] = out_key[:m]
            out_key = key
            idx = np.empty(size, np.int64)
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


def levels_of(norm_map: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``[H, W]`` int64: how many of the ascending ``taus`` each pixel is ``>=`` (NaN: 0)."""
    levels = np.searchsorted(taus, norm_map, side="right").astype(np.int64)
    levels[np.isnan(norm_map)] = 0
    return levels


def _sweep_tree(norm_map: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(stats [M, 5] float64, index [M] int64)`` of every tau's components (see
    :func:`_tree`); ``taus`` strictly ascending."""
    stats, key, index = _tree(levels_of(norm_map, taus), len(taus))
    order = np.lexsort((key, index))  # tau ascending; within a tau, cv2's label order
    return stats[order].astype(np.float64), index[order]


sweep_tree = _sweep_tree if numba is not None else None
