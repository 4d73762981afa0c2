"""Pseudo-label writers, picked by name from :data:`FORMATS` (``export.formats``).

A writer is ``writer(doc, out_dir) -> [paths written]``: it takes the COCO document
(:func:`wsol.export.coco.build_document`) and writes files; it reads nothing back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from wsol.errors import UsageError, unknown_choice
from wsol.export.coco import (
    PSEUDO_LABELS,
    annotations_for,
    build_document,
    image_entry,
    results_list,
    write_coco,
)
from wsol.export.voc import VOC_DIR, write_voc

Writer = Callable[[dict, Path], list[Path]]

FORMATS: dict[str, Writer] = {"coco": write_coco, "voc": write_voc}
# What each format writes under the output folder (for cleaning up a replaced run).
OUTPUTS: dict[str, str] = {"coco": PSEUDO_LABELS, "voc": VOC_DIR}

__all__ = [
    "FORMATS",
    "OUTPUTS",
    "annotations_for",
    "build_document",
    "image_entry",
    "results_list",
    "write_formats",
]


def write_formats(doc: dict, out_dir: Path, formats: Iterable[str]) -> list[Path]:
    """Write ``doc`` in each of ``formats``; returns every file written."""
    formats = list(formats)
    for name in formats:
        if name not in FORMATS:
            raise UsageError(unknown_choice("export format", name, FORMATS))
    return [p for name in formats for p in FORMATS[name](doc, Path(out_dir))]
