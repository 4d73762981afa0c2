"""``wsol compare`` end to end on the shapes data: cuts chosen on the val split, numbers
from the test split; identical candidates, a candidate that cannot run, the rows'
configs, resuming, the refusals and the page in a browser."""

from __future__ import annotations

import json
import shutil

import pytest

import wsol
from wsol.apps.demo import CHECKPOINT, DEMO_CONFIG
from wsol.compare.leaderboard import STAT_METRICS
from wsol.compare.protocol import REPORT_KEYS
from wsol.run.journal import RunExistsError

pytestmark = pytest.mark.e2e

# layer3 twice: two candidates with identical settings; "nope" is no layer of the model
GRID = {"model.target_layer": ["layer3", "layer3", "nope"]}
SELECT = {"data.split": "val", "data.limit": 6}
REPORT = {"data.split": "test", "data.limit": 10}


def _base(shapes_root, out) -> dict:
    return {
        "data.root": str(shapes_root),
        "model.weights": str(CHECKPOINT),
        "model.device": "cpu",
        "out": str(out),
    }


@pytest.fixture(scope="module")
def chromium() -> str:
    from tests.report.browser import find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def compared(shapes_root, tmp_path_factory):
    """The compare of GRID: its out folder, its rows (by number) and the status lines."""
    out = tmp_path_factory.mktemp("compare") / "out"
    lines: list[str] = []
    rows = wsol.compare(
        DEMO_CONFIG, GRID, SELECT, REPORT, _base(shapes_root, out), status=lines.append
    )
    return out, rows, lines


def test_identical_settings_give_identical_numbers_and_no_significant_difference(compared):
    out, rows, _ = compared
    by_row = {r["row"]: r for r in rows}
    one, two = by_row[1], by_row[2]
    assert rows[0] is one and one["reference"] is True  # a tie goes to the earlier row
    for key in (*STAT_METRICS, "coco_ap", "corloc", "cut"):
        assert one[key] == two[key], key
    assert one["ci"] == two["ci"] and set(one["ci"]) >= {"maxboxacc", "maxboxacc_v2", "corloc"}
    assert two["significant"] and not any(two["significant"].values())
    assert all(p["diff"] == 0 for p in two["paired"].values())
    assert one["significant"] == {}  # the reference is not tested against itself
    table = (out / "leaderboard.md").read_text()
    assert "(reference)" in table and " *" not in table


def test_an_image_is_decoded_once_for_every_candidate_of_its_view_size(compared):
    out, _, _ = compared
    one, two, _ = json.loads((out / "compare.json").read_text())["candidates"]
    assert (one["select"]["decoded"], one["report"]["decoded"]) == (6, 10)
    assert (two["select"]["decoded"], two["report"]["decoded"]) == (0, 0)
    assert (two["select"]["from_cache"], two["report"]["from_cache"]) == (6, 10)


def test_a_candidate_that_cannot_run_gets_its_reason_and_the_others_run(compared):
    out, rows, _ = compared
    bad = rows[-1]
    assert bad["row"] == 3 and "nope" in bad["error"] and bad["maxboxacc"] is None
    assert [r["error"] for r in rows[:2]] == [None, None]
    assert (
        "could not run: select: model has no layer 'nope'" in (out / "leaderboard.md").read_text()
    )
    saved = json.loads((out / "compare.json").read_text())
    assert [r["row"] for r in saved["leaderboard"]] == [r["row"] for r in rows]
    assert saved["candidates"][2]["select"] is None and not (out / "rows/003/config.yaml").exists()


def test_cam_on_a_model_without_a_gap_linear_head_is_a_row_saying_so(
    shapes_root, tmp_path, register_model
):
    from wsol.models import build_model

    def headless(weights, classes, dilate_last=False):  # the demo's model, head unknown
        spec = build_model("shapes_net", str(CHECKPOINT), classes, dilate_last=dilate_last)
        spec.fc_layer = None
        return spec

    register_model("headless_shapes_net", headless)
    rows = wsol.compare(
        DEMO_CONFIG,
        {"cam.method": ["cam", "gradcam"]},
        {"data.split": "val", "data.limit": 3},
        {"data.split": "test", "data.limit": 3},
        {
            **_base(shapes_root, tmp_path / "out"),
            "model.arch": "headless_shapes_net",
            "model.weights": "none",
        },
    )
    ran, failed = rows
    assert ran["name"] == "cam.method=gradcam" and ran["error"] is None and ran["reference"]
    assert failed["name"] == "cam.method=cam"
    assert failed["error"].startswith("select: cam.method=cam: cam needs a global-average-pool")
    table = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| 001 | cam.method=cam | could not run: select: cam.method=cam: cam needs" in table


def test_progress_names_the_candidate_and_the_side(compared):
    _, _, lines = compared
    sides = [line for line in lines if line.startswith("candidate ")]
    assert sides[:4] == [
        "candidate 1 of 3 (select): model.target_layer=layer3",
        "candidate 1 of 3 (report): model.target_layer=layer3",
        "candidate 2 of 3 (select): model.target_layer=layer3",
        "candidate 2 of 3 (report): model.target_layer=layer3",
    ]
    assert sides[4] == "candidate 3 of 3 (select): model.target_layer=nope"


def test_a_rows_config_reproduces_its_numbers_to_the_last_digit(compared, tmp_path):
    out, rows, _ = compared
    row = next(r for r in rows if r["row"] == 2)
    again = wsol.run(out / "rows" / "002" / "config.yaml", {"out": str(tmp_path / "again")})
    saved = json.loads((out / "compare.json").read_text())["candidates"][1]["report"]["metrics"]
    for key in REPORT_KEYS:
        if key != "images_per_second":
            assert again.metrics.get(key) == saved.get(key), key
    assert again.metrics["maxboxacc_v2"] == row["maxboxacc_v2"]
    assert again.config.boxes.threshold == row["cut"]
    assert again.config.boxes.threshold_mode == "absolute"


def test_another_grid_in_the_same_out_is_refused_unless_overwrite(compared, shapes_root):
    out, _, _ = compared
    with pytest.raises(RunExistsError, match="another compare"):
        wsol.compare(DEMO_CONFIG, {"cam.method": ["cam"]}, SELECT, REPORT, _base(shapes_root, out))


def test_an_interrupted_compare_resumes_without_running_the_done_sides(shapes_root, tmp_path):
    out = tmp_path / "out"
    grid = {"cam.method": ["gradcam", "cam"]}
    select, report = {"data.split": "val", "data.limit": 4}, {"data.split": "test", "data.limit": 4}
    lines: list[str] = []

    def stop_at_second_report(line: str) -> None:
        lines.append(line)
        if line.startswith("candidate 2 of 2 (report)"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wsol.compare(
            DEMO_CONFIG, grid, select, report, _base(shapes_root, out), status=stop_at_second_report
        )
    first = (out / "rows/001/report/metrics.json").stat().st_mtime_ns
    lines.clear()
    rows = wsol.compare(
        DEMO_CONFIG, grid, select, report, _base(shapes_root, out), status=lines.append
    )
    started = [line for line in lines if line.startswith("candidate ")]
    assert started == ["candidate 2 of 2 (report): cam.method=cam"]
    assert any(line.startswith("resuming the compare") for line in lines)
    assert (out / "rows/001/report/metrics.json").stat().st_mtime_ns == first
    assert sorted(r["row"] for r in rows if not r["error"]) == [1, 2]

    # killed after a run finished, before compare.json said so: read, not run again
    table = json.loads((out / "compare.json").read_text())
    table["candidates"][1]["report"] = None
    (out / "compare.json").write_text(json.dumps(table))
    second = (out / "rows/002/report/metrics.json").stat().st_mtime_ns
    lines.clear()
    again = wsol.compare(
        DEMO_CONFIG, grid, select, report, _base(shapes_root, out), status=lines.append
    )
    assert any("holds this run, finished" in line for line in lines)
    assert (out / "rows/002/report/metrics.json").stat().st_mtime_ns == second
    assert [r["maxboxacc_v2"] for r in again] == [r["maxboxacc_v2"] for r in rows]


def test_the_same_sides_given_from_another_directory_are_another_compare(
    shapes_root, tmp_path, monkeypatch
):
    """A side's relative path resolves against the working directory: from elsewhere it
    names other data (here a copy), so the compare there is not resumed."""
    out = tmp_path / "out"
    for name in ("one", "two"):
        shutil.copytree(shapes_root, tmp_path / name / "shapes")
    grid = {"cam.method": ["gradcam"]}
    select = ["data.root=shapes", "data.split=val", "data.limit=2"]
    report = {"data.split": "test", "data.limit": 2}
    monkeypatch.chdir(tmp_path / "one")
    wsol.compare(DEMO_CONFIG, grid, select, report, _base(shapes_root, out))
    monkeypatch.chdir(tmp_path / "two")
    with pytest.raises(RunExistsError, match="another compare"):
        wsol.compare(DEMO_CONFIG, grid, select, report, _base(shapes_root, out))
    lines: list[str] = []  # --overwrite: run afresh, on the data named from here
    wsol.compare(
        DEMO_CONFIG,
        grid,
        select,
        report,
        _base(shapes_root, out),
        overwrite=True,
        status=lines.append,
    )
    assert "candidate 1 of 1 (select): cam.method=gradcam" in lines
    ran = json.loads((out / "compare.json").read_text())["resolved"]["select"]["data"]["root"]
    assert ran == str((tmp_path / "two" / "shapes").resolve())


def test_sides_sharing_images_are_refused_with_exit_2(wsol_processes, shapes_root, tmp_path):
    out = tmp_path / "out"
    p = wsol_processes.run(
        [
            "compare",
            DEMO_CONFIG,
            f"data.root={shapes_root}",
            f"model.weights={CHECKPOINT}",
            f"out={out}",
            "--search",
            "cam.method=[gradcam, cam]",
            "--select",
            "data.limit=5",
            "--report",
            "data.limit=3",  # the first 3 of the same split: all of them on both sides
        ]
    )
    assert p.returncode == 2, p.stderr
    assert "3 of the 3 report images are also on the select side" in p.stderr
    assert not (out / "rows").exists()


def test_the_leaderboard_page_loads_in_a_browser(compared, shapes_root, chromium, tmp_path):
    from tests.report.browser import check_page

    out, _, _ = compared
    check = check_page(
        out / "leaderboard.html", tmp_path / "shot.png", width=1280, browser=chromium
    )
    assert check.ok, check
    html = (out / "leaderboard.html").read_text()
    assert html.count('class="series"') == 3 * 2  # one curve per level and row that ran
    assert html.count('class="cut"') == 3 * 2
    assert "<figure><img" not in html  # the two best rows are the same: nothing to show

    # two methods that disagree: their pictures, decoded
    other = tmp_path / "methods"
    wsol.compare(
        DEMO_CONFIG,
        {"cam.method": ["gradcam", "cam"]},
        {"data.split": "val", "data.limit": 4},
        {"data.split": "test", "data.limit": 8},
        _base(shapes_root, other),
    )
    check = check_page(
        other / "leaderboard.html", tmp_path / "methods.png", width=1280, browser=chromium
    )
    assert check.ok, check
    pictures = (other / "leaderboard.html").read_text().count("<figure><img")
    assert check.images == pictures >= 1
    assert (tmp_path / "methods.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
