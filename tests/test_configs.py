"""The shipped configs load, and the recommended ones localize real photos as promised.

The numbers are issue targets and measured values on ../shared/data; the settings were
chosen on the other dataset (see each config's header), never on the images scored here.
"""

from __future__ import annotations

import pytest

from tests.helpers import REPO
from wsol.config import Config, load_config
from wsol.run import run
from wsol.run.grid_search import candidates, load_grid
from wsol.train_config import TrainConfig

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    train = path.name.endswith("_train.yaml") or path.name.startswith("train_")
    load_config(path, cls=TrainConfig if train else Config)


def test_the_search_grid_builds_every_candidate():
    grid = load_grid(REPO / "configs" / "search" / "offline.yaml")
    combos = candidates(grid)
    assert len(combos) == 27
    from wsol.config import with_overrides

    base = load_config(REPO / "configs" / "voc_lite0.yaml")
    assert all(with_overrides(base, c) for c in combos)


@pytest.mark.parametrize(("name", "n"), [("methods.yaml", 12), ("offline.yaml", 36)])
def test_the_compare_grids_build_every_candidate(name, n):
    from wsol.config import with_overrides
    from wsol.registry import registered_names

    combos = candidates(load_grid(REPO / "configs" / "compare" / name))
    assert len(combos) == n
    base = load_config(REPO / "configs" / "voc_lite0.yaml")
    assert all(with_overrides(base, c) for c in combos)
    if name == "methods.yaml":  # every built-in method, once
        assert sorted(c["cam.method"] for c in combos) == sorted(registered_names("cam.method"))
        # Score-CAM on a channel budget: all 1,280 channels would take ~100 min on a CPU
        (score,) = [with_overrides(base, c) for c in combos if c["cam.method"] == "scorecam"]
        assert 0 < score.cam.score_channels < 1280


def _voc(config, voc_root, tmp_path):
    return run(
        REPO / "configs" / config,
        {
            "data.root": str(voc_root),
            "data.split": "sample",
            "out": str(tmp_path / config),
            "report.enabled": False,
        },
    )


@pytest.mark.slow
def test_voc_recommended_config_on_the_voc_sample(voc_root, tmp_path):
    m = _voc("voc.yaml", voc_root, tmp_path).metrics
    assert m["num_images"] == 100 and m["num_pairs"] == 149  # all 20 classes scored
    assert m["maxboxacc_v2"] >= 0.42 and m["corloc"] >= 0.35
    assert m["whole_image_boxes"] < 0.2


@pytest.mark.slow
def test_voc_fast_config_on_the_voc_sample(voc_root, tmp_path):
    m = _voc("voc_lite0.yaml", voc_root, tmp_path).metrics
    assert m["corloc"] >= 0.30 and m["whole_image_boxes"] < 0.2
    assert m["cut"] == "Otsu's threshold of each map"


@pytest.mark.slow
def test_coco_recommended_config_on_coco128(coco_root, tmp_path):
    m = run(
        REPO / "configs" / "coco.yaml",
        {
            "data.root": str(coco_root / "train2017"),
            "data.ann_file": str(coco_root / "annotations" / "instances_train2017.json"),
            "out": str(tmp_path / "coco"),
            "report.enabled": False,
        },
    ).metrics
    # Below the 0.30 (see the README); this guards what the config reaches.
    assert m["maxboxacc_v2"] >= 0.28 and m["whole_image_boxes"] < 0.2
