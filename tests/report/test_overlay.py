"""Overlay labels: drawn once in a filled box, inside the picture, never on each other."""

from __future__ import annotations

import numpy as np

from wsol.report.overlay import (
    PRED_COLOR,
    draw_label,
    fit,
    fit_text,
    label_boxes,
    label_spots,
    overlay,
)


def _changed(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box (x1, y1, x2, y2), exclusive, of the pixels that changed."""
    ys, xs = np.nonzero((before != after).any(axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_band_label_changes_only_its_filled_box():
    canvas = np.zeros((200, 300, 3), np.uint8)
    canvas[:] = (128, 0, 200)  # a colour the grey text and band cannot make
    before = canvas.copy()
    draw_label(canvas, "ring 0.59")
    x1, y1, x2, y2 = _changed(before, canvas)
    assert (x1, y1) == (0, 0) and x2 < 150 and y2 < 40
    # Every pixel of that box is the band or the text: no grey left, no shadow beside it.
    box = canvas[y1:y2, x1:x2]
    assert not (box == (128, 0, 200)).all(axis=2).any()
    assert (box[..., 0] == box[..., 1]).all()  # grey only: text on band, nothing else
    assert (box == 20).all(axis=2).mean() > 0.5  # mostly band colour


def test_long_label_is_cut_to_fit_and_stays_inside():
    canvas = np.full((120, 160, 3), 128, np.uint8)
    before = canvas.copy()
    draw_label(canvas, "a very long class name that cannot fit 0.99", corner=(100, 100))
    x1, y1, x2, y2 = _changed(before, canvas)
    assert x1 >= 0 and y1 >= 0 and x2 <= 160 and y2 <= 120
    assert x2 - x1 > 100  # moved left to fit instead of being clipped at the border
    text, width, _, _ = fit_text("a very long class name", 60, 0.5, 1)
    assert text.endswith("...") and width <= 60


def test_box_tag_sits_above_the_box_and_falls_inside_at_the_top_edge():
    spots = label_spots(np.array([50.0, 40, 120, 90]), (60, 16), (200, 300))
    assert spots[0] == (50, 24)  # above
    assert spots[1] == (50, 40)  # inside the top
    top = label_spots(np.array([250.0, 0, 300, 50]), (60, 16), (200, 300))
    assert top[0] == (240, 0)  # no room above: clamped into the picture, and left


def test_tags_of_close_boxes_do_not_overlap():
    canvas = np.full((200, 300, 3), 128, np.uint8)
    boxes = np.array([[40.0, 60, 140, 150], [44, 62, 150, 160], [46, 64, 150, 160]])
    rects = label_boxes(canvas, boxes, ["cat 0.91", "dog 0.88", "cow 0.5"], PRED_COLOR)
    assert len(rects) == 3
    for i, a in enumerate(rects):
        assert 0 <= a[0] < a[2] <= 300 and 0 <= a[1] < a[3] <= 200
        for b in rects[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert rects[0][3] == 60  # the first sits right above its box
    assert (canvas[rects[0][1], rects[0][0]] == PRED_COLOR).all()


def test_overlay_fixed_side_scales_boxes():
    image = np.zeros((100, 200, 3), np.uint8)
    pic = overlay(image, None, np.array([[0.0, 0, 100, 50]]), np.zeros((0, 4)), side=400)
    assert pic.shape == (200, 400, 3)
    assert tuple(pic[0, 0]) == PRED_COLOR and tuple(pic[99, 199]) == PRED_COLOR
    assert fit(image, 50)[0].shape == (25, 50, 3)


def test_non_ascii_text_is_drawn_as_question_marks():
    text, *_ = fit_text("café", 500, 0.5, 1)
    assert text == "caf?"
