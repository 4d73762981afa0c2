"""The one rule of a cut, in one place: a pixel is in the region when ``norm >= cut``,
compared in float64.

Cuts are float64 (``tau = 0.29`` stays 0.29), maps are float32. Comparing them must not
depend on a library's type promotion: NumPy 2 compares a float32 array with a Python
float *in float32* (NEP 50), NumPy 1 did the same with a float64 scalar, and torch rounds
a float64 cut to the tensor's dtype. Each of those moves the pixels that lie within half
a float32 step of the cut. So a float32 map is compared with the cut's float32
*ceiling*, the smallest float32 not below it: for float32 ``x``, ``x >= c`` in float64
holds exactly when ``x >= ceil32(c)``, in any library.

The same holds for a sweep: a pixel's *level* is the number of ascending thresholds it
reaches, counted against their ceilings (:func:`levels_of` on the host,
:func:`device_levels` on the maps' device); the sweep's component tree
(:mod:`wsol.localize.component_tree`) reads those.
"""

from __future__ import annotations

import numpy as np
import torch


def float32_cuts(cuts) -> np.ndarray:
    """The float32 ceiling of each float64 cut: the smallest float32 ``>= cut``
    (``+inf`` above the float32 range, ``-inf`` stays)."""
    c = np.asarray(cuts, np.float64)
    with np.errstate(over="ignore"):
        down = c.astype(np.float32)
    up = np.nextafter(down, np.float32(np.inf))
    return np.where(down.astype(np.float64) < c, up, down).astype(np.float32)


def cut_mask(norm_map: np.ndarray, cut: float) -> np.ndarray:
    """The region ``norm_map >= cut`` (float64 comparison) as a bool array, on the host."""
    norm = np.asarray(norm_map)
    if norm.dtype == np.float32:
        return norm >= float32_cuts(cut)[()]
    return norm.astype(np.float64, copy=False) >= np.float64(cut)


def float32_cuts_torch(cuts: torch.Tensor) -> torch.Tensor:
    """:func:`float32_cuts` of a float64 tensor, on its device."""
    c = cuts.double()
    down = c.float()
    up = torch.nextafter(down, torch.full_like(down, float("inf")))
    return torch.where(down.double() < c, up, down)


def cut_masks(norm: torch.Tensor, cuts: torch.Tensor | float) -> torch.Tensor:
    """The regions ``norm >= cut`` of maps ``[..., H, W]`` as bool ``[..., H, W]``, on the
    maps' device; ``cuts`` is a number or a float64 tensor ``[...]``. A float32 (or half)
    map is compared with each cut's float32 ceiling, which is the float64 comparison."""
    c = torch.as_tensor(cuts, dtype=torch.float64, device=norm.device)
    if norm.dtype == torch.float64:
        return norm >= c[..., None, None]
    return norm.float() >= float32_cuts_torch(c)[..., None, None]


def levels_dtype(num_thresholds: int) -> np.dtype:
    """The smallest integer type that holds levels ``0..num_thresholds`` (uint8 for the
    usual 100 thresholds)."""
    if num_thresholds <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if num_thresholds <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


def levels_of(norm_map: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``[H, W]``: how many of the ascending ``taus`` each pixel reaches (``norm >= tau``
    by the float64 rule; NaN reaches none), in :func:`levels_dtype`, on the host."""
    taus = np.asarray(taus, np.float64)
    norm = np.asarray(norm_map)
    edges = float32_cuts(taus) if norm.dtype == np.float32 else taus
    levels = np.searchsorted(edges, norm, side="right")
    levels[np.isnan(norm)] = 0
    return levels.astype(levels_dtype(len(taus)))


def device_levels(norm: torch.Tensor, taus: np.ndarray) -> torch.Tensor:
    """:func:`levels_of` for maps ``norm [..., H, W]`` on their device; pixels that are
    NaN or ``-inf`` (padding) reach none."""
    taus = np.asarray(taus, np.float64)
    if norm.dtype == torch.float64:
        edges = torch.as_tensor(taus, device=norm.device)
        x = norm
    else:
        edges = torch.as_tensor(float32_cuts(taus), device=norm.device)
        x = norm.float()
    levels = torch.bucketize(x, edges, out_int32=True, right=True)
    levels = levels.masked_fill_(torch.isnan(x), 0)
    dtype = {np.uint8: torch.uint8, np.int16: torch.int16, np.int32: torch.int32}
    return levels.to(dtype[levels_dtype(len(taus)).type])
