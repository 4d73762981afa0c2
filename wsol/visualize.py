"""Overlays (heatmap, predicted boxes, GT boxes) and the HTML report."""

from __future__ import annotations

import html
from pathlib import Path

import cv2
import numpy as np

from wsol.export import atomic_write_text

PRED_COLOR = (255, 64, 32)  # RGB
GT_COLOR = (40, 220, 60)
OVERLAY_SIDE = 360  # long side of an overlay picture, in pixels


def overlay(image: np.ndarray, heatmap: np.ndarray | None, pred_boxes: np.ndarray,
            gt_boxes: np.ndarray, label: str = "") -> np.ndarray:
    """RGB ``[H, W, 3]`` with a jet heatmap ``[H, W]`` in ``[0, 1]`` blended in, predicted
    boxes in red and GT boxes in green (all xyxy in ``image`` pixels)."""
    h, w = image.shape[:2]
    side = max(h, w)
    # Big images shrink to OVERLAY_SIDE; small ones grow to at least 256 px to be seen.
    scale = OVERLAY_SIDE / side if side > OVERLAY_SIDE else max(1.0, 256 / side)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.resize(image, size, interpolation=interp)
    if heatmap is not None:
        hm = cv2.resize(heatmap.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        color = cv2.applyColorMap((hm.clip(0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
        canvas = cv2.addWeighted(canvas, 0.55, cv2.cvtColor(color, cv2.COLOR_BGR2RGB), 0.45, 0)
    for boxes, col, thick in ((gt_boxes, GT_COLOR, 2), (pred_boxes, PRED_COLOR, 2)):
        for b in np.asarray(boxes).reshape(-1, 4) * scale:
            cv2.rectangle(canvas, (int(b[0]), int(b[1])), (int(np.ceil(b[2])) - 1,
                          int(np.ceil(b[3])) - 1), col, thick)
    if label:
        cv2.putText(canvas, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(canvas, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas


def save_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


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
        f"{html.escape(k)}</text>" for i, (k, _) in enumerate(series))
    axes = (f'<line x1="{pad}" y1="{height - pad}" x2="{plot_w}" y2="{height - pad}" '
            f'stroke="#444"/><line x1="{pad}" y1="8" x2="{pad}" y2="{height - pad}" stroke="#444"/>'
            f'<text x="{(pad + plot_w) / 2}" y="{height - 6}" font-size="11" '
            'text-anchor="middle">'
            "threshold (normalized map)</text>"
            f'<text x="4" y="{height - pad}" font-size="10">0</text>'
            f'<text x="4" y="14" font-size="10">1</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="box accuracy versus threshold">{axes}{"".join(lines)}'
            f"{legend}</svg>")


def write_report(out_dir: Path, title: str, metrics: dict, figures: list[tuple[str, str]],
                 curve: dict | None = None, config_text: str = "",
                 failures: list[dict] | None = None) -> Path:
    """Write ``report.html``: metrics table, threshold curve, overlay gallery, failures.

    ``figures`` are ``(relative PNG path, caption)`` pairs.
    """
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>" if isinstance(v, float)
        else f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in metrics.items())
    gallery = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>" for src, cap in figures)
    fails = ""
    if failures:
        items = "".join(f"<li><code>{html.escape(str(f.get('path')))}</code> "
                        f"({html.escape(f.get('stage', ''))}): {html.escape(f.get('reason', ''))}"
                        "</li>" for f in failures[:50])
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
