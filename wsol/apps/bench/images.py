"""The JPEG files a benchmark reads: synthetic photo-sized ones, or a folder's own."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from wsol.data.folder import IMAGE_SUFFIXES

PHOTO_SIZE = (375, 500)  # (height, width) of a typical VOC photo


def synthetic_image(index: int, size: tuple[int, int] = PHOTO_SIZE, seed: int = 0) -> np.ndarray:
    """A deterministic ``uint8 [H, W, 3]`` BGR picture that compresses like a photo
    (smooth shading, texture, a few shapes), not like noise: its JPEG is tens of kB,
    so decoding costs what a real photo's does and 10,000 of them fit on a small disk."""
    h, w = size
    rng = np.random.default_rng((seed, index))
    # Texture: low-resolution noise upsampled, over a two-colour vertical gradient.
    small = rng.integers(0, 256, (max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) * 0.3
    top, bottom = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img += (top * (1 - ramp) + bottom * ramp) * 0.7
    img = img.clip(0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(w // 8, w - w // 8)), int(rng.integers(h // 8, h - h // 8))
        ax, ay = int(rng.integers(w // 12, w // 3)), int(rng.integers(h // 12, h // 3))
        if rng.random() < 0.5:
            cv2.ellipse(img, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            cv2.rectangle(img, (cx - ax, cy - ay), (cx + ax, cy + ay), colour, -1)
    return img


def write_jpegs(
    folder: str | Path,
    count: int,
    size: tuple[int, int] = PHOTO_SIZE,
    quality: int = 90,
    seed: int = 0,
) -> list[Path]:
    """Write ``count`` synthetic JPEG files ``000000.jpg``... of ``size = (H, W)`` into
    ``folder`` (on all cores) and return their paths. Files already there are kept: the
    pictures are a function of ``(seed, index)``, so a second call writes nothing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]

    def write(i: int) -> None:
        if paths[i].is_file():
            return
        ok, data = cv2.imencode(
            ".jpg", synthetic_image(i, size, seed), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise OSError(f"cv2 could not encode {paths[i]}")
        part = paths[i].with_suffix(".part")  # a killed writer leaves no truncated JPEG
        part.write_bytes(data.tobytes())
        os.replace(part, paths[i])

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # cv2 releases the GIL
        list(pool.map(write, range(count)))
    return paths


def image_folder(root: str | Path) -> Path:
    """The folder of images under ``root``: ``root/JPEGImages`` for a VOC root, else
    ``root`` itself."""
    root = Path(root)
    voc = root / "JPEGImages"
    return voc if voc.is_dir() else root


def list_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The image files under ``folder`` in the order ``wsol run`` reads a folder dataset
    (sorted relative paths, recursive), the first ``limit`` of them."""
    folder = Path(folder)
    names = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    return [folder / n for n in names[:limit]]
