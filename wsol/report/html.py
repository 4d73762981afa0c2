"""``report.html``: metrics, the threshold curve, the overlay gallery, failures, config."""

from __future__ import annotations

import html
from pathlib import Path

from wsol.fileio import atomic_write_text
from wsol.report.overlay import GT_COLOR, PRED_COLOR


def _curve_svg(curve: dict, width: int = 600, height: int = 240) -> str:
    ts = curve.get("thresholds") or []
    if not ts:
        return ""
    pad = 34
    plot_w = width - 190  # the legend sits to the right of the plot
    series = [(k, v) for k, v in curve.items() if k != "thresholds"]
    colors = ["#d33", "#36c", "#393", "#c80", "#888"]

    def pt(t, v):
        return f"{pad + t * (plot_w - pad):.1f},{height - pad - v * (height - pad - 8):.1f}"

    lines = [
        f'<polyline fill="none" stroke="{colors[i % 5]}" stroke-width="1.6" '
        f'points="{" ".join(pt(t, v) for t, v in zip(ts, vals, strict=True))}"/>'
        for i, (_, vals) in enumerate(series)
    ]
    legend = "".join(
        f'<text x="{plot_w + 12}" y="{18 + 15 * i}" font-size="12" fill="{colors[i % 5]}">'
        f"{html.escape(k)}</text>"
        for i, (k, _) in enumerate(series)
    )
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{plot_w}" y2="{height - pad}" '
        f'stroke="#444"/><line x1="{pad}" y1="8" x2="{pad}" y2="{height - pad}" stroke="#444"/>'
        f'<text x="{(pad + plot_w) / 2}" y="{height - 6}" font-size="11" '
        'text-anchor="middle">'
        "threshold (normalized map)</text>"
        f'<text x="4" y="{height - pad}" font-size="10">0</text>'
        f'<text x="4" y="14" font-size="10">1</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="box accuracy versus threshold">{axes}{"".join(lines)}'
        f"{legend}</svg>"
    )


def write_report(
    out_dir: Path,
    title: str,
    metrics: dict,
    figures: list[tuple[str, str]],
    curve: dict | None = None,
    config_text: str = "",
    failures: list[dict] | None = None,
) -> Path:
    """Write ``report.html``: metrics table, threshold curve, overlay gallery, failures.

    ``figures`` are ``(relative PNG path, caption)`` pairs.
    """
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>"
        if isinstance(v, float)
        else f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in metrics.items()
    )
    gallery = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for src, cap in figures
    )
    fails = ""
    if failures:
        items = "".join(
            f"<li><code>{html.escape(str(f.get('path')))}</code> "
            f"({html.escape(f.get('stage', ''))}): {html.escape(f.get('reason', ''))}"
            "</li>"
            for f in failures[:50]
        )
        fails = f"<h2>Failures ({len(failures)})</h2><ul>{items}</ul>"
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #ddd;
text-align: left; }} td {{ font-variant-numeric: tabular-nums; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; max-width: 360px; }}
.legend span {{ padding: 0 8px; }} pre {{ background: #f5f5f5; padding: 8px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Metrics</h2><table>{rows}</table>
{"<h2>Box accuracy vs threshold</h2>" + _curve_svg(curve) if curve else ""}
<h2>Samples</h2>
<p class="legend"><span style="color:rgb{PRED_COLOR}">&#9632; predicted box</span>
<span style="color:rgb{GT_COLOR}">&#9632; ground truth</span> heatmap: jet, red is high</p>
<div class="gallery">{gallery}</div>
{fails}
<h2>Resolved config</h2><pre>{html.escape(config_text)}</pre>
</body></html>
"""
    path = out_dir / "report.html"
    atomic_write_text(path, doc)
    return path
