"""The training loop: reproducible, resumable after a kill, self-describing checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import REPO
from wsol.config import load_config
from wsol.errors import UsageError
from wsol.models import build_model
from wsol.train import train
from wsol.train_config import TrainConfig

TINY = {
    "data.format": "shapes",
    "shapes.num_images": 48,
    "shapes.val_images": 12,
    "shapes.image_size": 64,
    "model.arch": "shapes_net",
    "model.weights": "none",
    "train.epochs": 2,
    "train.batch_size": 16,
    "train.threads": 1,
}
TINY_ARGS = [f"{k}={v}" for k, v in TINY.items()]


def tiny(out, **more) -> TrainConfig:
    return load_config(
        REPO / "configs" / "demo_train.yaml", {**TINY, "out": str(out), **more}, cls=TrainConfig
    )


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_run_is_reproducible_and_loadable(tmp_path):
    events = []
    r1 = train(tiny(tmp_path / "a"), lambda e, d, t, i: events.append((e, d, t)))
    train(tiny(tmp_path / "b"))
    assert [e for e in events if e[0] == "train"] == [("train", s, 6) for s in range(1, 7)]
    assert [e for e in events if e[0] == "epoch"] == [("epoch", 1, 2), ("epoch", 2, 2)]
    assert _same(_weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt"))
    m = json.loads((tmp_path / "a" / "train_metrics.json").read_text())
    assert m == json.loads(json.dumps(r1.metrics))
    assert [row["epoch"] for row in m["epochs"]] == [1, 2]
    assert set(m["epochs"][0]["val_ap"]) == {
        "circle",
        "square",
        "triangle",
        "star",
        "cross",
        "ring",
    }
    assert 0.0 <= m["best"]["val_map"] <= 1.0 and m["labels"] == "multi" and m["loss"] == "bce"
    spec = build_model("", str(r1.checkpoint))
    assert spec.input_size == (64, 64) and len(spec.class_names) == 6 and spec.multi_label
    assert (spec.target_layer, spec.cam_layer, spec.fc_layer) == ("layer3", "layer4", "fc")


def test_the_best_epoch_is_kept(tmp_path):
    r = train(tiny(tmp_path, **{"train.epochs": 3}))
    rows = r.metrics["epochs"]
    best = max(rows, key=lambda row: row["val_map"])
    assert r.metrics["best"]["epoch"] == best["epoch"]
    saved = torch.load(r.checkpoint, map_location="cpu", weights_only=True)
    assert saved["train_metrics"]["epoch"] == best["epoch"]


def _cli(out, *extra, fault=None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WSOL_FAULT", None)
    if fault:
        env["WSOL_FAULT"] = fault
    cmd = [sys.executable, "-m", "wsol", "-q", "train", str(REPO / "configs" / "demo_train.yaml")]
    return subprocess.run(
        [*cmd, *TINY_ARGS, "train.epochs=3", f"out={out}", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    straight = _cli(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    killed = _cli(tmp_path / "killed", fault="train:epoch2:step2")
    assert killed.returncode == -9  # SIGKILL in the middle of epoch 2
    saved = torch.load(tmp_path / "killed" / "last.pt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 1
    resumed = _cli(tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("model.pt", "last.pt"):
        assert _same(_weights(tmp_path / "straight" / name), _weights(tmp_path / "killed" / name))
    a = json.loads((tmp_path / "straight" / "train_metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "train_metrics.json").read_text())
    timing = ("seconds", "train_img_per_s")
    rows_a = [{k: v for k, v in r.items() if k not in timing} for r in a["epochs"]]
    rows_b = [{k: v for k, v in r.items() if k not in timing} for r in b["epochs"]]
    assert rows_a == rows_b
    # The command line refuses other settings in that folder: one line, exit 2.
    other = _cli(tmp_path / "killed", "train.lr=0.5")
    assert other.returncode == 2 and "other settings (train.lr)" in other.stderr
    assert "Traceback" not in other.stderr


def test_other_settings_in_the_same_out_are_refused(tmp_path):
    train(tiny(tmp_path))
    with pytest.raises(UsageError, match="other settings.*train.lr"):
        train(tiny(tmp_path, **{"train.lr": 0.01}))
    r = train(tiny(tmp_path, **{"train.lr": 0.01}), overwrite=True)
    assert r.resumed_epochs == 0 and r.metrics["epochs"][-1]["epoch"] == 2


def test_a_finished_run_is_not_redone(tmp_path):
    train(tiny(tmp_path))
    before = (tmp_path / "model.pt").stat().st_mtime_ns
    events = []
    r = train(tiny(tmp_path), lambda e, d, t, i: events.append(e))
    assert r.resumed_epochs == 2 and "train" not in events
    assert (tmp_path / "model.pt").stat().st_mtime_ns == before


def test_a_model_pt_without_state_is_not_replaced(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"mine")
    with pytest.raises(UsageError, match="no last.pt"):
        train(tiny(tmp_path))
    assert (tmp_path / "model.pt").read_bytes() == b"mine"


def test_dilated_shapes_net_trains_and_runs_at_stride_4(tmp_path):
    r = train(tiny(tmp_path, **{"model.dilate_last": True, "train.epochs": 1}))
    spec = build_model("", str(r.checkpoint))
    feats = {}
    layer = dict(spec.net.named_modules())[spec.cam_layer]
    layer.register_forward_hook(lambda m, i, o: feats.update(shape=tuple(o.shape)))
    spec.net.eval()(torch.zeros(1, 3, 64, 64))
    assert feats["shape"][-2:] == (16, 16)


def test_bf16_autocast_trains_on_cpu_too(tmp_path):
    r = train(tiny(tmp_path, **{"train.amp": "bf16", "train.epochs": 1}))
    assert r.metrics["amp"] == "bfloat16"
    assert all(
        torch.isfinite(v).all() for v in _weights(r.checkpoint).values() if v.is_floating_point()
    )
