"""``leaderboard.html``: the candidates of a compare side by side, in one offline file.

Sections: the leaderboard table (sortable by any column with a few lines of inline
script; each value with its 95% bootstrap interval and a ``~`` where the paired test
finds no difference from the best row), the box accuracy-versus-threshold curves of
every candidate overlaid (one plot per IoU level, each candidate's chosen cut marked),
a candidates x classes table of MaxBoxAccV2, shaded, and the images where the two best
rows disagree most. Pictures are inlined as ``data:`` URIs; nothing is requested off
the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsol.compare.plots import PLOT_WIDTH, curves_section, row_label, row_style
from wsol.fileio import atomic_write_text
from wsol.report.embed import data_uri
from wsol.report.overlay import GT_COLOR, draw_boxes, fit

DASH = "–"  # a value that does not apply
LOWER_IS_BETTER = frozenset({"whole_image", "whole_image_boxes", "peak_mib", "cuda_peak_mib"})
PICTURE_SIDE = 360  # long side of a disagreement picture, in pixels (CSS pixels too)

CSS = f"""
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1400px;
  padding: 0 16px; color: #222; line-height: 1.4; }}
h1 {{ margin-bottom: 4px; overflow-wrap: anywhere; }}
h2 {{ margin-top: 32px; border-bottom: 1px solid #ccc; }}
nav a {{ margin-right: 14px; }} .note {{ color: #555; font-size: 13px; max-width: 1000px; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ padding: 3px 6px; border-bottom: 1px solid #e2e2e2; text-align: left;
  vertical-align: top; }}
thead th {{ background: #f3f3f3; vertical-align: bottom; }} thead th.num {{ text-align: right; }}
td.num {{ font-variant-numeric: tabular-nums; white-space: nowrap; text-align: right; }}
table.board th[data-col] {{ cursor: pointer; user-select: none; }}
table.board th[data-col]:hover {{ background: #e6e6e6; }}
table.board th[aria-sort="ascending"]::after {{ content: "\\00a0\\25B2"; color: #222; }}
table.board th[aria-sort="descending"]::after {{ content: "\\00a0\\25BC"; color: #222; }}
td.name {{ min-width: 190px; max-width: 320px; overflow-wrap: break-word; }}
tr.best td {{ background: #fff8e1; }}
.ci {{ display: block; color: #777; font-size: 11px; }}
.ns {{ color: #b35900; font-weight: bold; text-decoration: none; margin-left: 2px; }}
td.error {{ color: #a11; font-size: 13px; overflow-wrap: anywhere; }}
table.per-class th, table.per-class td {{ border-bottom: 1px solid #fff; }}
table.per-class thead th {{ font-weight: normal; font-size: 13px; }}
table.per-class .cand {{ position: sticky; left: 0; background: #fff; z-index: 1;
  white-space: nowrap; }}
table.per-class thead .cand {{ background: #f3f3f3; }}
.ramp {{ display: inline-block; width: 120px; height: 10px; vertical-align: middle;
  background: linear-gradient(to right, {{ramp}}); margin: 0 6px; }}
.legend {{ font-size: 13px; }}
.legend span.entry {{ display: inline-block; margin-right: 16px; }}
div.legend {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr));
  gap: 2px 16px; margin: 12px 0; }}
div.legend span.entry {{ margin: 0; padding-left: 34px; text-indent: -34px; }}
.legend svg {{ vertical-align: middle; margin-right: 4px; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.plots figure {{ flex: 1 1 540px; max-width: {PLOT_WIDTH}px; min-width: 0; }}
.plots figure svg {{ width: 100%; height: auto; display: block; }}
.gallery {{ display: grid; grid-template-columns: repeat(auto-fill, {PICTURE_SIDE}px);
  gap: 18px; }}
figure {{ margin: 0; }}
.gallery figure {{ width: {PICTURE_SIDE}px; max-width: 100%; }}
.gallery img {{ display: block; max-width: 100%; height: auto; background: #1c1c1c;
  margin-bottom: 4px; }}
figcaption {{ font-size: 12.5px; overflow-wrap: anywhere; }}
.swatch {{ display: inline-block; width: 22px; height: 0; border-top: 3px solid;
  vertical-align: middle; margin: 0 6px 0 0; }}
"""

# Sorts the leaderboard by a column: numbers numerically, text by its lower case, cells
# without a value (not applicable, or a candidate that could not run) last either way;
# ties keep their order. window.sortLeaderboard(col, descending) returns the row numbers.
SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) { return; }
  var body = table.tBodies[0];
  function value(tr, col, type) {
    var td = tr.querySelector('td[data-col="' + col + '"]');
    var v = td ? td.getAttribute("data-v") : null;
    if (v === null || v === "") { return null; }
    if (type === "text") { return v.toLowerCase(); }
    var n = parseFloat(v);
    return isNaN(n) ? null : n;
  }
  function sortLeaderboard(col, descending) {
    var th = table.querySelector('th[data-col="' + col + '"]');
    if (!th) { throw new Error("no column " + col); }
    var type = th.getAttribute("data-type");
    var keyed = Array.prototype.map.call(body.rows, function (tr, i) {
      return [value(tr, col, type), i, tr];
    });
    keyed.sort(function (a, b) {
      if (a[0] === null || b[0] === null) {
        return (a[0] === null) - (b[0] === null) || a[1] - b[1];
      }
      if (a[0] !== b[0]) { return (a[0] < b[0]) === descending ? 1 : -1; }
      return a[1] - b[1];
    });
    keyed.forEach(function (k) { body.appendChild(k[2]); });
    table.querySelectorAll("th[aria-sort]").forEach(function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    return keyed.map(function (k) { return Number(k[2].getAttribute("data-row")); });
  }
  window.sortLeaderboard = sortLeaderboard;
  table.querySelectorAll("th[data-col]").forEach(function (th) {
    function toggle() {
      var now = th.getAttribute("aria-sort");
      var descending = now ? now === "ascending" : th.getAttribute("data-first") === "descending";
      sortLeaderboard(th.getAttribute("data-col"), descending);
    }
    th.addEventListener("click", toggle);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
  });
})();
"""


def fmt_value(key: str, value) -> str:
    """A metric as shown: 3 decimals, ``img_per_s`` 1, ``peak_mib`` and ``cuda_peak_mib``
    none; ``–`` for None or a non-finite number."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return str(value)
    if not math.isfinite(float(value)):
        return DASH
    if key == "img_per_s":
        return f"{float(value):.1f}"
    if key in ("peak_mib", "cuda_peak_mib"):
        return f"{round(float(value)):d}"
    return f"{float(value):.3f}"


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def shade(value: float) -> str:
    """The inline style of a per-class cell: the higher ``value`` (in ``[0, 1]``), the
    darker its blue background; white text on the dark ones."""
    v = float(np.clip(value, 0.0, 1.0))
    light = 97 - 55 * v
    text = "#fff" if light < 62 else "#222"
    return f"background: hsl(210, 65%, {light:.0f}%); color: {text}"


def _best_row(rows: Sequence[dict]) -> int | None:
    return next((int(r["row"]) for r in rows if not r.get("error")), None)


def _board(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    best = _best_row(rows)
    head = [
        '<th data-col="row" data-type="num" data-first="ascending" tabindex="0">#</th>',
        '<th data-col="name" data-type="text" data-first="ascending" tabindex="0">candidate</th>',
    ]
    for key, title in columns:
        first = "ascending" if key in LOWER_IS_BETTER else "descending"
        head.append(
            f'<th class="num" data-col="{html.escape(key)}" data-type="num" data-first="{first}" '
            f'tabindex="0">{html.escape(title)}</th>'
        )
    body = []
    for r in rows:
        n = int(r["row"])
        settings = "\n".join(f"{k} = {v}" for k, v in (r.get("settings") or {}).items())
        cells = [
            f'<td class="num" data-col="row" data-v="{n}">{row_label(n)}</td>',
            f'<td class="name" data-col="name" data-v="{html.escape(str(r.get("name", "")))}" '
            f'title="{html.escape(settings)}">{html.escape(str(r.get("name", "")))}</td>',
        ]
        if r.get("error"):
            cells.append(
                f'<td class="error" colspan="{len(columns)}">could not run: '
                f"{html.escape(str(r['error']))}</td>"
            )
        else:
            cells += [_metric_cell(r, key, best) for key, _ in columns]
        cls = ' class="best"' if n == best else ""
        body.append(f'<tr data-row="{n}"{cls}>{"".join(cells)}</tr>')
    return (
        '<div class="scroll"><table class="board" id="board">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _metric_cell(r: dict, key: str, best: int | None) -> str:
    value = r.get(key)
    shown = fmt_value(key, value)
    if shown == DASH:
        return f'<td class="num na" data-col="{html.escape(key)}" data-v="">{DASH}</td>'
    tips, extra = [], ""
    ci = (r.get("ci") or {}).get(key)
    if ci is not None and len(ci) == 2 and None not in ci:
        lo, hi = fmt_value(key, ci[0]), fmt_value(key, ci[1])
        extra += f'<span class="ci">{lo}–{hi}</span>'
        tips.append(f"95% bootstrap interval {lo}–{hi}")
    if (r.get("significant") or {}).get(key) is False:
        what = f"not significantly different from row {row_label(best)}" if best else ""
        shown += f'<abbr class="ns" title="{what}">~</abbr>'
        tips.append(what)
    title = f' title="{html.escape("; ".join(tips))}"' if tips else ""
    return (
        f'<td class="num" data-col="{html.escape(key)}" data-v="{float(value)!r}"{title}>'
        f"{shown}{extra}</td>"
    )


def _per_class(rows: Sequence[dict], per_class: dict[int, dict[str, float]]) -> str:
    classes: list[str] = []
    for values in per_class.values():
        classes += [c for c in values if c not in classes]
    if not classes:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    body = []
    for r in rows:
        n = int(r["row"])
        if n not in per_class:
            continue
        cells = []
        for c in classes:
            v = per_class[n].get(c)
            if v is None or not math.isfinite(float(v)):
                cells.append(f'<td class="num na">{DASH}</td>')
            else:
                cells.append(
                    f'<td class="num shade" data-v="{float(v)!r}" style="{shade(v)}">'
                    f"{float(v):.3f}</td>"
                )
        name = html.escape(str(r.get("name", "")))
        body.append(
            f'<tr data-row="{n}"><th class="cand" title="{name}">{row_label(n)}</th>'
            f"{''.join(cells)}</tr>"
        )
    return (
        '<p class="note">MaxBoxAccV2 of each candidate on the report side\'s pairs of each '
        f'class: 0<span class="ramp"></span>1. Hover a row number for its candidate.</p>'
        '<div class="scroll"><table class="per-class">'
        f'<thead><tr><th class="cand">#</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _disagreements(rows: Sequence[dict], items: Sequence[dict]) -> str:
    index = {int(r["row"]): i for i, r in enumerate(rows)}
    shown = [int(n) for d in items for n in d.get("boxes", {})]
    pair = sorted(set(shown), key=lambda n: index.get(n, len(rows)))
    gt = f"rgb{tuple(GT_COLOR)}"
    legend = f"<span class='entry'><span class='swatch' style='border-color: {gt}'></span>GT</span>"
    for n in pair:
        color = row_style(index.get(n, 0))[0]
        name = html.escape(str(rows[index[n]].get("name", ""))) if n in index else ""
        legend += (
            f"<span class='entry'><span class='swatch' style='border-color: {color}'></span>"
            f"<b>{row_label(n)}</b> {name}</span>"
        )
    figures = []
    for d in items:
        canvas, scale = fit(np.ascontiguousarray(d["image"]))
        draw_boxes(
            canvas, np.asarray(d.get("gt") or [], np.float64).reshape(-1, 4) * scale, GT_COLOR
        )
        boxes = {int(n): b for n, b in d.get("boxes", {}).items()}
        for k, n in enumerate(pair):  # the best row's boxes widest, underneath
            if n in boxes:
                color = _hex_rgb(row_style(index.get(n, 0))[0])
                b = np.asarray(boxes[n] or [], np.float64).reshape(-1, 4) * scale
                draw_boxes(canvas, b, color, thickness=2 + len(pair) - 1 - k)
        ious = {int(n): v for n, v in (d.get("iou") or {}).items()}
        caption = " · ".join(
            f"row {row_label(n)} IoU {fmt_value('iou', ious.get(n))}" for n in pair if n in ious
        )
        path = html.escape(str(d.get("path", "")))
        h, w = canvas.shape[:2]
        figures.append(
            f'<figure><img src="{data_uri(canvas)}" width="{w}" height="{h}" '
            f'alt="{path}: GT and the boxes of rows {", ".join(map(row_label, pair))}">'
            f"<figcaption><b>{path}</b><br>{html.escape(caption)}</figcaption></figure>"
        )
    return (
        f'<p class="legend">{legend}</p><p class="note">The report images where the two best '
        "rows' boxes differ most. Each row's IoU: over the image's GT classes, the mean of the "
        "best IoU of its boxes of the class with a GT box of the class.</p>"
        f'<div class="gallery">{"".join(figures)}</div>'
    )


def render_leaderboard(
    title: str,
    rows: list[dict],
    columns: list[tuple[str, str]],
    curves: dict[int, dict],
    per_class: dict[int, dict[str, float]],
    disagreements: list[dict],
    notes: Sequence[str] = (),
) -> str:
    """The HTML of ``leaderboard.html``.

    ``rows`` in leaderboard order, best first: ``row`` (int), ``name``, ``settings``
    (dotted key -> value), ``error`` (None, or why the candidate could not run), each
    ``columns`` key (float or None), ``ci`` (key -> ``[lo, hi]``, the 95% bootstrap
    interval) and ``significant`` (key -> whether the difference from the best row
    holds up); ``columns``: ``(key, header)`` in order; ``curves``: row ->
    ``{"thresholds": [T], "levels": {"30": [T], ...}, "cut": float | None}``;
    ``per_class``: row -> class -> MaxBoxAccV2; ``disagreements``: ``{"path", "image"
    (RGB uint8 [H, W, 3]), "gt" (xyxy [N, 4]), "boxes" (row -> xyxy [M, 4]), "iou" (row
    -> float)}`` in original-image pixels; ``notes``: paragraphs under the title."""
    rows = list(rows)
    curves = {int(k): v for k, v in (curves or {}).items()}
    per_class = {int(k): v for k, v in (per_class or {}).items()}
    best = _best_row(rows)
    sections = [("leaderboard", "Leaderboard")]
    legend = (
        f"Rows in leaderboard order (best first; the best, row {row_label(best)}, "
        "highlighted). Click a header to sort by it. Under each value: its 95% bootstrap "
        "interval over the report images. "
        f'<abbr class="ns">~</abbr>: the difference from row {row_label(best)} does not hold '
        f"up under the paired test (the candidates are scored on the same images). {DASH}: "
        "not applicable. Hover a candidate for its settings."
        if best is not None
        else "No candidate could run."
    )
    body = [
        f"<h2 id='leaderboard'>Leaderboard ({len(rows)})</h2>",
        f"<p class='note'>{legend}</p>",
        _board(rows, columns),
    ]
    plots = curves_section(rows, curves)
    if plots:
        sections.append(("curves", "Curves"))
        body.append(f"<h2 id='curves'>Box accuracy vs threshold</h2>{plots}")
    classes = _per_class(rows, per_class)
    if classes:
        sections.append(("per-class", "Per class"))
        body.append(f"<h2 id='per-class'>MaxBoxAccV2 per class</h2>{classes}")
    if disagreements:
        sections.append(("disagreements", "Disagreements"))
        body.append(
            f"<h2 id='disagreements'>Where the two best rows disagree ({len(disagreements)})"
            f"</h2>{_disagreements(rows, disagreements)}"
        )
    nav = "".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in sections)
    paragraphs = "".join(f"<p class='note'>{html.escape(p)}</p>" for p in notes)
    ramp = ", ".join(shade(v).split(";")[0].split(": ")[1] for v in (0.0, 0.5, 1.0))
    css = CSS.replace("{ramp}", ramp)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{css}</style></head><body>
<h1>{html.escape(title)}</h1>
{paragraphs}
<nav>{nav}</nav>
{"".join(body)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_leaderboard(
    out_dir: Path,
    title: str,
    rows: list[dict],
    columns: list[tuple[str, str]],
    curves: dict[int, dict],
    per_class: dict[int, dict[str, float]],
    disagreements: list[dict],
    notes: Sequence[str] = (),
) -> Path:
    """Write ``out_dir/leaderboard.html`` atomically (see :func:`render_leaderboard`);
    returns its path."""
    path = Path(out_dir) / "leaderboard.html"
    page = render_leaderboard(title, rows, columns, curves, per_class, disagreements, notes)
    atomic_write_text(path, page)
    return path
