"""``report.html`` is one file: no link to another file, no request off the page."""

from __future__ import annotations

import re

import numpy as np

from tests.report.page import Page
from wsol.report.embed import data_uri
from wsol.report.gallery import Tile
from wsol.report.html import render_report, write_report

METRICS = {
    "num_images": 2,
    "num_failed": 1,
    "corloc": 0.5,
    "maxboxacc": 0.75,
    "maxboxacc_threshold": 0.5,
    "pxap": 0.4,
    "empty_detections": {"map is constant": 1},
    "cut": "absolute 0.25 on the min-max normalized map",
    "metrics_at_cut": ["corloc"],
    "metrics_over_sweep": ["maxboxacc", "pxap"],
}
CURVE = {"thresholds": [0.0, 0.25, 0.5, 0.75], "maxboxacc": [0.1, 0.6, 0.75, 0.2]}


def _tiles() -> list[Tile]:
    pic = data_uri(np.full((20, 30, 3), 200, np.uint8))
    return [
        Tile("best", "a.jpg", ["best (mean best IoU 0.90)", "cat p=0.90: box 0.70"], [(pic, "a")]),
        Tile("random", "b.jpg", ["random"], [(pic, "b")]),
    ]


def _report(**kw) -> str:
    args = {
        "curve": CURVE,
        "config_text": "out: runs/x\n",
        "failures": [{"path": "bad.jpg", "stage": "decode", "reason": "truncated"}],
        "per_class": {"cat": {"pairs": 2, "corloc": 0.5}},
        "shipped": (0.25, 0.25),
        "cut_note": "absolute cut 0.25",
    }
    return render_report("wsol: test", METRICS, _tiles(), **{**args, **kw})


def test_report_is_self_contained():
    page = Page(_report())
    srcs = [v for _, name, v in page.all_attributes() if name == "src"]
    assert len(srcs) == 2 and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert page.attrs("img", "src") == srcs  # no src on anything but the pictures
    for tag, name, value in page.all_attributes():
        if not value.startswith("data:image/jpeg;base64,"):
            assert not re.search(r"https?:|//|url\(", value), (tag, name, value)
    assert not re.search(r"https?:|url\(|@import", page.style_text())
    assert page.count("script") == 0 and page.count("link") == 0 and page.count("iframe") == 0
    hrefs = page.attrs("a", "href")
    assert hrefs and all(h.startswith("#") for h in hrefs)  # in-page anchors only
    assert {h[1:] for h in hrefs} <= {e.attributes.get("id") for e in page.elements("h2")}


def test_report_holds_every_section():
    page = Page(_report()).text
    for part in (
        "At the shipped cut (@cut)",
        "Best cut of the sweep (@best)",
        "Over the whole sweep (@sweep)",
        "Per class",
        "Box accuracy vs threshold",
        "shipped cut 0.25",
        "Best (1)",
        "Random (1)",
        "cat p=0.90: box 0.70",
        "Failures (1)",
        "bad.jpg",
        "truncated",
        "out: runs/x",
        "map is constant: 1",
    ):
        assert part in page, part


def test_report_says_what_cut_and_best_and_sweep_mean_as_the_console_tags_them():
    page = Page(_report())
    notes = " ".join(page.texts("p", "note"))
    for tag in ("@cut", "@best", "@sweep"):
        assert f"The console's summary tags these columns {tag}." in notes
    assert page.headings()[2:5] == [
        "At the shipped cut (@cut)",
        "Best cut of the sweep (@best)",
        "Over the whole sweep (@sweep)",
    ]


def test_gt_legend_only_when_the_dataset_has_boxes():
    assert "ground truth" in Page(_report(show_gt=True)).text
    assert "ground truth" not in Page(_report(show_gt=False)).text


def test_fraction_cut_is_explained_in_the_caption_not_drawn():
    page = Page(_report(shipped=None, cut_note="The run keeps ... so it is not drawn.")).text
    assert "so it is not drawn." in page and "shipped cut 0" not in page
    assert "shipped cut 0.25" in Page(_report()).text


def test_write_report_writes_report_html(tmp_path):
    path = write_report(tmp_path, "t", METRICS, _tiles(), curve=CURVE)
    assert path == tmp_path / "report.html"
    assert "Box accuracy vs threshold" in Page.load(path).headings()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_no_pointer_to_a_failures_section_that_is_not_there():
    page = Page(_report(failures=[]))
    assert "Failures" not in page.headings() and "under Failures" not in page.text
    assert "failures.jsonl" in page.text
