"""Box conventions: VOC <-> internal <-> COCO round trips, IoU properties, grouping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.boxes import (
    box_area,
    box_iou,
    clip_boxes,
    coco_to_xyxy,
    group_boxes,
    mask_extent_to_xyxy,
    voc_to_xyxy,
    xyxy_to_coco,
    xyxy_to_voc,
)

coord = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def xyxy(draw, min_size=size):
    x, y = draw(coord), draw(coord)
    return [x, y, x + draw(min_size), y + draw(min_size)]


@st.composite
def voc_box(draw):
    xmin, ymin = draw(st.integers(1, 5000)), draw(st.integers(1, 5000))
    return [xmin, ymin, xmin + draw(st.integers(0, 3000)), ymin + draw(st.integers(0, 3000))]


def test_pinned_examples():
    # VOC pixel 1..3 (1-based, inclusive) is 3 pixels wide: continuous 0..3.
    np.testing.assert_array_equal(voc_to_xyxy([[1, 1, 3, 3]]), [[0, 0, 3, 3]])
    np.testing.assert_array_equal(xyxy_to_voc([[0, 0, 3, 3]]), [[1, 1, 3, 3]])
    # Fractional corners widen outward to the pixels they touch.
    np.testing.assert_array_equal(xyxy_to_voc([[0.5, 1.2, 2.5, 3.0]]), [[1, 2, 3, 3]])
    np.testing.assert_array_equal(xyxy_to_coco([[2, 3, 7, 9]]), [[2, 3, 5, 6]])
    np.testing.assert_array_equal(coco_to_xyxy([[2, 3, 5, 6]]), [[2, 3, 7, 9]])
    np.testing.assert_array_equal(mask_extent_to_xyxy(4, 5, 4, 5), [4, 5, 5, 6])
    np.testing.assert_array_equal(clip_boxes([[-2, -1, 12, 9]], 8, 10), [[0, 0, 10, 8]])
    assert box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        box_iou([[0, 0, 1]], [[0, 0, 1, 1]])


@given(st.lists(voc_box(), min_size=1, max_size=5))
def test_voc_internal_voc_round_trip_is_exact(boxes):
    internal = voc_to_xyxy(boxes)
    np.testing.assert_array_equal(xyxy_to_voc(internal), boxes)
    # An inclusive VOC box of w pixels is w wide in continuous terms.
    b = np.asarray(boxes, np.float64)
    np.testing.assert_array_equal(internal[:, 2] - internal[:, 0], b[:, 2] - b[:, 0] + 1)


@given(st.lists(xyxy(), min_size=1, max_size=5))
def test_internal_coco_internal_round_trip(boxes):
    back = coco_to_xyxy(xyxy_to_coco(boxes))
    np.testing.assert_allclose(back, boxes, rtol=0, atol=1e-9 * 2e4)
    coco = xyxy_to_coco(boxes)
    assert (coco[:, 2:] >= 0).all()


@given(st.lists(xyxy(), min_size=1, max_size=5))
def test_internal_voc_covers_the_continuous_box(boxes):
    # Export to VOC and back: the pixels covered always contain the original box.
    back = voc_to_xyxy(xyxy_to_voc(boxes))
    b = np.asarray(boxes)
    assert (back[:, :2] <= b[:, :2]).all() and (back[:, 2:] >= b[:, 2:]).all()
    # ... and by less than a pixel (integer +- 1 is exact, so no rounding hides a miss).
    assert (back[:, :2] + 1 > b[:, :2]).all() and (back[:, 2:] - 1 < b[:, 2:]).all()


@given(st.lists(xyxy(), min_size=1, max_size=4), st.lists(xyxy(), min_size=1, max_size=4))
def test_iou_symmetric_and_bounded(a, b):
    ab, ba = box_iou(a, b), box_iou(b, a)
    np.testing.assert_array_equal(ab, ba.T)
    assert ab.shape == (len(a), len(b))
    assert np.isfinite(ab).all() and (ab >= 0).all() and (ab <= 1 + 1e-12).all()


@given(st.lists(xyxy(min_size=positive), min_size=1, max_size=4))
def test_iou_with_itself_is_one(boxes):
    np.testing.assert_allclose(np.diag(box_iou(boxes, boxes)), 1.0, rtol=1e-12)


def test_degenerate_boxes_have_iou_zero_not_nan():
    iou = box_iou([[1, 1, 1, 5], [0, 0, 0, 0]], [[1, 1, 1, 5], [0, 0, 2, 2]])
    np.testing.assert_array_equal(iou, np.zeros((2, 2)))
    np.testing.assert_array_equal(box_area([[0, 0, -1, 2]]), [0.0])


def test_group_nested():
    boxes = [
        [0, 0, 10, 10],  # 0: outer
        [2, 2, 5, 5],  # 1: inside 0
        [8, 8, 12, 12],  # 2: overlaps 0, not inside: its own group
        [20, 20, 30, 30],  # 3
        [21, 21, 22, 22],  # 4: inside 3 and 5; joins the earlier of the equal two
        [20, 20, 30, 30],
    ]  # 5: identical to 3: same group
    np.testing.assert_array_equal(group_boxes(boxes, "nested"), [0, 0, 1, 2, 2, 2])
    # A box inside two overlapping boxes joins the larger one, without merging them.
    np.testing.assert_array_equal(
        group_boxes([[0, 0, 6, 6], [3, 3, 10, 10], [4, 4, 5, 5]], "nested"), [0, 1, 1]
    )


def test_group_overlap_to_a_fixed_point():
    # 0 and 1 overlap; their union (0,0,8,8) overlaps 2, which neither box alone does.
    boxes = [[0, 0, 4, 4], [3, 3, 8, 8], [7, 0, 9, 2], [20, 0, 21, 1]]
    assert box_iou([boxes[0]], [boxes[2]])[0, 0] == 0 and box_iou([boxes[1]], [boxes[2]])[0, 0] == 0
    np.testing.assert_array_equal(group_boxes(boxes, "overlap"), [0, 0, 0, 1])
    # Touching along an edge is not overlapping.
    np.testing.assert_array_equal(group_boxes([[0, 0, 2, 2], [2, 0, 4, 2]], "overlap"), [0, 1])
    assert group_boxes(np.zeros((0, 4)), "overlap").shape == (0,)
    with pytest.raises(ValueError, match="nested, overlap"):
        group_boxes([[0, 0, 1, 1]], "bogus")


@settings(max_examples=50)
@given(st.lists(xyxy(min_size=positive), min_size=1, max_size=6))
def test_overlap_groups_do_not_overlap(boxes):
    group = group_boxes(boxes, "overlap")
    b = np.asarray(boxes)
    unions = np.array(
        [
            [
                b[group == g, 0].min(),
                b[group == g, 1].min(),
                b[group == g, 2].max(),
                b[group == g, 3].max(),
            ]
            for g in range(group.max() + 1)
        ]
    )
    iou = box_iou(unions, unions)
    np.fill_diagonal(iou, 0)
    assert (iou == 0).all()
