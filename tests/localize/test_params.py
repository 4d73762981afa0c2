"""``BoxParams.from_config``: the ``boxes`` section of a run config, read in one place."""

from __future__ import annotations

import dataclasses

import pytest

from wsol.config import BoxesConfig
from wsol.errors import UsageError
from wsol.evaluate.calibration import Calibration
from wsol.localize import BoxParams


def test_defaults_and_names_agree_with_the_config_section():
    assert BoxParams.from_config(BoxesConfig()) == BoxParams()
    section = {f.name for f in dataclasses.fields(BoxesConfig)}
    assert {f.name for f in dataclasses.fields(BoxParams)} - section == {"class_thresholds"}


def test_every_key_is_carried_over():
    keys = dict(
        threshold_mode="absolute",
        threshold=0.45,
        components="all",
        min_area=0.01,
        merge="nested",
        score="max",
        nms_iou=0.6,
        smooth=0.02,
        max_side=512,
    )
    assert BoxParams.from_config(BoxesConfig(**keys)) == BoxParams(**keys) != BoxParams()


def test_a_calibration_gives_absolute_cuts_per_class_or_global():
    boxes = BoxesConfig(threshold="calibrated", calibration="cal.json", components="all")
    cal = Calibration("maxboxacc", 0.3, 0.8, 10, per_class={"cat": {"threshold": 0.6}})
    per_class = BoxParams.from_config(boxes, cal, ["dog", "cat"])
    assert per_class.class_thresholds == (0.3, 0.6)
    assert (per_class.threshold_mode, per_class.threshold) == ("absolute", 0.3)
    assert per_class.components == "all"
    assert per_class.describe_cut() == (
        "calibrated: absolute 0.3..0.6 per class on the min-max normalized map"
    )
    overall = BoxParams.from_config(boxes, cal)  # no classes (wsol explain): the global cut
    assert overall.class_thresholds is None
    assert overall.describe_cut() == "absolute 0.3 on the min-max normalized map"


def test_a_calibrated_section_without_its_calibration_is_refused():
    boxes = BoxesConfig(threshold="calibrated", calibration="cal.json")
    with pytest.raises(UsageError, match="calibrated needs the calibration"):
        BoxParams.from_config(boxes)
