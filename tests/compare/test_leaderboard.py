"""The leaderboard's tables from compare.json entries, the content-hash overlap check
and the per-row peak memory, without running the pipeline."""

from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from wsol.compare.leaderboard import build_rows, render_csv, render_markdown, shown_columns
from wsol.compare.memory import PeakMemory
from wsol.compare.overlap import OverlapError, check_no_overlap
from wsol.config import DataConfig
from wsol.errors import WsolError


def _entry(row: int, v2: float | None, error: str | None = None) -> dict:
    metrics = {"maxboxacc": v2, "maxboxacc_v2": v2, "corloc": 0.5, "images_per_second": 3.25}
    return {
        "row": row,
        "name": f"cam.method=m{row}",
        "settings": {"cam.method": f"m{row}"},
        "error": error,
        "select": None if error else {"threshold": 0.35, "peak_mib": 900.0, "seconds": 1.0},
        "report": None if error else {"metrics": metrics, "peak_mib": 950.5, "out": None},
    }


def test_rows_are_ranked_best_first_and_those_that_could_not_run_last():
    entries = [_entry(1, 0.4), _entry(2, None, "select: cam needs a GAP + linear head")]
    entries += [_entry(3, 0.6), _entry(4, 0.4)]
    rows = build_rows(entries, "maxboxacc_v2")
    assert [r["row"] for r in rows] == [3, 1, 4, 2]  # a tie keeps the candidates' order
    assert rows[0]["cut"] == 0.35 and rows[0]["img_per_s"] == 3.25
    assert rows[0]["peak_mib"] == 950.5  # the larger of the two sides'
    assert rows[-1]["maxboxacc"] is None and rows[-1]["cut"] is None
    assert "pxap" not in dict(shown_columns(rows))  # no row has it: no column


def test_the_markdown_table_shows_intervals_and_marks_significant_differences():
    rows = build_rows([_entry(1, 0.6), _entry(2, 0.4), _entry(3, None, "boom | twice")])
    rows[0].update(reference=True, ci={"maxboxacc_v2": [0.55, 0.65]})
    rows[1].update(
        ci={"maxboxacc_v2": [0.35, 0.45], "corloc": [0.4, 0.6]},
        significant={"maxboxacc_v2": True, "corloc": False},
    )
    text = render_markdown(rows, "wsol compare", ["A note."])
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| #"))
    assert header.split(" | ")[2:4] == ["MaxBoxAcc", "MaxBoxAccV2"]
    first, second, third = (line for line in lines if line.startswith("| 00"))
    assert first.startswith("| 001 | cam.method=m1 (reference) | 0.600 | 0.600 [0.550, 0.650] |")
    assert "| 0.400 [0.350, 0.450] * |" in second  # significant
    assert "| 0.500 [0.400, 0.600] |" in second  # not: no mark
    assert "could not run: boom \\| twice" in third  # a | in a cell is escaped
    width = len(header.split(" | "))
    assert {len(line.split(" | ")) for line in (first, second)} == {width}


def test_the_csv_has_one_line_per_row_with_interval_columns():
    rows = build_rows([_entry(1, 0.6), _entry(2, None, "select: boom")])
    rows[0]["ci"] = {"maxboxacc_v2": [0.5, 0.7]}
    table = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert [t["row"] for t in table] == ["1", "2"]
    assert table[0]["maxboxacc_v2"] == "0.6" and table[0]["maxboxacc_v2_lo"] == "0.5"
    assert table[0]["rank"] == "1" and table[1]["rank"] == ""
    assert table[1]["error"] == "select: boom"


def _folder(root, names_colors):
    root.mkdir()
    for name, color in names_colors:
        Image.new("RGB", (8, 8), color).save(root / name)
    return DataConfig(format="folder", root=str(root))


def test_images_shared_by_the_two_sides_are_found_by_content_not_name(tmp_path):
    select = _folder(tmp_path / "a", [("red.png", "red"), ("blue.png", "blue")])
    report = _folder(tmp_path / "b", [("green.png", "green"), ("red.png", "yellow")])
    assert check_no_overlap(select, report) == 2  # the same name, other pixels: no overlap
    shutil.copy(tmp_path / "a" / "blue.png", tmp_path / "b" / "renamed.png")
    shared = r"1 of the 3 report images .*renamed.png \(= blue.png\)"
    with pytest.raises(OverlapError, match=shared):
        check_no_overlap(select, report)
    assert issubclass(OverlapError, WsolError)  # the command line exits 2


def test_peak_memory_sees_an_allocation_made_and_freed_inside_the_block():
    with PeakMemory(interval=0.005) as before:
        pass
    with PeakMemory(interval=0.005) as peak:
        block = np.ones(300 * 2**20, np.uint8)  # 300 MiB, touched
        del block
    assert peak.rss_mib - before.rss_mib > 250
    assert peak.cuda_mib is None  # no CUDA here


def test_a_row_is_named_by_the_keys_the_grid_varies():
    from wsol.compare.protocol import settings_name

    grid = {"cam.method": ["gradcam", "scorecam"], "cam.score_channels": [32]}
    settings = {"cam.method": "scorecam", "cam.score_channels": 32}
    assert settings_name(settings, grid) == "cam.method=scorecam"
    assert settings_name(settings) == "cam.method=scorecam, cam.score_channels=32"
    one = {"cam.method": ["cam"]}  # nothing varies: the name still says what ran
    assert settings_name({"cam.method": "cam"}, one) == "cam.method=cam"
