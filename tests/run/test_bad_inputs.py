"""Odd sizes and broken maps: each is processed or recorded, and the run goes on."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsol.config import load_config
from wsol.run import run

TESTS = Path(__file__).resolve().parent


def _folder(tmp_path, images: dict[str, np.ndarray]) -> list[str]:
    root = tmp_path / "imgs"
    root.mkdir()
    for name, arr in images.items():
        Image.fromarray(arr).save(root / name)
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"{n},bright\n" for n in images))
    return [
        "data.format=folder",
        f"data.root={root}",
        f"data.labels_file={tmp_path / 'labels.csv'}",
        "model.arch=bright_net",
        "boxes.threshold=0.5",
        f"out={tmp_path / 'out'}",
    ]


@pytest.mark.e2e
def test_tiny_images_are_processed(tmp_path, bright_model):
    one = np.full((1, 1, 3), 200, np.uint8)
    three = np.zeros((3, 3, 3), np.uint8)
    three[1, 1] = 255  # smaller than any network stride
    result = run(load_config(None, _folder(tmp_path, {"one.png": one, "three.png": three})))
    assert result.metrics["num_images"] == 2 and result.metrics["num_failed"] == 0
    doc = json.loads((tmp_path / "out" / "pseudo_labels.json").read_text())
    sizes = {im["file_name"]: (im["height"], im["width"]) for im in doc["images"]}
    assert sizes == {"one.png": (1, 1), "three.png": (3, 3)}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert all(math.isfinite(v) for v in a["bbox"])
    # The 1x1 map is constant: no box, and the reason is counted.
    assert result.metrics["empty_detections"] == {"map is constant": 1}
    three_id = next(im["id"] for im in doc["images"] if im["file_name"] == "three.png")
    (box,) = [a["bbox"] for a in doc["annotations"] if a["image_id"] == three_id]
    assert box[0] <= 1 and box[0] + box[2] >= 2  # covers the bright centre pixel


@pytest.mark.e2e
@pytest.mark.parametrize(
    "gain, reason", [(0.0, "map is constant"), (float("nan"), "map has NaN or Inf values")]
)
def test_dead_or_poisoned_layer_gives_no_boxes_and_a_reason(tmp_path, register_model, gain, reason):
    from tests.helpers import bright_net_builder

    register_model("bright_net", bright_net_builder(gain))
    scene = np.full((60, 90, 3), 20, np.uint8)
    scene[10:30, 50:70] = 240
    result = run(load_config(None, _folder(tmp_path, {"a.png": scene, "b.png": scene})))
    assert result.metrics["num_images"] == 2 and result.metrics["num_boxes_found"] == 0
    assert result.metrics["num_bad_maps"] == 2
    assert list(result.metrics["empty_detections"]) == [reason]
    text = (tmp_path / "out" / "metrics.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"))


_BIG = """
import json, resource, sys
sys.path.insert(0, {tests!r})
from tests.helpers import register_bright_net
from wsol.config import load_config
from wsol.run import run
register_bright_net(input_size=(224, 224))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run(load_config(None, {args!r}))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"extra_mb": (peak - base) / 1024}}))
"""


@pytest.mark.slow
def test_huge_image_is_bounded_in_memory(tmp_path):
    big = np.full((9000, 12000, 3), 30, np.uint8)
    big[3000:6000, 6000:9000] = 230
    args = _folder(tmp_path, {"big.jpg": big})
    del big
    code = _BIG.format(tests=str(TESTS), args=args)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    extra_mb = json.loads(p.stdout.strip().splitlines()[-1])["extra_mb"]
    # Full-resolution float maps alone would be 432 MB each (measured peak without the
    # cap: about 2.5 GB above the imports); with boxes.max_side=4096 it stays well below.
    assert extra_mb < 1000, extra_mb
    doc = json.loads((tmp_path / "out" / "pseudo_labels.json").read_text())
    assert (doc["images"][0]["height"], doc["images"][0]["width"]) == (9000, 12000)
    (ann,) = doc["annotations"]
    np.testing.assert_allclose(ann["bbox"], [6000, 3000, 3000, 3000], atol=30)


@pytest.mark.slow
def test_a_fifo_annotation_and_a_repeated_id_neither_hang_nor_count_twice(
    tmp_path, shapes_root, wsol_processes
):
    import os
    import shutil

    from tests.helpers import REPO

    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    os.mkfifo(root / "Annotations" / "fifo.xml")
    (root / "Annotations" / "zero.xml").symlink_to("/dev/zero")
    lines = "val_00000\nfifo\nzero\nval_00001\nval_00001\n../../evil\n"
    (root / "ImageSets" / "Main" / "odd.txt").write_text(lines)
    (tmp_path / "evil.xml").write_text((root / "Annotations" / "val_00002.xml").read_text())
    out = tmp_path / "out"
    args = [str(REPO / "wsol" / "assets" / "demo.yaml"), f"data.root={root}", "data.split=odd"]
    args += ["model.weights=DEFAULT", "report.enabled=false", f"out={out}"]
    # the FIFO used to hang the run forever, printing nothing
    p = wsol_processes.run(["-q", "run", *args], timeout=120)
    assert p.returncode == 3, p.stderr  # some images failed
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["image_id"], f["stage"]) for f in failures] == [
        (2, "annotation"),
        (3, "annotation"),
        (6, "path"),
    ]
    (warning,) = [json.loads(line) for line in (out / "warnings.jsonl").read_text().splitlines()]
    assert warning["image_id"] == 5 and "listed again in odd.txt (image 4)" in warning["reason"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == 2 and metrics["num_warnings"] == 1
    assert "1 warnings about the labels read" in p.stdout and "warnings.jsonl" in p.stdout


def _warned(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.e2e
def test_every_failed_image_is_warned_of_in_a_line_naming_it(tmp_path, bright_model, caplog):
    # One image refused while listing (named outside data.root), two that fail to decode
    # (a non-image and a corrupt PNG): three failures, three warning lines.
    overrides = _folder(tmp_path, {"ok.png": np.full((60, 90, 3), 128, np.uint8)})
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "outside.png")
    (tmp_path / "imgs" / "notes.jpg").write_bytes(b"not an image at all")
    (tmp_path / "imgs" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    names = ["ok.png", "../outside.png", "notes.jpg", "corrupt.png"]
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"{n},bright\n" for n in names))
    with caplog.at_level(logging.WARNING, logger="wsol"):
        result = run(load_config(None, overrides))
    assert result.metrics["num_failed"] == 3 and result.metrics["num_images"] == 1
    lines = [w for w in _warned(caplog) if " failed at " in w]
    assert len(lines) == 3, lines
    expected = {"outside.png": "path", "notes.jpg": "decode", "corrupt.png": "decode"}
    for name, stage in expected.items():
        (line,) = [w for w in lines if f"{name} failed at {stage}: " in w]
        assert "0x" not in line and "<" not in line
    recorded = (tmp_path / "out" / "failures.jsonl").read_text()
    assert "notes.jpg" in recorded and "corrupt.png" in recorded
    assert " object at 0x" not in recorded and "BytesIO" not in recorded


def test_failure_warnings_are_one_line_each_then_a_count(caplog):
    from wsol.run.failures import FailureWarnings

    failed = FailureWarnings(limit=5)
    fails = [{"path": f"/d/{i}.jpg", "stage": "decode", "reason": "empty file"} for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="wsol"):
        failed.warn(fails[:2])
        failed.warn(fails[2:])
        failed.close()
    lines = _warned(caplog)
    assert lines[:5] == [f"image /d/{i}.jpg failed at decode: empty file" for i in range(5)]
    assert len(lines) == 6 and lines[5].startswith("7 more images failed")
    assert "failures.jsonl" in lines[5]


@pytest.mark.e2e
def test_the_report_says_which_classes_were_skipped_as_unmapped(tmp_path, bright_model):
    from tests.report.page import Page

    overrides = _folder(tmp_path, {"a.png": np.full((60, 90, 3), 128, np.uint8)})
    (tmp_path / "labels.csv").write_text("file,labels\na.png,bright;zebra\n")
    (tmp_path / "map.yaml").write_text("bright: [0]\n")  # zebra: no entry
    cfg = load_config(
        None, [*overrides, f"model.class_map={tmp_path / 'map.yaml'}", "model.skip_unmapped=true"]
    )
    run(cfg)
    (caption,) = Page.load(tmp_path / "out" / "report.html").texts("figcaption")
    assert "zebra: skipped, unmapped (model.skip_unmapped" in caption
    assert "bright p=" in caption
