"""The threshold plot: tick values, the shipped and best cuts, distinguishable series."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from wsol.report.curve import LEFT, RIGHT, best_cuts, curve_svg, operating_cut

CURVE = {
    "thresholds": [0.0, 0.25, 0.5, 0.75],
    "maxboxacc": [0.1, 0.6, 0.8, 0.2],
    "maxboxacc_v2_iou50": [0.1, 0.6, 0.8, 0.2],  # equal to maxboxacc
    "maxboxacc_v2_iou30": [0.3, 0.9, 0.7, 0.2],
}


def _svg(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text for t in root.iter("text") if t.get("class") == cls]


def test_both_axes_have_tick_values():
    root = _svg(curve_svg(CURVE))
    assert _texts(root, "xtick") == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert _texts(root, "ytick") == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]


def test_equal_series_stay_distinguishable():
    root = _svg(curve_svg(CURVE))
    lines = {p.get("data-name"): p for p in root.iter("polyline") if p.get("class") == "series"}
    a, b = lines["maxboxacc"], lines["maxboxacc_v2_iou50"]
    assert a.get("points") == b.get("points")
    assert (a.get("stroke"), a.get("stroke-dasharray")) != (
        b.get("stroke"),
        b.get("stroke-dasharray"),
    )
    assert float(a.get("stroke-width")) > float(b.get("stroke-width"))
    # The wider one is drawn first, so the dashed one shows on top of it.
    order = [p.get("data-name") for p in root.iter("polyline") if p.get("class") == "series"]
    assert order.index("maxboxacc") < order.index("maxboxacc_v2_iou50")


def test_shipped_and_best_cuts_are_labelled_lines():
    best = best_cuts(CURVE, {"maxboxacc_threshold": 0.5})
    root = _svg(curve_svg(CURVE, shipped=(0.25, 0.25), best=best))
    cuts = [ln for ln in root.iter("line") if ln.get("class") == "cut"]
    xs = sorted(float(ln.get("x1")) for ln in cuts)
    assert xs == pytest.approx([LEFT + 0.25 * (RIGHT - LEFT), LEFT + 0.5 * (RIGHT - LEFT)])
    labels = " ".join(t.text for t in root.iter("text"))
    assert "shipped cut 0.25" in labels and "best maxboxacc cut 0.5" in labels


def test_no_shipped_line_when_the_cut_differs_per_map():
    shipped, note = operating_cut("fraction", 0.35)
    assert shipped is None and "not drawn" in note and "0.35" in note
    root = _svg(curve_svg(CURVE, shipped, best_cuts(CURVE, {})))
    assert [ln.get("x1") for ln in root.iter("line") if ln.get("class") == "cut"] == [
        f"{LEFT + 0.5 * (RIGHT - LEFT):.1f}"  # the best cut only (argmax of maxboxacc)
    ]
    assert "shipped" not in " ".join(t.text for t in root.iter("text"))
    assert operating_cut("otsu", 0.2)[0] is None


def test_operating_cut_of_absolute_and_calibrated_runs():
    assert operating_cut("absolute", 0.3) == ((0.3, 0.3), "absolute cut 0.3")
    assert operating_cut("fraction", 0.3, (0.2, 0.2))[0] == (0.2, 0.2)
    band, note = operating_cut("absolute", 0.3, (0.4, 0.1, 0.25))
    assert band == (0.1, 0.4) and "per class" in note
    root = _svg(curve_svg(CURVE, band))
    assert any(r.get("class") == "cut" for r in root.iter("rect"))
    assert not any(ln.get("class") == "cut" for ln in root.iter("line"))  # a band, no line
    assert "shipped cuts 0.1-0.4 (per class)" in [t.text for t in root.iter("text")]


def test_best_cuts_prefer_the_metrics_and_fall_back_to_the_peak():
    best = best_cuts(CURVE, {"maxboxacc_threshold": 0.5, "maxboxacc_v2_iou30_threshold": 0.25})
    assert best == {"maxboxacc": 0.5, "maxboxacc_v2_iou50": 0.5, "maxboxacc_v2_iou30": 0.25}
    assert best_cuts({"thresholds": [0.1, 0.2], "corloc": [0.4, 0.4]}, {}) == {"corloc": 0.1}


def test_empty_curve_draws_nothing_and_svg_has_no_external_namespace():
    assert curve_svg({"thresholds": []}) == ""
    assert not re.search(r"https?://", curve_svg(CURVE))
