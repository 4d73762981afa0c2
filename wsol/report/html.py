"""``report.html``: one self-contained file (pictures inlined, no script, no link out).

Sections: the metric tables (at the shipped cut, at the sweep's best cut, counts), the
per-class table, the threshold plot, the gallery (best, worst and random images), the
failures and the resolved config.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from wsol.fileio import atomic_write_text
from wsol.report.curve import best_cuts, curve_svg
from wsol.report.gallery import TILE_SIDE, Tile
from wsol.report.overlay import GT_COLOR, PRED_COLOR
from wsol.report.tables import metric_sections, per_class_table

GROUP_NOTES = {
    "best": "the images whose predicted boxes overlap their GT boxes most (the mean, over "
    "the image's GT classes, of the best IoU of a predicted box of the class)",
    "worst": "the images whose predicted boxes overlap their GT boxes least",
    "random": "drawn at random among the processed images (seeded by the config's seed)",
    "highest box score": "the images with the highest top box score",
    "lowest box score": "the images with the lowest top box score",
}
MAX_FAILURES = 50

CSS = f"""
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1400px;
  padding: 0 16px; color: #222; line-height: 1.4; }}
h1 {{ margin-bottom: 4px; }} h2 {{ margin-top: 32px; border-bottom: 1px solid #ccc; }}
h3 {{ margin: 18px 0 6px; }}
nav a {{ margin-right: 14px; }} .note {{ color: #555; font-size: 13px; max-width: 1000px; }}
.table-wrap {{ max-width: 100%; overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ padding: 3px 10px; border-bottom: 1px solid #e2e2e2; text-align: left;
  vertical-align: top; }}
thead th {{ background: #f3f3f3; white-space: nowrap; }}
td.num {{ font-variant-numeric: tabular-nums; white-space: nowrap; }}
tbody th {{ overflow-wrap: anywhere; min-width: 10em; }}
td.text {{ overflow-wrap: anywhere; min-width: 8em; }}
td.why {{ color: #555; font-size: 13px; max-width: 640px; min-width: 14em; }}
li {{ overflow-wrap: anywhere; }} svg {{ max-width: 100%; height: auto; }}
table.per-class td.num {{ text-align: right; }}
.legend {{ font-size: 14px; }} .swatch {{ display: inline-block; width: 22px; height: 0;
  border-top: 3px solid; vertical-align: middle; margin: 0 6px 0 14px; }}
.gallery {{ display: grid; grid-template-columns: repeat(auto-fill, {TILE_SIDE}px);
  gap: 18px; }}
figure {{ margin: 0; width: {TILE_SIDE}px; }}
figure img {{ display: block; width: {TILE_SIDE}px; height: {TILE_SIDE}px;
  object-fit: contain; background: #1c1c1c; margin-bottom: 4px; }}
figcaption {{ font-size: 12.5px; overflow-wrap: anywhere; }}
figcaption b {{ font-size: 13px; }} figcaption .group {{ color: #555; }}
pre {{ background: #f5f5f5; padding: 8px; font-size: 12.5px; overflow-x: auto; }}
.warn {{ color: #a40000; font-weight: 600; max-width: 1000px; }}
"""


def _figure(tile: Tile) -> str:
    imgs = "".join(
        f'<img src="{src}" alt="{html.escape(alt)}" width="{TILE_SIDE}" height="{TILE_SIDE}">'
        for src, alt in tile.pictures
    )
    group, *lines = tile.lines or [tile.group]
    caption = f"<b>{html.escape(tile.title)}</b><br><span class='group'>{html.escape(group)}</span>"
    caption += "".join(f"<br>{html.escape(line)}" for line in lines)
    return f"<figure>{imgs}<figcaption>{caption}</figcaption></figure>"


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def gallery_html(tiles: Sequence[Tile], show_gt: bool = True) -> str:
    """The legend and one grid of tiles per group, in the order the groups come."""
    swatch = "<span class='swatch' style='border-color: rgb{}'></span>{}"
    legend = swatch.format(PRED_COLOR, "predicted box (tag: class, box score)")
    if show_gt:
        legend += swatch.format(GT_COLOR, "ground truth")
    legend += (
        "<span style='margin-left: 14px'>heatmap: the maximum of the image's class maps, "
        "blue low, red high</span>"
    )
    groups: dict[str, list[Tile]] = {}
    for t in tiles:
        groups.setdefault(t.group, []).append(t)
    parts = [f"<p class='legend'>{legend}</p>"]
    for name, members in groups.items():
        note = GROUP_NOTES.get(name)
        parts.append(f"<h3>{html.escape(_first_up(name))} ({len(members)})</h3>")
        if note:
            parts.append(f"<p class='note'>{html.escape(_first_up(note))}.</p>")
        parts.append(f"<div class='gallery'>{''.join(_figure(t) for t in members)}</div>")
    return "".join(parts)


def _failures(failures: Sequence[dict]) -> str:
    items = "".join(
        f"<li><code>{html.escape(str(f.get('path')))}</code> "
        f"({html.escape(str(f.get('stage', '')))}): {html.escape(str(f.get('reason', '')))}</li>"
        for f in failures[:MAX_FAILURES]
    )
    more = len(failures) - MAX_FAILURES
    tail = f"<p class='note'>... and {more} more in failures.jsonl.</p>" if more > 0 else ""
    return f"<h2 id='failures'>Failures ({len(failures)})</h2><ul>{items}</ul>{tail}"


def render_report(
    title: str,
    metrics: dict,
    tiles: Sequence[Tile],
    curve: dict | None = None,
    config_text: str = "",
    failures: Sequence[dict] | None = None,
    per_class: dict[str, dict] | None = None,
    shipped: tuple[float, float] | None = None,
    cut_note: str = "",
    show_gt: bool = True,
) -> str:
    """The report's HTML.

    ``metrics`` as ``metrics.json`` holds them (with ``cut``, ``metrics_at_cut`` and
    ``metrics_over_sweep``); ``tiles`` from :func:`wsol.report.gallery.render_gallery`;
    ``curve`` from :meth:`wsol.evaluate.MaxBoxAcc.curve`; ``shipped`` and ``cut_note``
    from :func:`wsol.report.curve.operating_cut`; ``show_gt``: the dataset has boxes.
    """
    sections = [("metrics", "Metrics")]
    body = []
    for sub, note, table in metric_sections(metrics):
        body.append(f"<h3>{html.escape(sub)}</h3>")
        if note:
            body.append(f"<p class='note'>{html.escape(note)}</p>")
        body.append(table)
    classes = per_class_table(per_class or {})
    if classes:
        sections.append(("per-class", "Per class"))
        body.append(f"<h2 id='per-class'>Per class</h2>{classes}")
    if curve and curve.get("thresholds"):
        sections.append(("curve", "Box accuracy vs threshold"))
        best = best_cuts(curve, metrics)
        parts = ["Each curve is the share of (image, class) pairs localized at each cut."]
        if cut_note:
            parts.append(cut_note if cut_note.endswith(".") else f"Shipped: {cut_note}.")
        if best:
            head = next(iter(best))
            parts.append(
                f"The red dotted line is the best {head} cut; dots mark each curve's best."
            )
        body.append(
            "<h2 id='curve'>Box accuracy vs threshold</h2>"
            f"{curve_svg(curve, shipped, best)}"
            f"<p class='note'>{html.escape(' '.join(parts))}</p>"
        )
    if tiles:
        sections.append(("gallery", "Images"))
        body.append(f"<h2 id='gallery'>Images ({len(tiles)})</h2>{gallery_html(tiles, show_gt)}")
    if failures:
        sections.append(("failures", "Failures"))
        body.append(_failures(failures))
    if config_text:
        sections.append(("config", "Config"))
        body.append(f"<h2 id='config'>Resolved config</h2><pre>{html.escape(config_text)}</pre>")
    nav = "".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in sections)
    summary = f"{metrics.get('num_images', 0)} images, {metrics.get('num_failed', 0)} failed" + (
        f"; cut: {metrics['cut']}" if metrics.get("cut") else ""
    )
    warning = (
        f"<p class='warn'>Warning: {html.escape(metrics['export_warning'])}.</p>\n"
        if metrics.get("export_warning")
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(summary)}</p>
{warning}<nav>{nav}</nav>
<h2 id="metrics">Metrics</h2>
{"".join(body)}
</body></html>
"""


def write_report(out_dir: Path, title: str, metrics: dict, tiles: Sequence[Tile], **kw) -> Path:
    """Write ``out_dir/report.html`` (see :func:`render_report` for the arguments)."""
    path = Path(out_dir) / "report.html"
    atomic_write_text(path, render_report(title, metrics, tiles, **kw))
    return path
