"""The gallery of ``report.html``: one tile per shown image, with all its classes.

A tile is a fixed-size thumbnail (the long side is :data:`TILE_SIDE` pixels) of the image
with the maximum of its classes' normalized maps blended in, every GT box in green and
every predicted box in red, each class's top box tagged with its name and score. The
pictures are JPEG ``data:`` URIs, so the report needs no other file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from wsol.boxes import box_iou
from wsol.data.base import Sample
from wsol.data.decode import DecodeError, decode_image
from wsol.evaluate.base import gt_pairs
from wsol.localize.results import ImageResult
from wsol.report.embed import data_uri
from wsol.report.overlay import overlay
from wsol.report.picks import Pick

TILE_SIDE = 320  # long side of a gallery thumbnail, in pixels (CSS pixels too)


@dataclass
class Tile:
    """One shown image: its ``group`` (best, worst, random...), a ``title`` (the file
    name), caption ``lines`` and its ``pictures`` as ``(data URI, alt text)``."""

    group: str
    title: str
    lines: list[str] = field(default_factory=list)
    pictures: list[tuple[str, str]] = field(default_factory=list)


def max_heat(result: ImageResult, shape: tuple[int, int]) -> np.ndarray | None:
    """The pixelwise maximum ``[h, w]`` of the image's usable normalized maps, each
    resized to ``shape (h, w)``; None when no map is usable."""
    maps = [
        cv2.resize(c.norm_map.astype(np.float32), (shape[1], shape[0]))
        for c in result.classes
        if c.norm_map is not None
    ]
    return np.nan_to_num(np.max(maps, axis=0), nan=0.0) if maps else None


def class_lines(
    result: ImageResult, sample: Sample, classes: Sequence[str], show_gt: bool
) -> list[str]:
    """One caption line per target class (probability, top box score, its best IoU with
    the class's GT boxes), then the GT classes that got no map, then the image's classes
    that ``model.skip_unmapped`` left out."""
    gt = gt_pairs(sample) if show_gt else {}
    lines = []
    for c in result.classes:
        det = c.detections
        line = f"{classes[c.dataset_class]} p={score_text(c.prob)}: "
        if len(det.scores):
            n = len(det.boxes)
            line += f"box {score_text(det.scores[0])}" + (f" (+{n - 1} more)" if n > 1 else "")
            if c.dataset_class in gt:
                line += f", IoU {box_iou(det.boxes, gt[c.dataset_class]).max():.2f}"
        else:
            line += f"no box ({det.reason})" if det.reason else "no box"
        if show_gt and c.dataset_class not in gt:
            # A class whose boxes are all ignored (VOC difficult) is in the GT, unscored.
            ignored = c.dataset_class in set(sample.box_labels.tolist())
            line += ", GT boxes ignored (difficult)" if ignored else ", not in GT"
        lines.append(line)
    lines += [f"{classes[k]}: in GT, no map" for k in gt if k not in set(result.targets)]
    lines += [
        f"{name}: skipped, unmapped (model.skip_unmapped: the class map has no entry for it)"
        for name in sample.left_out
    ]
    return lines


def render_tile(
    pixels: np.ndarray,
    size: tuple[int, int],
    sample: Sample,
    result: ImageResult,
    classes: Sequence[str],
    show_gt: bool = True,
    pixel_level: bool = False,
) -> list[tuple[str, str]]:
    """The tile's pictures as ``(data URI, alt text)``: the overlay of ``pixels`` (an
    RGB thumbnail of an image of original ``size (H, W)``) and, for pixel-level methods
    (gradient, deconvnet, guided backprop, guided Grad-CAM), the map in grayscale, the
    way those saliency maps are shown in their papers."""
    sx, sy = pixels.shape[1] / size[1], pixels.shape[0] / size[0]
    to_thumb = np.array([sx, sy, sx, sy])
    heat = max_heat(result, pixels.shape[:2])
    boxes, texts = [], []
    for c in result.classes:
        det = c.detections
        for j, box in enumerate(det.boxes):
            boxes.append(box * to_thumb)
            texts.append(
                f"{classes[c.dataset_class]} {score_text(det.scores[j])}" if j == 0 else ""
            )
    gt = sample.boxes * to_thumb if show_gt else np.zeros((0, 4))
    pred = np.array(boxes).reshape(-1, 4)
    picture = overlay(pixels, heat, pred, gt, pred_labels=texts, side=TILE_SIDE)
    names = ", ".join(classes[c.dataset_class] for c in result.classes) or "no target class"
    out = [(data_uri(picture), f"{sample.file_name}: {names}")]
    if pixel_level and heat is not None:
        gray = cv2.resize((heat.clip(0, 1) * 255).astype(np.uint8), picture.shape[1::-1])
        out.append(
            (data_uri(np.repeat(gray[..., None], 3, axis=2)), f"{sample.file_name}: saliency")
        )
    return out


def _group_line(pick: Pick, show_gt: bool) -> str:
    if pick.quality is None:
        return pick.group
    what = "mean best IoU" if show_gt else "top box score"
    # score_text: a folder run's box scores can be 0.001 or 0.03, which .2f reads as 0.00
    return f"{pick.group} ({what} {score_text(pick.quality)})"


def render_gallery(
    classes: Sequence[str],
    shown: Sequence[tuple[Pick, Sample, ImageResult]],
    pixel_level: bool = False,
    show_gt: bool = True,
) -> list[Tile]:
    """One :class:`Tile` per ``(pick, sample, result)``, in order (images that cannot be
    decoded any more are left out). ``show_gt`` draws the GT boxes and scores the
    predicted ones against them."""
    tiles = []
    for pick, sample, r in shown:
        try:
            # A thumbnail is all a tile needs: large JPEGs decode at reduced scale.
            pixels, size = decode_image(sample.path, max_side=TILE_SIDE)
        except DecodeError:
            continue
        if max(pixels.shape[:2]) > 2 * TILE_SIDE:  # e.g. a PNG, decoded at full size
            f = 2 * TILE_SIDE / max(pixels.shape[:2])
            pixels = cv2.resize(
                pixels,
                (max(1, round(pixels.shape[1] * f)), max(1, round(pixels.shape[0] * f))),
                interpolation=cv2.INTER_AREA,
            )
        tiles.append(
            Tile(
                group=pick.group,
                title=sample.file_name,
                lines=[_group_line(pick, show_gt), *class_lines(r, sample, classes, show_gt)],
                pictures=render_tile(pixels, size, sample, r, classes, show_gt, pixel_level),
            )
        )
    return tiles


def score_text(value: float) -> str:
    """A probability or score in 2 significant digits (0.0032, not 0.00; 0.91)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"
