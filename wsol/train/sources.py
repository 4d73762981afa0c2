"""What training reads: images with image-level labels, split into training and validation.

Labels come from the same readers ``wsol run`` uses (VOC XML, a COCO instances file, a
folder's labels file), reduced to one multi-hot row per image; boxes are never read. The
demo's shapes are rendered in memory instead. Validation images come from the dataset's
own other split when one is named (``val.split``, ``val.ann_file``, ``val.labels_file``),
else from a seeded fraction of the training images that training then never sees.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsol.data import DataError, Dataset, Sample, build_dataset
from wsol.data.decode import MAX_FILE_BYTES, decode_image
from wsol.data.synthetic import SHAPES, ShapeSpec, render
from wsol.readfile import InputFileError, open_regular
from wsol.schema import ConfigError
from wsol.train_config import TrainConfig

logger = logging.getLogger(__name__)

Status = Callable[[str, int, int], None]


def multi_hot(samples: list[Sample], num_classes: int) -> np.ndarray:
    """``float32 [N, C]``: 1 where the image is labelled with the class."""
    labels = np.zeros((len(samples), num_classes), np.float32)
    for i, s in enumerate(samples):
        labels[i, s.labels] = 1.0
    return labels


@dataclass
class FileImages:
    """Images on disk, decoded on demand (JPEGs drafted down to about ``max_side``).

    ``lost`` holds the images the dataset listed but training cannot use, path ->
    reason: their annotation or path was refused, or their file is missing, not a
    regular file, empty or too large (found by :func:`readable`, before any epoch)."""

    classes: list[str]
    samples: list[Sample]
    labels: np.ndarray  # float32 [N, C]
    max_bytes: int = MAX_FILE_BYTES
    lost: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, dataset: Dataset, max_bytes: int = MAX_FILE_BYTES) -> FileImages:
        """The dataset's images that can be opened; the others (and those the reader
        left out) in ``lost``."""
        samples, lost = readable(dataset.samples, max_bytes)
        lost = {**{f.get("path", "?"): f.get("reason", "?") for f in dataset.failures}, **lost}
        return cls(
            list(dataset.classes),
            samples,
            multi_hot(samples, len(dataset.classes)),
            max_bytes,
            lost,
        )

    def __len__(self) -> int:
        return len(self.samples)

    def name(self, i: int) -> str:
        return self.samples[i].path

    def image(self, i: int, max_side: int | None = None) -> np.ndarray:
        """RGB ``uint8 [H, W, 3]``; raises :class:`wsol.data.decode.DecodeError`."""
        return decode_image(self.samples[i].path, max_side, self.max_bytes)[0]

    def subset(self, keep: np.ndarray, lost: dict[str, str] | None = None) -> FileImages:
        return FileImages(
            self.classes,
            [self.samples[i] for i in keep],
            self.labels[keep],
            self.max_bytes,
            dict(lost or {}),
        )


def readable(samples: list[Sample], max_bytes: int) -> tuple[list[Sample], dict[str, str]]:
    """``(samples whose file opens as a regular, non-empty file within max_bytes, the
    others as path -> reason)``: an open and an fstat per file, nothing read, so a wrong
    ``data.root`` is found before training rather than as an epoch of nothing."""
    ok, lost = [], {}
    for s in samples:
        try:
            with open_regular(s.path, max_bytes, "data.max_file_mb", allow_empty=False):
                pass
        except InputFileError as e:
            lost[s.path] = str(e)
            continue
        ok.append(s)
    return ok, lost


def lost_summary(lost: dict[str, str], listed: int) -> str:
    """``"40 of 40 images could not be read: file not found (40, e.g. /x/a.jpg)"``:
    how many of ``listed`` images were lost, by reason, most common first."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in lost.items():
        by_reason.setdefault(reason, []).append(path)
    parts = [
        f"{reason} ({len(paths)}, e.g. {min(paths)})"
        for reason, paths in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    more = f"; and {len(parts) - 3} other reasons" if len(parts) > 3 else ""
    return f"{len(lost)} of {listed} images could not be read: {'; '.join(parts[:3])}{more}"


def check_learnable(images: Images) -> None:
    """Refuse labels a classifier cannot learn from: every training image labelled with
    the same classes (one class and no image without it, the usual case). Its loss is
    zero from the first step, its validation mAP 1, and every map it gives is flat.

    Raises:
        DataError: naming the data that is missing.
    """
    labels = images.labels
    if not len(labels) or not (labels == labels[0]).all():
        return
    present = [c for c, v in zip(images.classes, labels[0], strict=True) if v]
    if len(images.classes) == 1:
        (name,) = images.classes
        raise DataError(
            f"every training image is labelled {name!r}, the only class: one class with no "
            f"negative image cannot be learned; add images without {name!r} (with no label "
            "at all: negatives), or images of a second class"
        )
    raise DataError(
        f"every training image has the same labels ({', '.join(present) or 'none'}): a "
        "classifier cannot learn from that; add images whose labels differ"
    )


@dataclass
class RenderedImages:
    """The demo's shapes, rendered once and JPEG round-tripped like the files on disk."""

    classes: list[str]
    pixels: np.ndarray  # uint8 [N, S, S, 3] RGB
    labels: np.ndarray  # float32 [N, C]
    split: str

    @classmethod
    def render(
        cls, seed: int, split: str, count: int, size: int, status: Status | None = None
    ) -> RenderedImages:
        spec = ShapeSpec(image_size=size)
        pixels = np.empty((count, size, size, 3), np.uint8)
        labels = np.zeros((count, len(SHAPES)), np.float32)
        for i in range(count):
            r = render(seed, split, i, spec)
            _ok, buf = cv2.imencode(".jpg", r.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            pixels[i] = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            labels[i, r.labels] = 1.0
            if status is not None and ((i + 1) % 500 == 0 or i + 1 == count):
                status(f"render {split}", i + 1, count)
        return cls(list(SHAPES), pixels, labels, split)

    def __len__(self) -> int:
        return len(self.pixels)

    def name(self, i: int) -> str:
        return f"shapes:{self.split}:{i}"

    def image(self, i: int, max_side: int | None = None) -> np.ndarray:
        return self.pixels[i]


Images = FileImages | RenderedImages


def _held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` positions: a seeded ``fraction`` of ``n`` (at least one) held out."""
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    k = min(n - 1, max(1, round(fraction * n)))
    return np.sort(order[k:]), np.sort(order[:k])


def _val_config(cfg: TrainConfig):
    """The data section that reads the validation images, or None (hold some out)."""
    v, d = cfg.val, cfg.data
    given = {"split": v.split, "ann_file": v.ann_file, "labels_file": v.labels_file}
    fits = {"voc": "split", "coco": "ann_file", "folder": "labels_file"}[d.format]
    wrong = [k for k, value in given.items() if value and k != fits]
    if wrong:
        raise ConfigError(
            f"val.{wrong[0]} does not apply to data.format={d.format}; "
            f"use val.{fits} (or val.fraction to hold out training images)"
        )
    if not given[fits]:
        return None
    return dataclasses.replace(d, **{fits: given[fits]}, limit=None)


def _usable(images: FileImages, listed: int, which: str = "") -> FileImages:
    """``images``, once what was lost is logged (one warning; each file at INFO); none
    at all is an error."""
    if not images.lost:
        return images
    for path, reason in sorted(images.lost.items()):
        logger.info("left out %s: %s", path, reason)
    if not len(images):
        raise DataError(f"{which}{lost_summary(images.lost, listed)}")
    logger.warning("%s%s; training goes on without them", which, lost_summary(images.lost, listed))
    return images


def training_images(cfg: TrainConfig, status: Status | None = None) -> tuple[Images, Images]:
    """``(train, val)`` images of the configured dataset, with the same classes.

    The training images carry in ``lost`` every image of the dataset left out (see
    :class:`FileImages`), the validation images those of their own split.

    Raises:
        DataError: no labelled images, none that can be opened, or validation images
            that are also training images.
    """
    if cfg.data.format == "shapes":
        s = cfg.shapes
        train = RenderedImages.render(s.seed, "train", s.num_images, s.image_size, status)
        val = RenderedImages.render(s.seed, "val", s.val_images, s.image_size, status)
        return train, val
    val_data = _val_config(cfg)
    dataset = build_dataset(cfg.data, exclude=cfg.out)
    if not len(dataset) and dataset.failures:
        lost = {f.get("path", "?"): f.get("reason", "?") for f in dataset.failures}
        raise DataError(lost_summary(lost, len(dataset.failures)))
    if not dataset.classes or not len(dataset):
        raise DataError(
            f"no labelled images in {cfg.data.root}"
            + (" (a folder dataset needs data.labels_file)" if cfg.data.format == "folder" else "")
        )
    for w in dataset.warnings:
        logger.warning("%s: %s", w.get("path", "?"), w.get("reason", "?"))
    cap = int(cfg.data.max_file_mb * 2**20)
    images = _usable(FileImages.of(dataset, cap), len(dataset) + len(dataset.failures))
    if val_data is None:
        keep, held = _held_out(len(images), cfg.val.fraction, cfg.seed)
        return images.subset(keep, images.lost), images.subset(held)
    val_set = build_dataset(dataclasses.replace(val_data, classes=images.classes))
    val = _usable(FileImages.of(val_set, cap), len(val_set) + len(val_set.failures), "validation ")
    shared = {str(Path(s.path).resolve()) for s in images.samples} & {
        str(Path(s.path).resolve()) for s in val.samples
    }
    if shared:
        raise DataError(
            f"{len(shared)} validation images are also training images "
            f"(e.g. {sorted(shared)[0]}); validation must come from other images"
        )
    return images, val
