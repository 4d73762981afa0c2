"""``leaderboard.html``, read back with ``html.parser`` (never by grepping the page: an
inline picture's base64 can hold any letters): every row and column, the intervals and
the ``~`` marks, one plot per IoU level with a curve and a cut per candidate, the shaded
per-class table, inline pictures, and nothing that points off the page."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from tests.compare.page_data import CLASSES, COLUMNS, leaderboard_data
from wsol.compare.page import (
    DASH,
    fmt_value,
    render_leaderboard,
    row_style,
    write_leaderboard,
)
from wsol.report.curve import plot_x, plot_y
from wsol.report.overlay import GT_COLOR

VOID = {"meta", "img", "br", "input", "link", "hr", "area", "base", "col", "source", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def nodes(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.nodes()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs) -> list[Node]:
        out = []
        for n in self.nodes():
            if tag is not None and n.tag != tag:
                continue
            if cls is not None and cls not in (n.attrs.get("class") or "").split():
                continue
            if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(n)
        return out

    def find(self, tag: str | None = None, cls: str | None = None, **attrs) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, (tag, cls, attrs)
        return found[0]


class TreeBuilder(HTMLParser):
    """A small DOM: a node per element, text as strings; void elements have no children."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.at = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_startendtag(self, tag, attrs):
        self.at.children.append(Node(tag, dict(attrs), self.at))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        node = self.at
        while node is not self.root and node.tag != tag:
            node = node.parent
        assert node is not self.root, f"</{tag}> closes nothing"
        self.at = node.parent

    def handle_data(self, data):
        self.at.children.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.at is builder.root, "an element was left open"
    return builder.root


@pytest.fixture(scope="module")
def data() -> dict:
    return leaderboard_data(8)


@pytest.fixture(scope="module")
def doc(data) -> Node:
    return parse(render_leaderboard(**data))


def _board_rows(doc: Node) -> list[Node]:
    return doc.find("table", id="board").find("tbody").find_all("tr")


def test_every_row_and_column_is_there_in_order(doc, data):
    heads = doc.find("table", id="board").find("thead").find_all("th")
    assert [h.attrs["data-col"] for h in heads] == ["row", "name"] + [k for k, _ in COLUMNS]
    assert [h.text() for h in heads[2:]] == [t for _, t in COLUMNS]
    trs = _board_rows(doc)
    assert [int(tr.attrs["data-row"]) for tr in trs] == [r["row"] for r in data["rows"]]
    for tr, r in zip(trs, data["rows"], strict=True):
        assert tr.find("td", data_col="row").text() == f"{r['row']:03d}"
        name = tr.find("td", data_col="name")
        assert name.text() == r["name"]
        assert all(f"{k} = {v}" in name.attrs["title"] for k, v in r["settings"].items())
        if r["error"]:
            continue
        for key, _ in COLUMNS:
            cell = tr.find("td", data_col=key)
            shown = "".join(c for c in cell.children if isinstance(c, str))
            assert shown == fmt_value(key, r[key])
            if r[key] is None:
                assert shown == DASH and cell.attrs["data-v"] == ""
            else:
                assert float(cell.attrs["data-v"]) == r[key]
    first = data["rows"][0]
    cells = {k: trs[0].find("td", data_col=k) for k, _ in COLUMNS}
    assert cells["img_per_s"].text() == f"{first['img_per_s']:.1f}" == "41.3"
    assert cells["peak_mib"].text() == "812"
    assert cells["corloc"].text() == f"{first['corloc']:.3f}"
    assert cells["pxap"].text() == DASH
    assert "best" in trs[0].attrs["class"].split()


def test_number_formats():
    assert fmt_value("maxboxacc", 0.41249) == "0.412"
    assert fmt_value("img_per_s", 12.345) == "12.3"
    assert fmt_value("peak_mib", 1023.6) == "1024"
    assert fmt_value("cuda_peak_mib", 511.2) == "511"
    assert fmt_value("pxap", None) == DASH == fmt_value("pxap", float("nan"))


def test_a_row_that_could_not_run_shows_why_across_the_metric_columns(doc, data):
    bad = data["rows"][-1]
    tr = _board_rows(doc)[-1]
    assert int(tr.attrs["data-row"]) == bad["row"]
    cell = tr.find("td", cls="error")
    assert cell.attrs["colspan"] == str(len(COLUMNS))
    assert bad["error"] in cell.text()
    assert len(tr.find_all("td")) == 3  # number, name, the reason: no metric cell to sort by


def test_intervals_and_the_marks_of_differences_that_do_not_hold_up(doc, data):
    trs = {int(tr.attrs["data-row"]): tr for tr in _board_rows(doc)}
    marks = 0
    for r in data["rows"]:
        if r["error"]:
            continue
        for key, _ in COLUMNS:
            cell = trs[r["row"]].find("td", data_col=key)
            ns = cell.find_all("abbr", cls="ns")
            if r["significant"].get(key) is False:
                assert [n.text() for n in ns] == ["~"]
                assert f"row {data['rows'][0]['row']:03d}" in ns[0].attrs["title"]
                marks += 1
            else:
                assert not ns
            ci = cell.find_all("span", cls="ci")
            if key in r["ci"]:
                lo, hi = r["ci"][key]
                assert [c.text() for c in ci] == [f"{lo:.3f}–{hi:.3f}"]
                assert f"{lo:.3f}–{hi:.3f}" in cell.attrs["title"]
            else:
                assert not ci
    assert marks == sum(v is False for r in data["rows"] for v in r["significant"].values())
    assert marks == 3
    legend = [p for p in doc.find_all("p", cls="note") if p.find_all("abbr", cls="ns")]
    assert len(legend) == 1 and "paired test" in legend[0].text()  # the legend explains ~
    assert "95% bootstrap interval" in legend[0].text()


def test_one_plot_per_iou_level_with_a_curve_and_a_cut_per_candidate(doc, data):
    svgs = doc.find_all("svg", cls="level")
    assert [s.attrs["data-level"] for s in svgs] == ["30", "50", "70"]
    ran = [r["row"] for r in data["rows"] if not r["error"]]
    with_cut = {n for n in ran if data["curves"][n]["cut"] is not None}
    assert 0 < len(with_cut) < len(ran)  # one candidate has no cut: no dot for it
    for svg in svgs:
        level = svg.attrs["data-level"]
        lines = svg.find_all("polyline", cls="series")
        assert sorted(int(p.attrs["data-row"]) for p in lines) == sorted(ran)
        assert len({p.attrs["stroke"] for p in lines}) == len(ran)  # distinct colours
        dots = svg.find_all("circle", cls="cut")
        assert sorted(int(c.attrs["data-row"]) for c in dots) == sorted(with_cut)
        for dot in dots:
            c = data["curves"][int(dot.attrs["data-row"])]
            v = np.interp(c["cut"], c["thresholds"], c["levels"][level])
            assert float(dot.attrs["cx"]) == pytest.approx(plot_x(c["cut"]), abs=0.06)
            assert float(dot.attrs["cy"]) == pytest.approx(plot_y(v), abs=0.06)
    legend = doc.find("h2", id="curves").parent
    entries = [e for e in legend.find_all("span", cls="entry") if e.find_all("svg")]
    assert {int(e.attrs["data-row"]) for e in entries} >= set(ran)


def _lightness(style: str) -> float:
    return float(re.search(r"hsl\(\s*\d+,\s*[\d.]+%,\s*([\d.]+)%\)", style).group(1))


def test_per_class_table_is_shaded_by_value(doc, data):
    table = doc.find("table", cls="per-class")
    assert [th.text() for th in table.find("thead").find_all("th")][1:] == list(CLASSES)
    trs = table.find("tbody").find_all("tr")
    assert [int(tr.attrs["data-row"]) for tr in trs] == [
        r["row"] for r in data["rows"] if r["row"] in data["per_class"]
    ]
    cells = [td for tr in trs for td in tr.find_all("td", cls="shade")]
    assert len(cells) == len(trs) * len(CLASSES)
    for tr in trs:
        values = data["per_class"][int(tr.attrs["data-row"])]
        assert [td.text() for td in tr.find_all("td")] == [f"{values[c]:.3f}" for c in CLASSES]
    pairs = sorted((float(td.attrs["data-v"]), _lightness(td.attrs["style"])) for td in cells)
    light = [p[1] for p in pairs]
    assert light == sorted(light, reverse=True)  # higher value, darker cell
    assert light[0] > light[-1] + 40  # 0.0 and 1.0 are both in the data


def test_disagreement_pictures_are_inline_and_show_both_rows_boxes(doc, data):
    imgs = doc.find("h2", id="disagreements").parent.find_all("img")
    assert len(imgs) == len(data["disagreements"])
    first, second = data["rows"][0]["row"], data["rows"][1]["row"]
    for img, d in zip(imgs, data["disagreements"], strict=True):
        src = img.attrs["src"]
        assert src.startswith("data:image/jpeg;base64,")
        pic = cv2.imdecode(np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8), 1)
        pic = cv2.cvtColor(pic, cv2.COLOR_BGR2RGB)
        h, w = d["image"].shape[:2]
        scale = 360 / max(h, w)
        assert pic.shape[:2] == (round(h * scale), round(w * scale))
        assert (int(img.attrs["width"]), int(img.attrs["height"])) == (pic.shape[1], pic.shape[0])
        # the second row's box (far from the others): its top edge in its row's colour
        x1, y1, x2, _ = (np.asarray(d["boxes"][second][0]) * scale).astype(int)
        want = np.array([int(row_style(1)[0][i : i + 2], 16) for i in (1, 3, 5)])
        edge = pic[y1, (x1 + x2) // 2].astype(int)
        assert np.abs(edge - want).max() < 40, (edge, want)
        caption = img.parent.find("figcaption").text()
        assert d["path"] in caption
        assert f"row {first:03d} IoU {d['iou'][first]:.3f}" in caption
        assert f"row {second:03d} IoU {d['iou'][second]:.3f}" in caption
    legend = doc.find("h2", id="disagreements").parent.find_all("span", cls="entry")
    styles = " ".join(s.attrs.get("style", "") for e in legend for s in e.find_all("span"))
    assert f"rgb{tuple(GT_COLOR)}" in styles and row_style(1)[0] in styles


def test_nothing_points_off_the_page(doc):
    assert not doc.find_all("link") and not doc.find_all("iframe")
    for n in doc.nodes():
        for key, value in n.attrs.items():
            if key == "src":
                assert value.startswith("data:image/"), value
            elif key == "href":
                assert value.startswith("#"), value
            else:
                assert not re.search(r"https?:|url\(", value or ""), (n.tag, key)
        if n.tag in ("style", "script", "text", "title"):
            assert not re.search(r"https?:|url\(|@import", n.text()), n.tag
    scripts = doc.find_all("script")
    assert len(scripts) == 1 and "src" not in scripts[0].attrs


def test_text_is_escaped_and_string_keys_work():
    data = leaderboard_data(3)
    data["rows"][0]["name"] = "<script>alert(1)</script> & co"
    data["title"] = "a <b> title"
    data["curves"] = {str(k): v for k, v in data["curves"].items()}  # as JSON gives them
    data["per_class"] = {str(k): v for k, v in data["per_class"].items()}
    doc = parse(render_leaderboard(**data))
    assert len(doc.find_all("script")) == 1
    assert doc.find("h1").text() == "a <b> title"
    assert _board_rows(doc)[0].find("td", data_col="name").text() == data["rows"][0]["name"]
    assert len(doc.find("svg", cls="level").find_all("polyline", cls="series")) == 2
    assert len(doc.find("table", cls="per-class").find("tbody").find_all("tr")) == 2


def test_sections_without_data_are_left_out():
    data = leaderboard_data(2)
    for key in ("curves", "per_class"):
        data[key] = {}
    data["disagreements"] = []
    doc = parse(render_leaderboard(**data))
    assert [h.attrs.get("id") for h in doc.find_all("h2")] == ["leaderboard"]
    assert [a.attrs["href"] for a in doc.find("nav").find_all("a")] == ["#leaderboard"]
    nothing = leaderboard_data(1)  # its one candidate could not run
    doc = parse(render_leaderboard(**{**nothing, "disagreements": []}))
    assert "No candidate could run." in doc.find("h2", id="leaderboard").parent.text()


def test_write_leaderboard(tmp_path, data):
    path = write_leaderboard(tmp_path, **data)
    assert path == tmp_path / "leaderboard.html"
    assert path.read_text() == render_leaderboard(**data)
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.html"]  # no temp file left
