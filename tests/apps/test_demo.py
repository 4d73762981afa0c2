"""The demo end to end: the committed checkpoint must localize its held-out split."""

from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from wsol.apps.demo import TEST_IMAGES, run_demo


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    results = run_demo(tmp_path)
    grad, cam = results["gradcam"].metrics, results["cam"].metrics
    rendered = sorted((tmp_path / "data" / "shapes" / "JPEGImages").glob("*.jpg"))
    assert len(rendered) == TEST_IMAGES == 300  # the README's demo: 300 held-out images
    assert grad["num_images"] == len(rendered) and grad["num_failed"] == 0
    assert grad["corloc"] >= 0.80  # the bar for Grad-CAM on the held-out split
    assert cam["num_images"] == TEST_IMAGES and 0.0 < cam["corloc"] < grad["corloc"]
    for name in ("pseudo_labels.json", "metrics.json", "config.yaml", "report.html"):
        assert (tmp_path / name).is_file() and (tmp_path / "cam" / name).is_file()
    coco = COCO(str(tmp_path / "pseudo_labels.json"))
    assert len(coco.getImgIds()) == TEST_IMAGES and len(coco.getAnnIds()) >= TEST_IMAGES
    assert json.loads((tmp_path / "metrics.json").read_text()) == grad
