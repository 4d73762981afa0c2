"""Per-image rows: the metrics they add up to, by hand and over resamples; the file."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.compare.rows import synthetic_rows
from wsol.data.base import Sample
from wsol.evaluate import BoxAccuracy, Evaluators, MaxBoxAcc, PixelAP, sweep_thresholds
from wsol.evaluate.per_image import (
    PerImage,
    load_per_image,
    metrics_from_rows,
    rows_from_evaluators,
    save_per_image,
)
from wsol.localize import ClassResult, ImageResult, detect


def _two_images() -> PerImage:
    # Image a: 2 pairs, image b: 1 pair; thresholds 0.2 and 0.6.
    return PerImage(
        keys=np.array(["/x/a.jpg", "/x/b.jpg"]),
        thresholds=np.array([0.2, 0.6]),
        pairs=np.array([2, 1]),
        v1=np.array([[1, 2], [1, 0]]),  # totals [2, 2]: a tie, the first threshold wins
        v2=np.array([[[2, 1, 0], [2, 2, 1]], [[1, 1, 1], [0, 0, 0]]]),  # totals [3,2,1],[2,2,1]
        corloc=np.array([1, 1]),
        top1_hits=np.array([1, 0]),
        top1_images=np.array([1, 1]),
        gt_known=np.array([2, 0]),
    )


def test_metrics_from_rows_by_hand():
    m = metrics_from_rows(_two_images())
    assert m["maxboxacc"] == 2 / 3 and m["maxboxacc_threshold"] == 0.2
    # V2: per level the best threshold: 3/3 (0.2), 2/3 (either: the first), 1/3.
    assert m["maxboxacc_v2_iou30"] == 1.0 and m["maxboxacc_v2_iou30_threshold"] == 0.2
    assert m["maxboxacc_v2_iou50"] == 2 / 3 and m["maxboxacc_v2_iou70"] == 1 / 3
    assert m["maxboxacc_v2"] == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    assert m["corloc"] == 2 / 3 and m["gt_known_loc"] == 2 / 3 and m["top1_loc"] == 0.5
    assert m["num_pairs"] == 3 and "pxap" not in m


def test_a_resample_counts_each_drawn_image_as_often_as_drawn():
    rows = _two_images()
    m = metrics_from_rows(rows, np.array([1, 1, 1]))  # image b three times
    assert m["num_pairs"] == 3 and m["maxboxacc"] == 1.0 and m["maxboxacc_threshold"] == 0.2
    assert m["top1_loc"] == 0.0 and m["gt_known_loc"] == 0.0
    # ... and equals the metrics of the rows taken in that order
    assert m == metrics_from_rows(rows.take(np.array([1, 1, 1])))
    big = synthetic_rows(80, seed=3)
    idx = np.random.default_rng(1).integers(0, 80, 80)
    assert metrics_from_rows(big, idx) == metrics_from_rows(big.take(idx))
    assert metrics_from_rows(big, np.arange(80)) == metrics_from_rows(big)


def test_no_pairs_no_metrics():
    rows = _two_images()
    empty = PerImage(
        **{
            **{k: getattr(rows, k)[:0] for k in ("keys", "pairs", "v1", "v2", "corloc")},
            "thresholds": rows.thresholds,
            "top1_hits": rows.top1_hits[:0],
            "top1_images": rows.top1_images[:0],
        }
    )
    assert metrics_from_rows(empty) == {}


def test_pxap_from_rows_adds_the_images_pixel_counts():
    rows = synthetic_rows(30, seed=2)
    m = metrics_from_rows(rows)
    tp, fp, fg = rows.pxap_tp.sum(0), rows.pxap_fp.sum(0), rows.pxap_fg.sum()
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = tp / fg
    assert m["pxap"] == pytest.approx(float(((recall - np.r_[recall[1:], 0]) * precision).sum()))
    assert 0 < m["pxap"] < 1


def test_rows_that_do_not_fit_are_refused():
    rows = _two_images()
    with pytest.raises(ValueError, match="v1"):
        PerImage(**{**rows.__dict__, "v1": rows.v1[:, :1]})
    with pytest.raises(ValueError, match="corloc has 1 rows"):
        PerImage(**{**rows.__dict__, "corloc": rows.corloc[:1]})
    with pytest.raises(ValueError, match="together"):
        PerImage(**{**rows.__dict__, "pxap_fg": np.array([3, 4])})


def test_save_and_load_round_trip(tmp_path):
    for rows in (synthetic_rows(12, seed=5), _two_images()):
        path = tmp_path / "per_image.npz"
        save_per_image(path, rows)
        back = load_per_image(path)
        for name, value in rows.__dict__.items():
            other = getattr(back, name)
            assert (value is None) == (other is None), name
            if value is not None:
                assert np.array_equal(value, other) and value.dtype.kind == other.dtype.kind
        assert metrics_from_rows(back) == metrics_from_rows(rows)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a per-image rows file"):
        load_per_image(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", keys=np.array(["a"]))
    with pytest.raises(ValueError, match="no corloc"):
        load_per_image(tmp_path / "other.npz")


# --- rows kept by the evaluators ----------------------------------------------------------


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _scored_images(n=14, seed=0):
    """``n`` 6x8 images of two classes, with masks, random maps, one image without a
    box, one whose class-1 map is missing, one whose box is ignored (crowd)."""
    rng = np.random.default_rng(seed)
    samples, results = [], []
    for i in range(n):
        boxes = [[1, 1, 4 + i % 3, 3], [5, 2, 7, 5]][: 1 + i % 2]
        labels = [0, 1][: len(boxes)]
        ignore = [i == 5] + [False] * (len(boxes) - 1)
        if i == 3:
            boxes, labels, ignore = [], [], []
        segs = [_square(*b) for b in boxes]
        s = Sample(
            image_id=i,
            path=f"/imgs/{i}.jpg",
            file_name=f"{i}.jpg",
            height=6,
            width=8,
            labels=np.unique(np.asarray(labels, np.int64)[~np.asarray(ignore, bool)]),
            boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
            box_labels=np.asarray(labels, np.int64),
            ignore=np.asarray(ignore, bool),
            segmentations=segs,
        )
        probs = rng.random(2)
        classes = []
        for c in (0, 1):
            if i == 7 and c == 1:
                continue
            m = rng.random((6, 8))
            m = m / m.max()
            classes.append(ClassResult(c, probs[c], detect(m, 0.5, probs[c]), m, 0.5))
        samples.append(s)
        results.append(ImageResult((6, 8), probs, classes))
    return samples, results


def _evaluators(per_image=True, class_agnostic=False):
    taus = sweep_thresholds(0.1)
    return Evaluators(
        {
            "box_acc": BoxAccuracy(2, 0.5, class_agnostic, per_image),
            "max_box_acc": MaxBoxAcc(2, taus, 0.5, None, class_agnostic, per_image),
            "pixel_ap": PixelAP(2, taus, per_image),
        }
    )


@pytest.mark.parametrize("class_agnostic", [False, True])
def test_rows_of_a_chunked_run_add_up_to_its_metrics_exactly(class_agnostic):
    samples, results = _scored_images()
    totals = _evaluators(class_agnostic=class_agnostic)
    chunk = totals.empty()
    with ThreadPoolExecutor(3) as pool:
        for lo, hi in ((0, 5), (5, 9), (9, 14)):  # chunks through the journal's JSON
            chunk.update(samples[lo:hi], results[lo:hi], pool.map)
            totals.merge_state(json.loads(json.dumps(chunk.state_dict())))
            chunk.reset()
    rows = rows_from_evaluators(totals)
    assert list(rows.keys) == [f"/imgs/{i}.jpg" for i in range(14) if i != 3]
    m = totals.compute()
    assert metrics_from_rows(rows) == m
    assert "pxap" in m and "corloc" in m and m["num_pairs"] == int(rows.pairs.sum())
    assert ("gt_known_loc" in m) == (rows.gt_known is not None) == False  # noqa: E712 (image 7)
    assert rows.v1.sum() > 0 and rows.pxap_fp.sum() > 0


def test_a_resample_of_rows_equals_a_run_over_those_images():
    samples, results = _scored_images(seed=1)
    # The scored images (3 has no box), less 7 (a missing map) so GT-known Loc is defined.
    keep = [i for i in range(len(samples)) if i not in (3, 7)]
    samples, results = [samples[i] for i in keep], [results[i] for i in keep]
    full = _evaluators()
    full.update(samples, results)
    rows = rows_from_evaluators(full)
    assert rows.gt_known is not None and len(rows) == len(samples)
    idx = np.random.default_rng(0).integers(0, len(samples), 2 * len(samples))
    again = _evaluators(per_image=False)
    again.update([samples[i] for i in idx], [results[i] for i in idx])
    assert metrics_from_rows(rows, idx) == again.compute()


def test_evaluators_without_rows_say_so():
    with pytest.raises(ValueError, match="per_image=True"):
        rows_from_evaluators(_evaluators(per_image=False))
    withrows = _evaluators()
    with pytest.raises(ValueError, match="without per-image rows"):
        withrows.merge_state(_evaluators(per_image=False).state_dict())
