from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from wsol.errors import WsolError
from wsol.export import FORMATS, annotations_for, build_document, results_list, write_formats
from wsol.localize import Detections


def test_annotations_are_coco_xywh_floats():
    det = Detections(np.array([[10.0, 20.0, 30.0, 60.0]]), np.array([0.5]))
    (a,) = annotations_for(7, 3, det)
    assert a == {
        "image_id": 7,
        "category_id": 3,
        "bbox": [10.0, 20.0, 20.0, 40.0],
        "area": 800.0,
        "score": 0.5,
    }


def test_document_gets_ids_from_one_and_loads_in_pycocotools(tmp_path):
    images = [{"id": 1, "file_name": "p.jpg", "height": 4, "width": 4}]
    anns = [
        {"image_id": 1, "category_id": 9, "bbox": [0.0, 0.0, 1.0, 1.0], "area": 1.0, "score": 0.9},
        {"image_id": 1, "category_id": 5, "bbox": [1.0, 1.0, 2.0, 2.0], "area": 4.0, "score": 0.1},
    ]
    cats = [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}]
    doc = build_document(images, anns, cats, {"description": "t"})
    assert anns[0] == {
        "image_id": 1,
        "category_id": 9,
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "area": 1.0,
        "score": 0.9,
    }  # the builder is pure: inputs untouched
    assert [a["id"] for a in doc["annotations"]] == [1, 2]
    assert all(a["iscrowd"] == 0 for a in doc["annotations"])
    assert list(doc) == ["info", "licenses", "images", "annotations", "categories"]
    assert results_list(doc)[1] == {
        "image_id": 1,
        "category_id": 5,
        "bbox": [1.0, 1.0, 2.0, 2.0],
        "score": 0.1,
    }
    (path,) = write_formats(doc, tmp_path, ["coco"])
    assert path == tmp_path / "pseudo_labels.json" and json.loads(path.read_text()) == doc
    coco = COCO(str(path))
    assert coco.getAnnIds() == [1, 2] and coco.loadCats(9)[0]["name"] == "b"


def test_formats_are_a_registry_with_a_clear_error():
    assert set(FORMATS) == {"coco", "voc"}
    with pytest.raises(WsolError, match="unknown export format 'yolo'; valid: coco, voc"):
        write_formats({}, ".", ["yolo"])


def test_voc_export_round_trips_through_the_reader(tmp_path):
    from wsol.data.voc import parse_voc_xml

    doc = {
        "categories": [{"id": 3, "name": "cat & dog"}],
        "images": [
            {"id": 1, "file_name": "sub/a.jpg", "height": 50, "width": 60},
            {"id": 2, "file_name": "b.png", "height": 5, "width": 5},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 3,
                "score": 0.5,
                "bbox": [10.0, 20.0, 15.0, 5.0],
            },
            {"id": 2, "image_id": 1, "category_id": 3, "score": 0.25, "bbox": [0.5, 0.0, 2.0, 3.2]},
        ],
    }
    written = write_formats(doc, tmp_path, ["voc"])
    assert written == [tmp_path / "voc" / "a.xml", tmp_path / "voc" / "b.xml"]
    a = parse_voc_xml((tmp_path / "voc" / "a.xml").read_text())
    assert (a["filename"], a["height"], a["width"]) == ("a.jpg", 50, 60)
    assert [o["name"] for o in a["objects"]] == ["cat & dog", "cat & dog"]
    # Integral boxes survive exactly; fractional ones widen to the pixels they touch.
    assert a["objects"][0]["box"].tolist() == [10, 20, 25, 25]
    assert a["objects"][1]["box"].tolist() == [0, 0, 3, 4]
    assert parse_voc_xml((tmp_path / "voc" / "b.xml").read_text())["objects"] == []


def test_voc_export_never_writes_two_images_to_one_file(tmp_path):
    doc = {
        "categories": [{"id": 1, "name": "a"}],
        "images": [
            {"id": 1, "file_name": "sub1/x.jpg", "height": 5, "width": 5},
            {"id": 2, "file_name": "sub2/x.jpg", "height": 5, "width": 5},
            {"id": 3, "file_name": "x.png", "height": 5, "width": 5},
            {"id": 4, "file_name": "y.jpg", "height": 5, "width": 5},
        ],
        "annotations": [],
    }
    written = write_formats(doc, tmp_path, ["voc"])
    assert [p.name for p in written] == ["x_1.xml", "x_2.xml", "x_3.xml", "y.xml"]
