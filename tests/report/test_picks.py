"""Picking the shown images: by box quality (or score) from the written boxes alone."""

from __future__ import annotations

import numpy as np
import pytest

from wsol.data.base import Sample
from wsol.report.picks import SCORE_GROUPS, image_quality, pick_images, top_scores


def _sample(i: int, boxes, labels) -> Sample:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return Sample(
        image_id=i,
        path=f"{i}.jpg",
        file_name=f"{i}.jpg",
        labels=np.unique(np.asarray(labels, np.int64)),
        boxes=boxes,
        box_labels=np.asarray(labels, np.int64),
        ignore=np.zeros(len(boxes), bool),
    )


def _ann(image_id: int, cat: int, xywh, score: float = 0.5) -> dict:
    return {"image_id": image_id, "category_id": cat, "bbox": list(xywh), "score": score}


def test_image_quality_is_the_mean_best_iou_over_gt_classes():
    samples = [
        _sample(10, [[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1]),  # two classes
        _sample(11, [[0, 0, 10, 10]], [0]),
        _sample(12, [], []),  # no GT: not ranked
        _sample(13, [[0, 0, 10, 10]], [0]),  # not processed
    ]
    doc = {
        "images": [{"id": 10}, {"id": 11}, {"id": 12}],
        "annotations": [
            _ann(10, 1, [0, 0, 10, 10]),  # class 0 (category 1): IoU 1
            _ann(10, 1, [0, 0, 5, 10]),  # worse box of the same class
            _ann(11, 2, [0, 0, 10, 10]),  # right box, wrong class: IoU 0 for class 0
        ],
    }
    q = image_quality(doc, samples, category_ids=[1, 2])
    assert q == {0: pytest.approx(0.5), 1: 0.0, 2: None}  # class 1 of image 10 has no box


def test_top_scores_rank_images_without_gt():
    samples = [_sample(i, [], []) for i in range(3)]
    doc = {
        "images": [{"id": 0}, {"id": 1}],
        "annotations": [_ann(0, 1, [0, 0, 1, 1], 0.2), _ann(0, 1, [0, 0, 2, 2], 0.7)],
    }
    assert top_scores(doc, samples) == {0: 0.7, 1: None}


def test_picks_are_n_distinct_images_best_worst_then_random():
    scores = {p: p / 100 for p in range(100)}
    picks = pick_images(scores, 12, seed=3)
    assert len(picks) == 12 and len({p.position for p in picks}) == 12
    assert [p.position for p in picks[:4]] == [99, 98, 97, 96]
    assert [p.group for p in picks[:4]] == ["best"] * 4
    assert [p.position for p in picks[4:8]] == [0, 1, 2, 3]
    assert [p.group for p in picks[4:8]] == ["worst"] * 4
    rand = [p.position for p in picks[8:]]
    assert rand == sorted(rand) and all(4 <= p <= 95 for p in rand)
    assert pick_images(scores, 12, seed=3) == picks
    assert [p.position for p in pick_images(scores, 12, seed=4)[8:]] != rand


def test_picks_with_few_images_or_no_ranking():
    assert pick_images({}, 5) == []
    assert pick_images({1: 0.5}, 0) == []
    few = pick_images({0: 0.1, 1: None, 2: 0.9}, 12)
    assert sorted(p.position for p in few) == [0, 1, 2]
    unranked = pick_images(dict.fromkeys(range(10)), 4, groups=SCORE_GROUPS)
    assert len(unranked) == 4 and {p.group for p in unranked} == {"random"}
    small = pick_images({p: float(p) for p in range(10)}, 2)
    assert [p.group for p in small] == ["random", "random"]
