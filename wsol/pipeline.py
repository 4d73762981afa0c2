"""``run(config)``: dataset -> loader -> model -> maps -> boxes -> sinks, one pass.

Each batch goes through the stages and is then dropped: memory is bounded by the batch
size. Every ``chunk_batches`` batches the results, and the evaluators' counters for
those batches, are written atomically as one chunk file; the final outputs are
assembled from the chunks. A run that is killed resumes after its last chunk (see
:mod:`wsol.runstate`) and ends with the same ``pseudo_labels.json`` byte for byte.
"""

from __future__ import annotations

import json
import logging
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
from wsol.data.loader import RESIZE_POLICIES, make_loader
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
    ChunkWriter,
    annotations_for,
    atomic_write_json,
    atomic_write_text,
    image_entry,
    iter_chunks,
    results_list,
    write_pseudo_labels,
    write_voc_annotations,
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
    smooth_maps,
)
from wsol.models import ModelSpec, build_model
from wsol.report import render_gallery, report_picks
from wsol.runstate import RunExistsError, fault_point, fingerprint, open_run
from wsol.targets import TARGET_MODES, ClassMapping, pad_labels, select_dataset_targets
from wsol.visualize import write_report

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
__all__ = ["RunExistsError", "RunResult", "run", "validate"]


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
    if cfg.boxes.threshold_mode == "sweep":
        raise ConfigError("boxes.threshold_mode=sweep: the evaluators always sweep "
                          "eval.thresholds (or 0..1 by eval.sweep_step); boxes.threshold_mode "
                          "picks the cut for the written boxes: fraction, absolute or otsu")
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
    if cfg.model.resize:
        _choice(cfg.model.resize, RESIZE_POLICIES, "model.resize")
    if not 0.0 <= cfg.boxes.smooth <= 0.5:
        raise ConfigError(f"boxes.smooth must be in [0, 0.5], got {cfg.boxes.smooth}")
    if cfg.boxes.max_side < 16:
        raise ConfigError(f"boxes.max_side must be >= 16, got {cfg.boxes.max_side}")


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
    if cfg.model.resize:
        spec.resize = cfg.model.resize
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


def _localize_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    h, w = size
    if max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def run(cfg: Config, progress: Progress | None = None, overwrite: bool = False) -> RunResult:
    """Run the whole pipeline as configured and write the output contract to ``cfg.out``.

    A folder holding an unfinished run of the same config and images is resumed after
    its last complete chunk; anything else already there is refused unless ``overwrite``.
    """
    validate(cfg)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    dataset = build_dataset(cfg.data)
    spec, mapping, dataset = build_spec(cfg, dataset)
    try:
        method = build_method(cfg.cam.method, spec, cfg.model.target_layer or None)
    except ValueError as e:  # a method that cannot work on this model, said before any work
        raise ConfigError(f"cam.method={cfg.cam.method}: {e}") from None
    if cfg.cam.targets == "gt" and not any(len(s.labels) for s in dataset.samples):
        raise ConfigError("cam.targets=gt but the dataset has no labels; use topk or prob")
    device = resolve_device(cfg.model.device)
    calibration, taus = None, None
    if cfg.boxes.threshold == "calibrated":
        calibration = load_calibration(cfg.boxes.calibration)
        check_source(calibration, cfg)
        taus = torch.as_tensor(calibration.thresholds_for(dataset.classes), dtype=torch.float64,
                               device=device)
    fp = fingerprint(cfg, [(s.image_id, s.path) for s in dataset.samples])
    resuming = open_run(out, fp, overwrite)
    atomic_write_text(out / "config.yaml", dump_config(cfg))

    net = spec.net.to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    ctx = _Context(cfg, dataset, spec, mapping, method, device, taus)
    scoring = cfg.eval.enabled and dataset.has_boxes
    thresholds = sweep_thresholds(cfg.eval.sweep_step, cfg.eval.thresholds)
    corloc_sweep = (dict(components=cfg.boxes.components, min_area=cfg.boxes.min_area,
                         score=cfg.boxes.score, merge=cfg.boxes.merge, nms_iou=cfg.boxes.nms_iou)
                    if cfg.eval.sweep_corloc else None)
    evaluators = {}
    if scoring:
        evaluators["box_acc"] = BoxAccuracy(len(dataset.classes), thresholds, cfg.eval.iou,
                                            corloc_sweep, cfg.eval.class_agnostic)
        if cfg.eval.pxap and has_masks(dataset.samples):
            evaluators["pixel_ap"] = PixelAP(len(dataset.classes), thresholds)

    # Resume: what the chunks on disk already cover is not done again.
    start_pos, seconds = 0, 0.0
    empty_reasons: dict[str, int] = {}
    totals = {k: type(e)(**e.init_args()) for k, e in evaluators.items()}
    for chunk in (iter_chunks(out) if resuming else []):
        if chunk.get("start") != start_pos:
            raise RunExistsError(f"{out}: chunk files are not contiguous; pass --overwrite")
        start_pos, seconds = chunk["end"], seconds + chunk["seconds"]
        for k, e in totals.items():
            e.merge_state(chunk["eval"][k])
        _add_counts(empty_reasons, chunk["reasons"])
    if resuming:
        logger.info("resuming %s at image %d of %d", out, start_pos, len(dataset))
    _clean_temp_files(out)

    writer = ChunkWriter(out)
    loader = ctx.loader(dataset.samples[start_pos:], cfg.data.num_workers)
    chunk_start, chunk_reasons = start_pos, {}
    tick = time.perf_counter()
    done = start_pos
    for b, batch in enumerate(loader):
        batch.indices = [i + start_pos for i in batch.indices]
        fails = [f.to_dict() for f in batch.failures]
        for f in fails:
            logger.warning("image %s failed at %s: %s", f["path"], f["stage"], f["reason"])
        for w in batch.warnings:
            logger.warning(w)
        results = _process_batch(ctx, batch) if batch.indices else []
        images, anns = [], []
        for r, size in zip(results, batch.orig_sizes, strict=True):
            images.append(image_entry(r.sample, size))
            for c in r.classes:
                anns += annotations_for(r.sample.image_id, dataset.category_ids[c.dataset_class],
                                        c.detections)
                if c.detections.reason:
                    _add_counts(chunk_reasons, {c.detections.reason: 1})
        writer.add(images, anns, fails)
        for e in evaluators.values():
            e.update(results)
        done += len(batch.indices) + len(fails)
        fault_point(f"batch:{b}")
        if (b + 1) % cfg.chunk_batches == 0 or done == len(dataset):
            now = time.perf_counter()
            writer.flush({"start": chunk_start, "end": done, "seconds": now - tick,
                          "reasons": chunk_reasons,
                          "eval": {k: e.state_dict() for k, e in evaluators.items()}})
            fault_point(f"chunk:{writer.index - 1}")
            seconds += now - tick
            for k, e in evaluators.items():
                totals[k].merge_state(e.state_dict())
                e.reset()
            _add_counts(empty_reasons, chunk_reasons)
            chunk_start, chunk_reasons, tick = done, {}, now
        if progress is not None:
            progress(done, len(dataset))
    metrics = _finalize(out, cfg, ctx, totals, empty_reasons, seconds, calibration)
    return RunResult(out, metrics, metrics["num_annotations"])


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, n in counts.items():
        into[k] = into.get(k, 0) + n


def _clean_temp_files(out: Path) -> None:
    """Remove temp files a killed atomic write may have left."""
    for p in [*out.glob(".*.tmp"), *out.glob("chunks/.*.tmp")]:
        p.unlink(missing_ok=True)


@dataclass
class _Context:
    """What every batch needs: the config, data, model and device-side constants."""

    cfg: Config
    dataset: Dataset
    spec: ModelSpec
    mapping: ClassMapping
    method: object
    device: torch.device
    taus: torch.Tensor | None = None

    def __post_init__(self):
        self.autocast = _PRECISIONS[self.cfg.model.precision]
        self.mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1)
        self.mapping.to(self.device)

    def loader(self, samples, num_workers: int = 0):
        fill = tuple(round(255 * m) for m in self.spec.mean)
        return make_loader(samples, self.spec.input_size, self.cfg.cam.batch_size, num_workers,
                           self.spec.resize, fill)


def _finalize(out: Path, cfg: Config, ctx: _Context, evaluators: dict, empty_reasons: dict,
              seconds: float, calibration) -> dict:
    """Assemble the chunks into the final files; ``metrics.json`` comes last and marks
    the run finished."""
    dataset = ctx.dataset
    info = {"description": f"wsol pseudo-labels: {cfg.cam.method} on {dataset.name}",
            "method": cfg.cam.method, "model": cfg.model.arch}
    doc, chunk_failures = write_pseudo_labels(out, dataset, info)
    num_anns = len(doc["annotations"])
    fault_point("final:pseudo_labels.json")
    if cfg.export.voc_xml:
        write_voc_annotations(doc, out / "voc")
    failures = dataset.failures + chunk_failures
    processed = {im["id"] for im in doc["images"]}
    atomic_write_text(out / "failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures))
    metrics: dict = {
        "num_images": len(processed),
        "num_failed": len(failures),
        "num_annotations": num_anns,
        "images_per_second": round(len(processed) / max(seconds, 1e-9), 3),
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
    box_acc = evaluators.get("box_acc")
    if box_acc is not None:
        metrics.update(box_acc.compute())
        per_class = box_acc.per_class(dataset.classes)
        pixel_ap = evaluators.get("pixel_ap")
        if pixel_ap is not None:
            metrics.update(pixel_ap.compute())
            for name, v in pixel_ap.per_class(dataset.classes).items():
                per_class[name].update(v)
        atomic_write_json(out / "sweep.json", box_acc.sweep(dataset.classes))
        if cfg.eval.coco_ap:
            gt = dataset.to_coco()
            gt["images"] = [im for im in gt["images"] if im["id"] in processed]
            gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in processed]
            preds = results_list(doc)
            ap = coco_ap(gt, preds, per_class=True)
            per_cat = ap.pop("per_category", {})
            metrics.update(ap)
            for name, cid in zip(dataset.classes, dataset.category_ids, strict=True):
                per_class[name].update(per_cat.get(cid, {}))
        atomic_write_json(out / "metrics_per_class.json", per_class)
    if cfg.report.enabled:
        _write_report(out, cfg, ctx, metrics, box_acc.curve() if box_acc else None, failures)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _write_report(out: Path, cfg: Config, ctx: _Context, metrics: dict, curve: dict | None,
                  failures: list[dict]) -> None:
    picks = report_picks(len(ctx.dataset), cfg.report.num_images)
    results: list[tuple[int, ImageResult]] = []
    loader = ctx.loader([ctx.dataset.samples[i] for i in picks])
    for batch in loader:
        positions = [picks[i] for i in batch.indices]
        batch.indices = positions
        if positions:
            results += list(zip(positions, _process_batch(ctx, batch), strict=True))
    figures = render_gallery(out, ctx.dataset, results,
                             getattr(ctx.method, "pixel_level", False))
    write_report(out, f"wsol: {cfg.cam.method} on {ctx.dataset.name}", metrics, figures, curve,
                 dump_config(cfg), failures)


def _process_batch(ctx: _Context, batch) -> list[ImageResult]:
    """Maps -> boxes for one batch. With ``ctx.taus [D]`` (calibrated absolute cuts per
    dataset class) those apply, else the config's threshold."""
    cfg, spec, mapping = ctx.cfg, ctx.spec, ctx.mapping
    x = batch.images.to(ctx.device, non_blocking=True).float().div_(255.0)
    x = (x - ctx.mean) / ctx.std
    if ctx.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    samples = [ctx.dataset.samples[i] for i in batch.indices]
    gt = (pad_labels([s.labels for s in samples], ctx.device) if cfg.cam.targets == "gt"
          else None)
    chosen: dict[str, torch.Tensor] = {}

    def target_fn(logits: torch.Tensor) -> torch.Tensor:
        dprobs = mapping.dataset_probs(spec.probabilities(logits))
        dt = select_dataset_targets(cfg.cam.targets, dprobs, gt, cfg.cam.topk, cfg.cam.min_prob)
        chosen["dataset"], chosen["probs"] = dt, dprobs
        return mapping.model_targets(logits, dt)

    out = ctx.method(x, target_fn, ctx.autocast)
    dt, dprobs = chosen["dataset"], chosen["probs"]
    if ctx.taus is not None:  # calibrated: an absolute cut per dataset class
        mode, tau = "absolute", ctx.taus[dt.clamp(min=0)]
    else:
        mode, tau = cfg.boxes.threshold_mode, cfg.boxes.threshold
    loc_sizes = [_localize_size(s, cfg.boxes.max_side) for s in batch.orig_sizes]
    maps = smooth_maps(out.maps, cfg.boxes.smooth)
    prepared = prepare_maps(maps, loc_sizes, mode, tau, batch.regions)
    dt_h, probs_h = dt.cpu().numpy(), dprobs.cpu().numpy()
    results = []
    for i, (sample, pm) in enumerate(zip(samples, prepared, strict=True)):
        (h, w), (lh, lw) = batch.orig_sizes[i], loc_sizes[i]
        scale = (w / lw, h / lh)
        res = ImageResult(sample=sample, probs=probs_h[i])
        for j in np.flatnonzero(dt_h[i] >= 0):
            d, cut = int(dt_h[i, j]), float(pm.cuts[j])
            p = float(probs_h[i, d])
            if pm.problems[j] != MAP_OK:
                det = Detections.empty(MAP_REASONS[int(pm.problems[j])])
                res.classes.append(ClassResult(d, p, det, None, cut, scale))
                continue
            det = detect(pm.norm[j], cut, p, cfg.boxes.components, cfg.boxes.min_area,
                         cfg.boxes.score, cfg.boxes.merge, cfg.boxes.nms_iou)
            if scale != (1.0, 1.0):
                det.boxes = det.boxes * np.array([scale[0], scale[1], scale[0], scale[1]])
            res.classes.append(ClassResult(d, p, det, pm.norm[j], cut, scale))
        results.append(res)
    return results
