"""``report.html`` in a real browser: headless Chromium loads it with no console error,
decodes every picture, requests nothing off the page, and leaves a screenshot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.report.browser import check_page, find_chromium
from wsol.report.embed import data_uri
from wsol.report.gallery import Tile
from wsol.report.html import write_report

PNG_1PX = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
    "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install -y chromium)")
    return path


def test_a_broken_page_is_caught(tmp_path, chromium):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><html><body>"
        f'<img src="{PNG_1PX}">'
        '<img src="data:image/jpeg;base64,AAAA">'  # does not decode
        '<img src="overlays/missing.png">'  # a file that is not there
        '<img src="http://127.0.0.1:9/x.png">'  # off the page
        "<script>console.error('boom')</script>"
        "</body></html>"
    )
    check = check_page(
        page, tmp_path / "broken.png", browser=chromium, expressions=["1 + 1", "null.x"]
    )
    assert not check.ok and check.images == 4
    assert check.values == [2, None] and any("TypeError" in e for e in check.errors)
    assert len(check.broken_images) == 3 and not any("iVBOR" in s for s in check.broken_images)
    assert "boom" in check.errors
    assert any("missing.png" in e for e in check.errors)
    assert check.external == ["http://127.0.0.1:9/x.png"]
    with pytest.raises(FileNotFoundError):
        check_page(tmp_path / "no_report.html", browser=chromium)


def test_report_loads_cleanly(tmp_path, chromium):
    pic = data_uri(np.full((240, 320, 3), 180, np.uint8))
    tiles = [
        Tile("best", f"{i}.jpg", ["best", "cat p=0.90: box 0.70"], [(pic, "x")]) for i in range(3)
    ]
    curve = {"thresholds": [0.0, 0.5], "maxboxacc": [0.2, 0.6]}
    metrics = {"num_images": 3, "num_failed": 0, "corloc": 0.5, "metrics_at_cut": ["corloc"]}
    path = write_report(tmp_path, "t", metrics, tiles, curve=curve, config_text="seed: 0\n")
    check = check_page(path, tmp_path / "report.png", browser=chromium)
    assert check.ok, check
    assert check.images == 3
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_run_report_loads_cleanly_and_is_screenshot(tmp_path, shapes_root, chromium):
    from wsol.apps.demo import demo_config
    from wsol.run import run

    out = tmp_path / "out"
    cfg = demo_config(
        out, "gradcam", shapes_root, overrides=["data.limit=12", "report.num_images=6"]
    )
    run(cfg)
    check = check_page(out / "report.html", out / "report.png", browser=chromium)
    assert check.ok, check
    assert check.images == 6  # six images, one tile each
    shot = (out / "report.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(shot[16:20], "big") == 1400
    assert not (out / "overlays").exists()


LONG = "/data/" + "a_long_folder_name_with_no_space_" * 5 + "image.jpg"


def _wide_report(tmp_path):
    """A report whose values and tables are wider than a narrow window: long paths,
    lists, a per-class table of twelve columns, a long file name."""
    pic = data_uri(np.full((240, 320, 3), 180, np.uint8))
    columns = ["pairs", "corloc", "gt_known_loc", "maxboxacc", "best_maxboxacc"]
    columns += ["best_threshold", "maxboxacc_v2", "pxap", "coco_ap", "coco_ap50", "x_a", "x_b"]
    metrics = {
        "num_images": 3,
        "num_failed": 1,
        "corloc": 0.5,
        "metrics_at_cut": ["corloc"],
        "exports": ["pseudo_labels.json", "results.json", "voc/", "yolo/", "labelstudio.json"],
        "stage_seconds": {"decode": 1.0, "model": 2.0, "boxes": 0.5, "score": 0.2, "write": 0.1},
        "a_key_holding_a_path": LONG,
    }
    return write_report(
        tmp_path,
        "t",
        metrics,
        [Tile("best", "x" * 90 + ".jpg", ["best", "cat p=0.90: box 0.70"], [(pic, "x")])],
        curve={"thresholds": [0.0, 0.5], "maxboxacc": [0.2, 0.6]},
        per_class={f"class_{i}_{'long' * 8}": dict.fromkeys(columns, 0.5) for i in range(3)},
        failures=[{"path": LONG, "stage": "decode", "reason": "cannot decode: " + "x" * 150}],
        config_text=f"data:\n  root: {LONG}\n",
    )


def test_at_800_px_long_values_wrap_and_wide_tables_scroll_in_their_box(tmp_path, chromium):
    from tests.report.page import Page

    path = _wide_report(tmp_path)
    page = Page.load(path)
    wraps = page.elements("div", "table-wrap")
    assert len(wraps) == len(page.elements("table")) == 4  # every table is in a box
    check = check_page(
        path,
        tmp_path / "narrow.png",
        width=800,
        browser=chromium,
        expressions=[
            "document.scrollingElement.scrollWidth",
            # each table's box: no wider than the page, and it scrolls what does not fit
            """JSON.stringify([...document.querySelectorAll('table')].map(t => [
                t.parentElement.className, t.parentElement.getBoundingClientRect().right,
                getComputedStyle(t.parentElement).overflowX,
                t.parentElement.scrollWidth > t.parentElement.clientWidth]))""",
            # cells of long text wrap: none is wider than its own box
            """[...document.querySelectorAll('td.text, td.why, tbody th, li')]
                .filter(e => e.scrollWidth > e.clientWidth + 1).length""",
            """[...document.querySelectorAll('td.text')].filter(
                e => e.textContent.includes('a_long_folder')).map(e => e.clientHeight > 40)""",
        ],
    )
    assert check.ok, check
    page_width, boxes, overflowing, tall = check.values
    assert page_width <= 800  # the page never scrolls sideways
    boxes = json.loads(boxes)
    assert all(c == "table-wrap" and right <= 800 and o == "auto" for c, right, o, _ in boxes)
    assert [scrolls for *_, scrolls in boxes] == [False, False, False, True]  # per class
    assert overflowing == 0
    assert tall == [True]  # the path wrapped onto several lines
