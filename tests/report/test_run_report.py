"""The report of whole runs: with GT (best, worst, random) and without (a folder)."""

from __future__ import annotations

import re

import pytest

from wsol.apps.demo import demo_config


def _tiles(page: str) -> int:
    return len(re.findall(r"<figure>", page))


@pytest.mark.e2e
def test_run_report_shows_num_images_images_one_tile_each(tmp_path, shapes_root):
    from wsol.run import run

    out = tmp_path / "gt"
    run(
        demo_config(out, "gradcam", shapes_root, overrides=["data.limit=16", "report.num_images=7"])
    )
    page = (out / "report.html").read_text()
    assert _tiles(page) == 7 and len(re.findall(r'<img src="data:image/jpeg', page)) == 7
    for part in ("Best (2)", "Worst (2)", "Random (3)", "ground truth", "Per class"):
        assert part in page, part
    assert 'src="overlays/' not in page and not (out / "overlays").exists()
    assert "fraction 0.35 of each map" in page


@pytest.mark.e2e
def test_folder_run_report_ranks_by_score_and_draws_no_gt(tmp_path, shapes_root):
    from wsol.run import run

    out = tmp_path / "folder"
    cfg = demo_config(
        out,
        "gradcam",
        shapes_root,
        overrides=[
            "data.format=folder",
            f"data.root={shapes_root / 'JPEGImages'}",
            "data.limit=9",
            "cam.targets=topk",
            "report.num_images=6",
        ],
    )
    run(cfg)
    page = (out / "report.html").read_text()
    assert _tiles(page) == 6
    assert "Highest box score (2)" in page and "Lowest box score (2)" in page
    assert "ground truth" not in page and "IoU" not in re.sub(r"<table.*?</table>", "", page)
