"""The training loop: reproducible, resumable after a kill, self-describing checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    """TINY in this process, decoding in it too: forking a decoding process per loader
    for 48 images in memory costs the unit tier seconds. The commands (``TINY_ARGS``)
    keep the automatic one, as a user's run does."""
    settings = {**TINY, "data.num_workers": 0, "out": str(out), **more}
    return load_config(REPO / "configs" / "demo_train.yaml", settings, cls=TrainConfig)


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


def _train_cli(processes, args, fault=None, trace=None):
    """``wsol -q train configs/demo_train.yaml *args`` in a process of its own."""
    env = dict(os.environ)
    for key in ("WSOL_FAULT", "WSOL_FAULT_TRACE"):
        env.pop(key, None)
    if fault:
        env["WSOL_FAULT"] = fault
    if trace:
        env["WSOL_FAULT_TRACE"] = str(trace)
    cmd = ["-q", "train", str(REPO / "configs" / "demo_train.yaml")]
    return processes.run([*cmd, *args], env=env)


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, wsol_processes):
    def _cli(out, *extra, fault=None):
        args = [*TINY_ARGS, "train.epochs=3", f"out={out}", *extra]
        return _train_cli(wsol_processes, args, fault=fault)

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


# --- Issue 23: no exit 0 with a useless model; every kill and full disk resumes ----------


def _folder(tmp_path, labels: dict[str, list[str]], missing=(), corrupt=()):
    """A folder dataset of 64 x 64 noise images with a labels file; names in ``missing``
    get no file, those in ``corrupt`` a file that is no image."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in labels:
        if name in corrupt:
            (root / name).write_bytes(b"not an image")
        elif name not in missing:
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(root / name)
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    return [
        "data.format=folder",
        f"data.root={root}",
        f"data.labels_file={tmp_path / 'labels.json'}",
        "model.arch=shapes_net",
        "model.weights=none",
        "model.input_size=[64, 64]",
        "train.epochs=1",
        "train.batch_size=4",
        "train.threads=1",
        f"out={tmp_path / 'out'}",
    ]


def _two_classes(n=20):
    return {f"{i}.png": ["circle" if i % 2 else "square"] for i in range(n)}


def test_no_readable_image_is_refused_in_one_line(tmp_path, capsys):
    from wsol.cli import main

    labels = _two_classes()
    args = _folder(tmp_path, labels, missing=set(labels))
    code = main(["-q", "train", str(REPO / "configs" / "demo_train.yaml"), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(
        "wsol: error: 20 of 20 images could not be read: file not found (20, e.g."
    )
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_images_that_open_but_never_decode_are_refused_before_a_checkpoint(tmp_path):
    from wsol.data import DataError

    labels = _two_classes()
    args = _folder(tmp_path, labels, corrupt=set(labels))
    cfg = load_config(REPO / "configs" / "demo_train.yaml", args, cls=TrainConfig)
    # (the last two of 18 training images fall in no batch of 4: they are never read)
    with pytest.raises(
        DataError,
        match="no training image could be decoded in epoch 1; 18 of 20 images could not "
        "be read: cannot decode",
    ):
        train(cfg)
    assert not (tmp_path / "out" / "model.pt").exists()


def test_a_half_readable_set_trains_and_says_what_was_lost(tmp_path, capsys):
    from wsol.cli import main

    labels = _two_classes(24)
    args = _folder(tmp_path, labels, missing={"1.png", "2.png", "3.png"}, corrupt={"4.png"})
    code = main(["-q", "train", str(REPO / "configs" / "demo_train.yaml"), *args])
    out = capsys.readouterr().out
    assert code == 0
    m = json.loads((tmp_path / "out" / "train_metrics.json").read_text())
    assert m["num_listed"] == 24 and m["num_failed"] == 4
    assert m["num_train"] + m["num_val"] == 21  # the three missing files are known at once
    assert m["failure_reasons"] == {
        "file not found": 3,
        "cannot decode image: not an image format PIL can read": 1,
    }
    assert [f.rsplit("/", 1)[1] for f in m["failures"]] == [
        "1.png: file not found",
        "2.png: file not found",
        "3.png: file not found",
        "4.png: cannot decode image: not an image format PIL can read",
    ]
    assert "4 of 24 images could not be read and were left out (file not found: 3" in out


def test_one_class_with_no_negative_is_refused_saying_what_is_needed(tmp_path):
    from wsol.data import DataError

    labels = {f"{i}.png": ["circle"] for i in range(12)}
    args = _folder(tmp_path, labels)
    cfg = load_config(REPO / "configs" / "demo_train.yaml", args, cls=TrainConfig)
    with pytest.raises(DataError, match="one class with no negative image cannot be learned") as e:
        train(cfg)
    assert "images without 'circle'" in str(e.value) and "second class" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_one_class_with_negatives_trains_as_a_binary_classifier(tmp_path):
    labels = {f"{i}.png": ["circle"] if i % 2 else [] for i in range(12)}
    args = _folder(tmp_path, labels)
    cfg = load_config(REPO / "configs" / "demo_train.yaml", args, cls=TrainConfig)
    r = train(cfg)
    assert r.metrics["classes"] == ["circle"] and r.metrics["labels"] == "multi"


def _train_args(out):
    return [*TINY_ARGS, "shapes.num_images=32", "shapes.val_images=8", f"out={out}"]


@pytest.fixture(scope="module")
def straight_training(tmp_path_factory, wsol_processes):
    """One uninterrupted training of :func:`_train_args`, and the fault points it passed:
    what every interrupted training below must end as."""
    out = tmp_path_factory.mktemp("straight") / "out"
    trace = out.parent / "points.txt"
    done = _train_cli(wsol_processes, _train_args(out), trace=trace)
    assert done.returncode == 0, done.stderr
    return out, trace.read_text().split()


def _same_run(a, b) -> None:
    """Two training folders hold the same weights and the same history."""
    for name in ("model.pt", "last.pt"):
        assert _same(_weights(a / name), _weights(b / name)), name
    timing = ("seconds", "train_img_per_s")
    rows = [
        [
            {k: v for k, v in r.items() if k not in timing}
            for r in json.loads(p.read_text())["epochs"]
        ]
        for p in (a / "train_metrics.json", b / "train_metrics.json")
    ]
    assert rows[0] == rows[1]
    saved = torch.load(b / "model.pt", map_location="cpu", weights_only=True)
    best = json.loads((b / "train_metrics.json").read_text())["best"]["epoch"]
    assert saved["train_metrics"]["epoch"] == best
    assert not list(b.glob(".*.tmp"))


@pytest.mark.slow
def test_a_kill_at_every_write_resumes_to_the_same_model(
    tmp_path, straight_training, wsol_processes
):
    straight, points = straight_training
    assert {"atomic:last.pt#2", "atomic:model.pt#1", "atomic:train_metrics.json#2"} <= set(points)
    for k, point in enumerate(points):
        out = tmp_path / f"k{k}"
        killed = _train_cli(wsol_processes, _train_args(out), fault=point)
        assert killed.returncode == -9, (point, killed.stderr)
        resumed = _train_cli(wsol_processes, _train_args(out))  # the same command
        assert resumed.returncode == 0, (point, resumed.stderr)
        _same_run(straight, out)
    print(f"killed at and resumed from {len(points)} fault points: {' '.join(points)}")


@pytest.mark.slow
def test_a_full_disk_at_every_write_is_one_line_and_resumes(
    tmp_path, monkeypatch, capsys, straight_training
):
    import errno

    from wsol import fileio
    from wsol.cli import main

    straight, _ = straight_training
    cmd = ["-q", "train", str(REPO / "configs" / "demo_train.yaml")]
    real_fsync = fileio.os.fsync
    calls = {"n": 0, "fail_at": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    assert main([*cmd, *_train_args(tmp_path / "count")]) == 0
    total = calls["n"]  # every atomic write fsyncs once: config, and 3 files per epoch
    assert total >= 7
    capsys.readouterr()
    for k in range(1, total + 1):
        out = tmp_path / f"full{k}"
        calls.update(n=0, fail_at=k)
        assert main([*cmd, *_train_args(out)]) == 1, k
        err = capsys.readouterr().err
        assert err.startswith("wsol: error: disk full while writing ") and err.count("\n") == 1, err
        assert "free space and run the same command again to resume" in err
        calls.update(n=0, fail_at=0)
        assert main([*cmd, *_train_args(out)]) == 0, k
        _same_run(straight, out)
    print(f"a full disk at each of {total} writes, each resumed")


_FULL_DISK = """
set -u
mount -t tmpfs -o size={size} tmpfs {mnt}
{train} > {log}.1 2>&1; echo $? > {log}.rc1
mount -o remount,size=64m {mnt}
{train} > {log}.2 2>&1; echo $? > {log}.rc2
cp -r {mnt}/out {dest}
"""


def _can_mount_tmpfs(tmp_path) -> bool:
    probe = f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", probe], timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("size", ["600k", "3000k", "3400k"])  # last.pt, model.pt, epoch 2
def test_a_real_full_disk_during_training_is_one_line_and_resumes(
    tmp_path, straight_training, size
):
    """A small tmpfs (in a user and mount namespace) fills up in torch.save."""
    import shlex

    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("no user namespace to mount a small tmpfs in")
    straight, _ = straight_training
    mnt, log = tmp_path / "mnt", tmp_path / "log"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "wsol", "-q", "train", str(REPO / "configs" / "demo_train.yaml")]
    train_line = f"PYTHONPATH={REPO} " + shlex.join([*cmd, *_train_args(mnt / "out")])
    script = _FULL_DISK.format(
        size=size, mnt=mnt, train=train_line, log=log, dest=tmp_path / "resumed"
    )
    subprocess.run(["unshare", "-rm", "bash", "-c", script], timeout=600, check=True)
    first = Path(f"{log}.1").read_text()
    assert Path(f"{log}.rc1").read_text().strip() == "1", first
    assert first.startswith("wsol: error: disk full while writing ") and first.count("\n") == 1
    assert Path(f"{log}.rc2").read_text().strip() == "0", Path(f"{log}.2").read_text()
    _same_run(straight, tmp_path / "resumed")


@pytest.mark.e2e  # forks a decoding worker per loader, five trainings
def test_sigterm_as_any_loader_starts_stops_cleanly(tmp_path, monkeypatch, capfd):
    """SIGTERM lands while a training or validation loader starts its worker, at each
    such start of a 1-epoch training (every epoch starts both the same way): exit 143
    with the resume line, and no traceback from a half-built iterator's finalizer (it
    once printed "Exception ignored")."""
    import gc
    import signal

    from wsol.cli import main

    real_queue = torch.multiprocessing.Queue
    starts = {"n": 0, "signal_at": 0}

    def queue(*args, **kwargs):
        starts["n"] += 1
        if starts["n"] == starts["signal_at"]:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_queue(*args, **kwargs)

    monkeypatch.setattr(torch.multiprocessing, "Queue", queue)
    cmd = ["-q", "train", str(REPO / "configs" / "demo_train.yaml"), *TINY_ARGS]
    cmd += ["train.epochs=1", "data.num_workers=1"]
    assert main([*cmd, f"out={tmp_path / 'all'}"]) == 0
    total = starts["n"]
    assert total == 4  # two queues (results, the worker's indices) per loader, two loaders
    capfd.readouterr()
    for k in range(1, total + 1):
        starts.update(n=0, signal_at=k)
        code = main([*cmd, f"out={tmp_path / str(k)}"])
        gc.collect()
        err = capfd.readouterr().err
        assert code == 143, (k, err)
        assert "interrupted; what was finished is on disk, and this resumes it:" in err, k
        assert "Traceback" not in err and "Exception ignored" not in err, (k, err)
