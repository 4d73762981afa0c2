"""Threshold calibration: choose tau on a split that has boxes, apply it to one that has not.

Choe et al. (CVPR 2020, wsolevaluation) show that the threshold must be chosen on
held-out images with boxes, never on the scored images: tuning on the test set inflates
the score. This is how a user with a few boxed images pseudo-labels the rest:

1. ``wsol calibrate CONFIG`` runs the pipeline on the config's (boxed) split, takes the
   threshold sweep it measured (what ``sweep.json`` holds: exact hit counts per class and
   tau) and picks the tau that maximizes the chosen metric, globally or per class
   (:func:`choose_thresholds`; the command is :func:`wsol.run.calibrate`). The result is
   ``calibration.json`` in the run's output folder.
2. ``wsol run CONFIG boxes.threshold=calibrated boxes.calibration=PATH data.split=OTHER``
   applies it. The cuts are absolute, on min-max normalized maps (what the sweep
   measures). If the two splits share images (same resolved paths) a warning is logged
   and ``metrics.json`` records how many.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsol.errors import UsageError, quote
from wsol.readfile import MAX_TEXT_BYTES, InputFileError, InputMissingError, read_text

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
FORMAT = "wsol-calibration/1"
V2_KEYS = {"maxboxacc_v2_iou30": 0, "maxboxacc_v2_iou50": 1, "maxboxacc_v2_iou70": 2}
METRICS = ("maxboxacc", "maxboxacc_v2", *V2_KEYS, "corloc")


class CalibrationError(UsageError):
    """A calibration file that cannot be used, or a calibration that cannot be made."""


@dataclass
class Calibration:
    """Calibrated cuts on min-max normalized maps (``threshold_mode`` absolute).

    ``threshold`` is the global tau and ``score`` the metric it reached on the
    calibration split (``pairs`` (image, class) pairs). ``per_class`` maps a class name
    to ``{"threshold", "score", "pairs"}`` for classes calibrated on their own.
    ``images`` are the calibration split's resolved image paths (for the overlap check)
    and ``source`` what produced the maps (method, model, layer, weights, dataset).
    """

    metric: str
    threshold: float
    score: float
    pairs: int
    per_class: dict[str, dict] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    threshold_mode: str = "absolute"

    def thresholds_for(self, class_names: list[str]) -> np.ndarray:
        """The cut ``[D]`` for each of ``class_names``: its own, else the global one."""
        return np.array(
            [self.per_class.get(n, {}).get("threshold", self.threshold) for n in class_names],
            np.float64,
        )

    def overlap(self, paths: list[str]) -> int:
        """How many of ``paths`` are calibration images (compared as resolved paths)."""
        mine = set(self.images)
        return sum(resolve_path(p) in mine for p in paths)

    def to_dict(self) -> dict:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, doc: dict) -> Calibration:
        if doc.get("format") != FORMAT:
            raise CalibrationError(
                f"not a wsol calibration (format {quote(doc.get('format'))}, expected {FORMAT!r})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        cal = cls(**{k: v for k, v in doc.items() if k in names})
        shapes = {"per_class": dict, "images": list, "source": dict, "threshold_mode": str}
        for key, kind in shapes.items():
            if not isinstance(getattr(cal, key), kind):
                what = "an object" if kind is dict else f"a {kind.__name__}"
                raise CalibrationError(
                    f"calibration {key} must be {what}, got {quote(getattr(cal, key))}"
                )
        if not all(isinstance(e, dict) for e in cal.per_class.values()) or not all(
            isinstance(i, str) for i in cal.images
        ):
            raise CalibrationError("calibration per_class entries must be objects, images paths")
        taus = [cal.threshold, *(e.get("threshold", cal.threshold) for e in cal.per_class.values())]
        if not all(
            isinstance(t, int | float) and not isinstance(t, bool) and 0.0 <= t <= 1.0 for t in taus
        ):
            raise CalibrationError("calibration thresholds must be numbers in [0, 1]")
        if cal.threshold_mode != "absolute":
            raise CalibrationError(f"unsupported threshold_mode {quote(cal.threshold_mode)}")
        return cal


def resolve_path(path: str) -> str:
    """The form image paths are compared in: absolute, symlinks resolved."""
    return os.path.realpath(path)


def load_calibration(path: str | Path) -> Calibration:
    """Read ``calibration.json``; a missing or malformed file raises CalibrationError."""
    p = Path(path)
    missing = CalibrationError(
        f"boxes.calibration: calibration file {str(path)!r} not found "
        "(write one with `wsol calibrate CONFIG`)"
    )
    if not str(path):
        raise missing
    try:
        doc = json.loads(read_text(p, MAX_TEXT_BYTES))
    except InputMissingError:
        raise missing from None
    except InputFileError as e:
        raise CalibrationError(f"boxes.calibration: {p}: {e}") from None
    except json.JSONDecodeError as e:
        raise CalibrationError(f"{p}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise CalibrationError(f"{p}: expected a JSON object")
    try:
        return Calibration.from_dict(doc)
    except TypeError as e:
        raise CalibrationError(f"{p}: {e}") from None


def metric_hits(entry: dict, metric: str) -> np.ndarray:
    """A sweep entry's hits ``[T]`` for ``metric`` (V2: mean hits over the three deltas)."""
    if metric == "maxboxacc_v2":
        return np.asarray(entry["maxboxacc_v2"], np.float64).mean(axis=1)
    if metric in V2_KEYS:
        return np.asarray(entry["maxboxacc_v2"], np.float64)[:, V2_KEYS[metric]]
    if metric not in entry:
        raise CalibrationError(
            f"the sweep has no {metric!r} curve"
            + (" (run with eval.sweep_corloc=true)" if metric == "corloc" else "")
        )
    return np.asarray(entry[metric], np.float64)


def pick_threshold(values: np.ndarray) -> int:
    """The index of the tau to use for a curve ``[T]``: the median of the taus that reach
    the maximum (the lower one on even counts). Any of them is optimal on the calibration
    split; the median sits away from a plateau's edge, so it transfers better."""
    best = np.flatnonzero(values == values.max())
    return int(best[(len(best) - 1) // 2])


def choose_thresholds(
    sweep: dict, metric: str = "maxboxacc", per_class: bool = False, min_pairs: int = 1
) -> Calibration:
    """Pick tau from a ``sweep.json`` dict (see :meth:`BoxAccuracy.sweep`).

    The global tau maximizes the metric over all pairs; with ``per_class``, each class
    with at least ``min_pairs`` pairs gets the tau that maximizes its own curve, and the
    others fall back to the global tau.
    """
    if metric not in METRICS:
        raise CalibrationError(
            f"unknown calibration metric {metric!r}; valid: {', '.join(METRICS)}"
        )
    taus = np.asarray(sweep["thresholds"], np.float64)
    classes = sweep.get("per_class") or {}
    if not classes:
        raise CalibrationError("the calibration split has no (image, class) pair with a box")
    pairs = {n: int(e["pairs"]) for n, e in classes.items()}
    total = sum(pairs.values())
    hits = {n: metric_hits(e, metric) for n, e in classes.items()}
    curve = sum(hits.values()) / total
    j = pick_threshold(curve)
    cal = Calibration(metric=metric, threshold=float(taus[j]), score=float(curve[j]), pairs=total)
    if per_class:
        for name, h in hits.items():
            if pairs[name] >= min_pairs:
                k = pick_threshold(h)
                cal.per_class[name] = {
                    "threshold": float(taus[k]),
                    "score": float(h[k] / pairs[name]),
                    "pairs": pairs[name],
                }
    return cal


def check_source(cal: Calibration, source: dict) -> list[str]:
    """Warn (and return the keys) where maps made as ``source`` describes (method, arch,
    weights, target layer) differ from the calibration's."""
    diff = [
        k
        for k in ("method", "arch", "weights", "target_layer")
        if k in cal.source and k in source and cal.source[k] != source[k]
    ]
    if diff:
        logger.warning(
            "the calibration was made with %s but this run uses %s; its thresholds may not fit",
            ", ".join(f"{k}={cal.source[k]!r}" for k in diff),
            ", ".join(f"{k}={source[k]!r}" for k in diff),
        )
    return diff


def check_overlap(cal: Calibration, paths: list[str]) -> int:
    """Count scored images that were calibration images, warning if there are any."""
    n = cal.overlap(paths)
    if n:
        logger.warning(
            "%d of %d images were also in the calibration split: scores on them "
            "are optimistic (calibrate on a held-out split)",
            n,
            len(paths),
        )
    return n
