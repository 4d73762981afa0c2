"""The config a run really used: absolute paths and every default made explicit.

A run writes this config as ``config.yaml``, so ``wsol run DIR/config.yaml out=NEW``
reproduces it from any working directory, and the run's fingerprint is the same
whichever directory and spelling of a path it was started with.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from wsol.config import Config
from wsol.models import ModelSpec
from wsol.models.checkpoint import is_path
from wsol.models.class_maps import BUILTIN_CLASS_MAPS


def absolute(path: str) -> str:
    """``path`` made absolute (``~`` expanded, ``..`` resolved); empty stays empty."""
    return str(Path(path).expanduser().resolve()) if path else path


def absolute_paths(cfg: Config) -> Config:
    """``cfg`` with every file and folder it names absolute: ``out``, the dataset's root,
    annotation and labels files, a checkpoint in ``model.weights``, a class map file and
    a calibration. Names that are not paths (``DEFAULT``, ``imagenet_to_voc``) stay."""
    d, m, b = cfg.data, cfg.model, cfg.boxes
    weights = absolute(m.weights) if is_path(m.weights) else m.weights
    class_map = m.class_map if m.class_map in BUILTIN_CLASS_MAPS else absolute(m.class_map)
    return dataclasses.replace(
        cfg,
        out=absolute(cfg.out),
        data=dataclasses.replace(
            d,
            root=absolute(d.root),
            ann_file=absolute(d.ann_file),
            labels_file=absolute(d.labels_file),
        ),
        model=dataclasses.replace(m, weights=weights, class_map=class_map),
        boxes=dataclasses.replace(b, calibration=absolute(b.calibration)),
    )


def resolved(cfg: Config, spec: ModelSpec, layer: str | None, split: str) -> Config:
    """``cfg`` with the defaults it left to the model made explicit: the architecture
    (of a ``wsol train`` checkpoint), the hooked layer, the input size, the resize policy
    and the normalization; and the split that was read (empty where the format has none
    or every annotation file was read)."""
    m = cfg.model
    model = dataclasses.replace(
        m,
        arch=m.arch or spec.extra.get("arch", ""),
        target_layer=layer or m.target_layer,
        input_size=[int(v) for v in spec.input_size],
        resize=spec.resize,
        mean=[float(v) for v in spec.mean],
        std=[float(v) for v in spec.std],
    )
    return dataclasses.replace(cfg, model=model, data=dataclasses.replace(cfg.data, split=split))
