"""The device stage: maps ``[B, K, h, w]`` -> upsampled, normalized and cut, on the device.

Maps stay on the device through smoothing, upsampling, min-max normalization and the
choice of cut (:func:`device_maps`), laid on padded canvases so that what follows runs
once per batch rather than once per image size (:mod:`wsol.localize.canvas`). The
Localizer then finds boxes there or sends the maps to the host
(:func:`prepare_maps` is the plain host copy).

Every cut is on the min-max normalized map: a pixel belongs to the region when
``norm >= cut``, compared in float64 (:mod:`wsol.localize.cut`), so the operating
threshold, the sweep and the calibrated cuts draw the same regions for the same tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wsol.errors import unknown_choice
from wsol.localize.canvas import PAD, Canvas, plan_canvases

THRESHOLD_MODES = ("fraction", "absolute", "otsu")
OTSU_BINS = 256

# Why a map gave no box; ``map_problems`` returns an index into this tuple.
MAP_OK, MAP_CONSTANT, MAP_NONFINITE = 0, 1, 2
MAP_REASONS = (None, "map is constant", "map has NaN or Inf values")


def localize_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size ``(h, w)`` maps are upsampled to for an image of ``size = (H, W)``: the
    image's own, or scaled down (aspect kept) so that the long side is ``max_side``."""
    h, w = size
    if max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


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
        part = kernel[radius - pad : radius + pad + 1]
        return part / part.sum()

    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
    if pad_w:
        flat = F.conv2d(
            F.pad(flat, (pad_w, pad_w, 0, 0), mode="reflect"), cut(pad_w).view(1, 1, 1, -1)
        )
    if pad_h:
        flat = F.conv2d(
            F.pad(flat, (0, 0, pad_h, pad_h), mode="reflect"), cut(pad_h).view(1, 1, -1, 1)
        )
    return flat.reshape(b, k, h, w)


def map_problems(maps: torch.Tensor) -> torch.Tensor:
    """Per map of ``[..., H, W]``: ``MAP_OK``, ``MAP_CONSTANT`` or ``MAP_NONFINITE``
    (int64 ``[...]``); ``MAP_REASONS[code]`` is the message."""
    flat = maps.flatten(-2)
    finite = torch.isfinite(flat).all(-1)
    span = flat.amax(-1) - flat.amin(-1)
    code = torch.where(span > 0, MAP_OK, MAP_CONSTANT)
    return torch.where(finite, code, MAP_NONFINITE)


def minmax_normalize(maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-map min-max normalization of ``[..., H, W]`` to ``[0, 1]``.

    Returns ``(normalized, lo, hi, ok)``: the raw minima and maxima ``[...]`` and ``ok``,
    False for maps that are constant or hold NaN/Inf. Three passes over the maps (min and
    max together, subtract, divide): NaN propagates through min and max and an Inf lands
    in them, so a non-finite ``lo`` or ``hi`` is how a NaN/Inf map shows. Not-ok maps are
    zeros and get ``lo = hi = 0``. No clamp is needed: rounding is monotone, so
    ``x <= hi`` gives ``(x - lo) / (hi - lo) <= 1`` exactly. No step waits for the
    device (no ``if`` on a tensor's value)."""
    flat = maps.flatten(-2)
    lo, hi = torch.aminmax(flat, dim=-1)
    ok = torch.isfinite(lo) & torch.isfinite(hi) & (hi > lo)
    lo = torch.where(ok, lo, torch.zeros_like(lo))
    hi = torch.where(ok, hi, torch.zeros_like(hi))
    span = torch.where(ok, hi - lo, torch.ones_like(hi))
    norm = flat.sub(lo[..., None]).div_(span[..., None])
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


def normalized_threshold(
    mode: str,
    tau: float | torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    norm: torch.Tensor | None = None,
) -> torch.Tensor:
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
    raise ValueError(unknown_choice("boxes.threshold_mode", mode, THRESHOLD_MODES))


def resample_region(
    maps: torch.Tensor, size: tuple[int, int], region: tuple[float, float]
) -> torch.Tensor:
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
    return F.grid_sample(
        maps,
        grid.expand(g, h_out, w_out, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )


@dataclass
class PreparedMaps:
    """One image's maps after the device stage, on the host: normalized maps
    ``[K, H, W]`` (float32; None when they stayed on the device), their cuts ``[K]``
    (float64), ``problems [K]`` (``MAP_OK`` or the index of the reason in
    ``MAP_REASONS``) and, when a sweep asked for them, the maps' levels ``[K, H, W]``
    (:func:`wsol.localize.cut.levels_of`)."""

    norm: np.ndarray | None
    cuts: np.ndarray
    problems: np.ndarray
    levels: np.ndarray | None = None


def _prepare_group(
    low: torch.Tensor,
    size: tuple[int, int],
    region: tuple[float, float],
    mode: str,
    tau: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps ``[G, K, h, w]`` of same-size images -> ``(norm [G, K, H, W], cuts [G, K],
    problems [G, K])`` at ``size``."""
    low = low.float()
    # Judge the maps as computed: interpolation weights do not sum to exactly 1, so a
    # constant map can come out of upsampling as rounding noise that min-max
    # normalization would blow up to [0, 1].
    problems = map_problems(low)
    if region == (1.0, 1.0):
        up = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
    else:
        up = resample_region(low, size, region)
    norm, lo, hi, ok = minmax_normalize(up)  # [G, K, H, W], [G, K] x 3
    problems = torch.where((problems == MAP_OK) & ~ok, MAP_CONSTANT, problems)
    norm.masked_fill_((problems != MAP_OK)[..., None, None], 0.0)
    return norm, normalized_threshold(mode, tau, lo, hi, norm), problems


def device_maps(
    maps: torch.Tensor,
    sizes: list[tuple[int, int]],
    mode: str,
    tau: float | torch.Tensor,
    regions: list[tuple[float, float]] | None = None,
) -> list[Canvas]:
    """The device stage for a batch: upsample ``maps [B, K, h, w]`` to each image's
    ``(H, W)``, min-max normalize and cut, on the maps' device; a map that is constant,
    NaN or Inf before upsampling is flagged and zeroed.

    ``tau`` is a number or a ``[B, K]`` tensor of per-map thresholds (calibrated cuts).
    ``regions``: per image, the ``(fy, fx)`` top-left fraction of the input that holds the
    image (letterboxing); only that part of each map is resampled. Images of the same
    size (and region) are upsampled in one call, then laid on the canvases of
    :func:`wsol.localize.canvas.plan_canvases`, so the number of device calls after
    this does not grow with the number of sizes. Nothing here waits for the device.
    """
    regions = regions or [(1.0, 1.0)] * len(sizes)
    canvases = []
    for plan in plan_canvases(sizes):
        groups: dict[tuple, list[int]] = {}
        for i in plan:
            groups.setdefault((tuple(sizes[i]), tuple(regions[i])), []).append(i)
        index = [i for idx in groups.values() for i in idx]
        height = max(h for (h, _), _ in groups)
        width = max(w for (_, w), _ in groups)
        parts = []
        for (size, region), idx in groups.items():
            t = tau[idx] if isinstance(tau, torch.Tensor) else tau
            parts.append((size, _prepare_group(maps[idx], size, region, mode, t)))
        if len(parts) == 1 and parts[0][0] == (height, width):
            norm = parts[0][1][0]
        else:
            norm = maps.new_full(
                (len(index), maps.shape[1], height, width), PAD, dtype=torch.float32
            )
            start = 0
            for (h, w), (part, _, _) in parts:
                norm[start : start + len(part), :, :h, :w] = part
                start += len(part)
        cuts = torch.cat([p[1][1] for p in parts])
        problems = torch.cat([p[1][2] for p in parts])
        canvases.append(Canvas(index, [tuple(sizes[i]) for i in index], norm, cuts, problems))
    return canvases


def prepare_maps(
    maps: torch.Tensor,
    sizes: list[tuple[int, int]],
    mode: str,
    tau: float | torch.Tensor,
    regions: list[tuple[float, float]] | None = None,
) -> list[PreparedMaps]:
    """:func:`device_maps`, copied to the host: one :class:`PreparedMaps` per image."""
    out: list[PreparedMaps | None] = [None] * len(sizes)
    for canvas in device_maps(maps, sizes, mode, tau, regions):
        norm = canvas.norm.cpu().numpy()
        cuts, problems = canvas.cuts.cpu().numpy(), canvas.problems.cpu().numpy()
        for j, (i, (h, w)) in enumerate(zip(canvas.index, canvas.sizes, strict=True)):
            out[i] = PreparedMaps(norm[j, :, :h, :w].copy(), cuts[j].copy(), problems[j].copy())
    return out  # type: ignore[return-value]
