"""Bootstrap intervals and the paired test, on synthetic per-image rows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compare.rows import synthetic_rows
from wsol.compare.stats import align, bootstrap_ci, paired_test, resample_indices
from wsol.evaluate.per_image import metrics_from_rows

HEADLINE = ["maxboxacc", "maxboxacc_v2", "maxboxacc_v2_iou50", "corloc", "top1_loc", "pxap"]


def test_resample_indices_are_seeded():
    a = resample_indices(50, 200, seed=7)
    assert a.shape == (200, 50) and a.min() >= 0 and a.max() < 50
    assert np.array_equal(a, resample_indices(50, 200, seed=7))
    assert not np.array_equal(a, resample_indices(50, 200, seed=8))
    with pytest.raises(ValueError, match="empty"):
        resample_indices(0)


def test_bootstrap_ci_brackets_the_metric_and_is_seeded():
    rows = synthetic_rows(120, seed=1)
    full = metrics_from_rows(rows)
    ci = bootstrap_ci(rows, [*HEADLINE, "gt_known_loc"], resamples=300, seed=0)
    assert set(ci) == set(HEADLINE) | {"gt_known_loc"}
    for name, (lo, hi) in ci.items():
        assert lo < full[name] < hi, name
        assert hi - lo < 0.3, name  # 120 images: a few points either side, not the range
    assert ci == bootstrap_ci(rows, [*HEADLINE, "gt_known_loc"], resamples=300, seed=0)
    assert ci != bootstrap_ci(rows, [*HEADLINE, "gt_known_loc"], resamples=300, seed=1)
    narrow = bootstrap_ci(rows, ["corloc"], resamples=300, level=0.5)["corloc"]
    assert ci["corloc"][0] < narrow[0] < narrow[1] < ci["corloc"][1]


def test_more_images_narrow_the_interval():
    few = bootstrap_ci(synthetic_rows(30, seed=4), ["maxboxacc"], resamples=300)["maxboxacc"]
    many = bootstrap_ci(synthetic_rows(600, seed=4), ["maxboxacc"], resamples=300)["maxboxacc"]
    assert many[1] - many[0] < (few[1] - few[0]) / 2


def test_identical_images_give_a_point_interval():
    rows = synthetic_rows(1, seed=0).take(np.zeros(40, np.int64))  # one image 40 times
    full = metrics_from_rows(rows)
    for name, (lo, hi) in bootstrap_ci(rows, ["maxboxacc", "corloc"], resamples=50).items():
        assert lo == hi == full[name]


def test_metrics_the_rows_do_not_define_are_left_out():
    rows = synthetic_rows(20, pxap=False)
    assert set(bootstrap_ci(rows, ["maxboxacc", "pxap"], resamples=20)) == {"maxboxacc"}
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(rows, ["maxboxacc"], level=1.0)


def test_identical_rows_do_not_differ():
    rows = synthetic_rows(80, seed=2)
    out = paired_test(rows, rows, HEADLINE, resamples=200)
    assert set(out) == set(HEADLINE)
    for name, r in out.items():
        assert r == {"diff": 0.0, "ci": [0.0, 0.0], "significant": False}, name


def test_a_clearly_better_candidate_is_significant_and_a_slightly_better_one_not():
    good, bad = synthetic_rows(150, seed=3, skill=0.9), synthetic_rows(150, seed=3, skill=0.3)
    out = paired_test(good, bad, ["maxboxacc", "corloc"], resamples=300)
    for name, r in out.items():
        lo, hi = r["ci"]
        assert r["significant"] and 0 < lo <= r["diff"] <= hi, name
    reverse = paired_test(bad, good, ["maxboxacc"], resamples=300)["maxboxacc"]
    assert reverse["significant"] and reverse["ci"][1] < 0
    assert reverse["diff"] == -out["maxboxacc"]["diff"]
    # One image's corloc hit more out of 150: a difference, but not one that holds up.
    nudged = synthetic_rows(150, seed=3)
    i = int(np.argmax(nudged.corloc < nudged.pairs))
    corloc = nudged.corloc.copy()
    corloc[i] += 1
    better = nudged.__class__(**{**nudged.__dict__, "corloc": corloc})
    r = paired_test(better, nudged, ["corloc"], resamples=300)["corloc"]
    assert r["diff"] > 0 and r["ci"][0] <= 0 and not r["significant"]


def test_pairing_is_by_key_not_by_position():
    a, b = synthetic_rows(60, seed=5, skill=0.7), synthetic_rows(60, seed=6, skill=0.5)
    shuffled = b.take(np.random.default_rng(0).permutation(60))
    assert np.array_equal(align(a, shuffled).keys, a.keys)
    assert paired_test(a, shuffled, HEADLINE, resamples=100) == paired_test(
        a, b, HEADLINE, resamples=100
    )


def test_different_images_are_refused_naming_them():
    a = synthetic_rows(10)
    keys = a.keys.copy()
    keys[3] = "/elsewhere/z.jpg"
    b = a.__class__(**{**a.__dict__, "keys": keys})
    with pytest.raises(
        ValueError,
        match=r"1 only in the first \(/data/img_0003.jpg\).*"
        r"1 only in the second \(/elsewhere/z.jpg\)",
    ):
        paired_test(a, b, ["maxboxacc"])
    with pytest.raises(ValueError, match="0 only in the first"):
        paired_test(a.take(np.arange(9)), a, ["maxboxacc"])
