"""Overlay pictures: a heatmap blended on the image, predicted and GT boxes, labels.

Labels are drawn once, in a filled box sized by ``cv2.getTextSize`` (no shadow copy that
could drift), and kept inside the picture: text too wide for it is cut with ``...``.
Hershey fonts have ASCII glyphs only, so other characters are written as ``?``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from wsol.fileio import atomic_write

PRED_COLOR = (255, 64, 32)  # RGB
GT_COLOR = (40, 220, 60)
BAND_COLOR = (20, 20, 20)
OVERLAY_SIDE = 360  # long side of an overlay picture, in pixels
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def fit(image: np.ndarray, side: int | None = None) -> tuple[np.ndarray, float]:
    """``image [H, W, 3]`` resized so that its long side is ``side`` pixels; without
    ``side``, big images shrink to :data:`OVERLAY_SIDE` and small ones grow to at least
    256 pixels, to be seen. Returns ``(picture, scale)``."""
    h, w = image.shape[:2]
    long = max(h, w)
    if side is not None:
        scale = side / long
    else:
        scale = OVERLAY_SIDE / long if long > OVERLAY_SIDE else max(1.0, 256 / long)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp), scale


def blend_heatmap(canvas: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``canvas`` with the jet colouring of ``heatmap [h, w]`` in ``[0, 1]`` (any size;
    resized to the canvas) blended in with weight ``alpha``."""
    h, w = canvas.shape[:2]
    hm = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    hm = np.nan_to_num(hm, nan=0.0).clip(0, 1)
    color = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(canvas, 1 - alpha, cv2.cvtColor(color, cv2.COLOR_BGR2RGB), alpha, 0)


def draw_boxes(canvas: np.ndarray, boxes: np.ndarray, color, thickness: int = 2) -> None:
    """Draw xyxy ``boxes [N, 4]`` (canvas pixels) on ``canvas`` in place."""
    for b in np.asarray(boxes, np.float64).reshape(-1, 4):
        if not np.isfinite(b).all():
            continue
        cv2.rectangle(
            canvas,
            (int(b[0]), int(b[1])),
            (int(np.ceil(b[2])) - 1, int(np.ceil(b[3])) - 1),
            color,
            thickness,
        )


def font_scale(canvas: np.ndarray) -> float:
    """A Hershey font scale that reads well on ``canvas`` (about 15 px text at 320 px)."""
    return max(0.45, max(canvas.shape[:2]) / 640)


def _ascii(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)


def fit_text(text: str, max_width: int, scale: float, thick: int) -> tuple[str, int, int, int]:
    """``text`` cut with ``...`` until it is at most ``max_width`` pixels wide. Returns
    ``(text, width, height above the baseline, baseline)`` as ``cv2.getTextSize`` gives."""
    text = _ascii(text)
    while True:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
        if tw <= max_width or len(text) <= 4:
            return text, tw, th, base
        text = text[: len(text) - 4].rstrip() + "..."


def _text_color(fill) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with the RGB ``fill``."""
    r, g, b = (c / 255 for c in fill)
    return (0, 0, 0) if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.18 else (255, 255, 255)


def _tag(canvas: np.ndarray, text: str, scale: float) -> tuple[str, int, int, int, int, int]:
    """Fit ``text`` to the canvas; returns ``(text, tag width, tag height, pad, th, base)``."""
    thick = 1 if scale < 0.7 else 2
    pad = max(2, round(4 * scale))
    text, tw, th, base = fit_text(text, canvas.shape[1] - 2 * pad, scale, thick)
    return text, tw + 2 * pad, th + base + 2 * pad, pad, th, base


def _paint_tag(canvas, text, x, y, size, pad, th, fill, scale) -> None:
    w, h = size
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), fill, thickness=-1)
    thick = 1 if scale < 0.7 else 2
    cv2.putText(
        canvas, text, (x + pad, y + pad + th), _FONT, scale, _text_color(fill), thick, cv2.LINE_AA
    )


def draw_label(canvas: np.ndarray, text: str, corner: tuple[int, int] = (0, 0)) -> None:
    """Write ``text`` on an opaque dark band at ``corner`` (x, y) of the RGB ``canvas``,
    in place. The band is sized to the text and kept inside the canvas."""
    if not text:
        return
    h, w = canvas.shape[:2]
    scale = font_scale(canvas)
    text, tw, tht, pad, th, _ = _tag(canvas, text, scale)
    x = int(min(max(corner[0], 0), max(w - tw, 0)))
    y = int(min(max(corner[1], 0), max(h - tht, 0)))
    _paint_tag(canvas, text, x, y, (tw, tht), pad, th, BAND_COLOR, scale)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def label_spots(
    box: np.ndarray, size: tuple[int, int], canvas_hw: tuple[int, int]
) -> list[tuple[int, int]]:
    """Where a tag of ``size (w, h)`` for ``box`` (xyxy, canvas pixels) may go, best first:
    above the box, inside its top, below it, inside its bottom; all inside the canvas."""
    H, W = canvas_hw
    w, h = size
    x = int(min(max(box[0], 0), max(W - w, 0)))
    y1, y2 = int(box[1]), int(np.ceil(box[3]))
    spots = [y1 - h, y1, y2, y2 - h]
    return [(x, int(min(max(y, 0), max(H - h, 0)))) for y in spots]


def label_boxes(
    canvas: np.ndarray, boxes: np.ndarray, texts: list[str], color
) -> list[tuple[int, int, int, int]]:
    """Tag each of ``boxes [N, 4]`` (canvas pixels) with its text in a filled box of
    ``color``, in place; returns the tags' rectangles (x1, y1, x2, y2), exclusive. Each
    tag takes the first of :func:`label_spots` that overlaps no earlier tag (else the
    least overlapping one), so tags of nearby boxes do not cover each other when there
    is room."""
    scale = font_scale(canvas)
    placed: list[tuple[int, int, int, int]] = []
    for box, text in zip(np.asarray(boxes, np.float64).reshape(-1, 4), texts, strict=True):
        if not text or not np.isfinite(box).all():
            continue
        text, tw, th_all, pad, th, _ = _tag(canvas, text, scale)
        spots = [
            (x, y, x + tw, y + th_all) for x, y in label_spots(box, (tw, th_all), canvas.shape[:2])
        ]
        rect = min(spots, key=lambda r: sum(_overlap(r, p) for p in placed))
        placed.append(rect)
        _paint_tag(canvas, text, rect[0], rect[1], (tw, th_all), pad, th, color, scale)
    return placed


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray | None,
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    label: str = "",
    pred_labels: list[str] | None = None,
    side: int | None = None,
) -> np.ndarray:
    """RGB ``[H, W, 3]`` with a jet heatmap ``[h, w]`` in ``[0, 1]`` blended in, GT boxes
    in green and predicted boxes in red (all xyxy in ``image`` pixels).

    ``label`` is written on a dark band at the top left; ``pred_labels`` (one per
    predicted box) tag the boxes. ``side`` fixes the picture's long side (see
    :func:`fit`)."""
    canvas, scale = fit(image, side)
    if heatmap is not None:
        canvas = blend_heatmap(canvas, heatmap)
    pred = np.asarray(pred_boxes, np.float64).reshape(-1, 4) * scale
    draw_boxes(canvas, np.asarray(gt_boxes, np.float64).reshape(-1, 4) * scale, GT_COLOR)
    draw_boxes(canvas, pred, PRED_COLOR)
    if pred_labels:
        label_boxes(canvas, pred, pred_labels, PRED_COLOR)
    if label:
        draw_label(canvas, label)
    return canvas


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB ``uint8 [H, W, 3]`` picture as PNG (an error if it cannot be written)."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} picture as PNG for {path}")
    # Written like every other output: atomically, and a full disk is an OSError (ENOSPC).
    atomic_write(path, lambda f: f.write(png.tobytes()))
