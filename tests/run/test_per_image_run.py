"""``eval.per_image``: a run's per-image rows add up to its metrics.json, to the last
digit, and survive a kill and a resume unchanged."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import reference_config
from wsol.cli import EXIT_OK
from wsol.evaluate.per_image import PER_IMAGE_FILE, load_per_image, metrics_from_rows
from wsol.run import run

pytestmark = pytest.mark.e2e

SAME = (
    "maxboxacc",
    "maxboxacc_threshold",
    "maxboxacc_v2",
    "maxboxacc_v2_iou30",
    "maxboxacc_v2_iou50",
    "maxboxacc_v2_iou70",
    "maxboxacc_v2_iou70_threshold",
    "corloc",
    "gt_known_loc",
    "top1_loc",
    "num_pairs",
    "pxap",
)


def _run_args(out: Path, *extra: str) -> list[str]:
    # 24 images, 4 per batch, a chunk every 8 images: 3 chunks.
    return [
        f"out={out}",
        "cam.batch_size=4",
        "chunk_images=8",
        "report.enabled=false",
        "export.formats=[coco]",
        "eval.per_image=true",
        *extra,
    ]


@pytest.fixture(scope="module")
def per_image_run(shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("per_image") / "run"
    return run(reference_config(shapes_root, out, *_run_args(out)))


def test_rows_give_metrics_json_to_the_last_digit(per_image_run):
    out = per_image_run.out_dir
    metrics = json.loads((out / "metrics.json").read_text())
    rows = load_per_image(out / PER_IMAGE_FILE)
    scored = [s for s in per_image_run.dataset.samples if (~s.ignore).any()]
    assert list(rows.keys) == [os.path.realpath(s.path) for s in scored]
    assert rows.v2.shape == (len(scored), len(rows.thresholds), 3)
    assert rows.gt_known is not None and rows.pxap_tp is not None
    from_rows = metrics_from_rows(rows)
    for key in SAME:
        assert key in metrics, key
        assert from_rows[key] == metrics[key], key  # exact: not approx
    # Not a tautology: other images give other numbers.
    assert metrics_from_rows(rows, np.arange(len(rows) // 2))["maxboxacc"] != metrics["maxboxacc"]


def test_a_run_without_per_image_writes_no_rows(reference_run):
    assert not (reference_run.out_dir / PER_IMAGE_FILE).exists()


def test_killed_run_resumes_to_the_same_rows(shapes_root, tmp_path, per_image_run, wsol_processes):
    from wsol.config import dump_config

    out = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(dump_config(reference_config(shapes_root, out, *_run_args(out))))
    args = ["-q", "run", str(config)]
    env = {**os.environ, "WSOL_FAULT": "chunk:1"}  # killed after two chunks of three
    killed = wsol_processes.run(args, env=env, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / PER_IMAGE_FILE).exists()
    env.pop("WSOL_FAULT")
    resumed = wsol_processes.run(args, env=env, timeout=600)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    a = load_per_image(per_image_run.out_dir / PER_IMAGE_FILE)
    b = load_per_image(out / PER_IMAGE_FILE)
    for name, value in a.__dict__.items():
        assert np.array_equal(value, getattr(b, name)), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics_from_rows(b)["maxboxacc_v2"] == metrics["maxboxacc_v2"]
