"""The report of whole runs: with GT (best, worst, random) and without (a folder)."""

from __future__ import annotations

import pytest

from tests.report.page import Page
from wsol.apps.demo import demo_config


@pytest.mark.e2e
def test_run_report_shows_num_images_images_one_tile_each(tmp_path, shapes_root):
    from wsol.run import run

    out = tmp_path / "gt"
    run(
        demo_config(out, "gradcam", shapes_root, overrides=["data.limit=16", "report.num_images=7"])
    )
    page = Page.load(out / "report.html")
    srcs = page.attrs("img", "src")
    assert page.count("figure") == 7 and page.count("img") == 7
    assert len(srcs) == 7 and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert all(len(list(f.iter("img"))) == 1 for f in page.elements("figure"))  # one each
    for part in ("Best (2)", "Worst (2)", "Random (3)", "Per class"):
        assert part in page.headings(), part
    assert "ground truth" in page.text
    assert not (out / "overlays").exists()
    assert "fraction 0.35 of each map" in page.text


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
    page = Page.load(out / "report.html")
    assert page.count("figure") == 6
    assert {"Highest box score (2)", "Lowest box score (2)"} <= set(page.headings())
    assert "ground truth" not in page.text and "IoU" not in page.text_without("table")
    captions = page.texts("figcaption")
    assert len(captions) == 6 and sum("top box score" in c for c in captions) >= 4
