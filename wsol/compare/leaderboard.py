"""The leaderboard of a compare: one row per candidate, best first, as ``compare.json``,
``leaderboard.md`` (a GitHub table), ``leaderboard.csv`` and ``leaderboard.html``.

A row's numbers are its report run's ``metrics.json``; its intervals are 95% bootstrap
intervals over the report images, and ``significant`` says, per metric, whether its
difference from the best row holds up under the paired bootstrap test (both scored on
the same images; :mod:`wsol.compare.stats`). The best row is the reference of those
tests (``reference: true``, no ``significant`` of its own).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from wsol.fileio import atomic_write_json, atomic_write_text

# (key, header): the leaderboard's metric columns, in order
COLUMNS = [
    ("maxboxacc", "MaxBoxAcc"),
    ("maxboxacc_v2", "MaxBoxAccV2"),
    ("maxboxacc_v2_iou30", "V2@30"),
    ("maxboxacc_v2_iou50", "V2@50"),
    ("maxboxacc_v2_iou70", "V2@70"),
    ("pxap", "PxAP"),
    ("corloc", "CorLoc"),
    ("gt_known_loc", "GT-known"),
    ("top1_loc", "Top-1 Loc"),
    ("coco_ap", "COCO AP"),
    ("whole_image_boxes", "whole-image boxes"),
    ("cut", "cut"),
    ("img_per_s", "img/s"),
    ("peak_mib", "peak MiB"),
    ("cuda_peak_mib", "CUDA peak MiB"),
]
# the metrics with intervals and paired tests (computed from per_image.npz)
STAT_METRICS = (
    "maxboxacc",
    "maxboxacc_v2",
    "maxboxacc_v2_iou30",
    "maxboxacc_v2_iou50",
    "maxboxacc_v2_iou70",
    "pxap",
    "corloc",
    "gt_known_loc",
    "top1_loc",
)
RANKABLE = (*STAT_METRICS, "coco_ap")
METRIC_KEYS = [k for k, _ in COLUMNS if k not in ("cut", "img_per_s", "peak_mib", "cuda_peak_mib")]
LEADERBOARD_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.html")


def _max(*values):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def base_row(entry: dict) -> dict:
    """A compare.json candidate entry as a leaderboard row, without the statistics."""
    row = {
        "row": entry["row"],
        "name": entry["name"],
        "settings": entry["settings"],
        "error": entry.get("error"),
    }
    sel, rep = entry.get("select") or {}, entry.get("report") or {}
    metrics = rep.get("metrics") or {}
    ok = not row["error"] and bool(rep)
    for key in METRIC_KEYS:
        row[key] = metrics.get(key) if ok else None
    row["cut"] = sel.get("threshold") if ok else None
    row["img_per_s"] = metrics.get("images_per_second") if ok else None
    row["peak_mib"] = _max(sel.get("peak_mib"), rep.get("peak_mib")) if ok else None
    row["cuda_peak_mib"] = _max(sel.get("cuda_peak_mib"), rep.get("cuda_peak_mib")) if ok else None
    row["num_images"] = metrics.get("num_images")
    row["seconds"] = round((sel.get("seconds") or 0) + (rep.get("seconds") or 0), 1)
    row["report_run"] = rep.get("out")
    row["ci"], row["significant"] = {}, {}
    return row


def _per_image(row: dict):
    from wsol.evaluate.per_image import PER_IMAGE_FILE, load_per_image

    path = Path(row["report_run"] or "") / PER_IMAGE_FILE
    return load_per_image(path) if row["report_run"] and path.is_file() else None


def build_rows(
    entries: list[dict], rank_by: str = "maxboxacc_v2", resamples: int = 1000, seed: int = 0
) -> list[dict]:
    """The leaderboard: the rows that ran, best first by ``rank_by`` (ties: the earlier
    candidate), then the rows that could not run, each with ``ci`` and ``significant``
    (and ``paired``: the paired tests' differences and their intervals)."""
    from wsol.compare.stats import bootstrap_ci, paired_test

    rows = [base_row(e) for e in entries]
    ran = [not e.get("error") and bool(e.get("report")) for e in entries]
    ok = [r for r, done in zip(rows, ran, strict=True) if done]
    failed = [r for r, done in zip(rows, ran, strict=True) if not done]

    def key(r: dict):
        v = r.get(rank_by)
        return (v is None or not math.isfinite(v), -(v or 0.0), r["row"])

    ok.sort(key=key)
    per_image = {r["row"]: _per_image(r) for r in ok}
    for r in ok:
        if per_image[r["row"]] is not None:
            r["ci"] = bootstrap_ci(per_image[r["row"]], STAT_METRICS, resamples, seed)
    if ok and per_image[ok[0]["row"]] is not None:
        best = ok[0]
        best["reference"] = True
        for r in ok[1:]:
            if per_image[r["row"]] is None:
                continue
            try:
                test = paired_test(
                    per_image[best["row"]], per_image[r["row"]], STAT_METRICS, resamples, seed
                )
            except ValueError as e:
                r["paired_error"] = str(e)
                continue
            r["significant"] = {k: v["significant"] for k, v in test.items()}
            r["paired"] = {k: {"diff": -v["diff"], "ci": _neg(v["ci"])} for k, v in test.items()}
    return ok + failed


def _neg(ci: list[float]) -> list[float]:
    """The interval of ``b - a`` from that of ``a - b``."""
    return [-ci[1], -ci[0]]


def shown_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """The columns some row has a value in."""
    return [(k, t) for k, t in COLUMNS if any(r.get(k) is not None for r in rows)]


def _fmt(key: str, v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if key == "img_per_s":
        return f"{v:.1f}"
    if key in ("peak_mib", "cuda_peak_mib"):
        return f"{round(v):d}"
    if key == "cut":
        return f"{v:.2f}"
    return f"{v:.3f}"


def render_markdown(rows: list[dict], title: str, notes: list[str]) -> str:
    """``leaderboard.md``: a GitHub table, best first, each metric with its 95% interval
    ``[lo, hi]`` and ``*`` where the paired test finds it differs from the best row."""
    cols = shown_columns(rows)
    best = next((r["row"] for r in rows if r.get("reference")), None)
    head = ["#", "candidate", *(t for _, t in cols)]
    lines = [f"# {title}", ""]
    lines += [*(f"{n}\n" for n in notes)]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---:", ":---", *("---:" for _ in cols)]) + "|")
    for r in rows:
        name = r["name"].replace("|", "\\|") + (" (reference)" if r["row"] == best else "")
        if r["error"]:
            cells = [f"could not run: {r['error']}".replace("|", "\\|")] + [""] * (len(cols) - 1)
        else:
            cells = []
            for k, _ in cols:
                text = _fmt(k, r.get(k))
                ci = r["ci"].get(k)
                if ci is not None:
                    text += f" [{_fmt(k, ci[0])}, {_fmt(k, ci[1])}]"
                if r["significant"].get(k):
                    text += " *"
                cells.append(text)
        lines.append(f"| {r['row']:03d} | {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if best is not None:
        lines.append(
            f"`[lo, hi]`: 95% bootstrap interval over the report images. `*`: differs from "
            f"the reference row {best:03d} (the best) under the paired bootstrap test; a "
            "value without `*` does not. `cut`: the global threshold chosen on the select "
            "side. `peak MiB`: the process's peak resident memory while the row ran."
        )
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict]) -> str:
    """``leaderboard.csv``: one line per row, each metric with ``_lo``/``_hi`` interval
    columns and a ``_significant`` column (empty for the reference row)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = [k for k, _ in COLUMNS]
    header = ["rank", "row", "candidate", "settings", "error", "reference"]
    for k in keys:
        header.append(k)
        if k in STAT_METRICS:
            header += [f"{k}_lo", f"{k}_hi", f"{k}_significant"]
    header += ["num_images", "seconds"]
    w.writerow(header)
    for rank, r in enumerate(rows, 1):
        line = [
            rank if not r["error"] else "",
            r["row"],
            r["name"],
            json.dumps(r["settings"]),
            r["error"] or "",
            "true" if r.get("reference") else "",
        ]
        for k in keys:
            line.append("" if r.get(k) is None else r[k])
            if k in STAT_METRICS:
                ci = r["ci"].get(k) or ["", ""]
                sig = r["significant"].get(k)
                line += [ci[0], ci[1], "" if sig is None else str(sig).lower()]
        line += [r.get("num_images") or "", r.get("seconds") or ""]
        w.writerow(line)
    return buf.getvalue()


def write_outputs(
    out: Path, state: dict, entries: list[dict], rank_by: str, resamples: int, seed: int
) -> tuple[list[dict], list[Path]]:
    """Write ``compare.json`` (with the leaderboard) and the leaderboard files; return
    the rows and the files' paths."""
    from wsol.compare.figures import curves, disagreements, per_class
    from wsol.compare.page import write_leaderboard

    out = Path(out)
    rows = build_rows(entries, rank_by, resamples, seed)
    title, notes = describe(state, rows, rank_by, resamples, seed)
    atomic_write_json(
        out / "compare.json",
        {
            **state,
            "candidates": entries,
            "rank_by": rank_by,
            "resamples": resamples,
            "seed": seed,
            "leaderboard": rows,
        },
    )
    atomic_write_text(out / "leaderboard.md", render_markdown(rows, title, notes))
    atomic_write_text(out / "leaderboard.csv", render_csv(rows))
    ok = [r for r in rows if not r["error"]]
    write_leaderboard(
        out,
        title,
        rows,
        shown_columns(rows),
        curves(ok),
        per_class(ok),
        disagreements(ok[:2]) if len(ok) >= 2 else [],
        notes,
    )
    return rows, [out / "compare.json", *(out / f for f in LEADERBOARD_FILES)]


def _side(overrides) -> str:
    items = (
        overrides.items()
        if isinstance(overrides, dict)
        else [tuple(o.split("=", 1)) for o in overrides]
    )
    return ", ".join(f"{k}={v}" for k, v in items) or "the base config"


def describe(state: dict, rows: list[dict], rank_by: str, resamples: int, seed: int):
    """The leaderboard's title and the notes under it."""
    base = state["base"]
    title = f"wsol compare: {len(rows)} candidates of {base['model']['arch'] or 'the model'}"
    ran = [r for r in rows if not r["error"]]
    n = ran[0].get("num_images") if ran else None
    notes = [
        f"Select side ({_side(state['select'])}): each candidate's global cut maximizes "
        f"{state['metric']} there.",
        f"Report side ({_side(state['report'])}{f', {n} images' if n else ''}): the numbers. "
        "The two sides share no image (checked by file content).",
        f"Ranked by {rank_by} on the report side. Intervals: 95% percentile bootstrap over "
        f"the report images, {resamples:,} resamples, seed {seed}; each row is tested "
        "against the best one, paired on the same images.",
    ]
    return title, notes
