"""Datasets: readers for VOC, COCO and image folders, the synthetic demo set, and the loader."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from wsol.data.base import AnnotationError, DataError, DataNotFoundError, Dataset, Sample
from wsol.data.coco import load_coco
from wsol.data.folder import load_folder
from wsol.data.voc import load_voc
from wsol.errors import unknown_choice

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "AnnotationError",
    "DataError",
    "DataNotFoundError",
    "Dataset",
    "Sample",
    "build_dataset",
    "load_coco",
    "load_folder",
    "load_voc",
]

DATASETS: dict[str, Callable[..., Dataset]] = {
    "voc": lambda d: load_voc(
        d.root,
        d.split,
        d.classes,
        d.limit,
        d.image_dir,
        d.ann_dir,
        getattr(d, "allow_outside_root", False),
    ),
    "coco": lambda d: load_coco(d.root, d.ann_file, d.classes, d.limit),
    "folder": lambda d: load_folder(d.root, d.labels_file, d.classes, d.limit),
}


def build_dataset(data_cfg, exclude: str | Path | None = None) -> Dataset:
    """Read the dataset described by a :class:`wsol.config.DataConfig`.

    Images and VOC annotation files that an annotation, split or labels file names
    outside ``data.root`` (``../`` or absolute names) become recorded failures unless
    ``data.allow_outside_root``. The check reads the names, not the disk: a symlink the
    user put in the dataset tree (``JPEGImages -> /data/...``) is their layout and is
    followed. A folder ``exclude`` under the root (the run's own output) is not read as
    images."""
    if data_cfg.format not in DATASETS:
        raise DataError(unknown_choice("data.format", data_cfg.format, DATASETS))
    if not data_cfg.root:
        raise DataError(
            "data.root is not set: the dataset folder (VOC: the folder that holds "
            "Annotations/; COCO and folder: the image folder)"
        )
    if data_cfg.format == "coco" and not data_cfg.ann_file:
        raise DataError("data.format=coco needs data.ann_file (an instances JSON)")
    dataset = DATASETS[data_cfg.format](data_cfg)
    if exclude is not None and data_cfg.format == "folder":
        # a scan of the root would read the last run's overlays as images
        dataset.samples = [s for s in dataset.samples if not _within(s.path, Path(exclude))]
    if not getattr(data_cfg, "allow_outside_root", False):
        roots = [Path(data_cfg.root)]
        if data_cfg.format == "voc":  # data.image_dir is the user's, as data.root is
            roots.append(Path(data_cfg.root) / data_cfg.image_dir)
        dataset = _inside(dataset, roots)
    return dataset


def _within(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def named_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` stays inside ``folder`` by its name: no ``..`` or absolute part
    leads out. Links are not resolved, so a symlink inside ``folder`` counts as inside
    wherever it points."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def _inside(dataset: Dataset, roots: list[Path]) -> Dataset:
    """``dataset`` less the samples whose image is named outside every one of ``roots``,
    recorded."""
    inside = [any(named_inside(s.path, r) for r in roots) for s in dataset.samples]
    if all(inside):
        return dataset
    out = [s for s, ok in zip(dataset.samples, inside, strict=True) if not ok]
    for s in out:
        logger.info("%s: named outside data.root; image skipped", s.path)
    dataset.samples = [s for s, ok in zip(dataset.samples, inside, strict=True) if ok]
    dataset.failures = dataset.failures + [
        {
            "image_id": s.image_id,
            "path": s.path,
            "stage": "path",
            "reason": "outside data.root (data.allow_outside_root=true allows it)",
        }
        for s in out
    ]
    return dataset
