"""What people look at: overlay pictures and ``report.html``, one self-contained file."""

from __future__ import annotations

from wsol.report.curve import best_cuts, curve_svg, operating_cut
from wsol.report.gallery import Tile, render_gallery
from wsol.report.html import render_report, write_report
from wsol.report.overlay import overlay, save_png
from wsol.report.picks import (
    GT_GROUPS,
    SCORE_GROUPS,
    Pick,
    image_quality,
    pick_images,
    top_scores,
)

__all__ = [
    "GT_GROUPS",
    "SCORE_GROUPS",
    "Pick",
    "Tile",
    "best_cuts",
    "curve_svg",
    "image_quality",
    "operating_cut",
    "overlay",
    "pick_images",
    "render_gallery",
    "render_report",
    "save_png",
    "top_scores",
    "write_report",
]
