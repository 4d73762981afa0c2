"""Never lose a run: kills at exact points, resumes, stale folders, finished runs."""

from __future__ import annotations

import json
import os
import signal

import pytest

from wsol.apps.demo import DEMO_CONFIG
from wsol.cli import EXIT_OK, EXIT_USAGE


def _args(shapes_root, out, *extra):
    # 24 images, 4 per batch, a chunk every 8 images, 3 chunks.
    return [
        "-q",
        "run",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=test",
        f"out={out}",
        "cam.batch_size=4",
        "chunk_images=8",
        "report.num_images=2",
        *extra,
    ]


@pytest.fixture(scope="module")
def _wsol(wsol_processes):
    """Each case runs wsol in processes of its own, some of them killed and resumed."""

    def wsol(args, fault=None):
        env = {k: v for k, v in os.environ.items() if k != "WSOL_FAULT"}
        if fault:
            env["WSOL_FAULT"] = fault
        return wsol_processes.run(args, env=env, timeout=600)

    return wsol


@pytest.fixture(scope="module")
def reference(shapes_root, tmp_path_factory, _wsol):
    out = tmp_path_factory.mktemp("ref") / "run"
    p = _wsol(_args(shapes_root, out))
    assert p.returncode == EXIT_OK, p.stderr
    return out


@pytest.mark.parametrize(
    "fault, chunks_before",
    [
        ("batch:0", 0),  # during the first chunk
        ("chunk:0", 1),  # between chunks, right after the first
        ("batch:4", 2),  # inside the third chunk
        ("atomic:pseudo_labels.json", 3),  # while writing the final file (temp written)
        ("final:pseudo_labels.json", 3),  # final file written, metrics not yet
        ("atomic:metrics.json", 3),  # while writing the finished marker
    ],
)
def test_killed_run_resumes_to_identical_output(
    shapes_root, tmp_path, reference, _wsol, fault, chunks_before
):
    out = tmp_path / "run"
    killed = _wsol(_args(shapes_root, out), fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "metrics.json").exists()
    chunks = sorted((out / "chunks").glob("chunk_*.json"))
    assert len(chunks) == chunks_before
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in chunks}

    resumed = _wsol([a for a in _args(shapes_root, out) if a != "-q"])  # with its console
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert f"resuming the run in {out}: {8 * chunks_before} of 24 images were done" in (
        resumed.stderr
    )
    # Finished chunks were not redone: same bytes, never rewritten.
    for name, (data, mtime) in before.items():
        p = out / "chunks" / name
        assert p.read_bytes() == data and p.stat().st_mtime_ns == mtime
    assert (out / "pseudo_labels.json").read_bytes() == (
        reference / "pseudo_labels.json"
    ).read_bytes()
    ref_metrics = json.loads((reference / "metrics.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("corloc", "maxboxacc", "maxboxacc_v2", "pxap", "coco_ap", "num_images"):
        assert metrics[key] == ref_metrics[key], key
    assert not list(out.glob(".*.tmp")) and not list((out / "chunks").glob(".*.tmp"))


def test_finished_run_is_refused_then_overwritten(shapes_root, reference, _wsol):
    p = _wsol(_args(shapes_root, reference))
    assert p.returncode == EXIT_USAGE and "finished run" in p.stderr
    assert "--overwrite" in p.stderr


@pytest.mark.parametrize("change", ["boxes.threshold=0.5", "data.split=val"])
def test_changed_config_or_dataset_is_refused(shapes_root, tmp_path, _wsol, change):
    out = tmp_path / "run"
    assert _wsol(_args(shapes_root, out), fault="chunk:0").returncode == -signal.SIGKILL
    p = _wsol(_args(shapes_root, out, change))
    assert p.returncode == EXIT_USAGE
    assert "different config or dataset" in p.stderr
    # Nothing was touched: the partial run can still be resumed as it was.
    assert _wsol(_args(shapes_root, out)).returncode == EXIT_OK


def test_neutral_keys_do_not_block_a_resume(shapes_root, tmp_path, _wsol):
    out = tmp_path / "run"
    assert _wsol(_args(shapes_root, out), fault="chunk:0").returncode == -signal.SIGKILL
    p = _wsol(_args(shapes_root, out, "report.enabled=false"))
    assert p.returncode == EXIT_OK, p.stderr


def test_foreign_files_are_not_overwritten(shapes_root, tmp_path, _wsol):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    p = _wsol(_args(shapes_root, out))
    assert p.returncode == EXIT_USAGE and "no resumable run" in p.stderr
    assert (out / "metrics.json").read_text() == "{}"
