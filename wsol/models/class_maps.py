"""Class maps: which classes of a pretrained model stand for each dataset class.

A class map is ``{dataset_class_name: [model_class_index, ...]}``. It lets a classifier
trained on ImageNet-1k localize the classes of another dataset. ``model.class_map`` in
the run configuration names a built-in map (:mod:`wsol.models.imagenet`) or a YAML file
of the same shape::

    kangaroo: [104]        # wallaby
    big cat: [286, 287]    # cougar, lynx
    koala: 105             # a single index is shorthand for [105]
    aeroplane: [airplane]  # a model class may be named instead (a model trained by wsol)

How mapped classes combine
--------------------------

When a dataset class maps to several model classes, it stands for the **single** mapped
model class with the highest probability in that image: that class's probability is
the dataset class's probability (for ranking, ``cam.min_prob`` and box scores) and its
CAM is the dataset class's map. A sum of the mapped probabilities would favour classes
with many model classes (``dog`` has 118); see :mod:`wsol.cams.targets`.

A map may leave model classes out; their probability counts for no dataset class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from wsol.errors import WsolError, did_you_mean, quote
from wsol.models.imagenet import (
    BUILTIN_CLASS_MAPS,
    IMAGENET_TO_COCO_MISSING,
    imagenet_class_names,
)
from wsol.readfile import MAX_CONFIG_BYTES, InputFileError, read_text
from wsol.schema import one_line
from wsol.strict_yaml import load_yaml

__all__ = [
    "BUILTIN_CLASS_MAPS",
    "IMAGENET_TO_COCO_MISSING",
    "ClassMapError",
    "imagenet_class_names",
    "load_class_map",
]


class ClassMapError(WsolError, ValueError):
    """A class map that cannot be used."""


def _builtin_names() -> str:
    return ", ".join(sorted(BUILTIN_CLASS_MAPS))


def _read_yaml(path: Path) -> Any:
    try:
        text = read_text(path, MAX_CONFIG_BYTES)
    except InputFileError as exc:
        raise ClassMapError(f"class map {str(path)!r}: {exc}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ClassMapError(f"class map {str(path)!r}: malformed YAML: {one_line(exc)}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(
    raw: object, source: str, num_model_classes: int | None, model_names: list[str] | None = None
) -> dict[str, list[int]]:
    """Check ``raw`` is ``{name: [index or model class name, ...]}`` and return a fresh
    copy with every entry an index."""
    if not isinstance(raw, dict) or not raw:
        raise ClassMapError(
            f"class map {source}: expected a non-empty mapping of class name to a list of "
            f"model class indices, got {quote(raw)}"
        )
    result: dict[str, list[int]] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            raise ClassMapError(
                f"class map {source}: class names must be non-empty strings, got {quote(name)}"
            )
        indices = [value] if _is_int(value) or isinstance(value, str) else value
        if not isinstance(indices, list) or not indices:
            raise ClassMapError(
                f"class map {source}: {quote(name)} must map to a non-empty list of model "
                f"class indices, got {quote(value)}"
            )
        indices = [_by_name(i, name, source, model_names) for i in indices]
        for index in indices:
            if not _is_int(index):
                raise ClassMapError(
                    f"class map {source}: {quote(name)}: index {quote(index)} is not an integer"
                )
            if index < 0 or (num_model_classes is not None and index >= num_model_classes):
                bound = "" if num_model_classes is None else f" < {num_model_classes}"
                raise ClassMapError(
                    f"class map {source}: {quote(name)}: index {index} is out of range "
                    f"(expected 0 <= index{bound})"
                )
        if len(set(indices)) != len(indices):
            raise ClassMapError(
                f"class map {source}: {quote(name)} lists an index twice: {quote(indices)}"
            )
        result[name] = list(indices)
    return result


def _by_name(entry: object, name: str, source: str, model_names: list[str] | None) -> object:
    """A model class given by name, as its index; anything else unchanged."""
    if not isinstance(entry, str):
        return entry
    if model_names is None:
        raise ClassMapError(
            f"class map {source}: {quote(name)}: {quote(entry)} names a model class, but the "
            "model's class names are not known here; use indices"
        )
    if entry not in model_names:
        raise ClassMapError(
            f"class map {source}: {quote(name)}: the model has no class {quote(entry)}"
            f"{did_you_mean(entry, model_names)} (it has {len(model_names)}: "
            f"{', '.join(model_names[:8])}, ...)"
        )
    return model_names.index(entry)


def load_class_map(
    spec: str | os.PathLike[str], model_classes: int | list[str] | None = None
) -> dict[str, list[int]]:
    """Load a built-in class map by name, or a YAML class map file, and validate it.

    ``model_classes``, the model's class names (or just their number), bounds every
    index and resolves entries that name a model class. Returns a new dict (and new
    lists) that the caller may change freely.
    """
    names = list(model_classes) if isinstance(model_classes, list | tuple) else None
    num_model_classes = len(names) if names is not None else model_classes
    if num_model_classes is not None and num_model_classes <= 0:
        raise ClassMapError(f"num_model_classes must be positive, got {num_model_classes}")
    if isinstance(spec, str) and spec in BUILTIN_CLASS_MAPS:
        return _validate(BUILTIN_CLASS_MAPS[spec], repr(spec), num_model_classes, names)
    path = Path(spec)
    if not path.is_file():
        raise ClassMapError(
            f"class map {str(spec)!r} is neither a built-in map ({_builtin_names()}) "
            "nor an existing YAML file"
        )
    return _validate(_read_yaml(path), repr(str(path)), num_model_classes, names)
