"""What people look at: overlay pictures, the report's gallery and ``report.html``."""

from __future__ import annotations

from wsol.report.gallery import render_gallery, report_picks
from wsol.report.html import write_report
from wsol.report.overlay import overlay, save_png

__all__ = ["overlay", "render_gallery", "report_picks", "save_png", "write_report"]
