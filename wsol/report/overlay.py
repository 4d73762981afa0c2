"""Overlay pictures: a heatmap blended on the image, predicted and GT boxes, a label."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from wsol.fileio import atomic_write

PRED_COLOR = (255, 64, 32)  # RGB
GT_COLOR = (40, 220, 60)
OVERLAY_SIDE = 360  # long side of an overlay picture, in pixels


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray | None,
    pred_boxes: np.ndarray,
    gt_boxes: np.ndarray,
    label: str = "",
) -> np.ndarray:
    """RGB ``[H, W, 3]`` with a jet heatmap ``[H, W]`` in ``[0, 1]`` blended in, predicted
    boxes in red and GT boxes in green (all xyxy in ``image`` pixels)."""
    h, w = image.shape[:2]
    side = max(h, w)
    # Big images shrink to OVERLAY_SIDE; small ones grow to at least 256 px to be seen.
    scale = OVERLAY_SIDE / side if side > OVERLAY_SIDE else max(1.0, 256 / side)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.resize(image, size, interpolation=interp)
    if heatmap is not None:
        hm = cv2.resize(heatmap.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        color = cv2.applyColorMap((hm.clip(0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
        canvas = cv2.addWeighted(canvas, 0.55, cv2.cvtColor(color, cv2.COLOR_BGR2RGB), 0.45, 0)
    for boxes, col, thick in ((gt_boxes, GT_COLOR, 2), (pred_boxes, PRED_COLOR, 2)):
        for b in np.asarray(boxes).reshape(-1, 4) * scale:
            cv2.rectangle(
                canvas,
                (int(b[0]), int(b[1])),
                (int(np.ceil(b[2])) - 1, int(np.ceil(b[3])) - 1),
                col,
                thick,
            )
    if label:
        draw_label(canvas, label)
    return canvas


def draw_label(canvas: np.ndarray, text: str, corner: tuple[int, int] = (0, 0)) -> None:
    """Write ``text`` in white on an opaque dark band at ``corner`` (x, y) of the RGB
    ``canvas``, in place. The font scales with the picture; text too wide for it is cut
    with an ellipsis."""
    h, w = canvas.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, min(h, w) / 600)
    thick = 1 if scale < 0.7 else 2
    pad = max(2, round(4 * scale))
    while True:
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        if tw + 2 * pad <= w - corner[0] or len(text) <= 4:
            break
        text = text[:-4] + "..."
    x0, y0 = corner
    cv2.rectangle(
        canvas, (x0, y0), (x0 + tw + 2 * pad, y0 + th + base + 2 * pad), (20, 20, 20), thickness=-1
    )
    cv2.putText(
        canvas, text, (x0 + pad, y0 + pad + th), font, scale, (255, 255, 255), thick, cv2.LINE_AA
    )


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB ``uint8 [H, W, 3]`` picture as PNG (an error if it cannot be written)."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} picture as PNG for {path}")
    # Written like every other output: atomically, and a full disk is an OSError (ENOSPC).
    atomic_write(path, lambda f: f.write(png.tobytes()))
