from __future__ import annotations

import copy

import pytest

from wsol.export import filter_document


def _doc(scores_by_key):
    """Annotations ``(image_id, category_id, score)`` in file order, ids from 1."""
    anns = [
        {"id": i + 1, "image_id": im, "category_id": c, "bbox": [0, 0, 1, 1], "score": s}
        for i, (im, c, s) in enumerate(scores_by_key)
    ]
    ids = [{"id": 1}, {"id": 2}]
    return {"images": ids, "categories": ids, "annotations": anns}


def _keys(doc):
    return [(a["id"], a["image_id"], a["category_id"], a["score"]) for a in doc["annotations"]]


def test_defaults_keep_everything_and_do_not_touch_the_input(small_doc):
    before = copy.deepcopy(small_doc)
    assert filter_document(small_doc) == small_doc
    assert filter_document(small_doc, 0.0, 0) is not small_doc
    assert small_doc == before


def test_min_score_drops_lower_scores_and_renumbers_from_one():
    doc = _doc([(1, 1, 0.2), (1, 1, 0.5), (2, 2, 0.49), (2, 1, 0.9)])
    kept = filter_document(doc, min_score=0.5)
    assert _keys(kept) == [(1, 1, 1, 0.5), (2, 2, 1, 0.9)]  # 0.5 itself is kept
    assert kept["images"] == doc["images"]  # an image whose boxes all went stays listed
    assert kept["categories"] == doc["categories"]
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3, 4]


def test_max_per_class_keeps_the_best_per_image_and_class():
    doc = _doc(
        [
            (1, 1, 0.3),
            (1, 1, 0.8),
            (1, 2, 0.1),
            (1, 1, 0.6),
            (2, 1, 0.7),
            (2, 1, 0.7),  # a tie: the earlier one wins
        ]
    )
    assert _keys(filter_document(doc, max_per_class=1)) == [
        (1, 1, 1, 0.8),
        (2, 1, 2, 0.1),
        (3, 2, 1, 0.7),
    ]
    # File order is kept among the survivors.
    assert [k[3] for k in _keys(filter_document(doc, max_per_class=2))] == [0.8, 0.1, 0.6, 0.7, 0.7]


def test_both_filters_apply_the_floor_first():
    doc = _doc([(1, 1, 0.9), (1, 1, 0.8), (1, 1, 0.1)])
    assert [k[3] for k in _keys(filter_document(doc, min_score=0.85, max_per_class=2))] == [0.9]


def test_negative_settings_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        filter_document(_doc([]), max_per_class=-1)


def test_dropped_boxes_says_why_each_box_was_left_out():
    from wsol.export import dropped_boxes

    doc = _doc([(1, 1, 0.2), (1, 1, 0.5), (1, 1, 0.6), (2, 1, 0.01)])
    assert dropped_boxes(doc) == {}
    assert dropped_boxes(doc, min_score=0.3) == {"below export.min_score=0.3": 2}
    # The floor first: a box under it is not also counted over the cap.
    assert dropped_boxes(doc, 0.3, 1) == {
        "below export.min_score=0.3": 2,
        "over export.max_per_class=1": 1,
    }
    assert len(filter_document(doc, 0.3, 1)["annotations"]) == 4 - 3


def test_export_names_name_files_and_folders():
    from wsol.export import export_names

    assert export_names(["coco", "results", "voc", "yolo", "labelstudio", "mine"]) == [
        "pseudo_labels.json",
        "results.json",
        "voc/",
        "yolo/",
        "labelstudio.json",
        "mine",
    ]
