"""The tests' page reader: it reads what a reader sees, never the bytes of a picture."""

from __future__ import annotations

import base64

from tests.report.page import Page


def test_text_leaves_out_attributes_css_and_the_head():
    # A base64 picture can spell anything: here "IoU" and "ground truth".
    src = "data:image/jpeg;base64," + base64.b64encode(b"\x21\x4a\x14" * 4).decode() + "IoU"
    page = Page(
        "<!doctype html><html><head><title>T</title><style>p { color: red }</style></head>"
        f'<body><h2 id="a">Images (1)</h2><figure><img src="{src}" alt="ground truth">'
        "<figcaption><b>a.jpg</b><br>best &amp; top<br>score 0.031</figcaption></figure>"
        "<table><tr><th>IoU</th><td class='num'>0.5</td></tr></table></body></html>"
    )
    assert page.text == "Images (1) a.jpg best & top score 0.031 IoU 0.5"
    assert "IoU" not in page.text_without("table") and "ground truth" not in page.text
    assert page.attrs("img", "src") == [src] and page.attrs("img", "alt") == ["ground truth"]
    assert page.texts("figcaption") == ["a.jpg best & top score 0.031"]
    assert page.count("img") == 1 and page.count("script") == 0
    assert page.headings() == ["Images (1)"] and page.texts("td", "num") == ["0.5"]
    assert page.rows(page.elements("table")[0]) == [["IoU", "0.5"]]
    assert "color: red" in page.style_text() and "color" not in page.text
