"""The end of a run: the chunks become the output files, the counters become metrics.

Order matters: the pseudo-labels, failures, sweep and per-class files come first, the
report next, and ``metrics.json`` last, because its presence marks the run finished.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from wsol.config import Config, dump_config
from wsol.data import Dataset
from wsol.data.loader import make_loader
from wsol.evaluate import Evaluators, add_coco_ap
from wsol.evaluate.calibration import check_overlap
from wsol.evaluate.per_image import PER_IMAGE_FILE, rows_from_evaluators, save_per_image
from wsol.export import (
    build_document,
    dropped_boxes,
    export_names,
    filter_document,
    results_list,
    write_formats,
)
from wsol.fileio import atomic_write_json, atomic_write_text, fault_point
from wsol.localize import MAP_REASONS
from wsol.report import (
    GT_GROUPS,
    SCORE_GROUPS,
    image_quality,
    operating_cut,
    pick_images,
    render_gallery,
    top_scores,
    write_report,
)
from wsol.run.build import RunPlan
from wsol.run.journal import WARNINGS_FILE, Journal

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run wrote and measured.

    ``metrics`` is what ``metrics.json`` holds; ``sweep`` what ``sweep.json`` holds (None
    when nothing was scored); ``dataset`` the images and classes the run covered;
    ``config`` the resolved config, as ``config.yaml`` holds it; ``num_boxes_found``
    every box the run found (``metrics["num_boxes_written"]``: those its exports hold).
    """

    out_dir: Path
    metrics: dict
    num_boxes_found: int
    sweep: dict | None
    dataset: Dataset
    config: Config


def finalize(
    plan: RunPlan,
    journal: Journal,
    evaluators: Evaluators | None,
    empty_reasons: dict[str, int],
    seconds: float,
    stages: dict[str, float] | None = None,
) -> tuple[dict, dict | None]:
    """Write the outputs of a run whose chunks are all journaled; returns the metrics
    and the threshold sweep (None when nothing was scored). ``stages``: busy seconds of
    each stage of the loop (:mod:`wsol.run.stages`), reported as ``stage_seconds``."""
    cfg, dataset, out = plan.cfg, plan.dataset, journal.out
    info = {
        "description": f"wsol pseudo-labels: {cfg.cam.method} on {dataset.name}",
        "method": cfg.cam.method,
        "model": cfg.model.arch,
    }
    records = journal.records()
    doc = build_document(records["images"], records["annotations"], dataset.coco_categories(), info)
    # Only what is written is trimmed: the metrics below see every box.
    written = filter_document(doc, cfg.export.min_score, cfg.export.max_per_class)
    options = {"labelstudio": {"image_root": cfg.export.labelstudio_root}}
    journal.record_written(write_formats(written, out, cfg.export.formats, options))
    exported = export_counts(doc, written, cfg)
    fault_point("final:pseudo_labels.json")
    failures = dataset.failures + records["failures"]
    processed = {im["id"] for im in doc["images"]}
    atomic_write_text(out / "failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures))
    if dataset.warnings:  # read, but something in its labels looked wrong
        text = "".join(json.dumps(w) + "\n" for w in dataset.warnings)
        atomic_write_text(out / WARNINGS_FILE, text)
    metrics: dict = {
        "num_images": len(processed),
        "num_failed": len(failures),
        "num_warnings": len(dataset.warnings),
        **exported,
        "images_per_second": round(len(processed) / max(seconds, 1e-9), 3),
    }
    if stages:
        metrics["stage_seconds"] = {k: round(v, 3) for k, v in stages.items()}
    metrics["whole_image_boxes"] = whole_image_share(doc)
    # Maps that gave no box, and why (constant / NaN / Inf maps, nothing above min_area).
    bad = MAP_REASONS[1:]
    metrics["num_bad_maps"] = sum(n for r, n in empty_reasons.items() if r in bad)
    if empty_reasons:
        metrics["empty_detections"] = dict(sorted(empty_reasons.items()))
    if plan.calibration is not None:
        metrics["calibrated_threshold"] = plan.calibration.threshold
        metrics["calibration_overlap_images"] = check_overlap(
            plan.calibration, [s.path for s in dataset.samples]
        )
    sweep, curve = None, None
    if evaluators is not None:
        metrics.update(evaluators.compute())
        per_class = evaluators.per_class(dataset.classes)
        sweeper = evaluators["max_box_acc"]
        sweep, curve = sweeper.sweep(dataset.classes), sweeper.curve()
        atomic_write_json(out / "sweep.json", sweep)
        if cfg.eval.per_image:
            save_per_image(out / PER_IMAGE_FILE, rows_from_evaluators(evaluators))
        if cfg.eval.coco_ap:
            gt = dataset.to_coco()
            gt["images"] = [im for im in gt["images"] if im["id"] in processed]
            gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in processed]
            add_coco_ap(
                metrics, per_class, gt, results_list(doc), dataset.classes, dataset.category_ids
            )
        atomic_write_json(out / "metrics_per_class.json", per_class)
    if cfg.report.enabled:
        _report(
            plan,
            journal,
            metrics,
            curve,
            failures,
            doc,
            per_class if evaluators is not None else None,
        )
    _say_which_cut(metrics, plan.localizer.boxes.describe_cut())
    atomic_write_json(out / "metrics.json", metrics)
    return metrics, sweep


def export_counts(found: dict, written: dict, cfg: Config) -> dict:
    """What the exports hold: ``num_boxes_found`` (every box of the run, at its cut: what
    the metrics score), ``num_boxes_written`` (the boxes each export file holds, after
    ``export.min_score`` and ``export.max_per_class``), ``exports`` (the files),
    ``boxes_dropped`` (why the others were left out, when some were) and
    ``export_warning`` when boxes were found and the exports hold none."""
    anns = found["annotations"]
    e = cfg.export
    out: dict = {
        "num_boxes_found": len(anns),
        "num_boxes_written": len(written["annotations"]),
        "exports": export_names(e.formats),
    }
    dropped = dropped_boxes(found, e.min_score, e.max_per_class)
    if dropped:
        out["boxes_dropped"] = dropped
    if anns and not written["annotations"] and e.formats:
        best = max(a["score"] for a in anns)
        out["export_warning"] = (
            f"the exports hold no box: all {len(anns)} boxes found scored below "
            f"export.min_score={e.min_score:g} (the highest {best:.3g}); lower "
            "export.min_score (what a score means: docs/methods.md, 'Scores')"
        )
        logger.warning(out["export_warning"])
    return out


# Which metrics come from the boxes found at the run's cut, and which from the threshold
# sweep (each at its own best cut, which metrics.json names).
AT_CUT = (
    "corloc",
    "gt_known_loc",
    "top1_loc",
    "coco_ap",
    "coco_ap50",
    "coco_ap75",
    "whole_image_boxes",
    "num_boxes_found",
    "num_boxes_written",
)
OVER_SWEEP = (
    "maxboxacc",
    "maxboxacc_v2",
    "maxboxacc_v2_iou30",
    "maxboxacc_v2_iou50",
    "maxboxacc_v2_iou70",
    "pxap",
)


def _say_which_cut(metrics: dict, cut: str) -> None:
    metrics["cut"] = cut
    metrics["metrics_at_cut"] = [k for k in AT_CUT if k in metrics]
    metrics["metrics_over_sweep"] = [k for k in OVER_SWEEP if k in metrics]


def whole_image_share(doc: dict, cover: float = 0.9) -> float:
    """The share of the boxes of ``doc`` that cover at least ``cover`` of their image: boxes
    that say nothing about where the object is (0 when there is no box)."""
    area = {im["id"]: im["height"] * im["width"] for im in doc["images"]}
    anns = doc["annotations"]
    large = sum(a["area"] >= cover * area[a["image_id"]] for a in anns)
    return round(large / len(anns), 4) if anns else 0.0


def _report(
    plan: RunPlan,
    journal: Journal,
    metrics: dict,
    curve: dict | None,
    failures: list[dict],
    doc: dict,
    per_class: dict | None,
) -> None:
    """``report.html``, one self-contained file. The shown images are picked from the
    pseudo-labels ``doc`` and the GT (best, worst and random by box quality; by box
    score without GT), and only their maps are recomputed here, rather than kept from
    the main pass: the report costs a few forward passes and no memory during the run,
    and a resumed run reports the same images."""
    cfg, dataset, localizer = plan.cfg, plan.dataset, plan.localizer
    show_gt = dataset.has_boxes
    if show_gt:
        scores, groups = image_quality(doc, dataset.samples, dataset.category_ids), GT_GROUPS
    else:
        scores, groups = top_scores(doc, dataset.samples), SCORE_GROUPS
    picks = pick_images(scores, cfg.report.num_images, cfg.seed, groups)
    loader = make_loader(
        [dataset.samples[p.position] for p in picks],
        localizer.input_size,
        cfg.cam.batch_size,
        0,
        localizer.model.resize,
        localizer.letterbox_fill,
        cache=plan.decode_cache,
    )
    shown = []
    for batch in loader:
        chosen = [picks[i] for i in batch.indices]
        samples = [dataset.samples[p.position] for p in chosen]
        if samples:
            results = localizer(
                batch.images, batch.orig_sizes, [s.labels for s in samples], batch.regions
            )
            shown += list(zip(chosen, samples, results, strict=True))
    # The loader may reorder; the report keeps the picks' order (best, worst, random).
    order = {p.position: i for i, p in enumerate(picks)}
    shown.sort(key=lambda item: order[item[0].position])
    tiles = render_gallery(dataset.classes, shown, localizer.method.pixel_level, show_gt)
    boxes = localizer.boxes
    shipped, cut_note = operating_cut(boxes.threshold_mode, boxes.threshold, boxes.class_thresholds)
    named = dict(metrics)
    _say_which_cut(named, boxes.describe_cut())
    write_report(
        journal.out,
        f"wsol: {cfg.cam.method} on {dataset.name}",
        named,
        tiles,
        curve=curve,
        config_text=dump_config(cfg),
        failures=failures,
        per_class=per_class,
        shipped=shipped,
        cut_note=cut_note,
        show_gt=show_gt,
    )
