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

    ``config`` is a :class:`Config` or a YAML file; ``overrides`` set dotted keys on
    top. Outputs go to ``config.out``; an unfinished run there resumes, anything else
    there is refused unless ``overwrite``. ``progress(done, total)`` is called after
    every batch, ``status(line)`` as each phase (reading, model, outputs) starts.
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
    ``metric`` there; writes ``calibration.json`` in the run's folder."""
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
