"""Running wsol on a dataset: ``run`` and ``calibrate``, from a config.

This package is the only reader of :class:`wsol.config.Config`: :mod:`~wsol.run.build`
turns it into a :class:`~wsol.localize.Localizer` and evaluators,
:mod:`~wsol.run.pipeline` drives the batch loop (:mod:`~wsol.run.loop`) over the data,
:mod:`~wsol.run.journal` keeps the resumable state on disk, :mod:`~wsol.run.finalize`
writes the outputs and :mod:`~wsol.run.calibration` chooses thresholds and
:mod:`~wsol.run.grid_search` settings.
Under torchrun, :mod:`~wsol.run.distributed` gives each process a shard of the dataset.

This module itself imports nothing heavy, so that ``import wsol`` stays fast and
``wsol.run`` can be the function below (the submodules are imported on first call).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsol.config import Config
    from wsol.run.build import Status
    from wsol.run.calibration import CalibrationResult
    from wsol.run.grid_search import SearchResult
    from wsol.run.pipeline import Progress, RunResult

__all__ = ["calibrate", "resolve_config", "run", "search"]


def resolve_config(
    config: Config | str | Path, overrides: dict[str, Any] | list[str] | None = None
) -> Config:
    """A :class:`Config` from a config object or a YAML path, with ``overrides``
    (``{"data.root": "..."}``, or ``["data.root=..."]`` as on the command line)."""
    from wsol.config import Config, load_config, with_overrides

    if isinstance(config, Config):
        return with_overrides(config, overrides) if overrides else config
    return load_config(config, overrides)


def run(
    config: Config | str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    status: Status | None = None,
) -> RunResult:
    """Run the pipeline: dataset -> maps -> boxes -> pseudo-labels, metrics and report.

    Args:
        config: a :class:`~wsol.config.Config` or a YAML file.
        overrides: dotted keys set on top, ``{"data.root": "..."}`` or
            ``["data.root=..."]`` as on the command line.
        progress: called as ``progress(done, total)`` after every batch.
        overwrite: replace the results of another run in ``config.out`` (an unfinished
            run of the same config and images there resumes either way).
        status: called as ``status(line)`` as each phase (reading, model, outputs)
            starts.

    Returns:
        The run's :class:`~wsol.run.finalize.RunResult`: ``metrics`` (what
        ``metrics.json`` holds), ``out_dir``, ``sweep``, ``dataset``, ``config``.

    Raises:
        ConfigError: a config that cannot run, said before any work; and the other
            :class:`~wsol.errors.WsolError` subclasses: ``RunExistsError`` for a folder
            that holds another run, ``DataError``, ``ModelError``, ...

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import wsol
        >>> from wsol.apps.demo import DEMO_CONFIG  # the demo's: shapes_net, Grad-CAM
        >>> from wsol.data.synthetic import write_dataset
        >>> tmp = Path(tempfile.mkdtemp())
        >>> root = write_dataset(tmp / "shapes", {"val": 4})  # 4 boxed images, VOC layout
        >>> result = wsol.run(
        ...     DEMO_CONFIG, {"data.root": str(root), "data.split": "val", "out": str(tmp / "run")}
        ... )
        >>> result.metrics["num_images"], (result.out_dir / "pseudo_labels.json").is_file()
        (4, True)
    """
    from wsol.run.pipeline import run_config

    return run_config(resolve_config(config, overrides), progress, overwrite, status)


def calibrate(
    config: Config | str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    metric: str = "maxboxacc",
    per_class: bool = False,
    min_pairs: int = 1,
    progress: Progress | None = None,
    overwrite: bool = False,
    status: Status | None = None,
) -> CalibrationResult:
    """Run on the config's (boxed) split and choose the box threshold that maximizes
    ``metric`` there; writes ``calibration.json`` in the run's folder.

    Args:
        config, overrides, progress, overwrite, status: as for :func:`run`.
        metric: what the cut maximizes: ``maxboxacc``, ``maxboxacc_v2``,
            ``maxboxacc_v2_iou30/50/70`` or ``corloc``.
        per_class: also choose a cut per class (classes with at least ``min_pairs``
            scored pairs; the others keep the global cut).
        min_pairs: the pairs a class needs for a cut of its own.

    Returns:
        A :class:`~wsol.run.calibration.CalibrationResult`: ``path`` (the
        ``calibration.json`` that ``boxes.threshold=calibrated`` applies),
        ``calibration`` and the run's ``metrics``.

    Raises:
        CalibrationError: an unknown metric, or a split with no boxes to score; and
            whatever :func:`run` raises.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import wsol
        >>> from wsol.apps.demo import DEMO_CONFIG
        >>> from wsol.data.synthetic import write_dataset
        >>> tmp = Path(tempfile.mkdtemp())
        >>> root = write_dataset(tmp / "shapes", {"val": 4})
        >>> cal = wsol.calibrate(
        ...     DEMO_CONFIG, {"data.root": str(root), "data.split": "val", "out": str(tmp / "cal")}
        ... )
        >>> cal.path.name, 0.0 <= cal.calibration.threshold <= 1.0
        ('calibration.json', True)
    """
    from wsol.run.calibration import calibrate_config

    return calibrate_config(
        resolve_config(config, overrides),
        metric,
        per_class,
        min_pairs,
        progress,
        overwrite,
        status,
    )


def search(
    config: Config | str | Path,
    grid: dict[str, list],
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    metric: str = "maxboxacc",
    per_class: bool = False,
    min_pairs: int = 1,
    progress: Progress | None = None,
    overwrite: bool = False,
    rank_by: str | None = None,
    status: Status | None = None,
) -> SearchResult:
    """Calibrate every combination of ``grid`` (dotted keys -> values to try) on the
    config's split; writes ``search.json`` (every candidate's score) and ``best.yaml``
    (the best one, with its cut, ready for ``wsol run``)."""
    from wsol.run.grid_search import search_config

    return search_config(
        resolve_config(config, overrides),
        grid,
        metric,
        per_class,
        min_pairs,
        progress,
        overwrite,
        rank_by,
        status,
    )
