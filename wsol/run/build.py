"""From a :class:`Config` to the objects a run works with, all checked before any work.

This module (with the rest of :mod:`wsol.run`) is the only reader of the config: it
builds the dataset, the model on its device, the class mapping, the
:class:`~wsol.localize.Localizer` and the evaluators, and turns every problem it meets
into a one-line :class:`ConfigError`. Nothing here writes to the output folder, but for
``failures.jsonl`` when no image of the dataset is readable: the record of why the run
stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from wsol.cams import CamError, ScoreCAM, build_method
from wsol.cams.targets import ClassMapping
from wsol.config import Config, ConfigError, DataConfig
from wsol.data import Dataset, build_dataset
from wsol.data.cache import DecodeCache
from wsol.data.coco import official_coco_ids
from wsol.data.masks import has_masks
from wsol.evaluate import BoxAccuracy, Evaluators, MaxBoxAcc, PixelAP, sweep_thresholds
from wsol.evaluate.calibration import Calibration, check_source, load_calibration
from wsol.localize import BoxParams, Localizer, TargetPolicy, Views
from wsol.localize.components import prepare_sweep
from wsol.models import ModelSpec, build_model
from wsol.models.class_maps import load_class_map
from wsol.models.fold import fold_model
from wsol.models.spec import resolve_device
from wsol.run.failures import common_reasons, write_stopped_failures
from wsol.run.resolve import absolute_paths, resolved

logger = logging.getLogger(__name__)

# Hears of each phase of a command as it starts, as a line for a person (the CLI prints
# it; the library prints nothing).
Status = Callable[[str], None]


@dataclass
class RunPlan:
    """Everything a run needs, built from its config.

    ``cfg`` is the config as resolved (:func:`wsol.run.resolve.resolved`): absolute
    paths, and the model's defaults spelled out."""

    cfg: Config
    dataset: Dataset
    localizer: Localizer
    evaluators: Evaluators | None  # None: nothing to score (no boxes, or eval disabled)
    calibration: Calibration | None
    # Views decoded by earlier runs in this process, and where this one keeps its own.
    decode_cache: DecodeCache | None = None


def config_model(cfg: Config, classes: list[str] | None = None) -> ModelSpec:
    """The model of ``cfg.model``, with the config's overrides of its preprocessing
    (``classes``: the dataset's, for a head built for it)."""
    spec = build_model(
        cfg.model.arch,
        cfg.model.weights,
        classes or None,
        cfg.model.target_layer or None,
        dilate_last=cfg.model.dilate_last,
    )
    if cfg.model.input_size:
        spec.input_size = tuple(cfg.model.input_size)
    if cfg.model.mean:
        spec.mean = tuple(cfg.model.mean)
    if cfg.model.std:
        spec.std = tuple(cfg.model.std)
    if cfg.model.resize:
        spec.resize = cfg.model.resize
    return spec


def config_class_map(cfg: Config, spec: ModelSpec) -> dict[str, list[str]] | None:
    """``model.class_map`` read against the model's classes (None when unset)."""
    if not cfg.model.class_map:
        return None
    return load_class_map(cfg.model.class_map, list(spec.class_names))


def build_spec(cfg: Config, dataset: Dataset) -> tuple[ModelSpec, ClassMapping, Dataset]:
    """The model (with config overrides of its preprocessing), its class mapping, and the
    dataset restricted to mappable classes when ``model.skip_unmapped`` asks for it."""
    spec = config_model(cfg, dataset.classes)
    class_map = config_class_map(cfg, spec)
    if not dataset.classes:
        dataset.classes = list(class_map) if class_map else list(spec.class_names)
        dataset.category_ids = list(range(1, len(dataset.classes) + 1))
    known = set(class_map) if class_map is not None else set(spec.class_names)
    unmapped = [c for c in dataset.classes if c not in known]
    if unmapped and cfg.model.skip_unmapped:
        logger.warning(
            "model.skip_unmapped: leaving out %d classes the model cannot map: %s",
            len(unmapped),
            ", ".join(unmapped),
        )
        dataset = dataset.restrict_classes([c for c in dataset.classes if c in known])
    coco_ids = coco_category_ids(cfg, dataset)
    if coco_ids is not None:
        dataset.category_ids = coco_ids
    return spec, ClassMapping.build(dataset.classes, spec, class_map), dataset


def coco_category_ids(cfg: Config, dataset: Dataset) -> list[int] | None:
    """COCO's official category ids for a run that localizes COCO's classes through
    the ``imagenet_to_coco`` map on data that numbers its classes 1..K itself (a
    folder, VOC), so that its exports score against any COCO ground truth by id; None
    to keep the dataset's ids (COCO data keeps its own file's, other runs 1..K)."""
    if cfg.model.class_map != "imagenet_to_coco" or cfg.data.format == "coco":
        return None
    return official_coco_ids(dataset.classes)


def calibration_source(cfg: Config, dataset_name: str = "") -> dict:
    """What the maps depend on; a calibration applied to other maps is suspect."""
    return {
        "method": cfg.cam.method,
        "arch": cfg.model.arch,
        "weights": cfg.model.weights,
        "target_layer": cfg.model.target_layer,
        "dataset": dataset_name,
    }


def explain_localizer(cfg: Config) -> Localizer:
    """The :class:`Localizer` that ``wsol run`` would build from ``cfg``, for
    ``wsol explain --config`` (:func:`wsol.explain` takes it): the same model, device,
    memory format, folded BatchNorms, method, layer, class mapping, views, box settings
    (a calibration's per-class cuts included) and precision, so the same image gets the
    same boxes. Its classes are the class map's (or the model's): there is no dataset.

    Raises:
        ConfigError: and the other :class:`wsol.errors.WsolError` subclasses, as
            :func:`plan_run` does.
    """
    cfg = absolute_paths(cfg)
    calibration = (
        load_calibration(cfg.boxes.calibration) if cfg.boxes.threshold == "calibrated" else None
    )
    spec = config_model(cfg)
    class_map = config_class_map(cfg, spec)
    classes = list(class_map) if class_map is not None else list(spec.class_names)
    mapping = ClassMapping.build(classes, spec, class_map)
    localizer = build_localizer(cfg, spec, mapping, classes, calibration)
    if calibration is not None:
        used = resolved(cfg, spec, localizer.method.layer, "")
        check_source(calibration, calibration_source(used))
    return localizer


def build_localizer(
    cfg: Config,
    spec: ModelSpec,
    mapping: ClassMapping,
    classes: list[str],
    calibration: Calibration | None,
) -> Localizer:
    """The run's :class:`Localizer`: ``spec`` put on ``model.device`` (channels-last when
    ``model.channels_last``), the ``cam`` and ``boxes`` sections as the config says,
    BatchNorms folded (``model.fold_bn``), and one dry forward pass through the layer.

    Raises:
        ConfigError: a method that cannot work on this model or layer.
    """
    spec.net.to(resolve_device(cfg.model.device))
    if cfg.model.channels_last:
        spec.net.to(memory_format=torch.channels_last)
    try:
        method = build_method(cfg.cam.method, spec, cfg.model.target_layer or None)
        if isinstance(method, ScoreCAM):  # the one method with a channel budget
            method.score_channels = cfg.cam.score_channels
        localizer = Localizer(
            spec,
            method,
            mapping=mapping,
            targets=TargetPolicy(cfg.cam.targets, cfg.cam.topk, cfg.cam.min_prob),
            boxes=BoxParams.from_config(cfg.boxes, calibration, classes),
            views=Views(tuple(cfg.cam.scales), cfg.cam.flip, cfg.cam.fuse),
            precision=cfg.model.precision,
            device_boxes=cfg.boxes.device_components,
        )
        if cfg.model.fold_bn:
            folded = fold_model(spec, [localizer.method.layer], localizer.input_size)
            if folded.undone:
                logger.warning("model.fold_bn: BatchNorm left unfolded: %s", folded.undone)
        _dry_forward(localizer)
    except CamError as e:  # a method that cannot work on this model, said before any work
        raise ConfigError(f"cam.method={cfg.cam.method}: {e}") from None
    return localizer


def build_evaluators(cfg: Config, dataset: Dataset, boxes: BoxParams) -> Evaluators | None:
    """The evaluators of a run that scores (``None`` when it does not); a swept CorLoc
    (``eval.sweep_corloc``) boxes the maps as ``boxes`` says, at every threshold."""
    if not (cfg.eval.enabled and dataset.has_boxes):
        return None
    n = len(dataset.classes)
    thresholds = sweep_thresholds(cfg.eval.sweep_step, cfg.eval.thresholds)
    corloc_sweep = boxes if cfg.eval.sweep_corloc else None
    rows = cfg.eval.per_image
    members = {
        "box_acc": BoxAccuracy(n, cfg.eval.iou, cfg.eval.class_agnostic, rows),
        "max_box_acc": MaxBoxAcc(
            n, thresholds, cfg.eval.iou, corloc_sweep, cfg.eval.class_agnostic, rows
        ),
    }
    if cfg.eval.pxap and has_masks(dataset.samples):
        members["pixel_ap"] = PixelAP(n, thresholds, rows)
    return Evaluators(members)


class NoImagesError(ConfigError):
    """No image of the dataset is left to process. When some failed while reading, the
    run writes them to ``failures.jsonl`` (``failures_file``) and the message counts the
    most common reasons, each with the way out."""

    def __init__(self, data: DataConfig, failures: list[dict], out: str):
        self.failures = failures
        self.failures_file = write_stopped_failures(out, failures) if failures else None
        if data.limit == 0:
            why = "data.limit=0"
        elif not failures:
            listing = "the folder holds" if data.format == "folder" else "the dataset lists"
            why = f"{listing} no image"
        else:
            where = (
                f"each is in {self.failures_file}"
                if self.failures_file
                else f"not written to {out}, which holds another run's results"
            )
            lines = "".join(f"\n  {line}" for line in common_reasons(failures))
            why = f"all {len(failures)} failed while reading ({where}):{lines}"
        super().__init__(f"no images to process in {data.root}: {why}")


def plan_run(cfg: Config, status: Status | None = None) -> RunPlan:
    """Build and check everything ``cfg`` asks for: the dataset, the model on its device
    (one dry forward through the target layer), the calibration, the evaluators.
    ``status(line)`` hears of each phase as it starts.

    Raises:
        ConfigError: and the other :class:`wsol.errors.WsolError` subclasses, with a
            one-line message, before anything is written.
    """
    cfg = absolute_paths(cfg)
    calibration = (
        load_calibration(cfg.boxes.calibration) if cfg.boxes.threshold == "calibrated" else None
    )
    say = status or (lambda line: None)
    if cfg.data.root:  # (an unset root is an error in a moment)
        say(f"reading the {cfg.data.format} dataset in {cfg.data.root}")
    dataset = build_dataset(cfg.data, exclude=cfg.out)
    if not dataset.samples:
        raise NoImagesError(cfg.data, dataset.failures, cfg.out)
    if cfg.cam.targets == "gt" and not any(len(s.labels) for s in dataset.samples):
        raise ConfigError("cam.targets=gt but the dataset has no labels; use topk or prob")
    if cfg.eval.enabled and dataset.has_boxes:
        prepare_sweep()  # the scoring sweep compiles while the model is built
    device = resolve_device(cfg.model.device)
    classes = f", {len(dataset.classes)} classes" if dataset.classes else ""
    say(
        f"{len(dataset.samples)} images{classes}; building "
        f"{cfg.model.arch or 'the model of ' + cfg.model.weights} on {device}"
    )
    spec, mapping, dataset = build_spec(cfg, dataset)
    localizer = build_localizer(cfg, spec, mapping, dataset.classes, calibration)
    if cfg.data.decode == "device" and spec.resize != "stretch":
        raise ConfigError(
            f"data.decode=device stretches images to the input size; model.resize="
            f"{spec.resize} needs data.decode=cpu"
        )
    cfg = resolved(cfg, spec, localizer.method.layer, _split_read(cfg.data))
    if calibration is not None:
        check_source(calibration, calibration_source(cfg))
    evaluators = build_evaluators(cfg, dataset, localizer.boxes)
    return RunPlan(cfg, dataset, localizer, evaluators, calibration)


def _split_read(data: DataConfig) -> str:
    """``data.split`` where it named the images read: a VOC split file that exists."""
    if data.format != "voc" or not data.split:
        return ""
    return (
        data.split
        if (Path(data.root) / "ImageSets" / "Main" / f"{data.split}.txt").is_file()
        else ""
    )


def _dry_forward(localizer: Localizer) -> None:
    """One forward pass of a blank image through the hooked layer: a layer that is not
    reached or does not give a feature grid fails here, not in the first batch."""
    h, w = localizer.input_size
    blank = torch.zeros(1, 3, h, w, device=localizer.device)
    with localizer.method.forward(blank):
        pass
