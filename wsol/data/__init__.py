"""Datasets: readers for VOC, COCO and image folders, the synthetic demo set, and the loader."""

from __future__ import annotations

from collections.abc import Callable

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
    "voc": lambda d: load_voc(d.root, d.split, d.classes, d.limit),
    "coco": lambda d: load_coco(d.root, d.ann_file, d.classes, d.limit),
    "folder": lambda d: load_folder(d.root, d.labels_file, d.classes, d.limit),
}


def build_dataset(data_cfg) -> Dataset:
    """Read the dataset described by a :class:`wsol.config.DataConfig`."""
    if data_cfg.format not in DATASETS:
        raise DataError(unknown_choice("data.format", data_cfg.format, DATASETS))
    if not data_cfg.root:
        raise DataError(
            "data.root is not set: the dataset folder (VOC: the folder that holds "
            "Annotations/; COCO and folder: the image folder)"
        )
    if data_cfg.format == "coco" and not data_cfg.ann_file:
        raise DataError("data.format=coco needs data.ann_file (an instances JSON)")
    return DATASETS[data_cfg.format](data_cfg)
