"""The gallery: one fixed-size tile per image with all its classes, pictures inlined."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from wsol.data.base import Sample
from wsol.localize.results import ClassResult, Detections, ImageResult
from wsol.report.gallery import TILE_SIDE, class_lines, max_heat, render_gallery
from wsol.report.picks import Pick

CLASSES = ["cat", "dog", "a class with a very long name"]


def _decode(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head == "data:image/jpeg;base64"
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)


def _image(tmp_path, name: str, h: int, w: int) -> Sample:
    cv2.imwrite(str(tmp_path / name), np.full((h, w, 3), 90, np.uint8))
    return Sample(
        1,
        str(tmp_path / name),
        name,
        h,
        w,
        labels=np.array([0, 1]),
        boxes=np.array([[10.0, 10, 60, 40], [70, 20, 110, 70]]),
        box_labels=np.array([0, 1]),
        ignore=np.zeros(2, bool),
    )


def _result(h: int, w: int) -> ImageResult:
    ramp = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    return ImageResult(
        size=(h, w),
        probs=np.array([0.9, 0.8, 0.1]),
        classes=[
            ClassResult(
                0, 0.9, Detections(np.array([[12.0, 10, 60, 40]]), np.array([0.7])), ramp, 0.5
            ),
            ClassResult(1, 0.8, Detections.empty("map is constant"), None, 0.5),
            ClassResult(
                2,
                0.1,
                Detections(np.array([[0.0, 0, 20, 20]]), np.array([0.3])),
                ramp[:, ::-1],
                0.5,
            ),
        ],
    )


def test_one_tile_per_image_with_a_fixed_size_inlined_picture(tmp_path):
    sample = _image(tmp_path, "a.jpg", 80, 120)
    tall = _image(tmp_path, "b.png", 900, 300)
    shown = [
        (Pick(0, "best", 0.9), sample, _result(80, 120)),
        (Pick(1, "random", None), tall, _result(900, 300)),
    ]
    tiles = render_gallery(CLASSES, shown)
    assert [t.group for t in tiles] == ["best", "random"]
    assert [len(t.pictures) for t in tiles] == [1, 1]  # all classes in one picture
    assert _decode(tiles[0].pictures[0][0]).shape == (TILE_SIDE * 80 // 120, TILE_SIDE, 3)
    assert _decode(tiles[1].pictures[0][0]).shape[:2] == (TILE_SIDE, TILE_SIDE // 3)
    assert tiles[0].lines[0] == "best (mean best IoU 0.90)" and tiles[1].lines[0] == "random"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.png"]  # no file written


def test_pixel_level_methods_add_the_saliency_picture(tmp_path):
    sample = _image(tmp_path, "a.jpg", 80, 120)
    (tile,) = render_gallery(CLASSES, [(Pick(0, "random", None), sample, _result(80, 120))], True)
    assert len(tile.pictures) == 2 and tile.pictures[1][1] == "a.jpg: saliency"


def test_undecodable_images_are_left_out(tmp_path):
    sample = _image(tmp_path, "a.jpg", 80, 120)
    (tmp_path / "a.jpg").write_bytes(b"not an image")
    assert render_gallery(CLASSES, [(Pick(0, "best", 1.0), sample, _result(80, 120))]) == []


def test_caption_lines_give_scores_iou_and_missing_boxes(tmp_path):
    sample = _image(tmp_path, "a.jpg", 80, 120)
    lines = class_lines(_result(80, 120), sample, CLASSES, show_gt=True)
    assert lines[0] == "cat p=0.90: box 0.70, IoU 0.96"
    assert lines[1] == "dog p=0.80: no box (map is constant)"
    assert lines[2].endswith("not in GT")
    sample.ignore[1] = True  # the dog's only box is difficult: in the GT, not scored
    lines = class_lines(_result(80, 120), sample, CLASSES, show_gt=True)
    assert lines[1] == "dog p=0.80: no box (map is constant), GT boxes ignored (difficult)"
    no_gt = class_lines(_result(80, 120), sample, CLASSES, show_gt=False)
    assert no_gt[0] == "cat p=0.90: box 0.70" and "GT" not in " ".join(no_gt)


def test_max_heat_takes_the_pixelwise_maximum_of_usable_maps():
    heat = max_heat(_result(4, 6), (4, 6))
    assert heat.shape == (4, 6) and heat[0, 0] == 1.0 and heat[0, -1] == 1.0
    assert max_heat(ImageResult((4, 6), np.zeros(1)), (4, 6)) is None


def test_small_scores_keep_two_significant_digits():
    from wsol.report.gallery import score_text

    assert [score_text(v) for v in (0.91, 0.1, 0.0032, 0.04567, 0.0)] == [
        "0.91",
        "0.10",
        "0.0032",
        "0.046",
        "0",
    ]


def test_group_line_tells_small_box_scores_apart():
    from wsol.report.gallery import _group_line
    from wsol.report.picks import Pick

    fields = Pick.__dataclass_fields__
    base = {k: None for k in fields}
    lines = [
        _group_line(Pick(**{**base, "group": "highest box score", "quality": q}), False)
        for q in (0.0012, 0.031, 0.91)
    ]
    assert lines == [
        "highest box score (top box score 0.0012)",
        "highest box score (top box score 0.031)",
        "highest box score (top box score 0.91)",
    ]


def test_a_class_skipped_as_unmapped_says_so_in_the_caption(tmp_path):
    from wsol.data.base import Dataset

    sample = _image(tmp_path, "a.jpg", 80, 120)
    sample.labels = np.array([0, 1, 2])
    full = Dataset("d", ["cat", "dog", "zebra"], [sample], [1, 2, 3])
    (kept,) = full.restrict_classes(["cat", "dog"]).samples  # zebra: no class-map entry
    assert kept.left_out == ("zebra",)
    lines = class_lines(_result(80, 120), kept, CLASSES, show_gt=True)
    assert lines[-1] == (
        "zebra: skipped, unmapped (model.skip_unmapped: the class map has no entry for it)"
    )
    assert not any(
        "skipped" in line for line in class_lines(_result(80, 120), sample, CLASSES, True)
    )
