"""The curves section of ``leaderboard.html``: every candidate's box accuracy versus
threshold overlaid, one SVG plot per IoU level in the report's plot frame, each
candidate's chosen cut a dot, and the legend that names the candidates' colours."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from wsol.report.curve import HEIGHT as PLOT_HEIGHT
from wsol.report.curve import LEFT, RIGHT, axes_svg, plot_points, plot_x, plot_y

# Candidate colours, in leaderboard order; green comes late, as GT boxes are green.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#d62728",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#ad494a",
    "#2ca02c",
)
DASHES = ("", "7 4", "2 3")  # past len(PALETTE) candidates, colours repeat with a dash
PLOT_WIDTH = RIGHT + 24  # the report's plot frame, without its legend column


def row_label(row: int) -> str:
    """A candidate's number as shown: ``3 -> "003"``."""
    return f"{int(row):03d}"


def row_style(index: int) -> tuple[str, str]:
    """``(colour, dash pattern)`` of the candidate at ``index`` in leaderboard order."""
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def _swatch(color: str, dash: str) -> str:
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" '
        f'stroke="{color}" stroke-width="2.5"{dash_attr}/></svg>'
    )


def legend_entries(rows: Sequence[dict], only: set[int] | None = None) -> str:
    out = []
    for i, r in enumerate(rows):
        n = int(r["row"])
        if only is not None and n not in only:
            continue
        color, dash = row_style(i)
        out.append(
            f'<span class="entry" data-row="{n}">{_swatch(color, dash)}'
            f"<b>{row_label(n)}</b> {html.escape(str(r.get('name', '')))}</span>"
        )
    return "".join(out)


def _level_svg(level: str, rows: Sequence[dict], curves: dict[int, dict]) -> str:
    parts = axes_svg()
    iou = int(level) / 100
    parts.append(
        f'<text x="{(LEFT + RIGHT) / 2:.1f}" y="30" font-size="15" font-weight="bold" '
        f'text-anchor="middle">box accuracy at IoU ≥ {iou:.1f}</text>'
    )
    lines, dots = [], []
    for i, r in reversed(list(enumerate(rows))):  # the best row is drawn last, on top
        n = int(r["row"])
        c = curves.get(n)
        values = (c or {}).get("levels", {}).get(level)
        ts = (c or {}).get("thresholds") or []
        if not values or len(values) != len(ts):
            continue
        color, dash = row_style(i)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        name = html.escape(f"{row_label(n)} {r.get('name', '')}")
        lines.append(
            f'<polyline class="series" data-row="{n}" fill="none" stroke="{color}" '
            f'stroke-width="2" stroke-linejoin="round"{dash_attr} '
            f'points="{plot_points(ts, values)}"><title>{name}</title></polyline>'
        )
        cut = c.get("cut")
        if cut is not None and math.isfinite(float(cut)):
            v = float(np.interp(float(cut), ts, values))
            dots.append(
                f'<circle class="cut" data-row="{n}" cx="{plot_x(float(cut)):.1f}" '
                f'cy="{plot_y(v):.1f}" r="5" fill="{color}" stroke="#fff" stroke-width="1.5">'
                f"<title>{name}: {v:.3f} at its cut {float(cut):g}</title></circle>"
            )
    return (
        f'<svg class="level" data-level="{html.escape(level)}" width="{PLOT_WIDTH}" '
        f'height="{PLOT_HEIGHT}" viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" role="img" '
        f'font-family="system-ui, sans-serif" aria-label="box accuracy versus threshold at '
        f'IoU {iou:.1f}">{"".join(parts + lines + dots)}</svg>'
    )


def curves_section(rows: Sequence[dict], curves: dict[int, dict]) -> str:
    levels = sorted({str(k) for c in curves.values() for k in (c.get("levels") or {})}, key=int)
    if not levels:
        return ""
    drawn = {int(n) for n, c in curves.items() if c.get("thresholds")}
    plots = "".join(f"<figure>{_level_svg(lv, rows, curves)}</figure>" for lv in levels)
    legend = legend_entries(rows, drawn)
    return (
        f'<div class="legend">{legend}</div>'
        '<p class="note">Each curve is the share of (image, class) pairs of the report side '
        "whose box has IoU at least the plot's level, at each cut of the min-max normalized "
        "map. A dot marks the cut each candidate chose on the select side. Hover a curve for "
        f'its candidate.</p><div class="plots">{plots}</div>'
    )
