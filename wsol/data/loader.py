"""Resize and batch decoded images; a file that cannot be read becomes a recorded failure.

Batches hold ``uint8`` pixels: normalization happens on the device, where it is cheap
and the transfer is four times smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from wsol.data.base import Sample
from wsol.data.cache import DecodeCache, Decoded, cache_key
from wsol.data.decode import MAX_FILE_BYTES, DecodeError, decode_image, read_regular_file
from wsol.errors import plain_reason, unknown_choice
from wsol.fileio import holding_signals

RESIZE_POLICIES = ("stretch", "letterbox")


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch ``[h, w, 3]`` to ``size = (H, W)``; area filter when shrinking."""
    h, w = pixels.shape[:2]
    if (h, w) == tuple(size):
        return pixels
    shrink = size[0] < h and size[1] < w
    return cv2.resize(
        pixels, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def letterbox(
    pixels: np.ndarray, size: tuple[int, int], fill: tuple[int, int, int]
) -> tuple[np.ndarray, tuple[float, float]]:
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

    def __post_init__(self) -> None:
        # A reason is read by people and counted by failures.py: never an object's repr.
        self.reason = plain_reason(self.reason)

    def to_dict(self) -> dict:
        return {
            "image_id": self.image_id,
            "path": self.path,
            "stage": self.stage,
            "reason": self.reason,
        }


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
    # With a DecodeCache: each image's key, and whether it came from the cache.
    cache_keys: list | None = None
    from_cache: list[bool] | None = None


def size_warning(sample: Sample, orig: tuple[int, int]) -> str | None:
    """The warning for an image whose size is not the one its annotation declares."""
    if sample.height and sample.width and (sample.height, sample.width) != orig:
        return (
            f"{sample.path}: annotation says {sample.width}x{sample.height}, image is "
            f"{orig[1]}x{orig[0]} (boxes are kept in annotation pixels)"
        )
    return None


class ImageDataset(torch.utils.data.Dataset):
    """Decodes ``samples[i]`` to a resized uint8 tensor, or to a failure record; with a
    ``cache`` (:class:`~wsol.data.cache.DecodeCache`), takes the view from it when it
    holds it (the caller puts new views in: :func:`make_loader`)."""

    def __init__(
        self,
        samples: list[Sample],
        input_size: tuple[int, int],
        policy: str = "stretch",
        fill: tuple[int, int, int] = (0, 0, 0),
        max_bytes: int = MAX_FILE_BYTES,
        cache: DecodeCache | None = None,
    ):
        if policy not in RESIZE_POLICIES:
            raise ValueError(unknown_choice("resize policy", policy, RESIZE_POLICIES))
        self.samples = samples
        self.input_size = tuple(input_size)
        self.policy = policy
        self.fill = fill
        self.max_bytes = max_bytes
        self.cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        key = None
        if self.cache is not None:
            key = cache_key(s.path, self.input_size, self.policy, self.fill, self.max_bytes)
            hit = self.cache.get(key)
            if hit is not None:
                return {
                    "index": i,
                    "image": hit.pixels,
                    "orig": hit.orig,
                    "warning": size_warning(s, hit.orig),
                    "region": hit.region,
                    "cache_key": key,
                    "cached": True,
                }
        try:
            pixels, orig = decode_image(s.path, max(self.input_size), self.max_bytes)
        except DecodeError as e:
            return {"index": i, "failure": Failure(s.image_id, s.path, "decode", str(e))}
        region = (1.0, 1.0)
        if self.policy == "letterbox":
            pixels, region = letterbox(pixels, self.input_size, self.fill)
        else:
            pixels = resize(pixels, self.input_size)
        x = torch.from_numpy(pixels).permute(2, 0, 1)
        item = {"index": i, "image": x, "orig": orig, "warning": size_warning(s, orig)}
        return {**item, "region": region, "cache_key": key, "cached": False}


class FileDataset(torch.utils.data.Dataset):
    """Reads ``samples[i]``'s file bytes (for decoding on the model's device), or a
    failure record: what ``data.decode=device`` asks the loader for."""

    def __init__(self, samples: list[Sample], max_bytes: int = MAX_FILE_BYTES):
        self.samples = samples
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        try:
            return {"index": i, "data": read_regular_file(s.path, self.max_bytes)}
        except DecodeError as e:
            return {"index": i, "failure": Failure(s.image_id, s.path, "decode", str(e))}


@dataclass
class FileBatch:
    """File bytes, their dataset positions, and the failures met reading them."""

    data: list[bytes]
    indices: list[int]
    failures: list[Failure]


def collate_files(items: list[dict]) -> FileBatch:
    ok = [it for it in items if "data" in it]
    return FileBatch(
        [it["data"] for it in ok],
        [it["index"] for it in ok],
        [it["failure"] for it in items if "failure" in it],
    )


def collate(items: list[dict]) -> Batch:
    ok = [it for it in items if "image" in it]
    h, w = ok[0]["image"].shape[1:] if ok else (0, 0)
    return Batch(
        images=torch.stack([it["image"] for it in ok])
        if ok
        else torch.zeros(0, 3, h, w, dtype=torch.uint8),
        indices=[it["index"] for it in ok],
        orig_sizes=[it["orig"] for it in ok],
        failures=[it["failure"] for it in items if "failure" in it],
        warnings=[it["warning"] for it in ok if it.get("warning")],
        regions=[it["region"] for it in ok],
        cache_keys=[it.get("cache_key") for it in ok],
        from_cache=[it.get("cached", False) for it in ok],
    )


class CachingLoader:
    """A loader whose batches' newly decoded views go into ``cache`` (in this process,
    whichever process decoded them), counting its hits and misses."""

    def __init__(self, loader: torch.utils.data.DataLoader, cache: DecodeCache):
        self.loader = loader
        self.cache = cache

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            hits = 0
            for j, (key, cached) in enumerate(zip(batch.cache_keys, batch.from_cache, strict=True)):
                if cached:
                    hits += 1
                else:  # a copy: the batch tensor (maybe pinned) is not kept alive
                    pixels = batch.images[j].clone()
                    self.cache.put(key, Decoded(pixels, batch.orig_sizes[j], batch.regions[j]))
            self.cache.count(hits, len(batch.indices) - hits)
            yield batch


def make_loader(
    samples: list[Sample],
    input_size: tuple[int, int],
    batch_size: int,
    num_workers: int = 0,
    policy: str = "stretch",
    fill: tuple[int, int, int] = (0, 0, 0),
    max_bytes: int = MAX_FILE_BYTES,
    pin_memory: bool = False,
    files_only: bool = False,
    cache: DecodeCache | None = None,
) -> torch.utils.data.DataLoader | CachingLoader:
    """Batches of :class:`Batch` in dataset order (deterministic output), decoded by
    ``num_workers`` processes (0: in this one).

    ``policy``: ``stretch`` the image to ``input_size``, or ``letterbox`` it (aspect kept,
    padded with ``fill``, the model's mean colour). ``pin_memory`` (for a CUDA model)
    puts batches in page-locked memory, so the copy to the device can overlap.
    ``files_only``: batches of :class:`FileBatch` (file bytes) instead, for decoding on
    the device (:func:`wsol.data.gpu_decode.decode_batch`). ``cache``: views decoded
    before (by an earlier run at this size) are taken from it, the others put in it
    (not with ``files_only``); the batches are the same with or without it."""
    if files_only:
        cache = None
    dataset = (
        FileDataset(samples, max_bytes)
        if files_only
        else ImageDataset(samples, input_size, policy, fill, max_bytes, cache)
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_files if files_only else collate,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
        pin_memory=pin_memory,
    )
    return loader if cache is None else CachingLoader(loader, cache)


def start_batches(loader: Iterable) -> Iterator:
    """``iter(loader)``, done whole: a Ctrl-C or SIGTERM while a DataLoader starts its
    workers is raised once they have started (:func:`wsol.fileio.holding_signals`), so
    the iterator is shut down cleanly rather than half-built, when its finalizer would
    fail with a traceback on the console."""
    with holding_signals():
        return iter(loader)
