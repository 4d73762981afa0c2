"""The gallery of ``report.html``: overlays for an evenly spaced sample of images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from wsol.data.base import Sample
from wsol.data.decode import DecodeError, decode_image
from wsol.localize.results import ImageResult
from wsol.report.overlay import OVERLAY_SIDE, overlay, save_png


def report_picks(n: int, k: int) -> list[int]:
    """``k`` dataset positions spread evenly over ``n`` images."""
    if k <= 0 or n == 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n - 1, min(k, n)).round()})


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def render_gallery(
    out: Path,
    classes: list[str],
    shown: list[tuple[int, Sample, ImageResult]],
    pixel_level: bool = False,
) -> list[tuple[str, str]]:
    """Write one overlay PNG per (image, class) under ``out/overlays`` for each
    ``(dataset position, sample, result)``; returns ``(relative path, caption)`` pairs for
    :func:`wsol.report.html.write_report`.

    For pixel-level methods (gradient, deconvnet, guided backprop, guided Grad-CAM) the
    map itself is also saved as a grayscale picture, the way those saliency maps are
    shown in their papers."""
    figures = []
    for pos, sample, r in shown:
        try:
            # A thumbnail is all an overlay needs: large JPEGs decode at reduced scale.
            pixels, size = decode_image(sample.path, max_side=OVERLAY_SIDE)
        except DecodeError:
            continue
        if max(pixels.shape[:2]) > 2 * OVERLAY_SIDE:
            f = 2 * OVERLAY_SIDE / max(pixels.shape[:2])
            pixels = cv2.resize(
                pixels,
                (max(1, round(pixels.shape[1] * f)), max(1, round(pixels.shape[0] * f))),
                interpolation=cv2.INTER_AREA,
            )
        # Boxes are in original pixels; the thumbnail may be smaller.
        sx, sy = pixels.shape[1] / size[1], pixels.shape[0] / size[0]
        to_thumb = np.array([sx, sy, sx, sy])
        for c in r.classes or [None]:
            name = classes[c.dataset_class] if c else "no target"
            gt = (
                sample.boxes[sample.box_labels == c.dataset_class] if c else sample.boxes
            ) * to_thumb
            heat = c.norm_map if c else None
            if heat is not None and heat.shape != pixels.shape[:2]:
                heat = cv2.resize(heat, (pixels.shape[1], pixels.shape[0]))
            pred = (c.detections.boxes if c else np.zeros((0, 4))) * to_thumb
            score = f" {c.detections.scores[0]:.2f}" if c and len(c.detections.scores) else ""
            # The class index keeps "cat dog", "cat_dog" and "cat/dog" apart.
            tag = f"{c.dataset_class:03d}_{_safe(name)}" if c else _safe(name)
            rel = f"overlays/{pos:06d}_{tag}.png"
            save_png(out / rel, overlay(pixels, heat, pred, gt, f"{name}{score}"))
            figures.append(
                (rel, f"{sample.file_name}: {name} (p={c.prob:.2f})" if c else sample.file_name)
            )
            if pixel_level and heat is not None:
                rel = f"overlays/{pos:06d}_{tag}_saliency.png"
                gray = (heat.clip(0, 1) * 255).astype(np.uint8)
                save_png(out / rel, np.repeat(gray[..., None], 3, axis=2))
                figures.append((rel, f"{sample.file_name}: {name} saliency"))
    return figures
