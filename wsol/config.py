"""Run configuration: dataclasses, loaded from YAML plus dotted ``key=value`` overrides.

A YAML file sets only the keys it needs; every other key keeps the default below.
The schema is checked where it is defined: a choice is a ``Literal`` and a range is
``field(metadata=between(...))``, both verified whenever a section is built (from YAML
or in Python), with cross-key rules in each section's ``check``. An unknown key, a
wrong type, an unknown choice or a value out of range fails before any work starts,
with a message that names the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from wsol.errors import UsageError, unknown_choice

T = TypeVar("T")


class ConfigError(UsageError):
    """A configuration that cannot be run."""


def between(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    length: int | None = None,
) -> dict:
    """Field metadata: the value (each item, for a list) lies in ``[lo, hi]``, with open
    ends where asked; a list has ``length`` items."""
    return {"range": (lo, hi, lo_open, hi_open), "length": length}


def _describe(lo, hi, lo_open, hi_open) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _in_range(v: float, lo, hi, lo_open, hi_open) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return not (hi is not None and (v >= hi if hi_open else v > hi))


class _Section:
    """Checks a dataclass's ``Literal`` choices and ``between`` ranges after ``__init__``;
    ``check`` adds the rules that tie keys together."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            key = f"{self.section}.{f.name}" if self.section else f.name
            _check_value(getattr(self, f.name), hints[f.name], f.metadata, key)
        self.check()

    def check(self) -> None:
        """Rules between keys of this section."""


def _choices(tp: Any) -> tuple | None:
    """The allowed strings of a ``Literal`` (or of ``list[Literal]``), else None."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) is list:
        return _choices(typing.get_args(tp)[0])
    return None


def _check_value(value: Any, tp: Any, meta: typing.Mapping, key: str) -> None:
    if value is None or dataclasses.is_dataclass(value):
        return
    items = value if isinstance(value, list) else [value]
    literal = _choices(tp)
    if literal is None and typing.get_origin(tp) in (typing.Union, types.UnionType):
        # A number or a word (boxes.threshold): a string must be one of the words.
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        words = next((_choices(a) for a in args if _choices(a)), None)
        if words is not None and isinstance(value, str) and value not in words:
            raise ConfigError(
                f"{key}: expected {' or '.join(map(_type_name, args))}, got {value!r}"
            )
        if isinstance(value, str):
            return
    if literal is not None:
        for v in items:
            if v not in literal:
                hint = meta.get("hints", {}).get(v)
                raise ConfigError(hint or unknown_choice(key, v, literal))
        return
    if (
        meta.get("length") is not None
        and isinstance(value, list)
        and (len(value) != meta["length"])
    ):
        raise ConfigError(f"{key} must have {meta['length']} values, got {value!r}")
    if "range" in meta:
        for v in items:
            if isinstance(v, int | float) and not _in_range(v, *meta["range"]):
                raise ConfigError(f"{key} must be {_describe(*meta['range'])}, got {v!r}")


METHOD_NAMES = Literal[
    "cam",
    "gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "hirescam",
    "scorecam",
    "eigencam",
    "gradient",
    "deconvnet",
    "guided_backprop",
    "guided_gradcam",
]


@dataclass
class DataConfig(_Section):
    """Where the images and their labels come from."""

    section: ClassVar[str] = "data"
    format: Literal["voc", "coco", "folder"] = "voc"
    root: str = ""  # VOC: folder holding Annotations/; COCO and folder: the image folder
    split: str = "val"  # VOC split file name under ImageSets/Main
    ann_file: str = ""  # COCO instances JSON
    labels_file: str = ""  # folder format: optional CSV/JSON of image-level labels
    classes: list[str] | None = None  # fixes the class order (VOC, folder)
    limit: int | None = field(default=None, metadata=between(0))  # only the first N images
    num_workers: int = field(default=0, metadata=between(0))  # decoding processes (0: main)

    def check(self) -> None:
        if self.format == "coco" and not self.ann_file:
            raise ConfigError("data.format=coco needs data.ann_file (an instances JSON)")


@dataclass
class ModelConfig(_Section):
    """The classifier and how to feed it."""

    section: ClassVar[str] = "model"
    arch: str = "shapes_net"
    weights: str = "none"  # none | path | DEFAULT | a torchvision weight name
    target_layer: str = ""  # empty: the architecture's default
    class_map: str = ""  # empty: dataset classes are the model's classes (by name)
    skip_unmapped: bool = False  # drop dataset classes the class map lacks (else: error)
    # [H, W]; empty: the model's own
    input_size: list[int] | None = field(default=None, metadata=between(1, length=2))
    resize: Literal["", "stretch", "letterbox"] = ""  # empty: the model's own (stretch)
    mean: list[float] | None = field(default=None, metadata=between(length=3))
    std: list[float] | None = field(default=None, metadata=between(0, lo_open=True, length=3))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16: autocast

    def check(self) -> None:
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"model.device must be auto, cpu or cuda[:N], got {self.device!r}")


@dataclass
class CamConfig(_Section):
    """Which maps to compute, for which classes."""

    section: ClassVar[str] = "cam"
    method: METHOD_NAMES = "gradcam"
    targets: Literal["gt", "topk", "prob"] = "gt"
    topk: int = field(default=1, metadata=between(1))
    min_prob: float = field(default=0.5, metadata=between(0, 1))
    batch_size: int = field(default=32, metadata=between(1))


_SWEEP_HINT = (
    "boxes.threshold_mode=sweep: the evaluators always sweep eval.thresholds (or "
    "0..1 by eval.sweep_step); boxes.threshold_mode picks the cut for the written "
    "boxes: fraction, absolute or otsu"
)


@dataclass
class BoxesConfig(_Section):
    """How maps become boxes."""

    section: ClassVar[str] = "boxes"
    threshold_mode: Literal["fraction", "absolute", "otsu"] = field(
        default="fraction", metadata={"hints": {"sweep": _SWEEP_HINT}}
    )
    # fraction: 0.15 Grad-CAM paper, 0.2 CAM paper; absolute: a cut on the min-max normalized
    # map; otsu ignores it. "calibrated": per-class or global cuts from boxes.calibration.
    threshold: float | Literal["calibrated"] = field(default=0.2, metadata=between(0, 1))
    calibration: str = ""  # calibration JSON written by `wsol calibrate` (threshold=calibrated)
    components: Literal["largest", "all"] = "largest"  # all: one box per 8-connected component
    # fraction of the image area, for components=all
    min_area: float = field(default=0.0, metadata=between(0, 1, hi_open=True))
    # components=all: none | nested (absorb boxes inside others) | overlap
    merge: Literal["none", "nested", "overlap"] = "none"
    score: Literal["mean", "max"] = "mean"  # of the map inside the box, times the class prob
    # per-class NMS IoU; None or 0: off
    nms_iou: float | None = field(default=None, metadata=between(0, 1))
    # Gaussian blur before thresholding, sigma as a fraction of the map's long side (0: off).
    # Turns pixel-level saliency (guided_backprop, gradient, ...) into regions (higher PxAP).
    smooth: float = field(default=0.0, metadata=between(0, 0.5))
    # Maps are upsampled to the original size, but to at most this many pixels on the long
    # side (boxes are scaled back), so a 12000 x 9000 photo does not need gigabytes.
    max_side: int = field(default=4096, metadata=between(16))

    def check(self) -> None:
        if self.threshold != "calibrated":
            return
        if self.threshold_mode == "otsu":
            raise ConfigError(
                "boxes.threshold=calibrated sets its own cuts; it cannot be "
                "combined with boxes.threshold_mode=otsu"
            )
        if not self.calibration:
            raise ConfigError(
                "boxes.threshold=calibrated needs boxes.calibration=PATH "
                "(the calibration.json written by `wsol calibrate`)"
            )


@dataclass
class EvalConfig(_Section):
    """Scoring against ground truth, where the dataset has it."""

    section: ClassVar[str] = "eval"
    enabled: bool = True
    iou: float = field(default=0.5, metadata=between(0, 1, lo_open=True))
    # threshold step for MaxBoxAcc: taus 0, step, ... < 1
    sweep_step: float = field(default=0.01, metadata=between(0, 0.5, lo_open=True))
    # an explicit sweep instead (normalized cuts)
    thresholds: list[float] | None = field(default=None, metadata=between(0, 1))
    coco_ap: bool = True
    pxap: bool = True  # pixel AP where the dataset has masks
    sweep_corloc: bool = False  # also sweep CorLoc (full box extraction per tau; slower)
    # One pair per image (top target's map vs all GT boxes) instead of per (image, class)
    class_agnostic: bool = False

    def check(self) -> None:
        if self.thresholds is not None and not self.thresholds:
            raise ConfigError(
                "eval.thresholds must be a non-empty list of numbers in [0, 1] "
                "(or null for the eval.sweep_step sweep)"
            )


@dataclass
class ExportConfig(_Section):
    """Which files the pseudo-labels are written as (see :mod:`wsol.export`)."""

    section: ClassVar[str] = "export"
    # coco: out/pseudo_labels.json; voc: out/voc/<image>.xml (1-based inclusive boxes)
    formats: list[Literal["coco", "voc"]] = field(default_factory=lambda: ["coco"])


@dataclass
class ReportConfig(_Section):
    """The HTML report."""

    section: ClassVar[str] = "report"
    enabled: bool = True
    num_images: int = field(default=12, metadata=between(0))


@dataclass
class Config(_Section):
    """One ``wsol run``: every key here can be set as ``section.key=value``."""

    out: str = "runs/latest"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    boxes: BoxesConfig = field(default_factory=BoxesConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    # results are flushed to disk every N batches
    chunk_batches: int = field(default=8, metadata=between(1))
    seed: int = 0


@dataclass
class TrainConfig(_Section):
    """``wsol train``: fit a multi-label classifier on the synthetic shapes data."""

    out: str = "runs/train"
    arch: str = "shapes_net"
    width: int = field(default=32, metadata=between(1))
    seed: int = 0
    data_seed: int = 1
    num_images: int = field(default=20000, metadata=between(1))
    image_size: int = field(default=128, metadata=between(8))
    epochs: int = field(default=4, metadata=between(1))
    batch_size: int = field(default=32, metadata=between(1))
    lr: float = field(default=3e-3, metadata=between(0, lo_open=True))
    weight_decay: float = field(default=1e-4, metadata=between(0))
    val_images: int = field(default=500, metadata=between(1))
    threads: int = field(default=0, metadata=between(0))  # torch threads; 0: the default

    def check(self) -> None:
        if self.num_images < self.batch_size:
            raise ConfigError(
                f"num_images ({self.num_images}) must be at least batch_size ({self.batch_size})"
            )


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` (from YAML or the command line) as type ``tp``; choices and ranges are
    checked later, by the section."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args:  # the first member that accepts the value wins
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        names = [_type_name(a) for a in args]
        raise ConfigError(f"{key}: expected {' or '.join(names)}, got {value!r}")
    if origin is Literal:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected one of {', '.join(typing.get_args(tp))}, got {value!r}")
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


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, "a list" if typing.get_origin(tp) is list else str(tp)
    )


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


def _override_tree(overrides: list[str] | dict[str, Any] | None) -> dict:
    if isinstance(overrides, dict):
        tree: dict = {}
        for key, value in overrides.items():
            _set_dotted(tree, key, value)
        return tree
    return parse_overrides(overrides or [])


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    cls: type[T] = Config,
) -> T:
    """Defaults <- YAML file <- overrides, checked against the dataclass ``cls``.

    ``overrides`` are ``["section.key=value", ...]`` as on the command line (values
    parsed as YAML) or a dict ``{"section.key": value}`` of Python values.
    """
    tree: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            tree = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return _build(cls, _merge(tree, _override_tree(overrides)))


def with_overrides(cfg: T, overrides: list[str] | dict[str, Any] | None) -> T:
    """A copy of ``cfg`` with ``overrides`` applied (as in :func:`load_config`)."""
    return _build(type(cfg), _merge(config_to_dict(cfg), _override_tree(overrides)))


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg) -> str:
    """The resolved config as YAML, every key included."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
