from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np

from wsol.boxes import coco_to_percent
from wsol.export import write_formats
from wsol.export.labelstudio import labeling_config, model_version, tasks


def test_boxes_become_percents_of_the_image():
    out = coco_to_percent([[20, 10, 50, 30], [-5, 0, 300, 100]], height=100, width=200)
    np.testing.assert_allclose(out, [[10, 10, 25, 30], [0, 0, 100, 100]])


def test_tasks_of_the_small_document(small_doc, tmp_path):
    written = write_formats(
        small_doc, tmp_path, ["labelstudio"], {"labelstudio": {"image_root": "http://h/img/"}}
    )
    assert written == [tmp_path / "labelstudio.json", tmp_path / "labelstudio_config.xml"]
    first, second = json.loads((tmp_path / "labelstudio.json").read_text())
    assert first["data"] == {"image": "http://h/img/sub/a.jpg"}
    (pred,) = first["predictions"]
    assert pred["model_version"] == "wsol-gradcam-resnet50"
    assert pred["score"] == round((0.9 + 0.5 + 0.3) / 3, 6)
    region = pred["result"][0]
    assert region == {
        "id": "1",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": 200,
        "original_height": 100,
        "image_rotation": 0,
        "value": {
            "x": 10.0,
            "y": 10.0,
            "width": 25.0,
            "height": 30.0,
            "rotation": 0,
            "rectanglelabels": ["cat & dog"],
        },
        "score": 0.9,
    }
    values = [(r["value"]["rectanglelabels"][0], r["value"]["x"]) for r in pred["result"]]
    assert values == [("cat & dog", 10.0), ("bird", 0.0), ("cat & dog", 50.0)]
    assert [r["value"]["width"] for r in pred["result"]] == [25.0, 100.0, 20.0]
    assert len({r["id"] for r in pred["result"]}) == 3
    # An image with no box is still a task to label, with an empty prediction.
    assert second["data"] == {"image": "http://h/img/b.png"}
    assert second["predictions"] == [
        {"model_version": "wsol-gradcam-resnet50", "score": 0.0, "result": []}
    ]


def test_default_image_is_the_bare_file_name(small_doc):
    assert [t["data"]["image"] for t in tasks(small_doc)] == ["sub/a.jpg", "b.png"]
    assert model_version({}) == "wsol"


def test_labeling_config_names_every_class_and_matches_the_regions(small_doc):
    root = ET.fromstring(labeling_config(["cat & dog", 'say "hi"', "bird"]))
    image = root.find("Image")
    rect = root.find("RectangleLabels")
    assert (image.get("name"), image.get("value")) == ("image", "$image")
    assert (rect.get("name"), rect.get("toName")) == ("label", "image")
    assert [lab.get("value") for lab in rect.findall("Label")] == ["cat & dog", 'say "hi"', "bird"]
    region = tasks(small_doc)[0]["predictions"][0]["result"][0]
    assert (region["from_name"], region["to_name"]) == (rect.get("name"), image.get("name"))
