"""Datasets: readers for VOC, COCO and image folders, the synthetic demo set, and the loader."""

from __future__ import annotations

from collections.abc import Callable

from wsol.data.base import Dataset, Sample
from wsol.data.coco import load_coco
from wsol.data.folder import load_folder
from wsol.data.voc import AnnotationError, load_voc

__all__ = ["DATASETS", "AnnotationError", "Dataset", "Sample", "build_dataset"]

DATASETS: dict[str, Callable[..., Dataset]] = {
    "voc": lambda d: load_voc(d.root, d.split, d.classes, d.limit),
    "coco": lambda d: load_coco(d.root, d.ann_file, d.classes, d.limit),
    "folder": lambda d: load_folder(d.root, d.labels_file, d.classes, d.limit),
}


def build_dataset(data_cfg) -> Dataset:
    """Read the dataset described by a :class:`wsol.config.DataConfig`."""
    if data_cfg.format not in DATASETS:
        raise ValueError(
            f"unknown data.format {data_cfg.format!r}; valid: {', '.join(sorted(DATASETS))}"
        )
    if not data_cfg.root:
        raise ValueError("data.root is not set")
    if data_cfg.format == "coco" and not data_cfg.ann_file:
        raise ValueError("data.format=coco needs data.ann_file (an instances JSON)")
    return DATASETS[data_cfg.format](data_cfg)
