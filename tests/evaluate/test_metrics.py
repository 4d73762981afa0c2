"""Metrics on hand-built cases whose answers are worked out in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wsol.data.base import Dataset, Sample
from wsol.data.masks import class_mask, decode_segmentation, voc_instance_segmentations
from wsol.errors import WsolError
from wsol.evaluate import (
    BoxAccuracy,
    Evaluators,
    MaxBoxAcc,
    PixelAP,
    coco_ap,
    sweep_thresholds,
)
from wsol.evaluate.predictions import (
    evaluate_predictions,
    load_ground_truth,
    load_predictions,
    prediction_corloc,
)
from wsol.localize import BoxParams, ClassResult, Detections, ImageResult, detect

# Normalized 5x5 unimodal map: centre 1, its 4 neighbours 0.5, the bump's corners 0.25.
BUMP_MAP = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 0.25, 0.5, 0.25, 0],
        [0, 0.5, 1, 0.5, 0],
        [0, 0.25, 0.5, 0.25, 0],
        [0, 0, 0, 0, 0],
    ]
)
# Two peaks: A (2x2 at 1.0) and the larger, lower B (3x3 at 0.55).
TWO_PEAKS = np.zeros((6, 8))
TWO_PEAKS[1:3, 1:3] = 1.0
TWO_PEAKS[2:5, 5:8] = 0.55
BOX_A, BOX_B = [1, 1, 3, 3], [5, 2, 8, 5]


def _sample(image_id, boxes, labels, ignore=None, segmentations=None, hw=(5, 5)):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.asarray(labels, np.int64)
    ignore = np.zeros(len(labels), bool) if ignore is None else np.asarray(ignore, bool)
    return Sample(
        image_id=image_id,
        path=f"/imgs/{image_id}.jpg",
        file_name=f"{image_id}.jpg",
        height=hw[0],
        width=hw[1],
        labels=np.unique(labels[~ignore]),
        boxes=boxes,
        box_labels=labels,
        ignore=ignore,
        segmentations=segmentations,
    )


def _result(sample, norm_map, cut, cls=0, probs=(1.0,), components="largest"):
    """A ``(sample, result)`` pair, as the run feeds the evaluators."""
    det = (
        detect(norm_map, cut, probs[cls], components)
        if norm_map is not None
        else Detections.empty("map is constant")
    )
    size = (sample.height, sample.width)
    return sample, ImageResult(
        size, np.asarray(probs, np.float64), [ClassResult(cls, probs[cls], det, norm_map, cut)]
    )


def _update(evaluator, pairs):
    evaluator.update([s for s, _ in pairs], [r for _, r in pairs])


class _Accuracy(Evaluators):
    """Both box evaluators of a run: at the operating cut and over the sweep."""

    def __init__(self, num_classes, thresholds, iou=0.5, corloc_sweep=None, class_agnostic=False):
        super().__init__(
            {
                "box_acc": BoxAccuracy(num_classes, iou, class_agnostic),
                "max_box_acc": MaxBoxAcc(
                    num_classes, thresholds, iou, corloc_sweep, class_agnostic
                ),
            }
        )
        self.curve = self["max_box_acc"].curve
        self.sweep = self["max_box_acc"].sweep

    def update(self, pairs):
        _update(super(), pairs)

    @property
    def pairs(self):
        assert self["box_acc"].pairs == self["max_box_acc"].pairs
        return self["box_acc"].pairs


def test_maxboxacc_picks_one_global_tau_not_one_per_image():
    # Image 1's object is the whole bump (1,1,4,4); image 2's is the centre pixel (2,2,3,3).
    # tau 0.2: box (1,1,4,4): image 1 IoU 1 (hit), image 2 IoU 1/9 (miss).
    # tau 0.6: box (2,2,3,3): image 1 IoU 1/9 (miss), image 2 IoU 1 (hit).
    # Best tau per image would score 2/2; one global tau scores 1/2 at either tau.
    acc = _Accuracy(1, np.array([0.2, 0.6]))
    acc.update(
        [
            _result(_sample(1, [[1, 1, 4, 4]], [0]), BUMP_MAP, 0.2),
            _result(_sample(2, [[2, 2, 3, 3]], [0]), BUMP_MAP, 0.2),
        ]
    )
    m = acc.compute()
    assert m["maxboxacc"] == 0.5
    assert acc.curve()["maxboxacc"] == [0.5, 0.5]
    assert m["maxboxacc_threshold"] == 0.2  # the first of equal maxima
    # At the operating cut 0.2 only image 1 is right: corloc = gt_known = 1/2.
    assert m["corloc"] == 0.5 and m["gt_known_loc"] == 0.5 and m["num_pairs"] == 2


def test_maxboxacc_v1_uses_the_largest_component_v2_all():
    # GT on peak A. At tau 0.5 both peaks exist: the largest is B (IoU 0 with A): V1
    # misses; all components include A (IoU 1): V2 hits at every delta.
    # At tau 0.7 only A is left: both hit. With the sweep {0.5} alone V1 is 0, V2 is 1.
    sample = _sample(1, [BOX_A], [0], hw=(6, 8))
    acc = _Accuracy(1, np.array([0.5]))
    acc.update([_result(sample, TWO_PEAKS, 0.5)])
    m = acc.compute()
    assert m["maxboxacc"] == 0.0
    assert m["maxboxacc_v2"] == 1.0
    assert m["maxboxacc_v2_iou30"] == m["maxboxacc_v2_iou50"] == m["maxboxacc_v2_iou70"] == 1.0
    acc = _Accuracy(1, np.array([0.5, 0.7]))
    acc.update([_result(sample, TWO_PEAKS, 0.5)])
    assert acc.compute()["maxboxacc"] == 1.0
    assert acc.compute()["maxboxacc_threshold"] == 0.7


def test_v2_deltas_are_separate_maxima():
    # GT (1,1,4,3) (area 6) vs the boxes of BUMP_MAP:
    #   tau 0.2 -> (1,1,4,4), area 9: IoU 6/9 = 0.667 (>= 0.3, 0.5; < 0.7)
    #   tau 0.6 -> (2,2,3,3), area 1: IoU 1/6 = 0.167 (misses all)
    # So iou30 = iou50 = 1, iou70 = 0 and V2 = (1 + 1 + 0) / 3.
    acc = _Accuracy(1, np.array([0.2, 0.6]))
    acc.update([_result(_sample(1, [[1, 1, 4, 3]], [0]), BUMP_MAP, 0.2)])
    m = acc.compute()
    assert (m["maxboxacc_v2_iou30"], m["maxboxacc_v2_iou50"], m["maxboxacc_v2_iou70"]) == (1, 1, 0)
    assert m["maxboxacc_v2"] == pytest.approx(2 / 3)


def test_corloc_top1_ignored_boxes_and_bad_maps():
    thresholds = np.array([0.2])
    acc = _Accuracy(2, thresholds)
    # Image 1: class 0 hit at cut 0.2; class 1's map is unusable (a pair, but a miss).
    # The model's top class is 1 (p=0.9), a GT class whose map failed: top-1 miss.
    s1 = _sample(1, [[1, 1, 4, 4], [0, 0, 2, 2]], [0, 1])
    det0 = detect(BUMP_MAP, 0.2, 0.3)
    r1 = (
        s1,
        ImageResult(
            (5, 5),
            np.array([0.3, 0.9]),
            [
                ClassResult(0, 0.3, det0, BUMP_MAP, 0.2),
                ClassResult(1, 0.9, Detections.empty("map is constant"), None, 0.2),
            ],
        ),
    )
    # Image 2: its only box is difficult (ignored): no pair at all.
    s2 = _sample(2, [[1, 1, 4, 4]], [0], ignore=[True])
    # Image 3: class 0 with a difficult box the prediction hits and a normal box it
    # misses: a hit on the difficult box counts. Top class 0 is right: top-1 hit.
    s3 = _sample(3, [[1, 1, 4, 4], [0, 0, 1, 1]], [0, 0], ignore=[True, False])
    acc.update(
        [
            r1,
            _result(s2, BUMP_MAP, 0.2, probs=(1.0, 0.0)),
            _result(s3, BUMP_MAP, 0.2, probs=(0.8, 0.1)),
        ]
    )
    m = acc.compute()
    assert m["num_pairs"] == 3  # (1, 0), (1, 1), (3, 0)
    assert m["corloc"] == pytest.approx(2 / 3)
    assert m["gt_known_loc"] == pytest.approx(2 / 3)
    assert m["top1_loc"] == 0.5  # images 1 (miss) and 3 (hit); image 2 has no pair
    assert m["maxboxacc"] == pytest.approx(2 / 3)
    per = acc.per_class(["a", "b"])
    assert per["a"]["pairs"] == 2 and per["a"]["corloc"] == 1.0
    assert per["b"] == {
        "pairs": 1,
        "corloc": 0.0,
        "gt_known_loc": 0.0,
        "maxboxacc": 0.0,
        "maxboxacc_v2": 0.0,
        "best_threshold": 0.2,
        "best_maxboxacc": 0.0,
    }
    sweep = acc.sweep(["a", "b"])
    assert sweep["per_class"]["a"]["maxboxacc"] == [2]
    assert sweep["per_class"]["b"]["maxboxacc_v2"] == [[0, 0, 0]]
    acc.reset()
    assert acc.compute() == {} and acc.pairs == 0


def test_gt_known_loc_absent_without_maps_for_every_gt_class():
    # targets=topk may skip a GT class: then gt_known_loc is not defined.
    acc = _Accuracy(2, np.array([0.2]))
    s = _sample(1, [[1, 1, 4, 4], [0, 0, 2, 2]], [0, 1])
    acc.update([_result(s, BUMP_MAP, 0.2, probs=(0.9, 0.1))])
    m = acc.compute()
    assert "gt_known_loc" not in m and m["corloc"] == 0.5


def test_corloc_sweep_follows_the_top_scoring_box():
    # With components=all the top box at 0.5 is A (mean 1.0 beats 0.55): GT on A is hit
    # by the swept CorLoc but missed by V1 (largest = B).
    sample = _sample(1, [BOX_A], [0], hw=(6, 8))
    acc = _Accuracy(1, np.array([0.5]), corloc_sweep=BoxParams(components="all"))
    acc.update([_result(sample, TWO_PEAKS, 0.5)])
    assert acc.curve()["corloc"] == [1.0] and acc.curve()["maxboxacc"] == [0.0]


def test_sweep_thresholds():
    np.testing.assert_allclose(sweep_thresholds(0.25), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(sweep_thresholds(0.1, [0.5, 0.2, 0.5]), [0.2, 0.5])


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]  # COCO polygon of the box


def test_pxap_hand_case():
    # 2x2 map [[0.9, 0.6], [0.3, 0.1]]; the object is the left column: fg scores
    # {0.9, 0.3}, bg {0.6, 0.1}.
    #   tau 0:   TP 2 FP 2 -> P 0.5, R 1
    #   tau 0.5: TP 1 FP 1 -> P 0.5, R 0.5
    #   tau 0.8: TP 1 FP 0 -> P 1,   R 0.5
    # PxAP = (1 - .5) * .5 + (.5 - .5) * .5 + (.5 - 0) * 1 = 0.75; without 0.8: 0.5.
    m = np.array([[0.9, 0.6], [0.3, 0.1]])
    s = _sample(1, [[0, 0, 1, 2]], [0], segmentations=[_square(0, 0, 1, 2)], hw=(2, 2))
    for taus, expected in (([0, 0.5, 0.8], 0.75), ([0, 0.5], 0.5)):
        ev = PixelAP(1, np.array(taus))
        _update(ev, [_result(s, m, 0.5)])
        assert ev.compute()["pxap"] == pytest.approx(expected)
        assert ev.per_class(["a"])["a"]["pxap"] == pytest.approx(expected)


def test_pxap_ignores_crowd_pixels_and_skips_pairs_without_masks():
    # Same map; the bottom-right pixel (0.1) is a crowd region: left out. bg is {0.6}.
    #   tau 0: TP 2 FP 1 -> P 2/3, R 1;  tau 0.5: TP 1 FP 1 -> P 1/2, R 1/2
    # PxAP = (1 - 0.5) * 2/3 + 0.5 * 0.5 = 7/12.
    m = np.array([[0.9, 0.6], [0.3, 0.1]])
    segs = [_square(0, 0, 1, 2), _square(1, 1, 2, 2)]
    s = _sample(
        1, [[0, 0, 1, 2], [1, 1, 2, 2]], [0, 0], ignore=[False, True], segmentations=segs, hw=(2, 2)
    )
    fg, ign = class_mask(s, 0, 2, 2)
    np.testing.assert_array_equal(fg, [[1, 0], [1, 0]])
    np.testing.assert_array_equal(ign, [[0, 0], [0, 1]])
    ev = PixelAP(1, np.array([0.0, 0.5]))
    _update(ev, [_result(s, m, 0.5)])
    assert ev.compute()["pxap"] == pytest.approx(7 / 12)
    no_masks = _sample(2, [[0, 0, 1, 2]], [0], segmentations=[None], hw=(2, 2))
    ev.reset()
    _update(ev, [_result(no_masks, m, 0.5)])
    assert ev.compute() == {}


def test_decode_segmentation_polygon_and_rle(tmp_path):
    from pycocotools import mask as mask_utils

    square = decode_segmentation(_square(2, 2, 8, 8), 10, 10)
    assert square.sum() == 36 and square[2:8, 2:8].all()
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    compressed = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    np.testing.assert_array_equal(decode_segmentation(compressed, 4, 6), mask)
    # Uncompressed RLE: column-major run lengths, starting with zeros.
    flat = mask.T.ravel()
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    np.testing.assert_array_equal(decode_segmentation({"size": [4, 6], "counts": runs}, 4, 6), mask)
    with pytest.raises(ValueError, match="does not match"):
        decode_segmentation(compressed, 5, 6)
    # VOC instance PNGs: index k is the k-th XML object; 255 is void.
    from PIL import Image

    png = np.zeros((4, 6), np.uint8)
    png[0, 0] = 1
    png[2:4, 3:6] = 2
    png[1, 1] = 255
    Image.fromarray(png, mode="L").save(tmp_path / "x.png")
    segs = voc_instance_segmentations(tmp_path / "x.png", 3)
    assert segs[2] is None
    np.testing.assert_array_equal(decode_segmentation(segs[0], 4, 6), png == 1)
    np.testing.assert_array_equal(decode_segmentation(segs[1], 4, 6), png == 2)


def _gt_dict(boxes):
    """One 100x100 image per box, one category, COCO xywh boxes."""
    return {
        "images": [
            {"id": i + 1, "file_name": f"{i}.jpg", "height": 100, "width": 100}
            for i in range(len(boxes))
        ],
        "annotations": [
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 7,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": 0,
            }
            for i, b in enumerate(boxes)
        ],
        "categories": [{"id": 7, "name": "thing"}],
    }


def test_coco_ap_hand_cases():
    gt = _gt_dict([[10, 10, 10, 10]])
    perfect = [{"image_id": 1, "category_id": 7, "bbox": [10, 10, 10, 10], "score": 0.9}]
    # (pycocotools averages 101 ones in floating point: 1 - 2e-16, hence approx.)
    assert coco_ap(gt, perfect) == pytest.approx(
        {"coco_ap": 1.0, "coco_ap50": 1.0, "coco_ap75": 1.0}, abs=1e-12
    )
    # Shifted right by 1 px: IoU = 9*10 / (100 + 100 - 90) = 90/110 = 0.818. It matches
    # at IoU thresholds 0.50 ... 0.80 (7 of the 10) with precision 1, and misses at
    # 0.85 ... 0.95: AP@[.5:.95] = 7/10, AP50 = AP75 = 1.
    shifted = [{"image_id": 1, "category_id": 7, "bbox": [11, 10, 10, 10], "score": 0.9}]
    assert coco_ap(gt, shifted) == pytest.approx(
        {"coco_ap": 0.7, "coco_ap50": 1.0, "coco_ap75": 1.0}, abs=1e-12
    )
    # Two objects, one found: precision 1 up to recall 0.5, then nothing. COCO samples
    # precision at 101 recall points 0, 0.01, ..., 1: 51 of them are <= 0.5, so AP = 51/101.
    gt2 = _gt_dict([[10, 10, 10, 10], [50, 50, 20, 20]])
    ap = coco_ap(gt2, perfect, per_class=True)
    assert ap["coco_ap"] == pytest.approx(51 / 101, abs=1e-12)
    assert ap["per_category"] == {
        7: pytest.approx({"coco_ap": 51 / 101, "coco_ap50": 51 / 101}, abs=1e-12)
    }
    assert coco_ap(gt, [])["coco_ap"] == 0.0
    assert coco_ap({"images": [], "annotations": [], "categories": []}, perfect) == {}


def _dataset():
    samples = [
        _sample(1, [[10, 10, 20, 20], [50, 50, 60, 60]], [0, 1], hw=(100, 100)),
        _sample(2, [[0, 0, 30, 30]], [0], hw=(100, 100)),
    ]
    return Dataset("toy", ["cat", "dog"], samples, category_ids=[3, 9])


def test_prediction_corloc_uses_the_top_scoring_box():
    ds = _dataset()
    preds = [
        # image 1, cat: the top box (0.9) is right; a worse-scoring wrong box is ignored.
        {"image_id": 1, "category_id": 3, "bbox": [10, 10, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 3, "bbox": [70, 70, 5, 5], "score": 0.5},
        # image 1, dog: the top box is wrong although a lower one is right.
        {"image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5], "score": 0.8},
        {"image_id": 1, "category_id": 9, "bbox": [50, 50, 10, 10], "score": 0.7},
        # image 2, cat: no prediction at all -> miss.
    ]
    m, hits, pairs = prediction_corloc(ds.samples, preds, ds.category_ids)
    assert m == {"corloc": pytest.approx(1 / 3), "num_pairs": 3}
    assert hits.tolist() == [1, 0] and pairs.tolist() == [2, 1]
    metrics, per_class = evaluate_predictions(ds, preds)
    assert metrics["corloc"] == pytest.approx(1 / 3) and "coco_ap" in metrics
    assert per_class["cat"]["corloc"] == 0.5 and per_class["dog"]["corloc"] == 0.0


def test_load_predictions_maps_categories_by_name_and_images_by_file():
    ds = _dataset()
    doc = {
        "images": [{"id": 40, "file_name": "2.jpg"}, {"id": 41, "file_name": "elsewhere.jpg"}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "horse"}],
        "annotations": [
            {"id": 1, "image_id": 40, "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.5},
            {"id": 2, "image_id": 40, "category_id": 2, "bbox": [0, 0, 1, 1]},  # horse
            {"id": 3, "image_id": 41, "category_id": 1, "bbox": [0, 0, 1, 1]},  # no image
            {"id": 4, "image_id": 40, "category_id": 1, "bbox": [1, 1, 2, 2]},  # no score
        ],
    }
    preds, counts = load_predictions(doc, ds)
    assert counts == {"num_predictions": 2, "num_invalid": 0, "num_dropped": 2}
    assert preds[0] == {
        "image_id": 2,
        "category_id": 3,
        "bbox": [0.0, 0.0, 30.0, 30.0],
        "score": 0.5,
    }
    assert preds[1]["score"] == 1.0
    # A results list without names uses the GT's ids as they are, when asked to.
    preds, counts = load_predictions(
        [
            {"image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4], "score": 0.1},
            {"image_id": 5, "category_id": 9, "bbox": [1, 2, 3, 4], "score": 0.1},
        ],
        ds,
        match_ids=True,
    )
    assert counts["num_dropped"] == 1 and preds[0]["category_id"] == 9
    with pytest.raises(ValueError, match="annotations"):
        load_predictions({"images": []}, ds)
    # A prediction without a box is refused on its own and counted (issue 14).
    preds, counts = load_predictions([{"image_id": 1, "category_id": 9}], ds, match_ids=True)
    assert preds == [] and counts["num_invalid"] == 1


def test_eval_cli_on_coco_and_voc_ground_truth(tmp_path, shapes_root, capsys):
    """`wsol eval` scores the GT itself as predictions perfectly, from COCO or VOC GT."""
    from wsol.cli import main

    coco_gt = shapes_root / "annotations" / "instances_val.json"
    doc = json.loads(coco_gt.read_text())
    perfect = [{**a, "score": 1.0} for a in doc["annotations"]]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(perfect))
    # A results list of bare ids: refused in one line, unless --match-ids says they match.
    args = ["eval", "--gt", str(coco_gt), "--pred", str(pred), "--out", str(tmp_path / "a")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot be tied to the ground truth" in err and "--match-ids" in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1
    assert not (tmp_path / "a").exists()
    assert main([*args, "--match-ids"]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["corloc"] == 1.0 and m["coco_ap"] == pytest.approx(1.0)
    assert "corloc" in capsys.readouterr().out
    # The same boxes as a dataset dict, against the VOC layout of the same split.
    doc["annotations"] = [
        {**a, "bbox": [a["bbox"][0] + 2, *a["bbox"][1:]]} for a in doc["annotations"]
    ]
    pred.write_text(json.dumps(doc))
    assert (
        main(
            [
                "eval",
                "--gt",
                str(shapes_root),
                "--split",
                "val",
                "--pred",
                str(pred),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert 0.0 < m["coco_ap"] < 1.0 and m["num_predictions"] == len(doc["annotations"])
    per_class = json.loads((tmp_path / "b" / "metrics_per_class.json").read_text())
    assert set(per_class) <= {"circle", "square", "triangle", "star", "cross", "ring"}
    # Several splits and none named: a usage error listing them.
    assert main(["eval", "--gt", str(shapes_root), "--pred", str(pred)]) == 2
    assert "test, val" in capsys.readouterr().err
    with pytest.raises(WsolError, match="split"):
        load_ground_truth(shapes_root)


def test_eval_of_a_run_reproduces_the_runs_box_metrics(shapes_root, reference_run):
    """Scoring pseudo_labels.json from the file alone gives the run's corloc and COCO AP
    (with every component a box: several boxes per pair, ranked by score)."""
    out, m = reference_run.out_dir, reference_run.metrics
    assert reference_run.config.boxes.components == "all"
    ds = load_ground_truth(shapes_root, split="test")
    preds, counts = load_predictions(json.loads((out / "pseudo_labels.json").read_text()), ds)
    assert counts == {"num_predictions": m["num_boxes_found"], "num_invalid": 0, "num_dropped": 0}
    scored, _ = evaluate_predictions(ds, preds)
    assert scored["corloc"] == pytest.approx(m["corloc"], abs=1e-12)
    assert scored["coco_ap"] == pytest.approx(m["coco_ap"], abs=1e-12)
    assert scored["num_pairs"] == m["num_pairs"]


def test_class_agnostic_scores_one_pair_per_image_against_any_class():
    # 6x6 image: class 0 (cat) box at columns 0-1, class 1 (dog) box at columns 4-5.
    sample = Sample(
        1,
        "x",
        "x",
        6,
        6,
        labels=np.array([0, 1]),
        boxes=np.array([[0.0, 0, 2, 6], [4.0, 0, 6, 6]]),
        box_labels=np.array([0, 1]),
        ignore=np.array([False, False]),
    )
    # The only map (for cat, prob 0.9) lights up the dog's columns.
    heat = np.zeros((6, 6), np.float32)
    heat[:, 4:] = 1.0
    det = Detections(np.array([[4.0, 0, 6, 6]]), np.array([0.9]))
    result = (
        sample,
        ImageResult((6, 6), np.array([0.9, 0.1]), [ClassResult(0, 0.9, det, heat, 0.5)]),
    )
    aware = _Accuracy(2, np.array([0.5]))
    aware.update([result])
    # Per (image, class): cat misses (IoU 0 with the cat box), dog has no map -> 0 of 2.
    assert aware.compute()["corloc"] == 0.0 and aware.compute()["num_pairs"] == 2
    agnostic = _Accuracy(2, np.array([0.5]), class_agnostic=True)
    agnostic.update([result])
    m = agnostic.compute()
    # One pair: the cat map's box equals the dog box (IoU 1) -> a hit.
    assert m["num_pairs"] == 1 and m["corloc"] == 1.0 and m["maxboxacc"] == 1.0
    assert "gt_known_loc" not in m


def test_max_box_acc_state_is_the_same_whether_pairs_are_swept_in_threads():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    samples, results = [], []
    for i in range(12):
        m = rng.random((6, 8))
        s = _sample(i, [[1, 1, 4 + i % 3, 3], [5, 2, 7, 5]], [0, i % 2])
        samples.append(s)
        results.append(_result(s, m / m.max(), 0.5, probs=(1.0, 1.0))[1])
    serial = MaxBoxAcc(2, sweep_thresholds(0.05), corloc_sweep=BoxParams())
    threaded = serial.empty()
    serial.update(samples, results)
    with ThreadPoolExecutor(4) as pool:
        threaded.update(samples, results, pool.map)
    a, b = serial.state_dict(), threaded.state_dict()
    assert a.keys() == b.keys() and serial.pairs == 18  # class 1 in every other image
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    assert serial.v2_hits.sum() > 0 and serial.top_hits.sum() > 0  # something was hit


# --- Issue 23: a results list is tied to the GT's images and categories, or refused ------


def _named(image_id, file_name, category_id, category_name, box=(10, 10, 10, 10)):
    return {
        "image_id": image_id,
        "category_id": category_id,
        "bbox": list(box),
        "score": 0.9,
        "file_name": file_name,
        "category_name": category_name,
    }


def test_a_named_results_list_is_tied_by_its_names_not_its_ids():
    ds = _dataset()  # cat is category 3, dog 9; images 1.jpg and 2.jpg
    # A run that numbered them otherwise: dog 1, cat 2; 2.jpg as image 1, 1.jpg as image 7
    preds, counts = load_predictions(
        [_named(7, "1.jpg", 2, "cat"), _named(1, "2.jpg", 2, "cat", (0, 0, 30, 30))], ds
    )
    assert [(p["image_id"], p["category_id"]) for p in preds] == [(1, 3), (2, 3)]
    assert counts["num_dropped"] == 0
    metrics, _ = evaluate_predictions(ds, preds)
    assert metrics["corloc"] == pytest.approx(2 / 3)  # both cats found, the dog not


def test_a_named_results_list_of_another_split_needs_match_ids():
    ds = _dataset()
    other = [_named(1, "x_1.jpg", 3, "cat"), _named(2, "x_2.jpg", 3, "cat")]
    with pytest.raises(WsolError, match="no image file name .* pass --match-ids"):
        load_predictions(other, ds)
    preds, _ = load_predictions(other, ds, match_ids=True)
    assert [(p["image_id"], p["category_id"]) for p in preds] == [(1, 3), (2, 3)]


@pytest.mark.parametrize(
    ("results", "message", "match_ids"),
    [
        ([_named(1, "1.jpg", 3, "horse")], "no category_name of the predictions is a class", 0),
        (
            [_named(1, "1.jpg", 3, "cat"), {"image_id": 1, "category_id": 3}],
            "1 of 2 results have no 'category_name'",
            0,
        ),
        (
            [_named(1, "1.jpg", 3, "cat"), _named(1, "2.jpg", 3, "cat")],
            "image_id 1 is named both",
            0,
        ),
        (
            [{"image_id": 70, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1.0}],
            "none of the 1 predictions is on an image and a category of the ground truth",
            1,
        ),
    ],
)
def test_a_results_list_that_cannot_be_tied_to_the_gt_is_refused(results, message, match_ids):
    with pytest.raises(WsolError, match=message):
        load_predictions(results, _dataset(), match_ids=bool(match_ids))


# --- Issue 21 item 5: ids that nothing ties to the GT are refused, not scored ------------


@pytest.mark.parametrize(
    ("doc", "missing"),
    [
        # ids only, and they happen to land on GT images and categories: still refused
        (
            [{"image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4], "score": 0.1}],
            "has no category_name and no file_name",
        ),
        ([], None),
        (
            [{k: v for k, v in _named(1, "1.jpg", 3, "cat").items() if k != "file_name"}],
            "results list has no file_name,",
        ),
        (
            [{k: v for k, v in _named(1, "1.jpg", 3, "cat").items() if k != "category_name"}],
            "results list has no category_name,",
        ),
        (
            {"annotations": [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]},
            "prediction file has no 'categories' and no 'images'",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "1.jpg"}],
                "annotations": [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}],
            },
            "prediction file has no 'categories',",
        ),
    ],
)
def test_predictions_whose_ids_nothing_ties_to_the_gt_are_refused(doc, missing):
    if missing is None:  # an empty list has nothing to tie: scored as nothing
        assert load_predictions(doc, _dataset())[0] == []
        return
    with pytest.raises(WsolError, match=missing) as e:
        load_predictions(doc, _dataset())
    assert "--match-ids" in str(e.value) and "pseudo_labels.json" in str(e.value)
    assert "\n" not in str(e.value)
    # --match-ids asserts the ids are the GT's: scored by id.
    preds, _ = load_predictions(doc, _dataset(), match_ids=True)
    assert len(preds) == 1


def test_a_folder_runs_id_only_list_is_refused_not_scored_against_other_images():
    """The issue's case: a folder run numbered its images 1..N and its classes 1..K;
    against GT with other numbering, ids that happen to exist score the wrong boxes."""
    ds = _dataset()  # images 1, 2; categories 3 (cat), 9 (dog)
    run = [
        {"image_id": i, "category_id": c, "bbox": [0, 0, 30, 30], "score": 0.5}
        for i in (1, 2, 3)
        for c in (3, 9)
    ]
    with pytest.raises(WsolError, match="cannot be tied to the ground truth"):
        load_predictions(run, ds)


def test_a_voc_runs_results_scored_against_the_coco_json_of_the_same_data(
    tmp_path, shapes_root, reference_run
):
    """The run numbers classes in its own order, the COCO JSON in another: the results
    list scores as the run's pseudo_labels.json does, and another split is refused."""
    from wsol.cli import main

    out, m = reference_run.out_dir, reference_run.metrics  # the test split
    gt = shapes_root / "annotations" / "instances_test.json"
    run_ids = {
        c["name"]: c["id"]
        for c in json.loads((out / "pseudo_labels.json").read_text())["categories"]
    }
    gt_ids = {c["name"]: c["id"] for c in json.loads(gt.read_text())["categories"]}
    assert run_ids != gt_ids  # the case: ids differ, names agree
    scores = {}
    for name in ("results.json", "pseudo_labels.json"):
        args = ["-q", "eval", "--gt", str(gt), "--pred", str(out / name)]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert scores["results.json"]["corloc"] == scores["pseudo_labels.json"]["corloc"] == m["corloc"]
    assert scores["results.json"]["coco_ap"] == pytest.approx(m["coco_ap"], abs=1e-12)
    val_gt = shapes_root / "annotations" / "instances_val.json"
    assert main(["-q", "eval", "--gt", str(val_gt), "--pred", str(out / "results.json")]) == 2


def test_categories_that_share_a_name_are_scored_apart(tmp_path):
    from wsol.cli import main

    doc = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": 50, "width": 50} for i in (1, 2)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 10, 20, 20]},
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    pred = {**doc, "annotations": [{**a, "score": 1.0} for a in doc["annotations"]]}
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    args = ["-q", "eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json")]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    per_class = json.loads((tmp_path / "o" / "metrics_per_class.json").read_text())
    assert sorted(per_class) == ["cat (1)", "cat (2)"]
    assert all(row["pairs"] == 1 and row["corloc"] == 1.0 for row in per_class.values())


def test_a_huge_malformed_box_is_refused_in_a_short_line(caplog):
    bad = {"image_id": 1, "category_id": 3, "bbox": list(range(100_000)), "score": 1.0}
    ok = {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 1.0}
    _, counts = load_predictions([bad, ok], _dataset(), match_ids=True)
    assert counts["num_invalid"] == 1
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(line) < 200


def test_ground_truth_annotations_that_cannot_be_read_are_warned_of(tmp_path, caplog):
    from wsol.evaluate.predictions import load_ground_truth

    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    size = "<size><width>20</width><height>10</height></size>"
    box = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
    (root / "Annotations" / "a.xml").write_text(
        f"<annotation>{size}<object><name>cat</name>{box}</object></annotation>"
    )
    (root / "Annotations" / "b.xml").write_text("<annotation><object>")
    (root / "Annotations" / "c.xml").write_text("<annotation>")
    with caplog.at_level("WARNING", logger="wsol"):
        gt = load_ground_truth(root)
    assert len(gt.samples) == 1 and len(gt.failures) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "2 images' annotations could not be read" in line and "b.xml" in line
