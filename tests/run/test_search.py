"""``wsol calibrate --search``: settings chosen on a boxed split, a config that runs."""

from __future__ import annotations

import json

import pytest

from wsol.apps.demo import DEMO_CONFIG
from wsol.config import ConfigError, load_config
from wsol.run import grid_search, run, search
from wsol.run.grid_search import candidates, parse_grid
from wsol.run.journal import RunExistsError

GRID = {"cam.method": ["gradcam", "cam"], "model.target_layer": ["layer3", "layer2"]}


def _cfg(root, out, split="val"):
    return load_config(
        DEMO_CONFIG,
        [f"data.root={root}", f"data.split={split}", f"out={out}", "model.weights=DEFAULT"],
    )


def test_grid_parsing_and_combinations():
    grid = parse_grid(["cam.method=[gradcam, cam]", "cam.flip=true", "cam.scales=[[1.0], [1, 2]]"])
    assert grid == {
        "cam.method": ["gradcam", "cam"],
        "cam.flip": [True],
        "cam.scales": [[1.0], [1, 2]],
    }
    assert len(candidates(grid)) == 4
    assert candidates(GRID)[1] == {"cam.method": "gradcam", "model.target_layer": "layer2"}
    with pytest.raises(ConfigError, match="key=\\[value"):
        parse_grid(["cam.method"])


@pytest.mark.e2e
def test_search_ranks_candidates_and_writes_a_runnable_best_config(tmp_path, shapes_root):
    out = tmp_path / "search"
    res = search(_cfg(shapes_root, out), GRID, rank_by="maxboxacc_v2")
    table = json.loads((out / "search.json").read_text())
    assert len(res.rows) == len(table["candidates"]) == 4 and table["best"] == res.best
    scores = [r["maxboxacc_v2"] for r in res.rows]
    assert scores[res.best] == max(scores)
    # Each candidate's cut maximizes maxboxacc (the default metric) at its own settings.
    assert all(r["maxboxacc"] >= 0 and 0 <= r["threshold"] <= 1 for r in res.rows)
    # The demo model localizes with Grad-CAM one block below the pooled layer (layer3).
    assert res.rows[res.best]["settings"] == {
        "cam.method": "gradcam",
        "model.target_layer": "layer3",
    }
    best = load_config(res.best_config)
    assert (best.cam.method, best.model.target_layer) == ("gradcam", "layer3")
    assert best.boxes.threshold_mode == "absolute"
    assert best.boxes.threshold == res.rows[res.best]["threshold"]
    # Applied as is to the held-out split.
    test = run(res.best_config, {"data.split": "test", "out": str(tmp_path / "test")})
    assert test.metrics["cut"] == f"absolute {best.boxes.threshold:g} on the min-max normalized map"


@pytest.mark.e2e
def test_search_resumes_and_refuses_another_search(tmp_path, shapes_root, monkeypatch):
    out = tmp_path / "search"
    search(_cfg(shapes_root, out), {"cam.method": ["gradcam"]})
    calls = []
    real = grid_search.calibrate_config
    monkeypatch.setattr(
        grid_search,
        "calibrate_config",
        lambda *a, **k: calls.append(a[0].cam.method) or real(*a, **k),
    )
    res = search(_cfg(shapes_root, out), {"cam.method": ["gradcam"]})
    assert calls == [] and len(res.rows) == 1  # nothing redone
    with pytest.raises(ConfigError, match="rank_by"):
        search(_cfg(shapes_root, out), {"cam.method": ["gradcam"]}, rank_by="corloc")
    with pytest.raises(RunExistsError, match="another search"):
        search(_cfg(shapes_root, out), {"cam.method": ["cam"]})
    search(_cfg(shapes_root, out), {"cam.method": ["cam"]}, overwrite=True)
    assert calls == ["cam"]
