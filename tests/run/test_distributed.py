"""Many processes (torchrun, gloo on the CPU): shards, a deterministic merge, a killed rank."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.helpers import REPO
from wsol.apps.demo import DEMO_CONFIG
from wsol.cli import EXIT_OK, EXIT_USAGE
from wsol.run.distributed import _other_world_size, shard_bounds

# Compared byte for byte with a one-process run; metrics.json apart from its timing.
SAME_FILES = ("pseudo_labels.json", "failures.jsonl", "sweep.json", "metrics_per_class.json")
TIMING_KEYS = {"images_per_second", "stage_seconds"}  # rank 0 times its own stages
_DIST_ENV = ("WSOL_FAULT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.mark.parametrize(
    "n, world, batch, expected",
    [
        (24, 2, 4, [(0, 12), (12, 24)]),
        (25, 2, 4, [(0, 12), (12, 25)]),  # 7 batches: 3 and 4, the last one short
        (10, 3, 4, [(0, 4), (4, 8), (8, 10)]),
        (10, 4, 4, [(0, 0), (0, 4), (4, 8), (8, 10)]),  # 3 batches, 4 ranks: one gets none
        (5, 1, 64, [(0, 5)]),
        (0, 2, 4, [(0, 0), (0, 0)]),
    ],
)
def test_shard_bounds_by_hand(n, world, batch, expected):
    assert shard_bounds(n, world, batch) == expected


@pytest.mark.parametrize("n", [0, 1, 7, 64, 1001])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("batch", [1, 4, 64])
def test_shards_are_whole_batches_in_order(n, world, batch):
    shards = shard_bounds(n, world, batch)
    assert len(shards) == world
    assert shards[0][0] == 0 and shards[-1][1] == n
    for (_, end), (start, _) in itertools.pairwise(shards):
        assert end == start  # contiguous, in rank order: the merge is a concatenation
    batches = [-(-(e - s) // batch) for s, e in shards]
    assert all(s % batch == 0 for s, e in shards if e > s)  # a one-process run's batches
    assert max(batches) - min(batches) <= 1


def test_shard_request_is_checked():
    with pytest.raises(ValueError):
        shard_bounds(10, 0, 4)


@pytest.mark.e2e  # a Python process each
@pytest.mark.parametrize(
    "fault, rank, killed",
    [("here@1", "0", False), ("here@1", "1", True), ("here", "1", True), ("here", "0", True)],
)
def test_fault_point_can_aim_at_one_rank(fault, rank, killed):
    env = {**os.environ, "WSOL_FAULT": fault, "RANK": rank}
    code = "from wsol.fileio import fault_point; fault_point('here'); fault_point('there')"
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, timeout=60)
    assert p.returncode == (-signal.SIGKILL if killed else 0)


def test_another_world_size_is_named_in_the_refusal(tmp_path):
    fp = {"config": "c", "image list": "i", "world size": "2"}
    (tmp_path / "run_state.json").write_text(json.dumps({"fingerprint": fp}))
    message = _other_world_size(tmp_path, {**fp, "world size": "3"})
    assert "split across 2 process(es)" in message and "--overwrite" in message
    assert _other_world_size(tmp_path, {**fp, "config": "d", "world size": "3"}) is None
    assert _other_world_size(tmp_path, fp) is None


def _args(shapes_root, out, *extra):
    # 24 images, 4 per batch, a chunk every 4 images: 3 chunks per rank of 2.
    return [
        "run",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=test",
        f"out={out}",
        "model.weights=DEFAULT",
        "cam.batch_size=4",
        "chunk_images=4",
        "report.enabled=false",
        *extra,
    ]


def _env(fault=None):
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores
    if fault:
        env["WSOL_FAULT"] = fault
    return env


@pytest.fixture(scope="module")
def _wsol(wsol_processes):
    """One process's ``wsol *args``, as a torchrun rank's environment would be but alone."""

    def wsol(args, fault=None):
        return wsol_processes.run(args, env=_env(fault))

    return wsol


def _torchrun(args, nproc=2, fault=None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    return subprocess.run(
        [*launcher, f"--master_port={port}", "-m", "wsol", *args],
        cwd=REPO,
        env=_env(fault),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_same_outputs(out, reference):
    for name in SAME_FILES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    metrics = json.loads((out / "metrics.json").read_text())
    ref = json.loads((reference / "metrics.json").read_text())
    assert set(metrics) - TIMING_KEYS == set(ref) - TIMING_KEYS
    assert {k: v for k, v in metrics.items() if k not in TIMING_KEYS} == {
        k: v for k, v in ref.items() if k not in TIMING_KEYS
    }
    assert metrics["num_images"] == 24 and metrics["num_boxes_found"] > 0


@pytest.fixture(scope="module")
def reference(shapes_root, tmp_path_factory, _wsol):
    out = tmp_path_factory.mktemp("ref") / "run"
    p = _wsol(["-q", *_args(shapes_root, out)])
    assert p.returncode == EXIT_OK, p.stderr
    return out


@pytest.mark.slow
def test_two_processes_match_one(shapes_root, tmp_path, reference, _wsol):
    out = tmp_path / "run"
    p = _torchrun(_args(shapes_root, out))
    assert p.returncode == EXIT_OK, p.stderr
    _assert_same_outputs(out, reference)
    for r in (0, 1):
        chunks = sorted((out / "ranks" / str(r) / "chunks").glob("chunk_*.json"))
        assert len(chunks) == 3  # each rank journaled its 12 images
    assert not (out / "chunks").exists()
    # Rank 0 owns the console: one summary, one set of status lines.
    assert p.stdout.count("Outputs in") == 1
    assert p.stderr.count("wsol: reading the voc dataset") == 1
    assert "merging the 2 shards" in p.stderr

    # One process with --overwrite takes the folder back, rank folders included.
    again = _wsol(["-q", *_args(shapes_root, out), "--overwrite"])
    assert again.returncode == EXIT_OK, again.stderr
    assert not (out / "ranks").exists()
    _assert_same_outputs(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault, killed, chunks_done",
    [
        ("chunk:0@1", 1, 1),  # rank 1 after its first chunk
        ("chunk:1@0", 0, 2),  # rank 0 (which holds out's lock) after its second
        ("final:pseudo_labels.json@0", 0, 3),  # rank 0 merging: every shard was done
    ],
)
def test_killed_rank_resumes_to_identical_output(
    shapes_root, tmp_path, reference, _wsol, fault, killed, chunks_done
):
    out = tmp_path / "run"
    p = _torchrun(["-q", *_args(shapes_root, out)], fault=fault)
    assert p.returncode != EXIT_OK
    assert not (out / "metrics.json").exists()
    own = sorted((out / "ranks" / str(killed) / "chunks").glob("chunk_*.json"))
    assert len(own) == chunks_done
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "ranks").rglob("chunk_*.json")
    }

    # One process, or another number of them, would shard differently: refused.
    alone = _wsol(_args(shapes_root, out))
    assert alone.returncode == EXIT_USAGE and "world size" in alone.stderr

    resumed = _torchrun(_args(shapes_root, out))  # the same command, with its console
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert "resuming the run in" in resumed.stderr
    for path, (data, mtime) in before.items():  # done chunks of both ranks were kept
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, path
    _assert_same_outputs(out, reference)
