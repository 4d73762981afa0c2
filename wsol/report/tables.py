"""The metric tables of ``report.html``: grouped, formatted and explained.

Metrics come in groups: those of the boxes written at the run's own cut, those of the
threshold sweep (each at its own best cut), counts, and calibration. Every value is
formatted for people: numbers to a fixed precision, nested dicts and lists as
``key: value`` lists, never a Python repr.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

DELTA = "IoU ≥ δ (eval.iou, 0.5 by default)"

EXPLAIN = {
    "corloc": f"Share of (image, class) pairs whose top-scoring box has {DELTA} with a GT "
    "box of the class (CorLoc of weakly supervised detection).",
    "gt_known_loc": f"Share of pairs whose largest component's box in the GT class's map has "
    f"{DELTA} (GT-known Loc).",
    "top1_loc": "Share of images whose most probable class is a GT class and whose largest box "
    f"for it has {DELTA} (Top-1 Loc).",
    "coco_ap": "COCO box AP of the written boxes, ranked by score, averaged over IoU "
    "0.50:0.05:0.95 (pycocotools).",
    "coco_ap50": "COCO box AP at IoU 0.50 (VOC-style AP).",
    "coco_ap75": "COCO box AP at IoU 0.75.",
    "whole_image_boxes": "Share of the boxes found that cover at least 90% of their image: "
    "boxes that say nothing about where the object is.",
    "num_boxes_found": "Boxes the run found at its cut: every one is scored by the metrics.",
    "num_boxes_written": "Boxes each export file holds: those found, less any under "
    "export.min_score or over export.max_per_class.",
    "exports": "The export files (export.formats); each holds num_boxes_written boxes.",
    "boxes_dropped": "Boxes found but not written, by reason.",
    "export_warning": "Boxes were found, yet none was written.",
    "maxboxacc": f"Best, over the sweep's cuts, share of pairs whose largest box has {DELTA} "
    "(MaxBoxAcc, Choe et al., CVPR 2020).",
    "maxboxacc_v2": "Mean over δ in {0.3, 0.5, 0.7} of the best share of pairs where any "
    "component's box has IoU ≥ δ, each δ at its own best cut (MaxBoxAccV2).",
    "maxboxacc_v2_iou30": "MaxBoxAccV2's term at δ = 0.3: best share of pairs where any box "
    "has IoU ≥ 0.3.",
    "maxboxacc_v2_iou50": "MaxBoxAccV2's term at δ = 0.5.",
    "maxboxacc_v2_iou70": "MaxBoxAccV2's term at δ = 0.7.",
    "pxap": "Area under the pixel precision-recall curve of the normalized maps against the "
    "GT masks, over all cuts (PxAP; pairs with masks only).",
    "num_images": "Images processed.",
    "num_failed": "Images that could not be processed (each is in failures.jsonl).",
    "num_pairs": "(image, class) pairs scored: the GT classes of each image that have a "
    "non-ignored box.",
    "images_per_second": "Throughput of the main pass (maps, boxes and scoring).",
    "num_bad_maps": "Maps that gave no box because they were constant or held NaN or Inf.",
    "empty_detections": "Maps that gave no box, by reason.",
    "stage_seconds": "Busy seconds of each stage of the main pass: decode, model (the device "
    "stage), boxes, score (the sweep), write; they overlap, so they can add up to more "
    "than the pass took.",
    "calibrated_threshold": "The global cut calibration chose on its own split.",
    "calibration_overlap_images": "Images of this run that calibration also used (should "
    "be 0: a cut tuned on the test images flatters every metric at it).",
}
# Per-class columns, in this order (others follow); each explained below the table.
CLASS_COLUMNS = {
    "pairs": "(image, class) pairs of the class",
    "corloc": "CorLoc at the shipped cut",
    "gt_known_loc": "GT-known Loc at the shipped cut",
    "maxboxacc": "box accuracy at the sweep's global best cut",
    "best_maxboxacc": "box accuracy at the class's own best cut",
    "best_threshold": "the class's own best cut",
    "maxboxacc_v2": "MaxBoxAccV2 of the class",
    "pxap": "PxAP of the class",
    "coco_ap": "COCO AP of the class",
    "coco_ap50": "COCO AP at IoU 0.50 of the class",
}
COUNTS = (
    "num_images",
    "num_failed",
    "num_pairs",
    "num_boxes_found",
    "num_boxes_written",
    "exports",
    "boxes_dropped",
    "export_warning",
    "images_per_second",
    "num_bad_maps",
    "empty_detections",
    "stage_seconds",
)
CALIBRATION = ("calibrated_threshold", "calibration_overlap_images")
STAGE_KEYS = ("decode", "model", "boxes", "score", "write")  # stage_seconds' keys
# Sweep metrics that are not at any one cut: computed over every cut of the sweep at once
# (the console's summary tags them @sweep, the best-cut ones @best).
WHOLE_SWEEP = ("pxap",)
# What says which metric is which (see wsol.run.finalize), not metrics themselves.
META = ("cut", "metrics_at_cut", "metrics_over_sweep")


def format_value(value, key: str = "") -> str:
    """A metric value for people: ``-`` for None, floats to 4 decimals (cuts and rates
    to 3 significant digits), dicts as ``key: value`` pairs and lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if key.endswith("threshold") or key == "images_per_second":
            return f"{value:.3g}"
        if key in STAGE_KEYS:
            return f"{value:.1f} s"
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_value(v, str(k))}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v, key) for v in value) or "none"
    return str(value)


def _row(name: str, value, extra: str | None = None) -> str:
    # A number stays on one line; a list or dict of values wraps (a narrow window).
    kind = "num" if value is None or isinstance(value, int | float) else "text"
    text = html.escape(format_value(value, name))
    # A long name breaks after an underscore before it breaks anywhere else.
    head = html.escape(name).replace("_", "_<wbr>")
    cells = f"<th>{head}</th><td class='{kind}'>{text}</td>"
    if extra is not None:
        cells += f"<td class='num'>{html.escape(extra)}</td>"
    return f"<tr>{cells}<td class='why'>{html.escape(EXPLAIN.get(name, ''))}</td></tr>"


def _table(rows: list[str], head: Sequence[str]) -> str:
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(rows)
    return scrolling(
        f"<table class='metrics'><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"
    )


def scrolling(table: str) -> str:
    """``table`` in a box that scrolls sideways when the table is wider than the page
    (the page itself never does)."""
    return f"<div class='table-wrap'>{table}</div>"


def _best_cut(metrics: dict, name: str) -> str:
    if f"{name}_threshold" in metrics:
        return format_value(float(metrics[f"{name}_threshold"]), "threshold")
    if name == "maxboxacc_v2":
        return "each δ its own"
    return "-"


def metric_sections(metrics: dict, cut: str = "") -> list[tuple[str, str, str]]:
    """The metric tables as ``(title, note, table HTML)``, empty groups left out.

    The groups follow ``metrics["metrics_at_cut"]`` and ``metrics["metrics_over_sweep"]``
    (as :mod:`wsol.run.finalize` names them); counts and calibration are fixed lists, and
    any other metric lands in a last group."""
    at_cut = [k for k in metrics.get("metrics_at_cut", []) if k in metrics]
    swept = [k for k in metrics.get("metrics_over_sweep", []) if k in metrics]
    sweep = [k for k in swept if k not in WHOLE_SWEEP]
    whole = [k for k in swept if k in WHOLE_SWEEP]
    shown = set(swept) | set(at_cut) | set(COUNTS) | set(CALIBRATION) | set(META)
    shown |= {f"{k}_threshold" for k in sweep}
    other = [k for k in metrics if k not in shown]
    cut = cut or str(metrics.get("cut", ""))
    sections = []
    if at_cut:
        sections.append(
            (
                "At the shipped cut (@cut)",
                f"The boxes found at the run's cut: {cut}. They are scored before "
                "export.min_score and export.max_per_class trim the written files. The "
                "console's summary tags these columns @cut."
                if cut
                else "The console's summary tags these columns @cut.",
                _table([_row(k, metrics[k]) for k in at_cut], ("metric", "value", "meaning")),
            )
        )
    if sweep:
        rows = [_row(k, metrics[k], _best_cut(metrics, k)) for k in sweep]
        sections.append(
            (
                "Best cut of the sweep (@best)",
                "Each metric at the cut of the threshold sweep where it is highest: what the "
                "maps could give with a well-chosen cut, not what was shipped. The console's "
                "summary tags these columns @best.",
                _table(rows, ("metric", "value", "at cut", "meaning")),
            )
        )
    if whole:
        sections.append(
            (
                "Over the whole sweep (@sweep)",
                "Computed over every cut of the threshold sweep at once, not at one cut: "
                "PxAP is the area under the pixel precision-recall curve that the cuts "
                "trace, so no cut is shipped or best for it. The console's summary tags "
                "these columns @sweep.",
                _table([_row(k, metrics[k]) for k in whole], ("metric", "value", "meaning")),
            )
        )
    for title, keys in (("Counts", COUNTS), ("Calibration", CALIBRATION), ("Other", other)):
        rows = [_row(k, metrics[k]) for k in keys if k in metrics and k not in at_cut]
        if rows:
            sections.append((title, "", _table(rows, ("metric", "value", "meaning"))))
    return sections


def per_class_table(per_class: dict[str, dict]) -> str:
    """The per-class metrics (as ``metrics_per_class.json`` holds them) as an HTML table,
    one row per class that has a value, with a key to the columns below it."""
    rows = {
        name: row
        for name, row in per_class.items()
        if any(v is not None for k, v in row.items() if k != "pairs")
    }
    if not rows:
        return ""
    keys = {k for row in rows.values() for k in row}
    columns = [k for k in CLASS_COLUMNS if k in keys] + sorted(keys - set(CLASS_COLUMNS))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["class", *columns])
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(
            f"<td class='num'>{html.escape(format_value(row.get(c), c))}</td>" for c in columns
        )
        + "</tr>"
        for name, row in rows.items()
    )
    key = "; ".join(
        f"<b>{html.escape(c)}</b>: {html.escape(CLASS_COLUMNS[c])}"
        for c in columns
        if c in CLASS_COLUMNS
    )
    table = f"<table class='per-class'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"{scrolling(table)}<p class='note'>{key}.</p>"
