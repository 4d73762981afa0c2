"""``run(config)``: dataset -> loader -> model -> maps -> boxes -> sinks, one pass.

Each batch goes through the stages and is then dropped: memory is bounded by the batch
size. Results are flushed to chunk files every ``chunk_batches`` batches and assembled
into ``pseudo_labels.json`` at the end.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsol.calibrate import check_overlap, check_source, load_calibration
from wsol.cams import METHODS, build_method
from wsol.config import Config, ConfigError, dump_config
from wsol.data import DATASETS, Dataset, build_dataset
from wsol.data.loader import decode_image, make_loader
from wsol.data.masks import has_masks
from wsol.evaluate import (
    BoxAccuracy,
    ClassResult,
    ImageResult,
    PixelAP,
    coco_ap,
    sweep_thresholds,
)
from wsol.export import (
    CHUNK_DIR,
    ChunkWriter,
    annotations_for,
    atomic_write_json,
    atomic_write_text,
    failures_from_chunks,
    image_entry,
    results_list,
    write_pseudo_labels,
)
from wsol.localize import (
    COMPONENT_MODES,
    MAP_OK,
    MAP_REASONS,
    MERGE_MODES,
    SCORE_MODES,
    THRESHOLD_MODES,
    Detections,
    detect,
    prepare_maps,
)
from wsol.models import ModelSpec, build_model
from wsol.targets import TARGET_MODES, ClassMapping, pad_labels, select_dataset_targets
from wsol.visualize import overlay, save_png, write_report

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
OUTPUT_FILES = ("pseudo_labels.json", "metrics.json", "metrics_per_class.json", "sweep.json",
                "failures.jsonl", "config.yaml", "report.html")
_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class RunExistsError(RuntimeError):
    """The output folder already holds results."""


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    num_annotations: int


def _choice(value: str, valid, key: str) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(sorted(valid))}")


def validate(cfg: Config) -> None:
    """Check every name and range in ``cfg`` before any work starts."""
    _choice(cfg.data.format, DATASETS, "data.format")
    _choice(cfg.cam.method, METHODS, "cam.method")
    _choice(cfg.cam.targets, TARGET_MODES, "cam.targets")
    _choice(cfg.boxes.threshold_mode, THRESHOLD_MODES, "boxes.threshold_mode")
    _choice(cfg.boxes.components, COMPONENT_MODES, "boxes.components")
    _choice(cfg.boxes.score, SCORE_MODES, "boxes.score")
    _choice(cfg.boxes.merge, MERGE_MODES, "boxes.merge")
    _choice(cfg.model.precision, _PRECISIONS, "model.precision")
    if cfg.boxes.threshold == "calibrated":
        if cfg.boxes.threshold_mode == "otsu":
            raise ConfigError("boxes.threshold=calibrated sets its own cuts; it cannot be "
                              "combined with boxes.threshold_mode=otsu")
        if not cfg.boxes.calibration:
            raise ConfigError("boxes.threshold=calibrated needs boxes.calibration=PATH "
                              "(the calibration.json written by `wsol calibrate`)")
        load_calibration(cfg.boxes.calibration)  # fails here, before any work, if unusable
    elif not 0.0 <= cfg.boxes.threshold <= 1.0:
        raise ConfigError(f"boxes.threshold must be in [0, 1] or 'calibrated', got "
                          f"{cfg.boxes.threshold}")
    if not 0.0 <= cfg.boxes.min_area < 1.0:
        raise ConfigError(f"boxes.min_area must be in [0, 1), got {cfg.boxes.min_area}")
    if cfg.boxes.nms_iou is not None and not 0.0 <= cfg.boxes.nms_iou <= 1.0:
        raise ConfigError(f"boxes.nms_iou must be in [0, 1] (0 or null: off), got "
                          f"{cfg.boxes.nms_iou}")
    if not 0.0 < cfg.eval.iou <= 1.0:
        raise ConfigError(f"eval.iou must be in (0, 1], got {cfg.eval.iou}")
    if cfg.eval.thresholds is not None and (
            not cfg.eval.thresholds or not all(0.0 <= t <= 1.0 for t in cfg.eval.thresholds)):
        raise ConfigError(f"eval.thresholds must be a non-empty list of numbers in [0, 1], "
                          f"got {cfg.eval.thresholds}")
    if cfg.cam.batch_size < 1 or cfg.cam.topk < 1 or cfg.chunk_batches < 1:
        raise ConfigError("cam.batch_size, cam.topk and chunk_batches must be >= 1")
    if not 0.0 < cfg.eval.sweep_step <= 0.5:
        raise ConfigError(f"eval.sweep_step must be in (0, 0.5], got {cfg.eval.sweep_step}")
    if cfg.model.device not in ("auto", "cpu") and not cfg.model.device.startswith("cuda"):
        raise ConfigError(f"model.device must be auto, cpu or cuda[:N], got {cfg.model.device!r}")
    if cfg.model.input_size is not None and len(cfg.model.input_size) != 2:
        raise ConfigError("model.input_size must be [H, W]")


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse to mix runs: an output folder with results needs ``overwrite``."""
    existing = [f for f in (*OUTPUT_FILES, CHUNK_DIR) if (out / f).exists()]
    if existing and not overwrite:
        raise RunExistsError(
            f"{out} already holds results ({', '.join(existing[:3])}); "
            "pass --overwrite to replace them or choose another out=")
    for f in existing:
        p = out / f
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    for sub in ("overlays",):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"model.device={name} but no CUDA device is available")
    return torch.device(name)


def build_spec(cfg: Config, dataset: Dataset) -> tuple[ModelSpec, ClassMapping, Dataset]:
    """The model (with config overrides of its preprocessing), its class mapping, and the
    dataset restricted to mappable classes when ``model.skip_unmapped`` asks for it."""
    from wsol.class_maps import load_class_map

    spec = build_model(cfg.model.arch, cfg.model.weights, dataset.classes or None,
                       cfg.model.target_layer or None)
    if cfg.model.input_size:
        spec.input_size = tuple(cfg.model.input_size)
    if cfg.model.mean:
        spec.mean = tuple(cfg.model.mean)
    if cfg.model.std:
        spec.std = tuple(cfg.model.std)
    class_map = (load_class_map(cfg.model.class_map, len(spec.class_names))
                 if cfg.model.class_map else None)
    if not dataset.classes:
        dataset.classes = list(class_map) if class_map else list(spec.class_names)
        dataset.category_ids = list(range(1, len(dataset.classes) + 1))
    known = set(class_map) if class_map is not None else set(spec.class_names)
    unmapped = [c for c in dataset.classes if c not in known]
    if unmapped and cfg.model.skip_unmapped:
        logger.warning("model.skip_unmapped: leaving out %d classes the model cannot map: %s",
                       len(unmapped), ", ".join(unmapped))
        dataset = dataset.restrict_classes([c for c in dataset.classes if c in known])
    return spec, ClassMapping.build(dataset.classes, spec, class_map), dataset


def _report_picks(n: int, k: int) -> set[int]:
    if k <= 0 or n == 0:
        return set()
    return {int(i) for i in np.linspace(0, n - 1, min(k, n)).round()}


def run(cfg: Config, progress: Progress | None = None, overwrite: bool = False) -> RunResult:
    """Run the whole pipeline as configured and write the output contract to ``cfg.out``."""
    validate(cfg)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    dataset = build_dataset(cfg.data)
    spec, mapping, dataset = build_spec(cfg, dataset)
    method = build_method(cfg.cam.method, spec, cfg.model.target_layer or None)
    if cfg.cam.targets == "gt" and not any(len(s.labels) for s in dataset.samples):
        raise ConfigError("cam.targets=gt but the dataset has no labels; use topk or prob")
    device = resolve_device(cfg.model.device)
    prepare_output(out, overwrite)
    atomic_write_text(out / "config.yaml", dump_config(cfg))

    net = spec.net.to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    autocast = _PRECISIONS[cfg.model.precision]
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    mapping.to(device)
    loader = make_loader(dataset.samples, spec.input_size, cfg.cam.batch_size,
                         cfg.data.num_workers)
    writer = ChunkWriter(out)
    scoring = cfg.eval.enabled and dataset.has_boxes
    thresholds = sweep_thresholds(cfg.eval.sweep_step, cfg.eval.thresholds)
    corloc_sweep = (dict(components=cfg.boxes.components, min_area=cfg.boxes.min_area,
                         score=cfg.boxes.score, merge=cfg.boxes.merge, nms_iou=cfg.boxes.nms_iou)
                    if cfg.eval.sweep_corloc else None)
    box_acc = (BoxAccuracy(len(dataset.classes), thresholds, cfg.eval.iou, corloc_sweep)
               if scoring else None)
    pixel_ap = (PixelAP(len(dataset.classes), thresholds)
                if scoring and cfg.eval.pxap and has_masks(dataset.samples) else None)
    calibration, taus = None, None
    if cfg.boxes.threshold == "calibrated":
        calibration = load_calibration(cfg.boxes.calibration)
        check_source(calibration, cfg)
        taus = torch.as_tensor(calibration.thresholds_for(dataset.classes), dtype=torch.float64,
                               device=device)
    empty_reasons: dict[str, int] = {}
    picks = _report_picks(len(dataset), cfg.report.num_images if cfg.report.enabled else 0)
    gallery: list[tuple[int, ImageResult]] = []
    done = failed = 0
    start = time.perf_counter()

    for b, batch in enumerate(loader):
        fails = [f.to_dict() for f in batch.failures]
        for f in fails:
            logger.warning("image %s failed at %s: %s", f["path"], f["stage"], f["reason"])
        for w in batch.warnings:
            logger.warning(w)
        failed += len(fails)
        results: list[ImageResult] = []
        if batch.indices:
            results = _process_batch(cfg, dataset, spec, mapping, method, batch, device, mean,
                                     std, autocast, taus)
        images, anns = [], []
        for r, size in zip(results, batch.orig_sizes, strict=True):
            images.append(image_entry(r.sample, size))
            for c in r.classes:
                anns += annotations_for(r.sample.image_id, dataset.category_ids[c.dataset_class],
                                        c.detections)
        writer.add(images, anns, fails)
        for r in results:
            for c in r.classes:
                if c.detections.reason:
                    empty_reasons[c.detections.reason] = empty_reasons.get(
                        c.detections.reason, 0) + 1
        if box_acc is not None:
            box_acc.update(results)
        if pixel_ap is not None:
            pixel_ap.update(results)
        for i, r in zip(batch.indices, results, strict=True):
            if i in picks:
                gallery.append((i, _shrink_for_report(r)))
        done += len(batch.indices) + len(fails)
        if (b + 1) % cfg.chunk_batches == 0:
            writer.flush()
        if progress is not None:
            progress(done, len(dataset))
    writer.flush()
    elapsed = time.perf_counter() - start

    info = {"description": f"wsol pseudo-labels: {cfg.cam.method} on {dataset.name}",
            "method": cfg.cam.method, "model": cfg.model.arch}
    _, num_anns = write_pseudo_labels(out, dataset, info)
    failures = failures_from_chunks(out)
    atomic_write_text(out / "failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures))
    metrics: dict = {
        "num_images": len(dataset) - len(failures),
        "num_failed": len(failures),
        "num_annotations": num_anns,
        "images_per_second": round((len(dataset) - len(failures)) / max(elapsed, 1e-9), 3),
    }
    # Maps that gave no box, and why (constant / NaN / Inf maps, nothing above min_area).
    bad = MAP_REASONS[1:]
    metrics["num_bad_maps"] = sum(n for r, n in empty_reasons.items() if r in bad)
    if empty_reasons:
        metrics["empty_detections"] = dict(sorted(empty_reasons.items()))
    if calibration is not None:
        metrics["calibrated_threshold"] = calibration.threshold
        metrics["calibration_overlap_images"] = check_overlap(
            calibration, [s.path for s in dataset.samples])
    if box_acc is not None:
        metrics.update(box_acc.compute())
        per_class = box_acc.per_class(dataset.classes)
        if pixel_ap is not None:
            metrics.update(pixel_ap.compute())
            for name, v in pixel_ap.per_class(dataset.classes).items():
                per_class[name].update(v)
        atomic_write_json(out / "sweep.json", box_acc.sweep(dataset.classes))
        if cfg.eval.coco_ap:
            processed = {im["id"] for ch in _chunk_images(out) for im in ch}
            gt = dataset.to_coco()
            gt["images"] = [im for im in gt["images"] if im["id"] in processed]
            gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in processed]
            preds = results_list(json.loads((out / "pseudo_labels.json").read_text()))
            ap = coco_ap(gt, preds, per_class=True)
            per_cat = ap.pop("per_category", {})
            metrics.update(ap)
            for name, cid in zip(dataset.classes, dataset.category_ids, strict=True):
                per_class[name].update(per_cat.get(cid, {}))
        atomic_write_json(out / "metrics_per_class.json", per_class)
    atomic_write_json(out / "metrics.json", metrics)
    if cfg.report.enabled:
        _write_report(out, cfg, dataset, metrics, gallery,
                      box_acc.curve() if box_acc else None, failures)
    return RunResult(out, metrics, num_anns)


def _chunk_images(out: Path):
    from wsol.export import iter_chunks

    for chunk in iter_chunks(out):
        yield chunk["images"]


def _process_batch(cfg, dataset, spec, mapping, method, batch, device, mean, std,
                   autocast, taus: torch.Tensor | None = None) -> list[ImageResult]:
    """Maps -> boxes for one batch. ``taus [D]``: calibrated absolute cuts per dataset
    class (``boxes.threshold=calibrated``), else the config's threshold applies."""
    x = batch.images.to(device, non_blocking=True).float().div_(255.0)
    x = (x - mean) / std
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    samples = [dataset.samples[i] for i in batch.indices]
    gt = pad_labels([s.labels for s in samples], device) if cfg.cam.targets == "gt" else None
    chosen: dict[str, torch.Tensor] = {}

    def target_fn(logits: torch.Tensor) -> torch.Tensor:
        dprobs = mapping.dataset_probs(spec.probabilities(logits))
        dt = select_dataset_targets(cfg.cam.targets, dprobs, gt, cfg.cam.topk, cfg.cam.min_prob)
        chosen["dataset"], chosen["probs"] = dt, dprobs
        return mapping.model_targets(logits, dt)

    out = method(x, target_fn, autocast)
    dt, dprobs = chosen["dataset"], chosen["probs"]
    if taus is not None:  # calibrated: an absolute cut per dataset class
        mode, tau = "absolute", taus[dt.clamp(min=0)]
    else:
        mode, tau = cfg.boxes.threshold_mode, cfg.boxes.threshold
    prepared = prepare_maps(out.maps, batch.orig_sizes, mode, tau)
    dt_h, probs_h = dt.cpu().numpy(), dprobs.cpu().numpy()
    results = []
    for i, (sample, pm) in enumerate(zip(samples, prepared, strict=True)):
        res = ImageResult(sample=sample, probs=probs_h[i])
        for j in np.flatnonzero(dt_h[i] >= 0):
            d, cut = int(dt_h[i, j]), float(pm.cuts[j])
            p = float(probs_h[i, d])
            if pm.problems[j] != MAP_OK:
                det = Detections.empty(MAP_REASONS[int(pm.problems[j])])
                res.classes.append(ClassResult(d, p, det, None, cut))
                continue
            det = detect(pm.norm[j], cut, p, cfg.boxes.components, cfg.boxes.min_area,
                         cfg.boxes.score, cfg.boxes.merge, cfg.boxes.nms_iou)
            res.classes.append(ClassResult(d, p, det, pm.norm[j], cut))
        results.append(res)
    return results


def _shrink_for_report(r: ImageResult) -> ImageResult:
    """Keep a small copy of the maps of an image picked for the report."""
    import cv2

    classes = []
    for c in r.classes:
        m = c.norm_map
        if m is not None and max(m.shape) > 360:
            s = 360 / max(m.shape)
            m = cv2.resize(m, (max(1, round(m.shape[1] * s)), max(1, round(m.shape[0] * s))),
                           interpolation=cv2.INTER_AREA)
        classes.append(ClassResult(c.dataset_class, c.prob, c.detections, m, c.cut))
    return ImageResult(r.sample, r.probs, classes)


def _write_report(out: Path, cfg: Config, dataset: Dataset, metrics: dict,
                  gallery: list[tuple[int, ImageResult]], curve: dict | None,
                  failures: list[dict]) -> None:
    figures = []
    for i, r in gallery:
        try:
            pixels, _ = decode_image(r.sample.path)
        except ValueError:
            continue
        for c in r.classes or [None]:
            name = dataset.classes[c.dataset_class] if c else "no target"
            gt = r.sample.boxes[r.sample.box_labels == c.dataset_class] if c else r.sample.boxes
            heat = c.norm_map if c else None
            if heat is not None and heat.shape != pixels.shape[:2]:
                import cv2

                heat = cv2.resize(heat, (pixels.shape[1], pixels.shape[0]))
            pred = c.detections.boxes if c else np.zeros((0, 4))
            score = f" {c.detections.scores[0]:.2f}" if c and len(c.detections.scores) else ""
            img = overlay(pixels, heat, pred, gt, f"{name}{score}")
            rel = f"overlays/{i:06d}_{name.replace(' ', '_').replace('/', '_')}.png"
            save_png(out / rel, img)
            figures.append((rel, f"{r.sample.file_name}: {name} (p={c.prob:.2f})" if c
                            else r.sample.file_name))
    write_report(out, f"wsol: {cfg.cam.method} on {dataset.name}", metrics, figures, curve,
                 dump_config(cfg), failures)
