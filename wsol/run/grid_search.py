"""``wsol calibrate --search``: choose the settings, not only the cut, on a boxed split.

A grid is a mapping of dotted config keys to the values to try, e.g.
``{"cam.method": ["gradcam", "layercam"], "cam.scales": [[1.0], [1.0, 1.5, 2.0]]}``.
Every combination (a candidate) is run on the config's split and calibrated
(:func:`wsol.run.calibration.calibrate_config`) in its own folder,
``<out>/candidates/<n>``. The candidates are ranked by the calibrated score; the table of
all of them is ``<out>/search.json``, and ``<out>/best.yaml`` is the best candidate's
config with its cut applied, which ``wsol run`` takes as it is.

The search is resumable: ``search.json`` is rewritten after every candidate, and a
rerun of the same search skips the candidates it holds (a changed base config, metric
or grid is refused unless ``overwrite``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wsol.config import Config, ConfigError, dump_config, with_overrides
from wsol.fileio import atomic_write_json, atomic_write_text
from wsol.run.build import Status
from wsol.run.calibration import calibrate_config
from wsol.run.journal import RunExistsError
from wsol.run.pipeline import Progress
from wsol.run.resolve import absolute_paths
from wsol.schema import one_line, read_config_file
from wsol.strict_yaml import load_yaml

SEARCH_FILE = "search.json"
BEST_CONFIG = "best.yaml"
CANDIDATES = "candidates"


@dataclass
class SearchResult:
    """Every candidate's row (its settings, cut, score), the best one's index, and the
    paths of the table and of the best config."""

    rows: list[dict]
    best: int
    table: Path
    best_config: Path


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["cam.method=[gradcam, layercam]", "cam.flip=[false, true]"]`` -> a grid; each
    value is YAML, and a single value stands for a one-item list."""
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"search {item!r} is not of the form key=[value, ...]")
        key, raw = item.split("=", 1)
        try:
            values = load_yaml(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"search {key}: not valid YAML: {one_line(e)}") from None
        grid[key.strip()] = values if isinstance(values, list) else [values]
    return grid


def load_grid(path: str | Path) -> dict[str, list]:
    """A YAML grid file: a mapping of dotted keys to lists of values."""
    p = Path(path)
    try:
        raw = read_config_file(p)
    except ConfigError as e:
        raise ConfigError(f"search grid: {e}") from None
    if not raw:
        raise ConfigError(f"{p}: expected a mapping of dotted keys to lists of values")
    return {str(k): v if isinstance(v, list) else [v] for k, v in raw.items()}


def candidates(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest."""
    if any(not values for values in grid.values()):
        raise ConfigError("every searched key needs at least one value")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _state(cfg: Config, metric: str, per_class: bool, grid: dict) -> dict:
    base = dataclasses.asdict(cfg)
    base.pop("out")
    return {"base": base, "metric": metric, "per_class": per_class, "grid": grid}


def search_config(
    cfg: Config,
    grid: dict[str, list],
    metric: str = "maxboxacc",
    per_class: bool = False,
    min_pairs: int = 1,
    progress: Progress | None = None,
    overwrite: bool = False,
    rank_by: str | None = None,
    status: Status | None = None,
) -> SearchResult:
    """Run and calibrate every candidate of ``grid`` on ``cfg``'s split; see the module
    docstring. All candidate configs are built (and checked) before the first run.

    Each candidate's cut maximizes ``metric``; candidates are ranked by ``rank_by``
    (default ``metric``; or ``maxboxacc_v2``, ``maxboxacc``, whose best over the sweep
    does not depend on the cut)."""
    rank_by = rank_by or metric
    cfg = absolute_paths(cfg)  # best.yaml runs from any directory
    if rank_by not in (metric, "maxboxacc", "maxboxacc_v2"):
        raise ConfigError(
            f"rank_by must be the calibration metric ({metric}), maxboxacc or "
            f"maxboxacc_v2, got {rank_by!r}"
        )
    combos = candidates(grid)
    configs = [
        with_overrides(
            cfg,
            {
                **c,
                "report.enabled": False,
                "eval.coco_ap": False,
                "out": str(Path(cfg.out) / CANDIDATES / f"{i:03d}"),
            },
        )
        for i, c in enumerate(combos)
    ]
    out = Path(cfg.out)
    state = {**_state(cfg, metric, per_class, grid), "rank_by": rank_by}
    table = out / SEARCH_FILE
    rows: list[dict] = []
    if table.is_file():
        previous = json.loads(table.read_text())
        if {k: previous.get(k) for k in state} == json.loads(json.dumps(state)):
            rows = previous["candidates"]
        elif not overwrite:
            raise RunExistsError(
                f"{out} holds another search; pass --overwrite to replace it or choose another out="
            )
        else:
            shutil.rmtree(out / CANDIDATES, ignore_errors=True)
    say = status or (lambda line: None)
    if rows:
        say(f"resuming the search in {out}: {len(rows)} of {len(combos)} candidates were done")
    for i in range(len(rows), len(combos)):
        start = time.perf_counter()
        settings = ", ".join(f"{k}={v}" for k, v in combos[i].items())
        say(f"candidate {i + 1} of {len(combos)}: {settings}")
        try:  # a candidate killed mid-run resumes
            res = calibrate_config(configs[i], metric, per_class, min_pairs, progress, status=say)
        except RunExistsError:  # ... one that finished before search.json said so reruns
            res = calibrate_config(
                configs[i], metric, per_class, min_pairs, progress, overwrite=True, status=say
            )
        m = res.metrics
        rows.append(
            {
                "candidate": i,
                "settings": combos[i],
                "threshold": res.calibration.threshold,
                "maxboxacc": m.get("maxboxacc"),
                "maxboxacc_v2": m.get("maxboxacc_v2"),
                metric: res.calibration.score,
                "images_per_second": m.get("images_per_second"),
                "seconds": round(time.perf_counter() - start, 1),
                "calibration": str(res.path.resolve()),
            }
        )
        atomic_write_json(table, {**state, "candidates": rows})
    best = max(range(len(rows)), key=lambda i: (rows[i][rank_by], -i))
    atomic_write_json(table, {**state, "candidates": rows, "best": best})
    best_config = out / BEST_CONFIG
    atomic_write_text(best_config, _best_yaml(cfg, rows[best], per_class, metric))
    return SearchResult(rows, best, table, best_config)


def _best_yaml(cfg: Config, row: dict, per_class: bool, metric: str) -> str:
    """The best candidate as a complete config: its settings, and its cut (the global
    absolute cut, or the calibration file when per class)."""
    cut: dict[str, Any] = (
        {"boxes.threshold": "calibrated", "boxes.calibration": row["calibration"]}
        if per_class
        else {"boxes.threshold_mode": "absolute", "boxes.threshold": row["threshold"]}
    )
    best = with_overrides(cfg, {**row["settings"], **cut, "out": str(Path(cfg.out) / "best_run")})
    settings = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
    header = (
        f"# Chosen by `wsol calibrate --search` on {cfg.data.format} split "
        f"{cfg.data.split!r} of {cfg.data.root}:\n# {settings}, cut {row['threshold']:g} "
        f"({metric} {row[metric]:.4f} there). Run it on other images: set data.root\n"
        "# (or data.split) to them, and out to a new folder.\n"
    )
    return header + dump_config(best)
