"""Each format read back by the tool it is for, where that tool installs from PyPI.

Datumaro and the Label Studio SDK are not dependencies of wsol (they pin other numpy and
OpenCV releases): these tests skip where they are absent. Run them in a separate venv
with ``pip install datumaro label-studio-sdk`` and ``pip install -e .``.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from PIL import Image

from wsol.export import write_formats

# The boxes of the small document, by image stem: (class name, COCO xywh).
EXPECTED = {
    "a": sorted(
        [
            ("cat & dog", [20.0, 10.0, 50.0, 30.0]),
            ("bird", [0.0, 0.0, 200.0, 100.0]),
            ("cat & dog", [100.0, 50.0, 40.0, 20.0]),
        ]
    ),
    "b": [],
}
SIZES = {"a": (200, 100), "b": (40, 40)}  # (width, height)


def _images(folder, names=("sub/a.jpg", "b.png")):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", SIZES[path.stem], (90, 120, 30)).save(path)


def _approx(pairs):
    """``(name, box)`` pairs, sorted, boxes compared to within a thousandth of a pixel."""
    return [(n, [pytest.approx(v, abs=1e-3) for v in b]) for n, b in sorted(pairs)]


def _boxes(item, label_names):
    return _approx((label_names[a.label], list(a.get_bbox())) for a in item.annotations)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_datumaro_imports_the_coco_file_without_a_warning(small_doc, tmp_path, caplog):
    dm = pytest.importorskip("datumaro", reason="Datumaro not installed (pip install datumaro)")
    write_formats(small_doc, tmp_path, ["coco"])
    # Datumaro's COCO layout: annotations/instances_<subset>.json, images/<subset>/<file_name>.
    root = tmp_path / "dm"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(tmp_path / "pseudo_labels.json", root / "annotations" / "instances_default.json")
    _images(root / "images" / "default")
    with caplog.at_level(logging.INFO):
        assert dm.Dataset.detect(str(root)) == "coco_instances"
        ds = dm.Dataset.import_from(str(root), "coco_instances")
        items = {item.id: item for item in ds}
    assert _warnings(caplog) == []  # no "Missing annotation field 'segmentation'", no id 0
    labels = ds.categories()[dm.AnnotationType.label]
    assert [(c.name, c.parent) for c in labels] == [("cat & dog", "object"), ("bird", "animal")]
    names = [c.name for c in labels]
    assert set(items) == {"sub/a", "b"}
    assert _boxes(items["sub/a"], names) == EXPECTED["a"]
    assert items["b"].annotations == []
    scores = sorted(a.attributes["score"] for a in items["sub/a"].annotations)
    assert scores == [0.3, 0.5, 0.9]
    assert items["sub/a"].media.size == (100, 200)  # (height, width), from the images entry


def test_datumaro_imports_the_yolo_folder(small_doc, tmp_path, caplog):
    dm = pytest.importorskip("datumaro", reason="Datumaro not installed (pip install datumaro)")
    write_formats(small_doc, tmp_path, ["yolo"])
    root = tmp_path / "yolo"
    _images(root / "images", ("a.jpg", "b.png"))  # the user's step: images beside labels/
    with caplog.at_level(logging.INFO):
        assert dm.Dataset.detect(str(root)) == "yolo"  # by data.yaml: the Ultralytics layout
        ds = dm.Dataset.import_from(str(root), "yolo")
        items = {item.id: item for item in ds}
    assert _warnings(caplog) == []
    names = [c.name for c in ds.categories()[dm.AnnotationType.label]]
    assert names == ["cat & dog", "bird"]
    assert set(items) == {"a", "b"}
    assert _boxes(items["a"], names) == EXPECTED["a"]
    assert items["b"].annotations == []


def test_label_studio_validates_the_tasks_against_the_config(small_doc, tmp_path):
    pytest.importorskip(
        "label_studio_sdk", reason="Label Studio SDK not installed (pip install label-studio-sdk)"
    )
    from label_studio_sdk.label_interface import LabelInterface

    write_formats(small_doc, tmp_path, ["labelstudio"])
    li = LabelInterface((tmp_path / "labelstudio_config.xml").read_text())
    li.validate()  # raises on a config Label Studio would refuse
    tasks = json.loads((tmp_path / "labelstudio.json").read_text())
    predictions = [p for t in tasks for p in t["predictions"]]
    errors = [li.validate_prediction(p, return_errors=True) for p in predictions]
    assert errors == [[], []]
    # The check can fail: a box past the image and an unknown label are both reported.
    bad = json.loads(json.dumps(tasks[0]["predictions"][0]))
    bad["result"][0]["value"]["x"] = 120.0
    bad["result"][1]["value"]["rectanglelabels"] = ["horse"]
    assert len(li.validate_prediction(bad, return_errors=True)) == 2


def test_label_studio_converter_gives_back_the_pixel_boxes(small_doc, tmp_path):
    pytest.importorskip(
        "label_studio_sdk", reason="Label Studio SDK not installed (pip install label-studio-sdk)"
    )
    from label_studio_sdk.converter import Converter

    write_formats(small_doc, tmp_path, ["labelstudio"], {"labelstudio": {"image_root": "imgs/"}})
    _images(tmp_path / "imgs")
    # The converter reads reviewed tasks: accept each prediction as the annotation.
    tasks = json.loads((tmp_path / "labelstudio.json").read_text())
    reviewed = [
        {
            "id": i + 1,
            "data": {"image": str(tmp_path / t["data"]["image"])},
            "annotations": [{"result": t["predictions"][0]["result"]}],
        }
        for i, t in enumerate(tasks)
    ]
    (tmp_path / "reviewed.json").write_text(json.dumps(reviewed))
    config = str(tmp_path / "labelstudio_config.xml")
    conv = Converter(config, str(tmp_path), download_resources=False)
    conv.convert_to_coco(str(tmp_path / "reviewed.json"), str(tmp_path / "back"), is_dir=False)
    back = json.loads((tmp_path / "back" / "result.json").read_text())
    names = {c["id"]: c["name"] for c in back["categories"]}
    stems = {im["id"]: im["file_name"].rsplit("/", 1)[-1].split(".")[0] for im in back["images"]}
    got = {s: [] for s in stems.values()}
    for a in back["annotations"]:
        got[stems[a["image_id"]]].append((names[a["category_id"]], a["bbox"]))
    assert {s: _approx(v) for s, v in got.items()} == EXPECTED
