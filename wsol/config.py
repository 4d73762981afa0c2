"""Run configuration: the sections of ``wsol run``, and the loader of every config.

A YAML file sets only the keys it needs; every other key keeps the default below, and
``section.key=value`` overrides win over both. Choices are ``Literal`` types and ranges
``between(...)`` metadata, checked by :class:`wsol.schema.Section` before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from wsol.errors import quote
from wsol.registry import registered_names
from wsol.schema import (
    ConfigError,
    Section,
    between,
    config_to_dict,
    load,
    parse_overrides,
    registered,
    with_overrides,
)

T = TypeVar("T")

__all__ = [
    "Config",
    "ConfigError",
    "dump_config",
    "load_config",
    "parse_overrides",
    "with_overrides",
]


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


def check_device(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ConfigError(f"model.device must be auto, cpu or cuda[:N], got {quote(device)}")


def check_out(out: str) -> None:
    """An output folder wsol may write: set, and not the root of a file system."""
    if not out.strip():
        raise ConfigError("out is empty: name the output folder, e.g. out=runs/mine")
    resolved = Path(out).expanduser().resolve()
    if resolved == Path(resolved.anchor):
        raise ConfigError(f"out={out} is the root of the file system; name a folder for the run")


@dataclass
class DataConfig(Section):
    """Where the images and their labels come from."""

    section: ClassVar[str] = "data"
    format: Literal["voc", "coco", "folder"] = "voc"
    root: str = ""  # VOC: folder holding Annotations/; COCO and folder: the image folder
    # VOC: the split file ImageSets/Main/<split>.txt; "" or no ImageSets/Main folder at
    # all: every annotation file in data.ann_dir
    split: str = "val"
    image_dir: str = "JPEGImages"  # VOC: the image folder, relative to data.root
    ann_dir: str = "Annotations"  # VOC: the XML folder, relative to data.root
    ann_file: str = ""  # COCO instances JSON
    labels_file: str = ""  # folder format: optional CSV/JSON of image-level labels
    classes: list[str] | None = None  # fixes the class order (VOC, folder)
    limit: int | None = field(default=None, metadata=between(0))  # only the first N images
    # decoding processes (0: the main one; null: 1 on a CPU, about half the cores on a GPU)
    num_workers: int | None = field(default=None, metadata=between(0))
    # cpu: decode and resize in the loader's processes; device: the loader only reads the
    # files, which are decoded (nvjpeg on a GPU) and resized on the model's device
    decode: Literal["cpu", "device"] = "cpu"
    # image files larger than this are recorded failures, never read
    max_file_mb: float = field(default=256.0, metadata=between(0, lo_open=True))
    # images named by annotations, split or labels files must lie inside data.root by
    # their names, no ../ or absolute path (else they are recorded failures); true lets
    # them point anywhere. Symlinks in the dataset tree are followed either way.
    allow_outside_root: bool = False

    def check(self) -> None:
        if self.format == "coco" and not self.ann_file:
            raise ConfigError("data.format=coco needs data.ann_file (an instances JSON)")


@dataclass
class ModelConfig(Section):
    """The classifier and how to feed it."""

    section: ClassVar[str] = "model"
    # empty: the architecture of the `wsol train` checkpoint in model.weights
    arch: str = ""
    weights: str = "none"  # none | path | DEFAULT | a torchvision weight name
    target_layer: str = ""  # empty: the architecture's default
    # the last stride-2 stage dilated instead: maps at stride 16, twice as fine (torchvision
    # ResNets and timm models; pretrained weights are used as they are)
    dilate_last: bool = False
    class_map: str = ""  # empty: dataset classes are the model's classes (by name)
    skip_unmapped: bool = False  # drop dataset classes the class map lacks (else: error)
    # [H, W]; empty: the model's own
    input_size: list[int] | None = field(default=None, metadata=between(1, length=2))
    resize: Literal["", "stretch", "letterbox"] = ""  # empty: the model's own (stretch)
    mean: list[float] | None = field(default=None, metadata=between(length=3))
    std: list[float] | None = field(default=None, metadata=between(0, lo_open=True, length=3))
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16: autocast
    # the model and its inputs in channels-last memory: faster convolutions on CPUs
    # (oneDNN: about 1.5x for ResNet-50 and EfficientNet-Lite2 here) and on GPUs
    channels_last: bool = True
    # BatchNorms after a convolution folded into it for the run (same function, fewer ops;
    # checked, else left as is): see wsol/models/fold.py
    fold_bn: bool = True

    def check(self) -> None:
        check_device(self.device)


@dataclass
class CamConfig(Section):
    """Which maps to compute, for which classes."""

    section: ClassVar[str] = "cam"
    # a built-in method, or one registered with wsol.register_method
    method: METHOD_NAMES = field(
        default="gradcam", metadata=registered(lambda: registered_names("cam.method"))
    )
    targets: Literal["gt", "topk", "prob"] = "gt"
    topk: int = field(default=1, metadata=between(1))
    min_prob: float = field(default=0.5, metadata=between(0, 1))
    batch_size: int = field(default=32, metadata=between(1))
    # Test-time views: scales relative to the model's input size, a mirrored copy of each,
    # and how their maps are fused. The target classes and the box scores come from the
    # model's own input size (scale 1, unmirrored) whatever the views.
    scales: list[float] = field(default_factory=lambda: [1.0], metadata=between(0, 8, lo_open=True))
    flip: bool = False
    fuse: Literal["mean", "max"] = "mean"
    # Score-CAM's channel budget (other methods ignore it): 0 scores every channel of the
    # target layer, one masked forward pass each (the paper's method); N > 0 only the N
    # channels of each image with the largest spatial variance ("Faster Score-CAM"), the
    # softmax over their N scores, the other channels weighing 0
    score_channels: int = field(default=0, metadata=between(0))

    def check(self) -> None:
        if not self.scales:
            raise ConfigError("cam.scales must list at least one scale, e.g. [1.0]")


_SWEEP_HINT = (
    "boxes.threshold_mode=sweep: the evaluators always sweep eval.thresholds (or "
    "0..1 by eval.sweep_step); boxes.threshold_mode picks the cut for the written "
    "boxes: fraction, absolute or otsu"
)


@dataclass
class BoxesConfig(Section):
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
    # of the normalized map inside the box, times the class probability at the model's
    # own input size (1x, unmirrored): in [0, 1], the same meaning at any cam.scales
    score: Literal["mean", "max"] = "mean"
    # per-class NMS IoU; None or 0: off
    nms_iou: float | None = field(default=None, metadata=between(0, 1))
    # Gaussian blur before thresholding, sigma as a fraction of the map's long side (0: off).
    # Turns pixel-level saliency (guided_backprop, gradient, ...) into regions (higher PxAP).
    smooth: float = field(default=0.0, metadata=between(0, 0.5))
    # Maps are upsampled to the original size, but to at most this many pixels on the long
    # side (boxes are scaled back), so a 12000 x 9000 photo does not need gigabytes.
    max_side: int = field(default=4096, metadata=between(16))
    # Where the largest component's box is found: auto (on the GPU when CuPy is
    # installed, else on the host thread pool), on (forced; a CPU labels with scipy), off.
    # Same boxes either way.
    device_components: Literal["auto", "on", "off"] = "auto"

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


MAX_THRESHOLDS = 10_000


@dataclass
class EvalConfig(Section):
    """Scoring against ground truth, where the dataset has it."""

    section: ClassVar[str] = "eval"
    enabled: bool = True
    iou: float = field(default=0.5, metadata=between(0, 1, lo_open=True))
    # threshold step for MaxBoxAcc: taus 0, step, ... < 1
    sweep_step: float = field(default=0.01, metadata=between(1e-4, 0.5))
    # an explicit sweep instead (normalized cuts), at most MAX_THRESHOLDS of them
    thresholds: list[float] | None = field(default=None, metadata=between(0, 1))
    coco_ap: bool = True
    pxap: bool = True  # pixel AP where the dataset has masks
    sweep_corloc: bool = False  # also sweep CorLoc (full box extraction per tau; slower)
    # One pair per image (top target's map vs all GT boxes) instead of per (image, class)
    class_agnostic: bool = False
    # Also write per_image.npz: what each scored image adds to every metric's counters
    # (wsol.evaluate.per_image), for bootstrap intervals and paired tests across runs
    per_image: bool = False

    def check(self) -> None:
        if self.thresholds is not None and len(self.thresholds) > MAX_THRESHOLDS:
            raise ConfigError(
                f"eval.thresholds lists {len(self.thresholds)} cuts; at most {MAX_THRESHOLDS}"
            )
        if self.thresholds is not None and not self.thresholds:
            raise ConfigError(
                "eval.thresholds must be a non-empty list of numbers in [0, 1] "
                "(or null for the eval.sweep_step sweep)"
            )


@dataclass
class ExportConfig(Section):
    """Which files the pseudo-labels are written as (see :mod:`wsol.export`)."""

    section: ClassVar[str] = "export"
    # coco: out/pseudo_labels.json; results: out/results.json (COCO results list, for
    # loadRes); voc: out/voc/<image>.xml (1-based inclusive boxes); yolo: out/yolo/labels/
    # <image>.txt (class cx cy w h, fractions), classes.txt, data.yaml; labelstudio:
    # out/labelstudio.json (tasks with predictions) and out/labelstudio_config.xml
    # (and any registered with wsol.register_export)
    formats: list[Literal["coco", "results", "voc", "yolo", "labelstudio"]] = field(
        default_factory=lambda: ["coco"],
        metadata=registered(lambda: registered_names("export format")),
    )
    # Only the written boxes are trimmed; the metrics score every box.
    min_score: float = field(default=0.0, metadata=between(0, 1))  # 0: keep every box
    # at most this many boxes per image and class, the highest-scoring (0: no cap)
    max_per_class: int = field(default=0, metadata=between(0))
    # Label Studio: put before each image's file_name (relative to the image folder) to
    # make a task's data.image, as is: e.g. "http://host/images/" or
    # "/data/local-files/?d=VOC2012/JPEGImages/" (local storage); "": the bare file_name
    labelstudio_root: str = ""


@dataclass
class ReportConfig(Section):
    """``out/report.html``: one self-contained file (pictures inlined) with the metrics,
    the per-class table, the threshold plot, a gallery, the failures and the config."""

    section: ClassVar[str] = "report"
    enabled: bool = True
    # images in the gallery, one tile each with all its classes: a third the best, a third
    # the worst (by box IoU with the GT; by box score without GT), the rest drawn at random
    # (seeded by `seed`); only their maps are computed again
    num_images: int = field(default=12, metadata=between(0))


@dataclass
class Config(Section):
    """One ``wsol run``: every key here can be set as ``section.key=value``.

    Args:
        out: the output folder; the sections (``data``, ``model``, ``cam``, ``boxes``,
            ``eval``, ``export``, ``report``) and the other keys are the table of config
            keys in the README. Each is checked (choices, ranges, the rules between
            keys) as the config is built.

    Returns:
        A checked config, for :func:`wsol.run` and :func:`wsol.calibrate`.

    Raises:
        ConfigError: a value out of its choices or range, or keys that contradict each
            other; the message names the key and what is valid.

    Example:
        >>> cfg = Config(out="runs/mine", boxes=BoxesConfig(threshold=0.35))
        >>> cfg.boxes.threshold, cfg.cam.method
        (0.35, 'gradcam')
        >>> Config(out="")
        Traceback (most recent call last):
        wsol.schema.ConfigError: out is empty: name the output folder, e.g. out=runs/mine
    """

    out: str = "runs/latest"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    boxes: BoxesConfig = field(default_factory=BoxesConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    # Results are journaled (a chunk a run resumes after) every chunk_images images or
    # every chunk_seconds seconds, whichever comes first: a kill loses at most that much.
    chunk_images: int = field(default=1000, metadata=between(1))
    chunk_seconds: float = field(default=30.0, metadata=between(0, lo_open=True))
    seed: int = field(default=0, metadata=between(0, 2**63 - 1))
    # torch's threads for the model on a CPU (0: torch's default, one per core)
    threads: int = field(default=0, metadata=between(0))
    # threads for the per-image boxes step (0: 1 on a CPU, up to 8 on a GPU)
    host_threads: int = field(default=0, metadata=between(0))

    def check(self) -> None:
        check_out(self.out)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    cls: type[T] = Config,
) -> T:
    """Defaults <- YAML file <- overrides, checked against the dataclass ``cls``.

    Args:
        path: a YAML file that sets the keys it needs (None: the defaults alone).
        overrides: ``["section.key=value", ...]`` as on the command line (values parsed
            as YAML) or a dict ``{"section.key": value}`` of Python values; they win.
        cls: :class:`Config`, or :class:`wsol.train_config.TrainConfig` for
            ``wsol train``.

    Returns:
        The checked config.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones), a value that
            is not valid, or a file that cannot be read as a config.

    Example:
        >>> cfg = load_config(None, ["cam.method=gradcampp", "boxes.threshold=0.3"])
        >>> cfg.cam.method, cfg.boxes.threshold
        ('gradcampp', 0.3)
        >>> load_config(None, {"cam.methd": "cam"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        wsol.schema.ConfigError: unknown config key 'cam.methd' (cam); valid keys: cam.method, ...
    """
    return load(cls, path, overrides)


def dump_config(cfg) -> str:
    """The resolved config as YAML, every key included."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
