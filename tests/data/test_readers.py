from __future__ import annotations

import json

import numpy as np
import pytest

from wsol.boxes import coco_to_xyxy
from wsol.config import DataConfig
from wsol.data import build_dataset
from wsol.data.coco import load_coco
from wsol.data.folder import load_folder
from wsol.data.voc import VOC_CLASSES, AnnotationError, load_voc, parse_voc_xml


def test_voc_sample_counts(voc_root):
    ds = load_voc(voc_root, "sample")
    assert len(ds) == 100
    assert sum(len(s.boxes) for s in ds.samples) == 273
    assert sum(int(s.ignore.sum()) for s in ds.samples) == 38
    assert ds.classes == list(VOC_CLASSES)
    present = {int(c) for s in ds.samples for c in s.box_labels}
    assert present == set(range(20))
    assert [s.image_id for s in ds.samples] == list(range(1, 101))


def test_voc_boxes_are_zero_based_continuous(voc_root):
    ds = load_voc(voc_root, "sample", limit=1)
    s = ds.samples[0]
    xml = (voc_root / "Annotations" / (s.file_name.rsplit(".", 1)[0] + ".xml")).read_text()
    first = parse_voc_xml(xml)["objects"][0]
    import re

    xmin = int(re.search(r"<xmin>(\d+)</xmin>", xml).group(1))
    xmax = int(re.search(r"<xmax>(\d+)</xmax>", xml).group(1))
    # 1-based inclusive xmin..xmax covers continuous [xmin - 1, xmax).
    assert first["box"][0] == xmin - 1 and first["box"][2] == xmax
    assert s.width == 486 and s.height == 500  # 2007_000027.jpg


def test_voc_class_order_and_unknown_class(voc_root):
    ds = load_voc(voc_root, "sample", classes=list(reversed(VOC_CLASSES)))
    assert ds.classes[0] == "tvmonitor"
    with pytest.raises(AnnotationError, match="not in data.classes"):
        load_voc(voc_root, "sample", classes=["dog", "cat"])


def test_voc_missing_split_lists_available(voc_root):
    with pytest.raises(FileNotFoundError, match="sample"):
        load_voc(voc_root, "nosuchsplit")


def test_voc_custom_single_class(tmp_path):
    root = tmp_path / "kangaroo"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main" / "train.txt").write_text("k1\n")
    (root / "Annotations" / "k1.xml").write_text(
        "<annotation><filename>k1.jpg</filename><size><width>10</width><height>8</height>"
        "</size><object><name>kangaroo</name><difficult>0</difficult><bndbox><xmin>1</xmin>"
        "<ymin>2</ymin><xmax>10</xmax><ymax>8</ymax></bndbox></object></annotation>"
    )
    ds = load_voc(root, "train")
    assert ds.classes == ["kangaroo"]
    np.testing.assert_array_equal(ds.samples[0].boxes, [[0, 1, 10, 8]])


def _kangaroo_xml(name: str) -> str:
    return (
        f"<annotation><filename>{name}.jpg</filename><size><width>10</width><height>8</height>"
        "</size><object><name>kangaroo</name><difficult>0</difficult><bndbox><xmin>1</xmin>"
        "<ymin>2</ymin><xmax>10</xmax><ymax>8</ymax></bndbox></object></annotation>"
    )


def test_voc_like_layout_without_split_file(tmp_path):
    """images/ + annots/ and no ImageSets: every annotation file, sorted, is the split."""
    root = tmp_path / "set"
    (root / "annots").mkdir(parents=True)
    (root / "images" / "sub").mkdir(parents=True)
    for stem in ("b", "a", "c"):
        (root / "annots" / f"{stem}.xml").write_text(_kangaroo_xml(stem))
    (root / "annots" / "notes.txt").write_text("not an annotation")
    ds = build_dataset(
        DataConfig(format="voc", root=str(root), image_dir="images", ann_dir="annots")
    )
    assert [s.file_name for s in ds.samples] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [s.image_id for s in ds.samples] == [1, 2, 3]
    assert all(s.path.startswith(str(root / "images")) for s in ds.samples)
    assert ds.name.endswith("/all")
    # split "" asks for every annotation file explicitly; the default layout still works
    assert len(load_voc(root, "", ann_dir="annots", image_dir="images")) == 3
    with pytest.raises(FileNotFoundError, match="data.ann_dir"):
        load_voc(root, "val")  # no Annotations/ folder: says which keys name the folders


def test_voc_named_split_missing_among_others_is_an_error(tmp_path):
    root = tmp_path / "set"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations" / "a.xml").write_text(_kangaroo_xml("a"))
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    with pytest.raises(FileNotFoundError, match="splits here: train"):
        load_voc(root, "trian")
    assert len(load_voc(root, "")) == 1


def test_voc_file_name_is_relative_to_the_image_folder(tmp_path):
    root = tmp_path / "set"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages" / "2024").mkdir(parents=True)
    xml = _kangaroo_xml("x").replace("<filename>x.jpg", "<filename>2024/x.jpg")
    (root / "Annotations" / "x.xml").write_text(xml)
    (root / "JPEGImages" / "2024" / "x.jpg").write_bytes(b"")
    assert load_voc(root, "").samples[0].file_name == "2024/x.jpg"


def test_malformed_voc_xml():
    with pytest.raises(AnnotationError, match="malformed"):
        parse_voc_xml("<annotation><object>")
    with pytest.raises(AnnotationError, match="bndbox"):
        parse_voc_xml("<annotation><object><name>x</name></object></annotation>")


def test_coco128_matches_pycocotools(coco_root):
    from pycocotools.coco import COCO

    ann = coco_root / "annotations" / "instances_train2017.json"
    ds = load_coco(coco_root / "train2017", ann)
    assert len(ds) == 128
    assert sum(len(s.boxes) for s in ds.samples) == 939
    assert sum(int(s.ignore.sum()) for s in ds.samples) == 10
    coco = COCO(str(ann))
    assert sorted(ds.category_ids) == sorted(coco.getCatIds())
    for s in ds.samples:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[s.image_id]))
        expect = coco_to_xyxy([a["bbox"] for a in anns]).reshape(-1, 4)
        np.testing.assert_allclose(s.boxes, expect)
        cats = [ds.category_ids[c] for c in s.box_labels]
        assert cats == [a["category_id"] for a in anns]
        assert list(s.ignore) == [bool(a["iscrowd"]) for a in anns]
    # the categories written keep the source's supercategories, also for a subset
    written = {c["name"]: c for c in ds.coco_categories()}
    source = {c["name"]: c for c in coco.loadCats(coco.getCatIds())}
    assert all(written[n]["supercategory"] == source[n]["supercategory"] for n in source)
    sub = load_coco(coco_root / "train2017", ann, classes=["dog", "person"])
    assert sub.coco_categories() == [
        {"id": 18, "name": "dog", "supercategory": "animal"},
        {"id": 1, "name": "person", "supercategory": "person"},
    ]
    assert sub.restrict_classes(["person"]).coco_categories()[0]["supercategory"] == "person"


def test_coco_non_contiguous_ids_and_empty_images(tmp_path):
    doc = {
        "images": [
            {"id": 7, "file_name": "a.jpg", "height": 4, "width": 4},
            {"id": 9, "file_name": "b.jpg", "height": 4, "width": 4},
        ],
        "categories": [{"id": 90, "name": "z"}, {"id": 3, "name": "y"}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 90, "bbox": [0, 0, 2, 2]}],
    }
    p = tmp_path / "a.json"
    p.write_text(json.dumps(doc))
    ds = load_coco(tmp_path, p)
    assert ds.classes == ["y", "z"] and ds.category_ids == [3, 90]
    assert len(ds) == 2 and len(ds.samples[1].boxes) == 0
    assert list(ds.samples[0].labels) == [1]
    gt = ds.to_coco()
    assert gt["annotations"][0]["category_id"] == 90


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("images"), "images"),
        (lambda d: d["annotations"][0].pop("bbox"), "bbox"),
        (lambda d: d["annotations"][0].update(category_id=5), "unknown category"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image"),
    ],
)
def test_coco_bad_json(tmp_path, mutate, match):
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}],
    }
    mutate(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=match):
        load_coco(tmp_path, p)


def test_folder_with_csv_and_without_labels(tmp_path):
    import cv2

    for n in ("b.jpg", "a.png"):
        cv2.imwrite(str(tmp_path / n), np.zeros((5, 5, 3), np.uint8))
    ds = load_folder(tmp_path)
    assert [s.file_name for s in ds.samples] == ["a.png", "b.jpg"]
    assert ds.classes == [] and not ds.has_boxes
    csv = tmp_path / "labels.csv"
    csv.write_text("file,labels\na.png,cat;dog\nb.jpg,dog\n")
    ds = load_folder(tmp_path, str(csv))
    assert ds.classes == ["cat", "dog"]
    assert list(ds.samples[0].labels) == [0, 1] and list(ds.samples[1].labels) == [1]


def test_build_dataset_errors():
    with pytest.raises(ValueError, match="valid: coco, folder, voc"):
        build_dataset(DataConfig(format="yolo", root="x"))
    with pytest.raises(ValueError, match="ann_file"):
        build_dataset(DataConfig(format="coco", root="x"))


def _voc_tree(tmp_path, xmls: dict[str, str]):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem, xml in xmls.items():
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    (root / "ImageSets" / "Main" / "s.txt").write_text("\n".join([*xmls, "absent"]) + "\n")
    return root


def _obj(name, x1, y1, x2, y2):
    return (
        f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
    )


def test_voc_bad_annotation_is_a_per_image_failure(tmp_path):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(
        tmp_path,
        {
            "good": f"<annotation>{size}{_obj('cat', 1, 1, 5, 5)}</annotation>",
            "broken": "<annotation><object>",
        },
    )
    ds = load_voc(root, "s")
    assert [s.image_id for s in ds.samples] == [1]  # ids keep their split-file positions
    assert [(f["image_id"], f["stage"]) for f in ds.failures] == [
        (2, "annotation"),
        (3, "annotation"),
    ]
    assert "malformed" in ds.failures[0]["reason"]


def test_a_corrupt_instance_mask_is_warned_of_by_its_path_not_pythons_repr(tmp_path, caplog):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(tmp_path, {"a": f"<annotation>{size}{_obj('cat', 1, 1, 5, 5)}</annotation>"})
    (root / "SegmentationObject").mkdir()
    png = root / "SegmentationObject" / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))  # a PNG signature, then junk
    with caplog.at_level("WARNING", logger="wsol"):
        ds = load_voc(root, "s")
    assert ds.samples[0].segmentations is None  # PxAP leaves it out
    (line,) = [r.getMessage() for r in caplog.records if "instance masks" in r.getMessage()]
    assert str(png) in line and "not an image PIL can read" in line
    assert " object at 0x" not in line and "BytesIO" not in line


def test_a_reason_never_holds_a_python_objects_repr():
    from wsol.data.loader import Failure
    from wsol.errors import plain_reason

    raw = "cannot identify image file <_io.BytesIO object at 0x7f1c2a3b4d50>"
    assert plain_reason(raw, "/d/x.jpg") == "cannot identify image file /d/x.jpg"
    assert plain_reason("image file is truncated") == "image file is truncated"
    f = Failure(3, "/d/x.jpg", "decode", raw)
    assert f.to_dict()["reason"] == "cannot identify image file the file"


def test_gt_boxes_out_of_bounds_are_clipped_and_empty_ones_dropped(tmp_path, caplog):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(
        tmp_path,
        {
            "a": "<annotation>"
            + size
            + _obj("cat", -4, 2, 30, 8)
            + _obj("dog", 5, 5, 4, 9)
            + "</annotation>"
        },
    )
    ds = load_voc(root, "s")
    (s,) = ds.samples
    np.testing.assert_array_equal(s.boxes, [[0, 1, 20, 8]])
    assert [ds.classes[c] for c in s.box_labels] == ["cat"]
    assert "clipped" in caplog.text


def test_folder_csv_labels_may_hold_spaces_when_separated_by_semicolons(tmp_path):
    import cv2

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text(
        "file,labels\na.jpg,dining table;person\nb.jpg,cat dog\nc.jpg,teddy bear;\n"
    )
    ds = load_folder(tmp_path, str(tmp_path / "labels.csv"))
    assert ds.classes == ["cat", "dining table", "dog", "person", "teddy bear"]
    assert [[ds.classes[i] for i in s.labels] for s in ds.samples] == [
        ["dining table", "person"],
        ["cat", "dog"],
        ["teddy bear"],
    ]


# --- Issue 23: no hang, no label lost without a word, nothing read outside the root ------


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing the test (not hanging it) if it takes longer."""
    import threading

    box = {}

    def call():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still reading after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_fifo_or_dev_zero_annotation_is_a_failure_not_a_hang(tmp_path):
    import os

    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(
        tmp_path, {"good": f"<annotation>{size}{_obj('cat', 1, 1, 5, 5)}</annotation>"}
    )
    os.mkfifo(root / "Annotations" / "fifo.xml")
    (root / "Annotations" / "zero.xml").symlink_to("/dev/zero")
    (root / "ImageSets" / "Main" / "s.txt").write_text("good\nfifo\nzero\n")
    ds = within(10, load_voc, root, "s")  # nothing waits on the FIFO or reads /dev/zero
    assert [s.image_id for s in ds.samples] == [1]
    assert [(f["image_id"], f["reason"]) for f in ds.failures] == [
        (2, "not a regular file (a FIFO, device or socket)"),
        (3, "not a regular file (a FIFO, device or socket)"),
    ]


def test_split_and_coco_files_that_are_fifos_are_one_line_errors(tmp_path):
    import os

    from wsol.data.base import DataError

    root = _voc_tree(tmp_path, {})
    (root / "ImageSets" / "Main" / "s.txt").unlink()
    os.mkfifo(root / "ImageSets" / "Main" / "s.txt")
    with pytest.raises(DataError, match="not a regular file"):
        within(10, load_voc, root, "s")
    os.mkfifo(tmp_path / "ann.json")
    with pytest.raises(DataError, match="ann.json: not a regular file"):
        within(10, load_coco, tmp_path, tmp_path / "ann.json")
    os.mkfifo(tmp_path / "labels.csv")
    with pytest.raises(DataError, match="labels.csv: not a regular file"):
        within(10, load_folder, tmp_path, str(tmp_path / "labels.csv"))


def test_a_split_line_that_leaves_the_root_is_not_read(tmp_path):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(
        tmp_path, {"good": f"<annotation>{size}{_obj('cat', 1, 1, 5, 5)}</annotation>"}
    )
    (tmp_path / "evil.xml").write_text(f"<annotation>{size}{_obj('dog', 1, 1, 9, 9)}</annotation>")
    (root / "ImageSets" / "Main" / "s.txt").write_text(f"good\n../../evil\n{tmp_path / 'evil'}\n")
    ds = load_voc(root, "s")
    assert ds.classes == ["cat", "dog"] or ds.classes == list(VOC_CLASSES)
    assert [s.image_id for s in ds.samples] == [1]
    assert [(f["image_id"], f["stage"]) for f in ds.failures] == [(2, "path"), (3, "path")]
    assert "outside data.root" in ds.failures[0]["reason"]
    allowed = load_voc(root, "s", allow_outside_root=True)
    assert [s.image_id for s in allowed.samples] == [1, 2, 3]
    # build_dataset passes data.allow_outside_root on
    cfg = DataConfig(format="voc", root=str(root), split="s")
    assert [s.image_id for s in build_dataset(cfg).samples] == [1]


def test_voc_image_extensions_are_matched_whatever_their_case(tmp_path):
    import cv2

    size = "<size><width>8</width><height>8</height></size>"
    xml = "<annotation><filename>{}</filename>" + size + _obj("cat", 1, 1, 5, 5) + "</annotation>"
    root = _voc_tree(
        tmp_path, {"a": xml.format("a.jpg"), "b": xml.format("b.jpeg"), "c": "<annotation/>"}
    )
    for name in ("a.JPG", "b.JPEG", "c.Png", "C.png"):
        cv2.imwrite(str(root / "JPEGImages" / name), np.zeros((8, 8, 3), np.uint8))
    ds = load_voc(root, "s")
    assert [s.file_name for s in ds.samples] == ["a.JPG", "b.JPEG", "c.Png"]  # not C.png
    assert all((root / "JPEGImages" / s.file_name).is_file() for s in ds.samples)


def test_a_voc_box_with_swapped_corners_or_nan_keeps_the_label_and_names_the_file(tmp_path):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(
        tmp_path,
        {
            "swapped": f"<annotation>{size}{_obj('dog', 9, 1, 2, 5)}</annotation>",
            "nan": f"<annotation>{size}{_obj('cat', 'nan', 1, 5, 5)}{_obj('dog', 1, 1, 5, 5)}"
            "</annotation>",
        },
    )
    ds = load_voc(root, "s", classes=["cat", "dog"])
    swapped, nan = ds.samples
    assert [ds.classes[c] for c in swapped.labels] == ["dog"] and len(swapped.boxes) == 0
    assert [ds.classes[c] for c in nan.labels] == ["cat", "dog"]
    assert [ds.classes[c] for c in nan.box_labels] == ["dog"]
    assert [(w["image_id"], w["path"].rsplit("/", 1)[1]) for w in ds.warnings] == [
        (1, "swapped.xml"),
        (2, "nan.xml"),
    ]
    assert "swapped corners" in ds.warnings[0]["reason"] and "'dog'" in ds.warnings[0]["reason"]
    assert "not a finite number" in ds.warnings[1]["reason"]
    assert all("label kept" in w["reason"] for w in ds.warnings)


def test_an_id_listed_twice_in_a_split_is_read_once_with_a_warning(tmp_path):
    size = "<size><width>20</width><height>10</height></size>"
    root = _voc_tree(tmp_path, {"a": f"<annotation>{size}{_obj('cat', 1, 1, 5, 5)}</annotation>"})
    (root / "ImageSets" / "Main" / "s.txt").write_text("a\na\n")
    ds = load_voc(root, "s")
    assert [s.image_id for s in ds.samples] == [1]
    assert [(w["image_id"], w["stage"]) for w in ds.warnings] == [(2, "split")]
    assert "listed again in s.txt (image 1)" in ds.warnings[0]["reason"]


def _coco_doc(**more):
    doc = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 10, "width": 20},
            {"id": 2, "file_name": "b.jpg", "height": 10, "width": 20},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2, 2, 5, 5]},
        ],
    }
    return {**doc, **more}


def test_one_coco_file_under_two_image_ids_is_read_once_with_a_warning(tmp_path):
    doc = _coco_doc()
    doc["images"][1]["file_name"] = "a.jpg"
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    ds = load_coco(tmp_path, tmp_path / "ann.json")
    assert [s.image_id for s in ds.samples] == [1]
    (w,) = ds.warnings
    assert w["image_id"] == 2 and "the same file as image 1" in w["reason"]


def test_coco_categories_that_share_a_name_stay_apart(tmp_path):
    doc = _coco_doc(categories=[{"id": 1, "name": "cat"}, {"id": 2, "name": "cat"}])
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    ds = load_coco(tmp_path, tmp_path / "ann.json")
    assert ds.classes == ["cat (1)", "cat (2)"] and ds.category_ids == [1, 2]
    assert [list(s.labels) for s in ds.samples] == [[0], [1]]


@pytest.mark.parametrize("where", ["category", "image"])
def test_coco_ids_that_pycocotools_cannot_hold_are_refused(tmp_path, where):
    doc = _coco_doc()
    if where == "category":
        doc["categories"][1]["id"] = 2**63
        doc["annotations"][1]["category_id"] = 2**63
    else:
        doc["images"][1]["id"] = 2**63
        doc["annotations"][1]["image_id"] = 2**63
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=f"{where} id 9223372036854775808 does not fit") as e:
        load_coco(tmp_path, tmp_path / "ann.json")
    assert "\n" not in str(e.value)


def test_a_coco_box_with_no_area_keeps_the_label_and_names_the_file(tmp_path):
    doc = _coco_doc()
    doc["annotations"][1]["bbox"] = [5, 5, -3, 4]
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    ds = load_coco(tmp_path, tmp_path / "ann.json")
    assert [ds.classes[c] for c in ds.samples[1].labels] == ["dog"]
    assert len(ds.samples[1].boxes) == 0
    (w,) = ds.warnings
    assert w["path"].endswith("b.jpg") and "swapped corners" in w["reason"]


def test_a_long_labels_csv_merges_its_rows(tmp_path):
    import cv2

    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text(
        "file,labels\na.jpg,circle\na.jpg,square\nb.jpg,square\na.jpg,circle;ring\n"
    )
    ds = load_folder(tmp_path, str(tmp_path / "labels.csv"))
    assert ds.classes == ["circle", "ring", "square"]
    assert [[ds.classes[i] for i in s.labels] for s in ds.samples] == [
        ["circle", "ring", "square"],
        ["square"],
    ]
