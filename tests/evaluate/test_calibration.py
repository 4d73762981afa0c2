"""Threshold calibration: choosing tau, the calibration file, applying it to another split."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from wsol.apps.demo import CHECKPOINT, DEMO_CONFIG
from wsol.config import ConfigError, load_config
from wsol.evaluate.calibration import (
    Calibration,
    CalibrationError,
    choose_thresholds,
    load_calibration,
    pick_threshold,
)
from wsol.run import calibrate, run
from wsol.run.build import plan_run

# A hand-made sweep over taus 0.1 .. 0.5 for two classes (hits per tau, out of pairs).
SWEEP = {
    "thresholds": [0.1, 0.2, 0.3, 0.4, 0.5],
    "per_class": {
        # cat: best at 0.2 and 0.3 (a plateau of two): the median picks the lower, 0.2.
        "cat": {
            "pairs": 10,
            "maxboxacc": [4, 8, 8, 5, 1],
            "maxboxacc_v2": [[9, 5, 0], [9, 8, 1], [9, 8, 2], [7, 5, 5], [2, 1, 1]],
        },
        # dog: best at 0.5.
        "dog": {
            "pairs": 2,
            "maxboxacc": [0, 0, 0, 1, 2],
            "maxboxacc_v2": [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 2, 1]],
        },
    },
}


def test_pick_threshold_takes_the_median_of_the_maxima():
    assert pick_threshold(np.array([1, 3, 3, 3, 0])) == 2
    assert pick_threshold(np.array([3, 1, 3, 3])) == 2  # maxima at 0, 2, 3: the middle one
    assert pick_threshold(np.array([5, 5])) == 0
    assert pick_threshold(np.array([0.0])) == 0


def test_choose_global_and_per_class():
    # Global V1 curve: (cat + dog) / 12 = [4, 8, 8, 6, 3] / 12 -> maxima at 0.2, 0.3 -> 0.2.
    cal = choose_thresholds(SWEEP, "maxboxacc")
    assert (cal.threshold, cal.score, cal.pairs) == (0.2, pytest.approx(8 / 12), 12)
    assert cal.per_class == {}
    np.testing.assert_array_equal(cal.thresholds_for(["dog", "cat", "cow"]), [0.2, 0.2, 0.2])
    cal = choose_thresholds(SWEEP, "maxboxacc", per_class=True)
    assert cal.per_class["cat"] == {"threshold": 0.2, "score": 0.8, "pairs": 10}
    assert cal.per_class["dog"] == {"threshold": 0.5, "score": 1.0, "pairs": 2}
    np.testing.assert_array_equal(cal.thresholds_for(["dog", "cat", "cow"]), [0.5, 0.2, 0.2])
    # dog has too few pairs for its own tau: it falls back to the global one.
    cal = choose_thresholds(SWEEP, "maxboxacc", per_class=True, min_pairs=3)
    assert set(cal.per_class) == {"cat"}
    np.testing.assert_array_equal(cal.thresholds_for(["dog"]), [0.2])


def test_choose_by_v2_metrics():
    # V2 (mean over deltas) per tau: cat's row sums [14, 18, 19, 17, 4] plus dog's
    # [0, 0, 1, 2, 5] = [14, 18, 20, 19, 9], over 3 deltas x 12 pairs: best at 0.3
    # (20 / 36), where V1 picks 0.2.
    cal = choose_thresholds(SWEEP, "maxboxacc_v2")
    assert cal.threshold == 0.3 and cal.score == pytest.approx(20 / 36)
    # delta 0.7 alone: [0, 1, 2, 5, 2] -> 0.4; delta 0.3: [9, 9, 10, 8, 4] -> 0.3.
    assert choose_thresholds(SWEEP, "maxboxacc_v2_iou70").threshold == 0.4
    assert choose_thresholds(SWEEP, "maxboxacc_v2_iou30").threshold == 0.3
    with pytest.raises(CalibrationError, match=r"eval\.sweep_corloc"):
        choose_thresholds(SWEEP, "corloc")
    with pytest.raises(CalibrationError, match="valid: maxboxacc"):
        choose_thresholds(SWEEP, "accuracy")
    with pytest.raises(CalibrationError, match="no \\(image, class\\) pair"):
        choose_thresholds({"thresholds": [0.1], "per_class": {}})


def test_calibration_file_round_trip_and_errors(tmp_path):
    cal = choose_thresholds(SWEEP, per_class=True)
    cal.images = ["/data/a.jpg"]
    p = tmp_path / "calibration.json"
    p.write_text(json.dumps(cal.to_dict()))
    assert load_calibration(p) == cal
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "missing.json")
    p.write_text("{oops")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        load_calibration(p)
    p.write_text(json.dumps({"threshold": 0.3}))
    with pytest.raises(CalibrationError, match="not a wsol calibration"):
        load_calibration(p)
    p.write_text(json.dumps({**cal.to_dict(), "threshold": 1.5}))
    with pytest.raises(CalibrationError, match=r"in \[0, 1\]"):
        load_calibration(p)


def test_config_validation_for_calibrated_thresholds(tmp_path):
    with pytest.raises(ConfigError, match=r"boxes\.calibration"):
        load_config(None, ["boxes.threshold=calibrated", "data.root=x"])
    # The file is read before anything else is built (here, before the missing dataset).
    cfg = load_config(
        None,
        [
            "boxes.threshold=calibrated",
            f"boxes.calibration={tmp_path}/n",
            f"data.root={tmp_path}/no_data",
        ],
    )
    with pytest.raises(CalibrationError, match="not found"):
        plan_run(cfg)
    good = tmp_path / "c.json"
    good.write_text(json.dumps(Calibration("maxboxacc", 0.3, 0.9, 10).to_dict()))
    load_config(None, ["boxes.threshold=calibrated", f"boxes.calibration={good}"])
    with pytest.raises(ConfigError, match="otsu"):
        load_config(
            None,
            [
                "boxes.threshold=calibrated",
                f"boxes.calibration={good}",
                "boxes.threshold_mode=otsu",
            ],
        )
    with pytest.raises(ConfigError, match="a number or 'calibrated'"):
        load_config(None, ["boxes.threshold=calibrate"])
    with pytest.raises(ConfigError, match=r"unknown boxes\.merge 'union'; valid: nested"):
        load_config(None, ["boxes.merge=union"])


def _shapes_config(root, split, out, *extra, weights="none"):
    return load_config(
        DEMO_CONFIG,
        [
            f"data.root={root}",
            f"data.split={split}",
            f"out={out}",
            f"model.weights={weights}",
            "report.enabled=false",
            "eval.coco_ap=false",
            *extra,
        ],
    )


@pytest.mark.e2e
def test_calibrated_run_warns_when_splits_overlap(tmp_path, shapes_root, caplog):
    cal = Calibration(
        "maxboxacc",
        0.35,
        0.5,
        10,
        per_class={"circle": {"threshold": 0.6, "score": 1.0, "pairs": 3}},
        images=[str(p) for p in sorted((shapes_root / "JPEGImages").glob("val_*"))],
        source={
            "method": "gradcam",
            "arch": "shapes_net",
            "weights": "none",
            "target_layer": "layer3",
        },
    )
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(cal.to_dict()))
    apply = ["boxes.threshold=calibrated", f"boxes.calibration={path}"]
    with caplog.at_level(logging.WARNING, logger="wsol"):
        m = run(_shapes_config(shapes_root, "val", tmp_path / "val", *apply)).metrics
    assert m["calibration_overlap_images"] == 16
    assert "also in the calibration split" in caplog.text
    assert m["calibrated_threshold"] == 0.35
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wsol"):
        run(_shapes_config(shapes_root, "test", tmp_path / "test", *apply, "cam.method=cam"))
    assert "calibration split" not in caplog.text
    assert "cam.method" not in caplog.text and "method='gradcam'" in caplog.text
    # The per-class cuts reached the boxes: gt_known_loc per class is that class's sweep
    # at its cut, 0.6 for circles and 0.35 for the others.
    sweep = json.loads((tmp_path / "val" / "sweep.json").read_text())
    per_class = json.loads((tmp_path / "val" / "metrics_per_class.json").read_text())
    taus = np.array(sweep["thresholds"])
    for name, entry in sweep["per_class"].items():
        j = int(np.argmin(np.abs(taus - (0.6 if name == "circle" else 0.35))))
        assert per_class[name]["gt_known_loc"] == pytest.approx(
            entry["maxboxacc"][j] / entry["pairs"]
        ), name


@pytest.mark.e2e
def test_calibrate_cli(tmp_path, shapes_root, capsys):
    from wsol.cli import main

    out = tmp_path / "cal"
    code = main(
        [
            "-q",
            "calibrate",
            str(DEMO_CONFIG),
            f"data.root={shapes_root}",
            "data.split=val",
            f"out={out}",
            "model.weights=none",
            "report.enabled=false",
            "--per-class",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out / "calibration.json") in printed and "boxes.threshold=calibrated" in printed
    cal = load_calibration(out / "calibration.json")
    sweep = json.loads((out / "sweep.json").read_text())
    curve = np.array(sweep["maxboxacc"])
    assert cal.score == pytest.approx(curve.max(), abs=1e-6)
    assert cal.threshold in sweep["thresholds"] and cal.per_class
    assert len(cal.images) == 16 and cal.source["target_layer"] == "layer3"
    with pytest.raises(SystemExit):
        main(["calibrate", str(DEMO_CONFIG), "--metric", "nonsense"])
    # Calibration needs the sweep, so it scores even when the config turns eval off.
    assert (
        main(
            [
                "-q",
                "calibrate",
                str(DEMO_CONFIG),
                f"data.root={shapes_root}",
                "data.split=val",
                f"out={out}",
                "model.weights=none",
                "eval.enabled=false",
                "--overwrite",
                "--metric",
                "corloc",
            ]
        )
        == 0
    )
    assert load_calibration(out / "calibration.json").metric == "corloc"


@pytest.fixture(scope="module")
def demo_splits(tmp_path_factory):
    from wsol.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("demo"), {"val": 80, "test": 80}, seed=1)


@pytest.mark.e2e
def test_calibrated_threshold_transfers_to_another_split(tmp_path, demo_splits):
    """Calibrated on val, applied to test: MaxBoxAcc within 0.05 of test's own best tau."""
    trained = CHECKPOINT.is_file()
    weights = str(CHECKPOINT) if trained else "none"
    res = calibrate(_shapes_config(demo_splits, "val", tmp_path / "val", weights=weights))
    cal = res.calibration
    assert res.path == tmp_path / "val" / "calibration.json" and res.path.is_file()
    test = run(
        _shapes_config(
            demo_splits,
            "test",
            tmp_path / "test",
            "boxes.threshold=calibrated",
            f"boxes.calibration={res.path}",
            weights=weights,
        )
    ).metrics
    # With an absolute calibrated cut, gt_known_loc is exactly the test sweep at that tau.
    sweep = json.loads((tmp_path / "test" / "sweep.json").read_text())
    j = int(np.argmin(np.abs(np.array(sweep["thresholds"]) - cal.threshold)))
    assert test["gt_known_loc"] == pytest.approx(sweep["maxboxacc"][j], abs=1e-6)
    oracle = test["maxboxacc"]
    assert oracle - test["gt_known_loc"] <= 0.05, (cal.threshold, test["maxboxacc_threshold"])
    assert test["calibration_overlap_images"] == 0
    if trained:
        assert oracle >= 0.6  # a trained model localizes; the comparison means something
