"""``wsol calibrate``: run on a split that has boxes, choose tau, write ``calibration.json``.

The run measures the threshold sweep; :func:`wsol.evaluate.calibration.choose_thresholds`
picks the cut from it. See :mod:`wsol.evaluate.calibration` for why the split must not be
the scored one.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from wsol.config import Config
from wsol.data.cache import DecodeCache
from wsol.evaluate.calibration import (
    CALIBRATION_FILE,
    METRICS,
    Calibration,
    CalibrationError,
    choose_thresholds,
    resolve_path,
)
from wsol.fileio import FolderLock, atomic_write_text, temp_prefix
from wsol.readfile import MAX_JSON_BYTES, InputFileError, read_text
from wsol.run.build import Status, calibration_source, plan_run
from wsol.run.journal import FINISHED_MARKER, FinishedRunError
from wsol.run.pipeline import Progress, RunResult, run_config

logger = logging.getLogger(__name__)


@dataclass
class CalibrationResult:
    path: Path
    calibration: Calibration
    metrics: dict


def calibrate_config(
    cfg: Config,
    metric: str = "maxboxacc",
    per_class: bool = False,
    min_pairs: int = 1,
    progress: Progress | None = None,
    overwrite: bool = False,
    status: Status | None = None,
    decode_cache: DecodeCache | None = None,
) -> CalibrationResult:
    """Run ``cfg`` on its split (which needs boxes), choose tau, write
    ``<cfg.out>/calibration.json`` and return it with the run's metrics.
    ``decode_cache``: as for :func:`~wsol.run.pipeline.run_config`."""
    if metric not in METRICS:
        raise CalibrationError(
            f"unknown calibration metric {metric!r}; valid: {', '.join(METRICS)}"
        )
    if min_pairs < 1:
        raise CalibrationError(f"min_pairs must be >= 1, got {min_pairs}")
    evals = dataclasses.replace(
        cfg.eval, enabled=True, sweep_corloc=cfg.eval.sweep_corloc or metric == "corloc"
    )
    cfg = dataclasses.replace(cfg, eval=evals)
    try:
        result = run_config(
            cfg, progress, overwrite=overwrite, status=status, decode_cache=decode_cache
        )
    except FinishedRunError:
        # This run finished before: killed (or out of disk) before calibration.json, or
        # asked again, maybe for another --metric. Its sweep is on disk: no rerun.
        result = finished_run(cfg, status)
    if result.sweep is None:
        raise CalibrationError(
            f"{cfg.data.format} split {cfg.data.split!r} has no boxes to calibrate on"
        )
    cal = choose_thresholds(result.sweep, metric, per_class, min_pairs)
    cal.images = sorted(resolve_path(s.path) for s in result.dataset.samples)
    cal.source = calibration_source(result.config, result.dataset.name)
    path = result.out_dir / CALIBRATION_FILE
    atomic_write_text(path, json.dumps(cal.to_dict(), indent=1) + "\n")
    logger.info(
        "calibration written to %s (tau %.3f, %s %.4f)", path, cal.threshold, metric, cal.score
    )
    return CalibrationResult(path, cal, result.metrics)


def finished_run(cfg: Config, status: Status | None = None) -> RunResult:
    """The :class:`RunResult` of the finished run of ``cfg`` in ``cfg.out``, read from
    its ``metrics.json`` and ``sweep.json`` (the dataset and resolved config built
    again, as the run built them)."""
    plan = plan_run(cfg, status)
    out = Path(plan.cfg.out)
    (status or (lambda line: None))(f"{out} holds this run, finished: calibrating from it")
    with FolderLock(out):  # the temp file of a calibration.json killed while written
        for tmp in out.glob(f"{glob.escape(temp_prefix(out / CALIBRATION_FILE))}*.tmp"):
            tmp.unlink(missing_ok=True)
    try:
        metrics = json.loads(read_text(out / FINISHED_MARKER, MAX_JSON_BYTES))
        sweep_file = out / "sweep.json"
        sweep = json.loads(read_text(sweep_file, MAX_JSON_BYTES)) if sweep_file.exists() else None
    except (InputFileError, json.JSONDecodeError) as e:
        raise CalibrationError(
            f"{out}: the finished run's results cannot be read ({e}); pass --overwrite "
            "to run it again"
        ) from None
    # num_annotations: what runs finished before the rename called it
    found = metrics.get("num_boxes_found", metrics.get("num_annotations", 0))
    return RunResult(out, metrics, int(found), sweep, plan.dataset, plan.cfg)
