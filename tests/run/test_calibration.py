"""``wsol calibrate`` run again after a kill or a full disk at any write ends with the
same ``calibration.json`` as a calibration never interrupted (issue 23)."""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest

from wsol.apps.demo import DEMO_CONFIG
from wsol.cli import EXIT_OK, main


def _args(shapes_root, out):
    # 8 images, 4 per batch and per chunk: two chunks.
    return [
        "-q",
        "calibrate",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=val",
        "data.limit=8",
        "cam.batch_size=4",
        "chunk_images=4",
        "report.enabled=false",
        "--per-class",
        f"out={out}",
    ]


def _cli(processes, args, fault=None, trace=None):
    """``wsol *args`` in a process of its own (killed at ``fault``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WSOL_FAULT", "WSOL_FAULT_TRACE")}
    if fault:
        env["WSOL_FAULT"] = fault
    if trace:
        env["WSOL_FAULT_TRACE"] = str(trace)
    return processes.run(args, env=env)


def _calibration(out) -> dict:
    return json.loads((out / "calibration.json").read_text())


@pytest.mark.e2e
def test_a_rerun_after_the_run_finished_writes_the_calibration(tmp_path, shapes_root, capsys):
    """As a kill (or a full disk) between the run's metrics.json and calibration.json
    leaves the folder: the same command writes calibration.json from the finished run."""
    straight = tmp_path / "straight"
    assert main(_args(shapes_root, straight)) == EXIT_OK
    expected = _calibration(straight)
    (straight / "calibration.json").unlink()
    before = (straight / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(_args(shapes_root, straight)) == EXIT_OK, capsys.readouterr().err
    assert _calibration(straight) == expected
    assert (straight / "metrics.json").stat().st_mtime_ns == before  # the run was not redone
    # ... and a finished calibration asked again answers the same, with another metric too
    assert main(_args(shapes_root, straight)) == EXIT_OK
    assert _calibration(straight) == expected
    assert main([*_args(shapes_root, straight), "--metric", "maxboxacc_v2"]) == EXIT_OK
    assert _calibration(straight)["metric"] == "maxboxacc_v2"


@pytest.mark.slow
def test_a_kill_at_every_write_resumes_to_the_same_calibration(
    tmp_path, shapes_root, capsys, wsol_processes
):
    straight = tmp_path / "straight"
    trace = tmp_path / "points.txt"
    assert _cli(wsol_processes, _args(shapes_root, straight), trace=trace).returncode == EXIT_OK
    points = trace.read_text().split()
    assert {"batch:0#1", "chunk:1#1", "atomic:metrics.json#1", "atomic:calibration.json#1"} <= set(
        points
    )
    for k, point in enumerate(points):
        out = tmp_path / f"k{k}"
        killed = _cli(wsol_processes, _args(shapes_root, out), fault=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        assert not (out / "calibration.json").exists()
        assert main(_args(shapes_root, out)) == EXIT_OK, (point, capsys.readouterr().err)
        assert _calibration(out)["per_class"] == _calibration(straight)["per_class"], point
        assert _calibration(out)["threshold"] == _calibration(straight)["threshold"], point
        assert not list(out.glob(".*.tmp")), point
    print(f"killed at and resumed from {len(points)} fault points: {' '.join(points)}")


@pytest.mark.slow
def test_a_full_disk_at_every_write_is_one_line_and_resumes(
    tmp_path, shapes_root, monkeypatch, capsys
):
    from wsol import fileio

    straight = tmp_path / "straight"
    real_fsync = fileio.os.fsync
    calls = {"n": 0, "fail_at": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    assert main(_args(shapes_root, straight)) == EXIT_OK
    total = calls["n"]  # one fsync per atomic write, calibration.json the last
    assert total >= 8
    capsys.readouterr()
    for k in range(1, total + 1):
        out = tmp_path / f"full{k}"
        calls.update(n=0, fail_at=k)
        assert main(_args(shapes_root, out)) == 1, k
        err = capsys.readouterr().err
        assert err.startswith("wsol: error: disk full while writing ") and err.count("\n") == 1
        calls.update(n=0, fail_at=0)
        assert main(_args(shapes_root, out)) == EXIT_OK, (k, capsys.readouterr().err)
        assert _calibration(out) == {
            **_calibration(straight),
            "images": _calibration(out)["images"],
        }
    print(f"a full disk at each of {total} writes, each resumed")
