"""Pseudo-label writers, picked by name from :data:`FORMATS` (``export.formats``).

A writer is ``writer(doc, out_dir, **options) -> [paths written]``: it takes the COCO
document (:func:`wsol.export.coco.build_document`), trimmed by
:func:`~wsol.export.filtering.filter_document` if at all, and writes files atomically;
it reads nothing back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
from wsol.export.filtering import dropped_boxes, filter_document
from wsol.export.labelstudio import CONFIG as LABELSTUDIO_CONFIG
from wsol.export.labelstudio import TASKS as LABELSTUDIO_TASKS
from wsol.export.labelstudio import write_labelstudio
from wsol.export.results import RESULTS, write_results
from wsol.export.voc import VOC_DIR, write_voc
from wsol.export.yolo import YOLO_DIR, write_yolo
from wsol.registry import Registry

Writer = Callable[..., list[Path]]

FORMATS: Registry[Writer] = Registry(
    "export format",
    {
        "coco": write_coco,
        "results": write_results,
        "voc": write_voc,
        "yolo": write_yolo,
        "labelstudio": write_labelstudio,
    },
)
# What each format writes directly under the output folder, files or folders (for
# cleaning up a replaced run).
OUTPUTS: dict[str, tuple[str, ...]] = {
    "coco": (PSEUDO_LABELS,),
    "results": (RESULTS,),
    "voc": (VOC_DIR,),
    "yolo": (YOLO_DIR,),
    "labelstudio": (LABELSTUDIO_TASKS, LABELSTUDIO_CONFIG),
}

__all__ = [
    "FORMATS",
    "OUTPUTS",
    "annotations_for",
    "build_document",
    "dropped_boxes",
    "export_names",
    "filter_document",
    "image_entry",
    "register_export",
    "results_list",
    "write_formats",
]


def register_export(name: str, writer: Writer) -> None:
    """Make ``export.formats=[..., name]`` write the pseudo-labels with a writer of your own.

    Args:
        name: the format's name; replaces (with a warning) one registered before.
        writer: ``writer(doc, out_dir) -> [paths written]``: ``doc`` is the COCO
            document (``images``, ``categories``, ``annotations`` with ``bbox``
            ``[x, y, w, h]`` and ``score``), trimmed by ``export.min_score`` and
            ``export.max_per_class``. The paths it returns are the run's, which
            ``--overwrite`` removes.

    Returns:
        None. :data:`FORMATS` holds the writer from now on.

    Raises:
        ValueError: ``name`` is empty.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import wsol
        >>> def count(doc, out_dir):
        ...     path = Path(out_dir) / "count.txt"
        ...     path.write_text(f"{len(doc['annotations'])} boxes\\n")
        ...     return [path]
        >>> wsol.register_export("count", count)
        >>> doc = build_document([], [], [], {})
        >>> [p.name for p in write_formats(doc, Path(tempfile.mkdtemp()), ["count"])]
        ['count.txt']
        >>> FORMATS.unregister("count")
    """
    FORMATS.register(name, writer)


def write_formats(
    doc: dict,
    out_dir: Path,
    formats: Iterable[str],
    options: Mapping[str, Mapping] | None = None,
) -> list[Path]:
    """Write ``doc`` in each of ``formats``; returns every file written. ``options``
    gives a format's writer its keyword arguments, e.g.
    ``{"labelstudio": {"image_root": "http://host/images/"}}``.

    Raises:
        UsageError: a format, or a format named in ``options``, that is not in
            :data:`FORMATS`.
    """
    formats, options = list(formats), dict(options or {})
    for name in [*formats, *options]:
        if name not in FORMATS:
            raise UsageError(unknown_choice("export format", name, FORMATS))
    out_dir = Path(out_dir)
    return [p for name in formats for p in FORMATS[name](doc, out_dir, **options.get(name, {}))]


def export_names(formats: Iterable[str]) -> list[str]:
    """What each of ``formats`` is called in a summary: its file (``pseudo_labels.json``)
    or folder (``voc/``) under the output folder; a registered format, its name."""
    names = []
    for name in formats:
        first = OUTPUTS.get(name, (name,))[0]
        names.append(first if name not in OUTPUTS or "." in first else f"{first}/")
    return names
