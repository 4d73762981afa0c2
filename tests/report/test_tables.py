"""Metric tables: grouped by cut, every value formatted, never a Python repr."""

from __future__ import annotations

import re

from tests.report.page import Page
from wsol.report.tables import EXPLAIN, format_value, metric_sections, per_class_table

METRICS = {
    "num_images": 4,
    "num_failed": 1,
    "num_boxes_found": 5,
    "images_per_second": 12.3456,
    "whole_image_boxes": 0.25,
    "num_bad_maps": 1,
    "empty_detections": {"map is constant": 1, "no pixel above the threshold": 2},
    "corloc": 0.5,
    "num_pairs": 6,
    "maxboxacc": 0.75,
    "maxboxacc_threshold": 0.31,
    "maxboxacc_v2": 0.6,
    "pxap": 0.4,
    "brand_new_metric": {"a": [0.5, None], "b": {"c": True}},
    "cut": "fraction 0.2 of each map's maximum",
    "metrics_at_cut": ["corloc", "whole_image_boxes", "num_boxes_found"],
    "metrics_over_sweep": ["maxboxacc", "maxboxacc_v2", "pxap"],
}


def test_format_value_spells_out_nested_values():
    assert format_value({"map is constant": 1}) == "map is constant: 1"
    assert format_value({"a": [0.5, None], "b": {"c": True}}) == "a: 0.5000, -; b: c: yes"
    assert format_value(0.123456) == "0.1235"
    assert format_value(0.41000000000000003, "best_threshold") == "0.41"
    assert format_value(None) == "-" and format_value({}) == "none" and format_value(3) == "3"


def test_sections_group_metrics_by_cut_and_explain_them():
    sections = metric_sections(METRICS)
    titles = [t for t, _, _ in sections]
    assert titles == [
        "At the shipped cut (@cut)",
        "Best cut of the sweep (@best)",
        "Over the whole sweep (@sweep)",
        "Counts",
        "Other",
    ]
    by_title = {t: (note, Page(table)) for t, note, table in sections}
    note, table = by_title["At the shipped cut (@cut)"]
    assert "fraction 0.2 of each map's maximum" in note
    assert "corloc" in table.texts("th") and EXPLAIN["corloc"] in table.texts("td", "why")
    _, sweep = by_title["Best cut of the sweep (@best)"]
    note, whole = by_title["Over the whole sweep (@sweep)"]
    assert whole.texts("th")[3:] == ["pxap"] and "pxap" not in sweep.texts("th")
    assert "every cut of the threshold sweep at once, not at one cut" in note
    (row,) = [r for r in sweep.rows(sweep.elements("table")[0]) if r[0] == "maxboxacc"]
    assert row[:3] == ["maxboxacc", "0.7500", "0.31"]  # maxboxacc's own cut
    assert "maxboxacc_threshold" not in sweep.text  # shown as the cut, not as a row
    _, counts = by_title["Counts"]
    assert "map is constant: 1; no pixel above the threshold: 2" in counts.texts("td", "text")
    assert "num_boxes_found" not in counts.text  # already at the shipped cut
    pages = [Page(table) for _, _, table in sections]
    text = " ".join(p.text for p in pages)
    assert not re.search(r"\{\s*['\"]", text)  # no dict repr
    assert "[" not in text  # nor a list repr
    headers = {h for p in pages for h in p.texts("th")}
    assert not headers & {"cut", "metrics_at_cut", "metrics_over_sweep"}


def test_per_class_table_orders_columns_and_drops_unscored_classes():
    table = per_class_table(
        {
            "cat": {"pairs": 3, "corloc": 2 / 3, "best_threshold": 0.41000000000000003},
            "dog": {"pairs": 0, "corloc": None, "best_threshold": None},
        }
    )
    page = Page(table)
    rows = page.rows(page.elements("table")[0])
    assert rows == [["class", "pairs", "corloc", "best_threshold"], ["cat", "3", "0.6667", "0.41"]]
    assert per_class_table({}) == ""
