"""``wsol compare``: every candidate of a grid, its cut chosen on one side, scored on
another.

For each combination of the grid (a candidate, row ``NNN`` counted from 1):

1. **select**: the base config + the candidate's settings + the ``select`` overrides,
   run in ``<out>/rows/NNN/select`` and calibrated there
   (:func:`wsol.run.calibration.calibrate_config`): the global cut that maximizes
   ``metric`` on the select images.
2. **report**: the base config + the settings + the ``report`` overrides, with that cut
   (``boxes.threshold_mode=absolute``, ``boxes.threshold=<cut>``) and
   ``eval.per_image=true``, run in ``<out>/rows/NNN/report``. Its ``metrics.json`` gives
   the row's numbers; its ``per_image.npz`` the bootstrap intervals and paired tests
   (:mod:`wsol.compare.stats`). ``<out>/rows/NNN/config.yaml`` is that run's config as
   it ran: ``wsol run rows/NNN/config.yaml out=DIR`` gives the row's numbers again.

The two sides must not share an image (checked by file content before any run). A
candidate that cannot run (a method the model's head does not allow, ...) becomes a
row with its reason; the others still run. ``<out>/compare.json`` is rewritten after
each side, and a rerun of the same compare skips the sides it holds (another base
config, grid or sides is refused unless ``overwrite``). Every run of one compare shares
one decode cache: an image decoded for a view size is not decoded again by the next
candidate of that size. The leaderboard is written last (:mod:`wsol.compare.leaderboard`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsol.compare.leaderboard import RANKABLE
from wsol.compare.memory import PeakMemory
from wsol.compare.overlap import check_no_overlap
from wsol.config import Config, ConfigError, dump_config, with_overrides
from wsol.data.cache import DecodeCache
from wsol.errors import WsolError
from wsol.evaluate.calibration import METRICS
from wsol.fileio import atomic_write_json, atomic_write_text
from wsol.run.build import Status
from wsol.run.calibration import calibrate_config, finished_run
from wsol.run.grid_search import candidates
from wsol.run.journal import FinishedRunError, RunExistsError
from wsol.run.pipeline import Progress, run_config
from wsol.run.resolve import absolute_paths
from wsol.schema import one_line

COMPARE_FILE = "compare.json"
ROWS = "rows"
ROW_CONFIG = "config.yaml"
SIDES = ("select", "report")
# what a row keeps of the report run's metrics.json
REPORT_KEYS = (
    "num_images",
    "num_failed",
    "num_pairs",
    *RANKABLE,
    "whole_image_boxes",
    "num_boxes_found",
    "images_per_second",
)

Overrides = list[str] | dict[str, Any]
ProgressFactory = Callable[[str], Progress | None]


@dataclass
class CompareResult:
    """The leaderboard's rows (best first; see :func:`wsol.compare.leaderboard.build_rows`)
    and where the outputs are."""

    rows: list[dict]
    out_dir: Path
    table: Path
    files: list[Path]


def row_dir(out: Path, number: int) -> Path:
    return Path(out) / ROWS / f"{number:03d}"


def settings_name(settings: dict, grid: dict[str, list] | None = None) -> str:
    """``key=value, ...`` of the keys the grid varies; a key given one value holds for
    every row and is left out (all keys when none varies). The full settings stay in the
    row's ``settings``."""
    varied = {k: v for k, v in settings.items() if grid is None or len(grid.get(k, [])) != 1}
    return ", ".join(f"{k}={_yaml_value(v)}" for k, v in (varied or settings).items())


def _yaml_value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def side_config(cfg: Config, settings: dict, side: Overrides, number: int, name: str) -> Config:
    """The config of one side of candidate ``number``: the base, its settings, the
    side's overrides, and the protocol's own keys (the report side's cut comes later)."""
    c = with_overrides(cfg, settings)
    c = with_overrides(c, side) if side else c
    own: dict[str, Any] = {"report.enabled": False, "out": str(row_dir(cfg.out, number) / name)}
    if name == "select":
        own.update({"eval.enabled": True, "eval.coco_ap": False, "eval.pxap": False})
    else:
        own.update({"eval.enabled": True, "eval.per_image": True})
    return absolute_paths(with_overrides(c, own))


def with_cut(report: Config, threshold: float) -> Config:
    return with_overrides(
        report, {"boxes.threshold_mode": "absolute", "boxes.threshold": float(threshold)}
    )


def _state(cfg: Config, grid: dict, select: Overrides, report: Overrides, metric: str, sides):
    """What a rerun must match to resume: the base config, the grid, the sides as given
    and as they resolve (the first candidate's side configs: a relative path given from
    another directory is another side), and the metric."""

    def plain(c: Config) -> dict:
        d = dataclasses.asdict(c)
        d.pop("out")
        return d

    state = {
        "base": plain(cfg),
        "grid": grid,
        "select": select,
        "report": report,
        "metric": metric,
        "resolved": {name: plain(c) for name, c in sides[0].items()} if sides else {},
    }
    return json.loads(json.dumps(state))


def compare_config(
    cfg: Config,
    grid: dict[str, list],
    select: Overrides,
    report: Overrides,
    metric: str = "maxboxacc",
    rank_by: str | None = None,
    progress: ProgressFactory | None = None,
    overwrite: bool = False,
    status: Status | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> CompareResult:
    """Run the protocol of the module docstring and write the leaderboard to ``cfg.out``.

    ``metric``: what each candidate's cut maximizes on the select side; ``rank_by``:
    the report-side metric that orders the leaderboard and names the reference row of
    the paired tests (default ``maxboxacc_v2``). ``progress(label)`` makes the
    ``progress(done, total)`` callback of one side's run (``label`` like ``"3/12
    select"``).
    """
    from wsol.compare.leaderboard import RANKABLE, write_outputs

    if metric not in METRICS:
        raise ConfigError(f"unknown calibration metric {metric!r}; valid: {', '.join(METRICS)}")
    rank_by = rank_by or "maxboxacc_v2"
    if rank_by not in RANKABLE:
        raise ConfigError(f"rank_by must be one of {', '.join(RANKABLE)}, got {rank_by!r}")
    if not select and not report:
        raise ConfigError(
            "give the select side and the report side (--select KEY=VALUE, --report "
            "KEY=VALUE): with neither, both would score the same images"
        )
    cfg = absolute_paths(cfg)
    out = Path(cfg.out)
    combos = candidates(grid)
    sides = [
        {
            name: side_config(cfg, c, overrides, i + 1, name)
            for name, overrides in zip(SIDES, (select, report), strict=True)
        }
        for i, c in enumerate(combos)
    ]
    for pair in {
        (
            json.dumps(dataclasses.asdict(s["select"].data), sort_keys=True),
            json.dumps(dataclasses.asdict(s["report"].data), sort_keys=True),
        ): s
        for s in sides
    }.values():
        check_no_overlap(pair["select"].data, pair["report"].data)

    state = _state(cfg, grid, select, report, metric, sides)
    table = out / COMPARE_FILE
    entries: list[dict] = []
    if table.is_file():
        previous = json.loads(table.read_text())
        if {k: previous.get(k) for k in state} == state:
            entries = previous.get("candidates", [])
        elif not overwrite:
            raise RunExistsError(
                f"{out} holds another compare (base config, grid or sides differ); pass "
                "--overwrite to replace it or choose another out="
            )
        else:
            shutil.rmtree(out / ROWS, ignore_errors=True)
    elif overwrite:
        shutil.rmtree(out / ROWS, ignore_errors=True)
    say = status or (lambda line: None)
    done = sum(1 for e in entries if e.get("error") or e.get("report"))
    if done:
        say(f"resuming the compare in {out}: {done} of {len(combos)} candidates were done")
    cache = DecodeCache()  # shared by every run of this compare

    def save() -> None:
        atomic_write_json(table, {**state, "candidates": entries})

    n = len(combos)
    for i, settings in enumerate(combos):
        number = i + 1
        if i == len(entries):
            entries.append(
                {
                    "row": number,
                    "name": settings_name(settings, grid),
                    "settings": settings,
                    "error": None,
                    "select": None,
                    "report": None,
                }
            )
        entry = entries[i]
        if entry.get("error") or entry.get("report"):
            continue
        if entry.get("select") is None:
            say(f"candidate {number} of {n} (select): {entry['name']}")
            try:
                entry["select"] = _run_select(
                    sides[i]["select"], metric, progress, f"{number}/{n} select", say, cache
                )
            except WsolError as e:
                entry["error"] = f"select: {one_line(e)}"
                say(f"candidate {number} of {n} could not run: {entry['error']}")
            save()
            if entry["error"]:
                continue
        say(f"candidate {number} of {n} (report): {entry['name']}")
        report_cfg = with_cut(sides[i]["report"], entry["select"]["threshold"])
        try:
            entry["report"] = _run_report(
                report_cfg, row_dir(out, number), progress, f"{number}/{n} report", say, cache
            )
        except WsolError as e:
            entry["error"] = f"report: {one_line(e)}"
            say(f"candidate {number} of {n} could not run: {entry['error']}")
        save()
    rows, files = write_outputs(out, state, entries, rank_by, resamples, seed)
    return CompareResult(rows, out, table, files)


def _decodes(cache: DecodeCache, before: tuple[int, int]) -> dict:
    """How many images a side decoded, and how many it took from the cache."""
    return {"decoded": cache.misses - before[1], "from_cache": cache.hits - before[0]}


def _run_select(cfg, metric, progress, label, say, cache) -> dict:
    start, before = time.perf_counter(), (cache.hits, cache.misses)
    with PeakMemory() as peak:
        try:  # a side killed mid-run resumes ...
            res = calibrate_config(
                cfg, metric, progress=_bar(progress, label), status=say, decode_cache=cache
            )
        except RunExistsError:  # ... one that finished before compare.json said so reruns
            res = calibrate_config(
                cfg,
                metric,
                progress=_bar(progress, label),
                overwrite=True,
                status=say,
                decode_cache=cache,
            )
    m = res.metrics
    return {
        **_decodes(cache, before),
        "threshold": res.calibration.threshold,
        "metric": metric,
        "score": res.calibration.score,
        "num_images": m.get("num_images"),
        "images_per_second": m.get("images_per_second"),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_mib": peak.rss_mib,
        "cuda_peak_mib": peak.cuda_mib,
        "out": str(Path(cfg.out)),
    }


def _run_report(cfg: Config, folder: Path, progress, label, say, cache) -> dict:
    start, before = time.perf_counter(), (cache.hits, cache.misses)
    with PeakMemory() as peak:
        try:
            result = run_config(cfg, _bar(progress, label), status=say, decode_cache=cache)
        except FinishedRunError:  # finished before compare.json said so: read it
            result = finished_run(cfg, say)
        except RunExistsError:
            result = run_config(
                cfg, _bar(progress, label), overwrite=True, status=say, decode_cache=cache
            )
    ran = result.config  # resolved: absolute paths, every default spelled out
    header = (
        "# The report side of this compare row, as it ran (its cut chosen on the select\n"
        "# side). `wsol run THIS_FILE out=DIR` gives the row's numbers again.\n"
    )
    again = with_overrides(ran, {"out": str(folder / "rerun")})
    atomic_write_text(folder / ROW_CONFIG, header + dump_config(again))
    m = result.metrics
    return {
        **_decodes(cache, before),
        "metrics": {k: m[k] for k in REPORT_KEYS if k in m},
        "seconds": round(time.perf_counter() - start, 1),
        "peak_mib": peak.rss_mib,
        "cuda_peak_mib": peak.cuda_mib,
        "out": str(result.out_dir),
    }


def _bar(progress: ProgressFactory | None, label: str) -> Progress | None:
    return progress(label) if progress is not None else None
