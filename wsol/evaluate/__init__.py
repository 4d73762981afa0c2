"""Scoring: streaming evaluators, COCO AP, scoring a pseudo-label file, and calibration."""

from __future__ import annotations

from wsol.evaluate.base import Evaluator, Evaluators, sweep_thresholds
from wsol.evaluate.box_accuracy import BoxAccuracy
from wsol.evaluate.coco_ap import add_coco_ap, coco_ap
from wsol.evaluate.max_box_acc import V2_DELTAS, MaxBoxAcc
from wsol.evaluate.pixel_ap import PixelAP

__all__ = [
    "V2_DELTAS",
    "BoxAccuracy",
    "Evaluator",
    "Evaluators",
    "MaxBoxAcc",
    "PixelAP",
    "add_coco_ap",
    "coco_ap",
    "sweep_thresholds",
]
