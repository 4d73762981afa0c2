"""Datasets: readers for VOC, COCO and image folders, the synthetic demo set, and the loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wsol.data.base import AnnotationError, DataError, DataNotFoundError, Dataset, Sample
from wsol.data.coco import load_coco
from wsol.data.folder import load_folder
from wsol.data.voc import load_voc
from wsol.errors import unknown_choice

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

    Images and VOC annotation files outside ``data.root`` (``../`` or absolute names in
    annotations, split or labels files) become recorded failures unless
    ``data.allow_outside_root``; a folder
    ``exclude`` under the root (the run's own output) is not read as images."""
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
        dataset = _inside(dataset, Path(data_cfg.root))
    return dataset


def _within(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _inside(dataset: Dataset, root: Path) -> Dataset:
    """``dataset`` less the samples whose image lies outside ``root``, recorded."""
    out = [s for s in dataset.samples if not _within(s.path, root)]
    if not out:
        return dataset
    dataset.samples = [s for s in dataset.samples if _within(s.path, root)]
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
