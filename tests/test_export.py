from __future__ import annotations

import json

import numpy as np

from wsol.data.base import Dataset, Sample
from wsol.export import ChunkWriter, annotations_for, atomic_write_text, write_pseudo_labels
from wsol.localize import Detections


def test_annotations_are_coco_xywh_floats():
    det = Detections(np.array([[10.0, 20.0, 30.0, 60.0]]), np.array([0.5]))
    (a,) = annotations_for(7, 3, det)
    assert a == {"image_id": 7, "category_id": 3, "bbox": [10.0, 20.0, 20.0, 40.0],
                 "area": 800.0, "score": 0.5}


def test_chunks_assemble_with_ids_from_one(tmp_path):
    ds = Dataset("d", ["a", "b"], [Sample(1, "p", "p.jpg")], [5, 9])
    w = ChunkWriter(tmp_path)
    w.add([{"id": 1, "file_name": "p.jpg", "height": 4, "width": 4}],
          [{"image_id": 1, "category_id": 9, "bbox": [0.0, 0.0, 1.0, 1.0], "area": 1.0,
            "score": 0.9}], [])
    w.flush()
    w.add([], [{"image_id": 1, "category_id": 5, "bbox": [1.0, 1.0, 2.0, 2.0], "area": 4.0,
                "score": 0.1}], [{"image_id": 2, "path": "x", "stage": "decode", "reason": "r"}])
    assert w.flush().name == "chunk_000001.json"
    assert w.flush() is None  # nothing pending
    written, failures = write_pseudo_labels(tmp_path, ds)
    doc = json.loads((tmp_path / "pseudo_labels.json").read_text())
    assert doc == written
    assert failures == [{"image_id": 2, "path": "x", "stage": "decode", "reason": "r"}]
    assert [a["id"] for a in doc["annotations"]] == [1, 2]
    assert doc["categories"] == [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}]
    assert all(a["iscrowd"] == 0 for a in doc["annotations"])


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "f.txt", "one")
    atomic_write_text(tmp_path / "f.txt", "two")
    assert (tmp_path / "f.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    atomic_write_text(tmp_path / "g.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = stat.S_IMODE(os.stat(tmp_path / "g.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)


def test_voc_export_round_trips_through_the_reader(tmp_path):
    from wsol.data.voc import parse_voc_xml
    from wsol.export import write_voc_annotations

    doc = {"categories": [{"id": 3, "name": "cat & dog"}],
           "images": [{"id": 1, "file_name": "sub/a.jpg", "height": 50, "width": 60},
                      {"id": 2, "file_name": "b.png", "height": 5, "width": 5}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "score": 0.5,
                            "bbox": [10.0, 20.0, 15.0, 5.0]},
                           {"id": 2, "image_id": 1, "category_id": 3, "score": 0.25,
                            "bbox": [0.5, 0.0, 2.0, 3.2]}]}
    assert write_voc_annotations(doc, tmp_path / "voc") == 2
    a = parse_voc_xml((tmp_path / "voc" / "a.xml").read_text())
    assert (a["filename"], a["height"], a["width"]) == ("a.jpg", 50, 60)
    assert [o["name"] for o in a["objects"]] == ["cat & dog", "cat & dog"]
    # Integral boxes survive exactly; fractional ones widen to the pixels they touch.
    assert a["objects"][0]["box"].tolist() == [10, 20, 25, 25]
    assert a["objects"][1]["box"].tolist() == [0, 0, 3, 4]
    assert parse_voc_xml((tmp_path / "voc" / "b.xml").read_text())["objects"] == []
