"""``leaderboard.html`` in a real browser: headless Chromium loads it with no console
error, decodes every picture, requests nothing off the page, sorts the table when a
header is clicked, fits an 800 px window (wide tables scroll inside their box), and
leaves a screenshot."""

from __future__ import annotations

import pytest

from tests.compare.page_data import leaderboard_data
from tests.report.browser import check_page, find_chromium
from wsol.compare.page import write_leaderboard

ORDER = "[...document.querySelectorAll('#board tbody tr')].map(t => Number(t.dataset.row))"


def click(col: str) -> str:
    """An expression that clicks ``col``'s header and returns the order and the sort."""
    return (
        f"(() => {{ const th = document.querySelector('th[data-col=\"{col}\"]'); th.click(); "
        f"return {{order: {ORDER}, sort: th.getAttribute('aria-sort')}}; }})()"
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install -y chromium)")
    return path


def _png_width(path) -> int:
    shot = path.read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(shot[16:20], "big")


def test_leaderboard_loads_cleanly_and_sorts(tmp_path, chromium):
    data = leaderboard_data(8)
    path = write_leaderboard(tmp_path, **data)
    rows = [r["row"] for r in data["rows"]]
    ran, failed = rows[:-1], rows[-1]
    expressions = [
        "document.documentElement.scrollWidth",
        "window.sortLeaderboard('maxboxacc', false)",  # ascending: the worst first
        "window.sortLeaderboard('row', false)",
        "window.sortLeaderboard('name', true)",
        click("peak_mib"),  # lower is better: ascending first
        click("peak_mib"),  # and back
        click("maxboxaccv2"),  # higher is better: descending first
        click("pxap"),  # no value anywhere: the order stays
    ]
    check = check_page(
        path, tmp_path / "leaderboard.png", width=800, browser=chromium, expressions=expressions
    )
    assert check.ok, check
    assert check.images == len(data["disagreements"]) == 2
    width, asc, by_row, by_name, peak_up, peak_down, v2, pxap = check.values
    assert width <= 800  # nothing sticks out of an 800 px window
    assert asc == [*ran[::-1], failed]  # the row that could not run sorts last either way
    assert by_row == sorted(rows)
    names = {r["row"]: r["name"].lower() for r in data["rows"]}
    assert [names[n] for n in by_name] == sorted(names.values(), reverse=True)
    assert peak_up == {"order": [*ran, failed], "sort": "ascending"}
    assert peak_down == {"order": [*ran[::-1], failed], "sort": "descending"}
    v2_of = {r["row"]: r["maxboxaccv2"] for r in data["rows"] if not r["error"]}
    assert v2["sort"] == "descending" and v2["order"][-1] == failed
    assert [v2_of[n] for n in v2["order"][:-1]] == sorted(v2_of.values(), reverse=True)
    assert pxap["order"] == v2["order"]  # all "–": a stable sort keeps the order
    assert _png_width(tmp_path / "leaderboard.png") == 800


def test_leaderboard_screenshot_at_1280(tmp_path, chromium):
    path = write_leaderboard(tmp_path, **leaderboard_data(14))
    check = check_page(
        path,
        tmp_path / "leaderboard.png",
        width=1280,
        browser=chromium,
        expressions=["document.documentElement.scrollWidth"],
    )
    assert check.ok, check
    assert check.values == [1280]
    assert _png_width(tmp_path / "leaderboard.png") == 1280
