"""``wsol bench``: the glue pipeline it compares against, its output, and the tools
beside it. Nothing here times anything against a target (speed lives in docs/benchmarks.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.util import find_spec

import cv2
import numpy as np
import pytest

from tests.helpers import REPO
from wsol.apps.bench import image_folder, list_images, row_names, write_jpegs
from wsol.apps.bench.glue import largest_box
from wsol.cli import EXIT_OK, main
from wsol.cli.bench import format_bench

HAS_GRAD_CAM = find_spec("pytorch_grad_cam") is not None
TINY = ["--arch", "resnet18", "--size", "32", "--batch-size", "2", "--repeats", "1"]


def test_synthetic_jpegs_are_photo_sized_and_written_once(tmp_path):
    paths = write_jpegs(tmp_path, 3)
    assert [p.name for p in paths] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    first = [p.read_bytes() for p in paths]
    assert cv2.imread(str(paths[0])).shape == (375, 500, 3)
    assert len(set(first)) == 3  # distinct pictures
    paths[1].unlink()
    write_jpegs(tmp_path, 3)  # rewrites only what is missing, and the same bytes
    assert [p.read_bytes() for p in paths] == first
    assert list_images(tmp_path, 2) == paths[:2]


def test_a_voc_root_means_its_jpeg_folder(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    assert image_folder(tmp_path) == tmp_path / "JPEGImages"
    assert image_folder(tmp_path / "JPEGImages") == tmp_path / "JPEGImages"


def test_glue_box_is_the_largest_component_above_the_cut():
    m = np.zeros((6, 8), np.float32)
    m[1:3, 1:3] = 1.0  # 4 pixels at the peak
    m[3:6, 4:8] = 0.5  # 12 pixels at half the peak
    assert largest_box(m, 0.4) == [4.0, 3.0, 4.0, 3.0]  # x, y, w, h of the larger one
    assert largest_box(m, 0.6) == [1.0, 1.0, 2.0, 2.0]  # the half-peak part is cut away
    assert largest_box(np.zeros((4, 4), np.float32), 0.2) is None


@pytest.mark.e2e  # resnet18
@pytest.mark.skipif(not HAS_GRAD_CAM, reason="pytorch-grad-cam (pip install grad-cam) not found")
def test_glue_writes_a_coco_results_list(tmp_path):
    from wsol.apps.bench import glue_pipeline

    paths = write_jpegs(tmp_path / "images", 3, size=(60, 80))
    # 64 px: 2 x 2 maps (at 32 px, 1 x 1 maps are flat, and pytorch-grad-cam zeroes them)
    out = glue_pipeline(paths, tmp_path / "r.json", "resnet18", size=64, batch_size=2)
    results = json.loads((tmp_path / "r.json").read_text())
    assert out["images"] == 3 and out["boxes"] == len(results) >= 1
    assert set(out["stage_seconds"]) == {"load wait", "cam", "boxes", "write"}
    assert {r["image_id"] for r in results} <= {1, 2, 3}
    for r in results:
        assert set(r) == {"image_id", "category_id", "bbox", "score"}
        assert 1 <= r["category_id"] <= 1000 and 0.0 < r["score"] <= 1.0
        x, y, w, h = r["bbox"]
        assert 0 <= x < x + w <= 80 and 0 <= y < y + h <= 60


@pytest.mark.e2e  # resnet18
def test_bench_prints_the_header_every_row_and_the_ratios(tmp_path, capsys):
    assert main(["bench", *TINY, "--images", "3", "--out", str(tmp_path)]) == EXIT_OK
    printed = capsys.readouterr().out
    for line in ("wsol bench: resnet18 gradcam, 32x32, batch 2, fp32, on cpu", "device: "):
        assert line in printed
    assert "software: torch " in printed
    assert re.search(
        r"settings: \d+ torch threads, \d+ loader workers \(the run's automatic", printed
    )
    assert "files: 3 JPEG files" in printed and "the first one 500x375" in printed
    names = row_names("gradcam")
    for key in ("forward", "device", "wsol"):
        assert f"\n{names[key]} " in printed, key
    assert "wsol end to end / forward floor: " in printed
    assert "wsol run stage seconds" in printed
    if HAS_GRAD_CAM:
        assert f"\n{names['glue']} " in printed and "wsol end to end / glue: " in printed
    else:
        assert f"{names['glue']}: skipped, pytorch-grad-cam is not installed" in printed
    assert "the whole call after a warm-up run, the fastest of 2" in printed
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["rows"][names["wsol"]]["images"] == 3
    times = doc["rows"][names["wsol"]]["all_seconds"]  # two rounds, the fastest counts
    assert len(times) == 2 and doc["rows"][names["wsol"]]["seconds"] == min(times)
    assert doc["rows"][names["wsol"]]["images_per_second"] > 0
    assert json.loads((tmp_path / "wsol" / "pseudo_labels.json").read_text())["images"]


@pytest.mark.e2e  # resnet18
def test_bench_without_pytorch_grad_cam_says_why_the_glue_is_missing(tmp_path, capsys, monkeypatch):
    root = tmp_path / "voc"  # a VOC root: the images are in its JPEGImages
    write_jpegs(root / "JPEGImages", 2, size=(40, 50))
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)  # import fails
    args = ["--data", str(root), "--workers", "0", "--out", str(tmp_path / "b")]
    assert main(["bench", *TINY, *args, "boxes.threshold=0.3"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "files: 2 JPEG files" in printed and "the first one 50x40" in printed
    assert " 0 loader workers; run overrides: boxes.threshold=0.3\n" in printed
    assert "boxes at fraction 0.3, largest component" in printed
    assert f"{row_names('gradcam')['glue']}: skipped, pytorch-grad-cam is not installed" in printed
    assert "/ glue" not in printed


def test_bench_report_shows_the_runs_stage_seconds():
    rows = row_names("gradcam")
    result = {
        "settings": {
            "arch": "resnet50",
            "method": "gradcam",
            "size": 224,
            "batch_size": 16,
            "precision": "bf16",
            "device": "cuda",
            "workers": 15,
            "repeats": 3,
            "images": 2048,
            "megabytes": 60.0,
            "folder": "/x",
            "original_size": (375, 500),
            "boxes": "fraction 0.2, largest component",
        },
        "machine": {
            "device_name": "NVIDIA H200",
            "cpu": "some CPU, 16 cores",
            "torch": "2.11",
            "torchvision": "0.26",
            "opencv": "4.12",
            "pytorch_grad_cam": None,
            "python": "3.12",
            "torch_threads": 16,
        },
        "rows": {
            rows["forward"]: {"images_per_second": 9000.0, "of_floor": 1.0},
            rows["wsol"]: {
                "images_per_second": 3000.0,
                "seconds": 0.68,
                "images": 2048,
                "boxes": 2048,
                "of_floor": 1 / 3,
            },
        },
        "skipped": {rows["glue"]: "--no-glue"},
        "ratios": {"wsol end to end / forward floor": 1 / 3},
        "stage_seconds": {"wsol": {"decode": 1.5, "model": 0.25}, "glue": None},
    }
    text = format_bench(result)
    assert "device: NVIDIA H200 (CPU: some CPU, 16 cores)" in text
    assert "pytorch-grad-cam not installed" in text
    assert "wsol run stage seconds (busy; stages overlap): decode 1.50, model 0.25" in text
    assert f"{rows['glue']}: skipped, --no-glue" in text
    assert "wsol end to end / forward floor: 0.33x" in text


@pytest.mark.slow
def test_peak_rss_tool_runs_with_tiny_sizes(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "peak_rss.py"),
            "--sizes",
            "2",
            "4",
            "--out",
            str(tmp_path),
            "--size",
            "32",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert "peak RSS, 4 images / 2 images: " in p.stdout
    doc = json.loads((tmp_path / "peak_rss.json").read_text())
    runs = doc["runs"]
    assert set(runs) == {"2", "4"} and all(r["peak_rss_bytes"] > 2**20 for r in runs.values())
    assert doc["ratio"] == pytest.approx(runs["4"]["peak_rss_bytes"] / runs["2"]["peak_rss_bytes"])
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 4


@pytest.mark.parametrize("flag", ["--rounds", "--repeats", "--batch-size"])
def test_bench_refuses_counts_below_one(flag, tmp_path, capsys):
    assert main(["bench", *TINY, flag, "0", "--out", str(tmp_path)]) == 2
    assert f"bench {flag} must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.slow
def test_bench_config_times_a_config_against_its_own_floor(tmp_path, capsys, shapes_root):
    """``wsol bench --config``: the config's model as wsol runs it (gt targets, its
    views), the floor, the Localizer on the device and the run, with shares of the floor."""
    from wsol.apps.demo import DEMO_CONFIG

    rc = main(
        [
            "-q",
            "bench",
            "--config",
            str(DEMO_CONFIG),
            "--repeats",
            "1",
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
            f"data.root={shapes_root}",
            "data.limit=8",
            "cam.batch_size=4",
        ]
    )
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    result = json.loads((tmp_path / "bench.json").read_text())
    rows = result["rows"]
    assert list(rows) == [
        "forward, no grad (the floor)",
        "wsol, uint8 on the device to boxes",
        "wsol run, files to COCO JSON (whole call)",
        "wsol run, its loop (metrics.json)",
    ]
    assert rows["forward, no grad (the floor)"]["of_floor"] == 1.0
    assert rows["wsol run, files to COCO JSON (whole call)"]["images"] == 8
    assert all(r["images_per_second"] > 0 for r in rows.values())
    assert result["settings"]["batch_size"] == 4 and "x floor" in text
    assert (
        not (tmp_path / "run" / "metrics.json").exists()
        or json.loads((tmp_path / "run" / "metrics.json").read_text()).get("maxboxacc") is None
    )  # unscored
    assert main(["bench", "--config", str(DEMO_CONFIG), "--data", str(tmp_path)]) == 2
