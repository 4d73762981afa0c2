"""Decode, resize and batch images; a file that cannot be read becomes a recorded failure.

Batches hold ``uint8`` pixels: normalization happens on the device, where it is cheap
and the transfer is four times smaller.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from wsol.data.base import Sample

# Decoding a 12000 x 9000 JPEG at full size needs ~300 MB; JPEG can decode at 1/2..1/8
# scale for free, so anything above this many times the input size is drafted down.
_DRAFT_FACTOR = 2
_EXIF_SWAPS_AXES = {5, 6, 7, 8}
Image.MAX_IMAGE_PIXELS = 200_000_000


class DecodeError(ValueError):
    """An image file that cannot be decoded."""


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
        gray = (arr.clip(0, hi) * (255.0 / hi)).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Composite on white so transparent pixels don't show their hidden colour.
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.array(im.convert("RGB"))


def decode_image(path: str | Path,
                 max_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an image file as upright RGB.

    Returns ``(pixels uint8 [h, w, 3], (H, W))``: ``(H, W)`` is the displayed size of the
    original (after EXIF orientation); ``pixels`` may be smaller than that when
    ``max_side`` allowed a reduced-scale JPEG decode.

    Raises:
        DecodeError: missing, empty, truncated or undecodable file.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    except OSError as e:
        raise DecodeError(f"cannot read file: {e.strerror or e}") from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
        orientation = im.getexif().get(0x0112, 1)
        width, height = im.size
        if orientation in _EXIF_SWAPS_AXES:
            width, height = height, width
        if max_side and im.format == "JPEG" and max(width, height) > _DRAFT_FACTOR * max_side:
            scale = _DRAFT_FACTOR * max_side / max(width, height)
            im.draft("RGB", (int(im.size[0] * scale) + 1, int(im.size[1] * scale) + 1))
        im.load()  # raises on truncated data, unlike cv2, which only warns
        im = ImageOps.exif_transpose(im)
        pixels = _to_rgb_array(im)
    except DecodeError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        msg = str(e) or type(e).__name__
        raise DecodeError(f"cannot decode image: {msg}") from None
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise DecodeError(f"decoded to an empty array of shape {pixels.shape}")
    return np.ascontiguousarray(pixels), (height, width)


RESIZE_POLICIES = ("stretch", "letterbox")


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch ``[h, w, 3]`` to ``size = (H, W)``; area filter when shrinking."""
    h, w = pixels.shape[:2]
    if (h, w) == tuple(size):
        return pixels
    shrink = size[0] < h and size[1] < w
    return cv2.resize(pixels, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def letterbox(pixels: np.ndarray, size: tuple[int, int],
              fill: tuple[int, int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """Fit ``[h, w, 3]`` inside ``size = (H, W)`` keeping its aspect ratio, at the top
    left, the rest filled with ``fill``. Returns the canvas and the fraction ``(fy, fx)``
    of it the image covers."""
    h, w = pixels.shape[:2]
    s = min(size[0] / h, size[1] / w)
    nh, nw = max(1, min(size[0], round(h * s))), max(1, min(size[1], round(w * s)))
    canvas = np.empty((size[0], size[1], 3), np.uint8)
    canvas[:] = fill
    canvas[:nh, :nw] = resize(pixels, (nh, nw))
    return canvas, (nh / size[0], nw / size[1])


@dataclass
class Failure:
    """A per-image failure record (one line of ``failures.jsonl``)."""

    image_id: int
    path: str
    stage: str
    reason: str

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "path": self.path, "stage": self.stage,
                "reason": self.reason}


@dataclass
class Batch:
    """Decoded images ``uint8 [B, 3, H, W]``, their dataset positions and original sizes,
    plus the failures met while decoding this batch and any warnings."""

    images: torch.Tensor
    indices: list[int]
    orig_sizes: list[tuple[int, int]]
    failures: list[Failure]
    warnings: list[str]
    regions: list[tuple[float, float]] | None = None  # letterbox: image part of the input


class ImageDataset(torch.utils.data.Dataset):
    """Decodes ``samples[i]`` to a resized uint8 tensor, or to a failure record."""

    def __init__(self, samples: list[Sample], input_size: tuple[int, int],
                 policy: str = "stretch", fill: tuple[int, int, int] = (0, 0, 0)):
        if policy not in RESIZE_POLICIES:
            raise ValueError(f"unknown resize policy {policy!r}; valid: "
                             f"{', '.join(RESIZE_POLICIES)}")
        self.samples = samples
        self.input_size = tuple(input_size)
        self.policy = policy
        self.fill = fill

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        try:
            pixels, orig = decode_image(s.path, max_side=max(self.input_size))
        except DecodeError as e:
            return {"index": i, "failure": Failure(s.image_id, s.path, "decode", str(e))}
        warning = None
        if s.height and s.width and (s.height, s.width) != orig:
            warning = (f"{s.path}: annotation says {s.width}x{s.height}, image is "
                       f"{orig[1]}x{orig[0]} (boxes are kept in annotation pixels)")
        region = (1.0, 1.0)
        if self.policy == "letterbox":
            pixels, region = letterbox(pixels, self.input_size, self.fill)
        else:
            pixels = resize(pixels, self.input_size)
        x = torch.from_numpy(pixels).permute(2, 0, 1)
        return {"index": i, "image": x, "orig": orig, "warning": warning, "region": region}


def collate(items: list[dict]) -> Batch:
    ok = [it for it in items if "image" in it]
    h, w = ok[0]["image"].shape[1:] if ok else (0, 0)
    return Batch(
        images=torch.stack([it["image"] for it in ok]) if ok else torch.zeros(0, 3, h, w,
                                                                              dtype=torch.uint8),
        indices=[it["index"] for it in ok],
        orig_sizes=[it["orig"] for it in ok],
        failures=[it["failure"] for it in items if "failure" in it],
        warnings=[it["warning"] for it in ok if it.get("warning")],
        regions=[it["region"] for it in ok],
    )


def make_loader(samples: list[Sample], input_size: tuple[int, int], batch_size: int,
                num_workers: int = 0, policy: str = "stretch",
                fill: tuple[int, int, int] = (0, 0, 0)) -> torch.utils.data.DataLoader:
    """Batches of :class:`Batch` in dataset order (deterministic output).

    ``policy``: ``stretch`` the image to ``input_size``, or ``letterbox`` it (aspect kept,
    padded with ``fill``, the model's mean colour)."""
    return torch.utils.data.DataLoader(
        ImageDataset(samples, input_size, policy, fill), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=collate,
        persistent_workers=False, prefetch_factor=4 if num_workers else None,
    )
