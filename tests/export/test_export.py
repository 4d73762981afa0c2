from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from wsol.errors import WsolError
from wsol.export import (
    FORMATS,
    OUTPUTS,
    annotations_for,
    build_document,
    results_list,
    write_formats,
)
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
    assert cats[0] == {"id": 5, "name": "a"}
    assert [a["id"] for a in doc["annotations"]] == [1, 2]
    assert all(a["iscrowd"] == 0 and a["segmentation"] == [] for a in doc["annotations"])
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


def test_every_annotation_and_category_has_the_fields_strict_readers_want(small_doc):
    for a in small_doc["annotations"]:
        assert set(a) == {
            "id",
            "image_id",
            "category_id",
            "bbox",
            "area",
            "score",
            "iscrowd",
            "segmentation",
        }
        assert a["iscrowd"] == 0 and a["segmentation"] == []
    # The dataset's supercategory where it gives one, else one deterministic group.
    assert small_doc["categories"] == [
        {"id": 1, "name": "cat & dog", "supercategory": "object"},
        {"id": 2, "name": "bird", "supercategory": "animal"},
    ]
    assert min(c["id"] for c in small_doc["categories"]) == 1  # 0 is background to CVAT
    assert small_doc["licenses"] == [] and small_doc["info"]["method"] == "gradcam"


def test_coco_and_results_files_evaluate_in_pycocotools(small_doc, tmp_path):
    written = write_formats(small_doc, tmp_path, ["coco", "results"])
    assert written == [tmp_path / "pseudo_labels.json", tmp_path / "results.json"]
    results = json.loads((tmp_path / "results.json").read_text())
    # Each box names its image and category too (issue 23): pycocotools ignores them.
    names = {1: {"file_name": "sub/a.jpg", "category_name": "cat & dog"}}
    names[2] = {"file_name": "sub/a.jpg", "category_name": "bird"}
    assert results == [
        {
            "image_id": 1,
            "category_id": 1,
            "bbox": [20.0, 10.0, 50.0, 30.0],
            "score": 0.9,
            **names[1],
        },
        {
            "image_id": 1,
            "category_id": 2,
            "bbox": [0.0, 0.0, 200.0, 100.0],
            "score": 0.5,
            **names[2],
        },
        {
            "image_id": 1,
            "category_id": 1,
            "bbox": [100.0, 50.0, 40.0, 20.0],
            "score": 0.3,
            **names[1],
        },
    ]
    # The pseudo-labels as ground truth, their own results as detections: a perfect score.
    gt = COCO(str(tmp_path / "pseudo_labels.json"))
    assert gt.imgs[1]["file_name"] == "sub/a.jpg"  # relative to the image folder
    dt = gt.loadRes(str(tmp_path / "results.json"))
    assert sorted(dt.getAnnIds()) == [1, 2, 3]
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)


def test_formats_are_a_registry_with_a_clear_error():
    assert set(FORMATS) == {"coco", "results", "voc", "yolo", "labelstudio"}
    assert set(OUTPUTS) == set(FORMATS)
    with pytest.raises(
        WsolError,
        match="unknown export format 'xml'; valid: coco, labelstudio, results, voc, yolo",
    ):
        write_formats({}, ".", ["xml"])
    with pytest.raises(WsolError, match="unknown export format 'ls'"):
        write_formats({}, ".", ["coco"], {"ls": {"image_root": "x"}})


@pytest.mark.parametrize("name", ["coco", "results", "voc", "yolo", "labelstudio"])
def test_outputs_name_everything_a_format_writes(small_doc, tmp_path, name):
    written = write_formats(small_doc, tmp_path, [name])
    tops = {p.relative_to(tmp_path).parts[0] for p in written}
    assert tops == set(OUTPUTS[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS[name])  # no temp files


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


def test_voc_xml_of_the_small_document(small_doc, tmp_path):
    write_formats(small_doc, tmp_path, ["voc"])
    xml = (tmp_path / "voc" / "a.xml").read_text()
    assert "<filename>a.jpg</filename>" in xml
    assert "<size><width>200</width><height>100</height><depth>3</depth></size>" in xml
    # VOC is 1-based inclusive: [20, 10, 50, 30] xywh covers pixels 21..70 x 11..40.
    assert (
        "<name>cat &amp; dog</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        "    <difficult>0</difficult>\n    <score>0.900000</score>\n"
        "    <bndbox><xmin>21</xmin><ymin>11</ymin><xmax>70</xmax><ymax>40</ymax></bndbox>"
    ) in xml
    assert xml.count("<object>") == 3
    assert "<object>" not in (tmp_path / "voc" / "b.xml").read_text()


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


@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_a_legal_long_file_name_is_written_and_rewritten(tmp_path, fmt):
    stem = "漢" * 83  # 249 bytes: with .xml or .txt the longest name most file systems take
    doc = {
        "categories": [{"id": 1, "name": "a"}],
        "images": [{"id": 1, "file_name": f"{stem}.jpg", "height": 5, "width": 5}],
        "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1.0}],
    }
    for _ in range(2):  # a rerun replaces the file: a temp name of the same length again
        written = write_formats(doc, tmp_path, [fmt])
        assert any(p.name == stem + (".xml" if fmt == "voc" else ".txt") for p in written)
        assert all(p.is_file() for p in written)
    assert not list(tmp_path.rglob("*.tmp"))
