from __future__ import annotations

import numpy as np
import pytest
import yaml

from wsol.boxes import coco_to_yolo
from wsol.export import write_formats
from wsol.export.yolo import yolo_lines


def test_coco_boxes_become_normalized_centres_clipped_to_the_image():
    out = coco_to_yolo([[20, 10, 50, 30], [190, 90, 20, 20]], height=100, width=200)
    np.testing.assert_allclose(out, [[0.225, 0.25, 0.25, 0.3], [1.0, 1.0, 0.1, 0.2]])
    assert coco_to_yolo([], 5, 5).shape == (0, 4)


def test_lines_are_fixed_point_without_exponents():
    assert yolo_lines([3], np.array([[1e-7, 0.5, 1.0, 0.25]])) == (
        "3 0.000000 0.500000 1.000000 0.250000\n"
    )
    assert yolo_lines([], np.zeros((0, 4))) == ""


def test_yolo_folder_of_the_small_document(small_doc, tmp_path):
    written = write_formats(small_doc, tmp_path, ["yolo"])
    root = tmp_path / "yolo"
    assert written == [
        root / "labels" / "a.txt",
        root / "labels" / "b.txt",
        root / "classes.txt",
        root / "data.yaml",
    ]
    # Class indices are 0-based in the category order: "cat & dog" (id 1) is 0.
    assert (root / "labels" / "a.txt").read_text() == (
        "0 0.225000 0.250000 0.250000 0.300000\n"
        "1 0.500000 0.500000 1.000000 1.000000\n"
        "0 0.600000 0.600000 0.200000 0.200000\n"
    )
    assert (root / "labels" / "b.txt").read_text() == ""  # an image with no box
    assert (root / "classes.txt").read_text() == "cat & dog\nbird\n"
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert data == {"nc": 2, "names": {0: "cat & dog", 1: "bird"}}


def test_class_index_follows_the_category_order_not_the_ids(tmp_path):
    doc = {
        "categories": [{"id": 7, "name": "b"}, {"id": 3, "name": "a"}],
        "images": [{"id": 1, "file_name": "x.jpg", "height": 10, "width": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10]}],
    }
    write_formats(doc, tmp_path, ["yolo"])
    assert (tmp_path / "yolo" / "labels" / "x.txt").read_text().split()[0] == "1"


@pytest.mark.parametrize(
    "names, expected",
    [
        (["sub1/x.jpg", "sub2/x.jpg", "y.png"], ["x_1.txt", "x_2.txt", "y.txt"]),
        (["x.jpg", "x.png"], ["x_1.txt", "x_2.txt"]),
    ],
)
def test_yolo_names_collide_as_voc_names_do(tmp_path, names, expected):
    doc = {
        "categories": [{"id": 1, "name": "a"}],
        "images": [
            {"id": i + 1, "file_name": n, "height": 5, "width": 5} for i, n in enumerate(names)
        ],
        "annotations": [],
    }
    txt = write_formats(doc, tmp_path, ["yolo"])[: len(names)]
    xml = write_formats(doc, tmp_path, ["voc"])
    assert [p.name for p in txt] == expected
    assert [p.stem for p in xml] == [p.stem for p in txt]
