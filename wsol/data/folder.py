"""A folder of images with optional image-level tags: the pseudo-labelling case.

Labels file formats (``data.labels_file``):

- CSV with a header ``file,labels``, in either layout (or a mix):

  - wide: one row per image, its labels separated by ``;`` (names may then hold
    spaces, as in ``dining table;person``), or by spaces where a cell has no ``;``;
  - long: one row per (image, label), as ``a.jpg,cat`` then ``a.jpg,dog``.

  The rows of one file are merged: ``a.jpg`` above is labelled ``cat`` and ``dog``.
- JSON ``{"file.jpg": ["cat", "dog"], ...}``.

Paths in the labels file are relative to ``data.root``. Without a labels file the
classes are the model's (or the class map's) and targets must be predicted ones.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from wsol.data.base import AnnotationError, DataNotFoundError, Dataset, Sample
from wsol.errors import guesses, quote
from wsol.readfile import InputFileError, InputMissingError, read_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def _read_labels(path: Path) -> dict[str, list[str]]:
    try:
        text = read_text(path, encoding="utf-8-sig")  # a BOM, as Excel writes, is dropped
    except InputMissingError:
        raise DataNotFoundError(f"labels file {path} not found") from None
    except InputFileError as e:
        raise AnnotationError(f"{path}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise AnnotationError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise AnnotationError(f"{path}: expected an object of file -> [labels]")
        out = {}
        for name, value in raw.items():
            tags = [value] if isinstance(value, str) else value
            if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
                raise AnnotationError(
                    f"{path}: {quote(name)} must map to a label or a list of labels, "
                    f"got {quote(value)}"
                )
            out[name] = tags
        return out
    out: dict[str, list[str]] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or {"file", "labels"} - set(reader.fieldnames):
        raise AnnotationError(f"{path}: CSV needs a header with columns file,labels")
    for line, row in enumerate(reader, start=2):
        if row.get("file") is None or row.get("labels") is None:
            raise AnnotationError(f"{path}: line {line} has no labels column")
        cell = row["labels"]
        # ";" separates labels when present (names may then hold spaces: "dining table")
        tags = cell.split(";") if ";" in cell else cell.split()
        merged = out.setdefault(row["file"], [])  # long layout: one row per label
        for tag in (t.strip() for t in tags):
            if tag and tag not in merged:
                merged.append(tag)
    return out


def scan_images(root: Path) -> list[str]:
    """The image files under ``root``, relative to it. Symlinked folders are followed:
    they are the user's layout (``train -> /data/train``); a folder reached twice (a link
    loop, or two links to one place) is listed once."""
    seen: set[tuple[int, int]] = set()
    found = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:  # a dangling link to a folder
            dirs.clear()
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        rel = Path(folder).relative_to(root)
        found += [(rel / n).as_posix() for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return found


def load_folder(
    root: str | Path,
    labels_file: str = "",
    classes: list[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """List the images under ``root`` (sorted, recursive) with their optional tags."""
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} not found")
    tags = _read_labels(Path(labels_file)) if labels_file else {}
    files = sorted(tags) if tags else sorted(scan_images(root))
    if limit is not None:
        files = files[:limit]
    names = sorted({t for f in files for t in tags.get(f, [])})
    classes = list(classes) if classes else names
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise AnnotationError(
            f"labels {quote(unknown)} are not in data.classes={quote(classes)}"
            f"{guesses(unknown, classes)}"
        )
    samples = [
        Sample(
            image_id=i + 1,
            path=str(root / f),
            file_name=f,
            labels=np.unique(np.array([index[t] for t in tags.get(f, [])], np.int64)),
        )
        for i, f in enumerate(files)
    ]
    return Dataset(
        name=f"folder:{root.name}",
        classes=classes,
        samples=samples,
        category_ids=list(range(1, len(classes) + 1)),
        has_boxes=False,
        sources=[str(labels_file)] if labels_file else [],
    )
