"""Run configuration: dataclasses, loaded from YAML plus dotted ``key=value`` overrides.

A YAML file sets only the keys it needs; every other key keeps the default below.
Unknown keys and values of the wrong type fail at load time, before any work starts,
with a message that lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be run."""


@dataclass
class DataConfig:
    """Where the images and their labels come from."""

    format: str = "voc"  # voc | coco | folder
    root: str = ""  # VOC: folder holding Annotations/; COCO and folder: the image folder
    split: str = "val"  # VOC split file name under ImageSets/Main
    ann_file: str = ""  # COCO instances JSON
    labels_file: str = ""  # folder format: optional CSV/JSON of image-level labels
    classes: list[str] | None = None  # fixes the class order (VOC, folder)
    limit: int | None = None  # use only the first N images
    num_workers: int = 0  # decoding processes (0: in the main process)


@dataclass
class ModelConfig:
    """The classifier and how to feed it."""

    arch: str = "shapes_net"
    weights: str = "none"  # none | path | DEFAULT | a torchvision weight name
    target_layer: str = ""  # empty: the architecture's default
    class_map: str = ""  # empty: dataset classes are the model's classes (by name)
    skip_unmapped: bool = False  # drop dataset classes the class map lacks (else: error)
    input_size: list[int] | None = None  # [H, W]; empty: the model's own
    resize: str = ""  # stretch | letterbox; empty: the model's own (stretch)
    mean: list[float] | None = None
    std: list[float] | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on CUDA)


@dataclass
class CamConfig:
    """Which maps to compute, for which classes."""

    method: str = "gradcam"
    targets: str = "gt"  # gt | topk | prob
    topk: int = 1
    min_prob: float = 0.5
    batch_size: int = 32


@dataclass
class BoxesConfig:
    """How maps become boxes."""

    threshold_mode: str = "fraction"  # fraction (of the map's max) | absolute | otsu
    # fraction: 0.15 Grad-CAM paper, 0.2 CAM paper; absolute: a cut on the min-max normalized
    # map; otsu ignores it. "calibrated": per-class or global cuts from boxes.calibration.
    threshold: float | Literal["calibrated"] = 0.2
    calibration: str = ""  # calibration JSON written by `wsol calibrate` (threshold=calibrated)
    components: str = "largest"  # largest | all (one box per 8-connected component)
    min_area: float = 0.0  # fraction of the image area, for components=all
    merge: str = "none"  # components=all: none | nested (absorb boxes inside others) | overlap
    score: str = "mean"  # mean | max of the map inside the box, times the class probability
    nms_iou: float | None = None  # per-class NMS IoU; None or 0: off
    # Gaussian blur before thresholding, sigma as a fraction of the map's long side (0: off).
    # Turns pixel-level saliency (guided_backprop, gradient, ...) into regions (higher PxAP).
    smooth: float = 0.0
    # Maps are upsampled to the original size, but to at most this many pixels on the long
    # side (boxes are scaled back), so a 12000 x 9000 photo does not need gigabytes.
    max_side: int = 4096


@dataclass
class EvalConfig:
    """Scoring against ground truth, where the dataset has it."""

    enabled: bool = True
    iou: float = 0.5
    sweep_step: float = 0.01  # threshold step for MaxBoxAcc: taus 0, step, ... < 1
    thresholds: list[float] | None = None  # an explicit sweep instead (normalized cuts)
    coco_ap: bool = True
    pxap: bool = True  # pixel AP where the dataset has masks
    sweep_corloc: bool = False  # also sweep CorLoc (full box extraction per tau; slower)
    # One pair per image (top target's map vs all GT boxes) instead of per (image, class)
    class_agnostic: bool = False


@dataclass
class ExportConfig:
    """Extra formats for the pseudo-labels (``pseudo_labels.json`` is always written)."""

    voc_xml: bool = False  # also out/voc/<image>.xml, 1-based inclusive VOC boxes


@dataclass
class ReportConfig:
    """The HTML report."""

    enabled: bool = True
    num_images: int = 12


@dataclass
class Config:
    """One ``wsol run``: every key here can be set as ``section.key=value``."""

    out: str = "runs/latest"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    boxes: BoxesConfig = field(default_factory=BoxesConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    chunk_batches: int = 8  # results are flushed to disk every N batches
    seed: int = 0


@dataclass
class TrainConfig:
    """``wsol train``: fit a multi-label classifier on the synthetic shapes data."""

    out: str = "runs/train"
    arch: str = "shapes_net"
    width: int = 32
    seed: int = 0
    data_seed: int = 1
    num_images: int = 20000
    image_size: int = 128
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    val_images: int = 500
    threads: int = 0  # torch threads; 0 leaves the default


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args[:-1]:  # the first member that accepts the value wins
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        return _coerce(value, args[-1], key)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: expected a number or one of "
                          f"{', '.join(map(repr, typing.get_args(tp)))}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    return value


def _build(cls: type[T], data: dict, prefix: str = "") -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(
            f"unknown config key {prefix + unknown[0]!r} ({where}); valid keys: "
            + ", ".join(prefix + k for k in types_)
        )
    kwargs = {}
    for name, tp in types_.items():
        if name not in data:
            continue
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name] or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(data[name], tp, prefix + name)
    return cls(**kwargs)


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "out=x"]`` -> ``{"a": {"b": 1}, "out": "x"}``; values parsed as YAML."""
    tree: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(tree, key.strip(), value)
    return tree


def _merge(base: dict, delta: dict) -> dict:
    out = dict(base)
    for k, v in delta.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    cls: type[T] = Config,
) -> T:
    """Defaults <- YAML file <- dotted overrides, checked against the dataclass ``cls``."""
    tree: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            tree = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
    tree = _merge(tree, parse_overrides(overrides or []))
    return _build(cls, tree)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg) -> str:
    """The resolved config as YAML, every key included."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
