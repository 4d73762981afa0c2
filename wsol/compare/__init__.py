"""``wsol compare``: candidates run under a held-out protocol, side by side.

:mod:`~wsol.compare.protocol` runs every candidate of a grid on the select side (where
its cut is chosen) and on the report side (which gives its numbers);
:mod:`~wsol.compare.leaderboard` ranks them, with intervals and paired tests
(:mod:`~wsol.compare.stats`), and writes the tables; :mod:`~wsol.compare.page` writes
``leaderboard.html`` from what :mod:`~wsol.compare.figures` reads of each run.

Like :mod:`wsol.run`, this module imports nothing heavy, so that ``wsol.compare`` can be
the function below (the submodules are imported on first call).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsol.compare.protocol import ProgressFactory
    from wsol.config import Config
    from wsol.run.build import Status

__all__ = ["compare"]


def compare(
    config: Config | str | Path,
    grid: dict[str, list] | str | Path,
    select: dict[str, Any] | list[str] | None = None,
    report: dict[str, Any] | list[str] | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    metric: str = "maxboxacc",
    rank_by: str | None = None,
    progress: ProgressFactory | None = None,
    overwrite: bool = False,
    status: Status | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Run every candidate of ``grid``, choosing its cut on the ``select`` side and
    scoring it on the ``report`` side, and write the leaderboard to the config's ``out``
    (``compare.json``, ``leaderboard.md``, ``.csv`` and ``.html``, and
    ``rows/NNN/config.yaml``, each row's report run as it ran). An interrupted compare
    resumes: the sides it finished are not run again.

    Args:
        config: a :class:`~wsol.config.Config` or a YAML file: what both sides share.
        grid: dotted keys -> the values to try (every combination is a candidate), or a
            YAML file of them.
        select: the overrides that make the select side (its data, its class map), as
            ``{"data.split": "val"}`` or ``["data.split=val"]``.
        report: the same for the report side. It must share no image with the select
            side (compared by file content).
        overrides: dotted keys set on the base config first, e.g. ``{"out": "..."}``.
        metric: what each candidate's cut maximizes on the select side:
            ``maxboxacc``, ``maxboxacc_v2``, ``maxboxacc_v2_iou30/50/70`` or ``corloc``.
        rank_by: the report-side metric that orders the rows and picks the best one,
            which the paired tests compare the others with (default ``maxboxacc_v2``).
        progress: ``progress(label)`` -> the ``progress(done, total)`` callback of one
            side's run (``label`` names the candidate and the side, ``"2/12 report"``).
        overwrite: replace another compare found in ``out``.
        status: called as ``status(line)`` as each candidate and side starts.
        resamples, seed: of the bootstrap intervals and paired tests.

    Returns:
        The leaderboard: one dict per candidate, best first (those that could not run
        last), with ``row`` (its number, as in ``rows/NNN``), ``name``, ``settings``,
        ``error`` (None, or why it could not run), the report side's ``maxboxacc``,
        ``maxboxacc_v2`` (and ``_iou30/50/70``), ``pxap``, ``corloc``,
        ``gt_known_loc``, ``top1_loc``, ``coco_ap``, ``whole_image_boxes``, ``cut``
        (chosen on the select side), ``img_per_s``, ``peak_mib``, ``ci`` (metric ->
        95% ``[lo, hi]``), ``significant`` (metric -> whether it differs from the best
        row's) and ``reference`` (True on the best row).

    Raises:
        OverlapError: the two sides share images (a ``ConfigError``).
        ConfigError: a grid or side that does not make a valid config, said before any
            run; ``RunExistsError``: ``out`` holds another compare. A candidate that
            fails while it runs becomes a row with its ``error``, and raises nothing.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import wsol
        >>> from wsol.apps.demo import DEMO_CONFIG  # the demo's: shapes_net, Grad-CAM
        >>> from wsol.data.synthetic import write_dataset
        >>> tmp = Path(tempfile.mkdtemp())
        >>> root = write_dataset(tmp / "shapes", {"val": 4, "test": 4})  # two boxed splits
        >>> rows = wsol.compare(
        ...     DEMO_CONFIG,
        ...     {"cam.method": ["gradcam", "layercam"]},
        ...     select={"data.split": "val"},
        ...     report={"data.split": "test"},
        ...     overrides={"data.root": str(root), "out": str(tmp / "compare")},
        ... )
        >>> sorted(r["name"] for r in rows), rows[0]["reference"]
        (['cam.method=gradcam', 'cam.method=layercam'], True)
        >>> (tmp / "compare" / "leaderboard.html").is_file()
        True
    """
    from wsol.compare.protocol import compare_config
    from wsol.run import resolve_config
    from wsol.run.grid_search import load_grid

    if isinstance(grid, (str, Path)):
        grid = load_grid(grid)
    result = compare_config(
        resolve_config(config, overrides),
        grid,
        select or {},
        report or {},
        metric=metric,
        rank_by=rank_by,
        progress=progress,
        overwrite=overwrite,
        status=status,
        resamples=resamples,
        seed=seed,
    )
    return result.rows
