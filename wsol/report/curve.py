"""The threshold plot of ``report.html``: box accuracy against the cut, as inline SVG.

Both axes carry tick values. Each series has its own colour, dash pattern and width, and
wider lines are drawn first, so two equal curves both stay visible. The run's own cut
(when it is one value on the normalized axis) and the sweep's best cut are vertical
lines with labels; every series' best point is a dot.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

# (colour, width, dash pattern) per series, widest first; unknown series take STYLE_ANY.
STYLES = {
    "maxboxacc": ("#d62728", 4.0, ""),
    "maxboxacc_v2_iou30": ("#1f77b4", 2.2, "7 4"),
    "maxboxacc_v2_iou50": ("#2ca02c", 2.2, "2 3"),
    "maxboxacc_v2_iou70": ("#ff7f0e", 2.2, "10 3 2 3"),
    "corloc": ("#7f3fbf", 1.6, "14 4"),
}
STYLE_ANY = ("#555555", 1.4, "4 2")
SHIPPED_COLOR = "#111111"
BEST_COLOR = "#d62728"
# The plot's frame in SVG pixels.
WIDTH, HEIGHT = 900, 390
LEFT, RIGHT, TOP, BOTTOM = 58, 600, 54, 334


def operating_cut(
    mode: str, threshold: float, class_thresholds: Sequence[float] | None = None
) -> tuple[tuple[float, float] | None, str]:
    """Where the run's cut lies on the min-max normalized axis: ``((lo, hi), note)``,
    ``lo == hi`` for a single cut, or ``(None, note)`` when the cut is a different value
    for every map (``fraction`` and ``otsu`` modes). ``note`` says so in words."""
    if class_thresholds is not None and len(class_thresholds):
        lo, hi = float(min(class_thresholds)), float(max(class_thresholds))
        if lo == hi:
            return (lo, hi), f"calibrated cut {lo:g}"
        return (lo, hi), f"calibrated cuts, one per class, from {lo:g} to {hi:g} (shaded)"
    if mode == "absolute":
        return (float(threshold), float(threshold)), f"absolute cut {threshold:g}"
    if mode == "fraction":
        return None, (
            f"The run keeps the pixels above {threshold:g} of each map's maximum. On the "
            f"normalized axis that is (tau*max - min)/(max - min), a different value for each "
            f"map (exactly {threshold:g} where a map's minimum is 0), so it is not drawn."
        )
    return None, "The run cuts each map at its own Otsu threshold, so no single cut is drawn."


def best_cuts(curve: dict, metrics: dict) -> dict[str, float]:
    """Series name -> the sweep's best threshold for it: ``<name>_threshold`` of
    ``metrics`` where present, else the first threshold where the curve peaks."""
    ts = curve.get("thresholds") or []
    out = {}
    for name, values in curve.items():
        if name == "thresholds" or not values:
            continue
        t = metrics.get(f"{name}_threshold")
        out[name] = float(t) if t is not None else float(ts[int(np.argmax(values))])
    return out


def plot_x(t: float) -> float:
    """The SVG x of threshold ``t`` (clipped to ``[0, 1]``) in the plot's frame."""
    return LEFT + float(np.clip(t, 0.0, 1.0)) * (RIGHT - LEFT)


def plot_y(v: float) -> float:
    """The SVG y of value ``v`` (clipped to ``[0, 1]``) in the plot's frame."""
    return BOTTOM - float(np.clip(v, 0.0, 1.0)) * (BOTTOM - TOP)


def plot_points(thresholds: Sequence[float], values: Sequence[float]) -> str:
    """The ``points`` attribute of a polyline through ``(thresholds[i], values[i])``."""
    return " ".join(
        f"{plot_x(t):.1f},{plot_y(v):.1f}" for t, v in zip(thresholds, values, strict=True)
    )


def svg_text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", **attrs) -> str:
    """An SVG ``<text>`` of ``s`` (escaped); ``attrs`` become attributes (``font_weight``
    -> ``font-weight``, ``class_`` -> ``class``)."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{html.escape(s)}</text>"
    )


def axes_svg() -> list[str]:
    """The frame, grid lines, tick values (``xtick``, ``ytick``) and axis titles of a
    box accuracy-versus-threshold plot, as SVG elements."""
    out = []
    for i in range(6):
        v = i / 5
        x, y = plot_x(v), plot_y(v)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="#e4e4e4"/>'
            f'<line x1="{x:.1f}" y1="{BOTTOM}" x2="{x:.1f}" y2="{BOTTOM + 5}" stroke="#444"/>'
            f'<line x1="{LEFT - 5}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="#444"/>'
        )
        out.append(svg_text(x, BOTTOM + 18, f"{v:.1f}", anchor="middle", class_="xtick"))
        out.append(svg_text(LEFT - 8, y + 4, f"{v:.1f}", anchor="end", class_="ytick"))
    out.append(
        f'<polyline fill="none" stroke="#444" '
        f'points="{LEFT},{TOP} {LEFT},{BOTTOM} {RIGHT},{BOTTOM}"/>'
    )
    out.append(
        svg_text(
            (LEFT + RIGHT) / 2, HEIGHT - 14, "threshold on the min-max normalized map", 13, "middle"
        )
    )
    mid = (TOP + BOTTOM) / 2
    out.append(
        svg_text(
            14,
            mid,
            "share of (image, class) pairs",
            12,
            "middle",
            transform=f"rotate(-90 14 {mid})",
        )
    )
    return out


def _vline(t: float, color: str, dash: str, label: str, row: int, left: bool) -> list[str]:
    x = plot_x(t)
    width = 7.2 * len(label)  # about 12 px bold text; a label never leaves the picture
    left = x - width > 0 if left else x + width > WIDTH
    tx = x - 4 if left else x + 4
    return [
        f'<line class="cut" x1="{x:.1f}" y1="{12 + 17 * row}" x2="{x:.1f}" y2="{BOTTOM}" '
        f'stroke="{color}" '
        f'stroke-width="1.5" stroke-dasharray="{dash}"/>',
        svg_text(
            tx,
            16 + 17 * row,  # above the plot: the labels never cover a curve
            label,
            12,
            "end" if left else "start",
            fill=color,
            font_weight="bold",
            paint_order="stroke",
            stroke="#fff",
            stroke_width="3",
        ),
    ]


def curve_svg(
    curve: dict, shipped: tuple[float, float] | None = None, best: dict[str, float] | None = None
) -> str:
    """An SVG plot of the ``curve`` (``thresholds [T]`` and series ``[T]`` in ``[0, 1]``,
    as :meth:`wsol.evaluate.MaxBoxAcc.curve` gives).

    ``shipped`` is the run's cut range on the normalized axis (a line when ``lo == hi``,
    a shaded band otherwise; None draws nothing); ``best`` maps series to their best
    threshold (:func:`best_cuts`): each gets a dot, and the first a labelled line."""
    ts = curve.get("thresholds") or []
    if not ts:
        return ""
    series = [(k, v) for k, v in curve.items() if k != "thresholds" and v]
    series.sort(key=lambda kv: -STYLES.get(kv[0], STYLE_ANY)[1])  # widest underneath
    best = best or {}
    parts = axes_svg()
    if shipped is not None and shipped[1] > shipped[0]:
        x0, x1 = plot_x(shipped[0]), plot_x(shipped[1])
        parts.append(
            f'<rect class="cut" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
            f'height="{BOTTOM - TOP}" fill="#000" fill-opacity="0.08"/>'
        )
    for name, values in series:
        color, width, dash = STYLES.get(name, STYLE_ANY)
        points = plot_points(ts, values)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline class="series" data-name="{html.escape(name)}" fill="none" '
            f'stroke="{color}" stroke-width="{width}"{dash_attr} stroke-linejoin="round" '
            f'points="{points}"/>'
        )
    for name, values in series:
        if name in best:
            t = best[name]
            v = values[int(np.argmin(np.abs(np.asarray(ts) - t)))]
            color = STYLES.get(name, STYLE_ANY)[0]
            parts.append(
                f'<circle cx="{plot_x(t):.1f}" cy="{plot_y(v):.1f}" r="4" fill="{color}" '
                'stroke="#fff" stroke-width="1.2"/>'
            )
    # Labels sit on either side of their lines, so two close cuts stay readable.
    head = next(iter(best), None)
    ship_t = None if shipped is None else (shipped[0] + shipped[1]) / 2
    ship_left = head is not None and ship_t is not None and ship_t <= best[head]
    if shipped is not None and shipped[0] == shipped[1]:
        parts += _vline(ship_t, SHIPPED_COLOR, "5 3", f"shipped cut {shipped[0]:g}", 0, ship_left)
    elif shipped is not None:  # the band has no line: its label sits above its middle
        what = f"shipped cuts {shipped[0]:g}-{shipped[1]:g} (per class)"
        parts.append(
            svg_text(plot_x(ship_t), 16, what, 12, "middle", fill=SHIPPED_COLOR, font_weight="bold")
        )
    if head is not None:
        label = f"best {head} cut {best[head]:g}"
        parts += _vline(
            best[head], BEST_COLOR, "2 2", label, 1, not ship_left and ship_t is not None
        )
    parts += _legend(series, ts, best)
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="system-ui, sans-serif" '
        f'aria-label="box accuracy versus threshold">{"".join(parts)}</svg>'
    )


def _legend(series: list, ts: list, best: dict[str, float]) -> list[str]:
    out = []
    x = RIGHT + 28
    for i, (name, values) in enumerate(series):
        color, width, dash = STYLES.get(name, STYLE_ANY)
        y = TOP + 4 + 38 * i
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 34}" y2="{y}" stroke="{color}" '
            f'stroke-width="{width}"{dash_attr}/>'
        )
        out.append(svg_text(x + 42, y + 4, name, 13, fill=color, font_weight="bold"))
        if name in best:
            j = int(np.argmin(np.abs(np.asarray(ts) - best[name])))
            out.append(svg_text(x + 42, y + 20, f"best {values[j]:.3f} at {best[name]:g}", 12))
    return out
