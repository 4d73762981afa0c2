"""The pipeline's subcommands (``demo``, ``run``, ``calibrate``, ``compare``, ``train``): each takes
the parsed arguments, calls the library, prints the outcome and returns the exit code
(see :mod:`wsol.cli`). The inspection tools are in :mod:`wsol.cli.tools` and
:mod:`wsol.cli.bench`."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from wsol.cli.console import (
    TrainProgress,
    format_summary,
    format_table,
    outputs_line,
    progress_bar,
    status_printer,
)
from wsol.cli.stopping import StopRequest

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def exit_status(metrics: dict) -> int:
    return EXIT_PARTIAL if metrics.get("num_failed") else EXIT_OK


def empty_maps_line(name: str, metrics: dict) -> str | None:
    """A console line for maps that gave no box, and why; None when every map gave one."""
    reasons = metrics.get("empty_detections") or {}
    if not reasons:
        return None
    total = sum(reasons.values())
    why = ", ".join(f"{k}: {n}" for k, n in reasons.items())
    return f"{name}: {total} maps gave no box ({why}); see empty_detections in metrics.json"


def exports_line(name: str, metrics: dict) -> str | None:
    """A console line for what the exports hold, e.g. ``gradcam: pseudo_labels.json: 12
    boxes (18 below export.min_score=0.05)``, then a warning line when they hold none of
    the boxes found; None for metrics without the counts."""
    if "num_boxes_written" not in metrics:
        return None
    files = ", ".join(metrics.get("exports") or [])
    if not files:
        found = metrics["num_boxes_found"]
        return f"{name}: {found} boxes found; no export written (export.formats=[])"
    n = metrics["num_boxes_written"]
    each = " each" if len(metrics["exports"]) > 1 else ""
    dropped = metrics.get("boxes_dropped") or {}
    why = ", ".join(f"{k_n} {reason}" for reason, k_n in dropped.items())
    found = f"{n} of {metrics['num_boxes_found']} boxes" if why else f"{n} boxes"
    line = f"{name}: {files}: {found}{each}" + (f" ({why})" if why else "")
    if metrics.get("export_warning"):
        line += f"\nWARNING {name}: {metrics['export_warning']}"
    return line


def warnings_line(name: str, metrics: dict) -> str | None:
    """A console line for labels that were read but looked wrong; None when none did."""
    n = metrics.get("num_warnings") or 0
    if not n:
        return None
    return (
        f"{name}: {n} warnings about the labels read (dropped GT boxes, repeated "
        "images); see warnings.jsonl"
    )


def _outcome(rows: dict[str, dict]) -> str:
    lines = [format_summary(rows)]
    lines += [line for name, m in rows.items() if (line := exports_line(name, m))]
    lines += [line for name, m in rows.items() if (line := empty_maps_line(name, m))]
    lines += [line for name, m in rows.items() if (line := warnings_line(name, m))]
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from wsol.apps.demo import run_demo

    t0 = time.perf_counter()
    results = run_demo(
        args.out, progress_bar if not args.quiet else None, status=status_printer(args.quiet)
    )
    print(_outcome({m: r.metrics for m, r in results.items()}))
    print(
        f"\nwsol demo: {time.perf_counter() - t0:.1f} s. Outputs in {Path(args.out)}/ "
        f"(pseudo_labels.json, metrics.json, report.html; CAM in {Path(args.out) / 'cam'}/)"
    )
    return max(exit_status(r.metrics) for r in results.values())


def cmd_run(args) -> int:
    from wsol.config import load_config
    from wsol.run import run

    cfg = load_config(args.config, args.overrides)
    say = status_printer(args.quiet)
    if say is not None and cfg.data.root:  # before torch loads, which takes seconds
        say(f"{cfg.cam.method} on {cfg.data.root} into {cfg.out}; loading torch")
    result = run(
        cfg,
        progress=None if args.quiet else progress_bar(cfg.cam.method),
        overwrite=args.overwrite,
        status=say,
    )
    from wsol.run.process_group import is_main_process  # (imports torch: after the run)

    if not is_main_process():  # under torchrun, rank 0 reports for all
        return EXIT_OK
    print(_outcome({cfg.cam.method: result.metrics}))
    print("\n" + outputs_line(result.out_dir, result.metrics, cfg.report.enabled))
    return exit_status(result.metrics)


def cmd_train(args) -> int:
    from wsol.config import load_config
    from wsol.train_config import TrainConfig

    cfg = load_config(args.config, args.overrides, cls=TrainConfig)
    say = status_printer(args.quiet)
    if say is not None:  # before torch loads, which takes seconds
        data = cfg.data.root or "rendered shapes"
        say(f"training {cfg.model.arch} on {data} into {cfg.out}; loading torch")
    from wsol.train import train

    progress = None if args.quiet else TrainProgress()
    stopper = StopRequest()
    try:
        with stopper.on_sigint():
            result = train(cfg, progress, overwrite=args.overwrite, stop=stopper)
    finally:
        if progress is not None:
            progress.close()
    if result.stopped:
        from wsol.cli import resume_hint

        at = result.stopped_at
        where = (
            f"after batch {at['batch']} of {at['steps_per_epoch']} of epoch {at['epoch']}"
            if at["batch"]
            else f"after epoch {at['epoch']}"
        )
        print(
            f"wsol: stopped {where}, saved in {result.out_dir / 'last.pt'}"
            + resume_hint("train", args.argv),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    m = result.metrics
    best = m["best"] or {}
    rows = {
        "best epoch": {
            "epoch": best.get("epoch"),
            "val_map": best.get("val_map"),
            "train_images": m["num_train"],
            "val_images": m["num_val"],
        }
    }
    print(format_table(rows, keys=("epoch", "val_map", "train_images", "val_images")))
    if m.get("num_failed"):
        reasons = ", ".join(f"{why}: {n}" for why, n in list(m["failure_reasons"].items())[:3])
        more = ", ..." if len(m["failure_reasons"]) > 3 else ""
        print(
            f"\n{m['num_failed']} of {m['num_listed']} images could not be read and were left "
            f"out ({reasons}{more}); see failures in train_metrics.json"
        )
    print(f"\nCheckpoint: {result.checkpoint}")
    print(
        "Use it: in a run config, set model.weights to it and leave model.arch empty (the "
        "checkpoint names its architecture, classes and preprocessing), e.g.\n  "
        + shlex.join(["wsol", "explain", "IMAGE.jpg", "--weights", str(result.checkpoint)])
    )
    return EXIT_OK


def cmd_calibrate(args) -> int:
    from wsol.config import load_config
    from wsol.run import calibrate

    cfg = load_config(args.config, args.overrides)
    if args.search or args.grid:
        return _search(args, cfg)
    res = calibrate(
        cfg,
        metric=args.metric,
        per_class=args.per_class,
        min_pairs=args.min_pairs,
        progress=None if args.quiet else progress_bar("calibrate"),
        overwrite=args.overwrite,
        status=status_printer(args.quiet),
    )
    cal = res.calibration
    rows = {"(all)": {"pairs": cal.pairs, "threshold": cal.threshold, cal.metric: cal.score}}
    for name, e in cal.per_class.items():
        rows[name] = {"pairs": e["pairs"], "threshold": e["threshold"], cal.metric: e["score"]}
    print(format_table(rows, keys=("pairs", "threshold", cal.metric)))
    print(f"\nCalibration: {res.path}")
    print(apply_calibration_hint(res.path))
    return exit_status(res.metrics)


def apply_calibration_hint(calibration: Path) -> str:
    """How to run with a calibration: the calibration run's own ``config.yaml`` (absolute
    paths, so it works from anywhere), the calibrated cut, and the images to label."""
    folder = calibration.parent
    command = shlex.join(
        [
            "wsol",
            "run",
            str(folder / "config.yaml"),
            "boxes.threshold_mode=absolute",  # an otsu config cannot take calibrated cuts
            "boxes.threshold=calibrated",
            f"boxes.calibration={calibration}",
            f"out={folder}_applied",
        ]
    )
    return (
        "Apply it to other images of the same kind: add data.root=... (or data.split=...) "
        f"naming them to\n  {command}"
    )


def _search(args, cfg) -> int:
    from wsol.run import search
    from wsol.run.grid_search import load_grid, parse_grid

    grid = {**(load_grid(args.grid) if args.grid else {}), **parse_grid(args.search or [])}
    res = search(
        cfg,
        grid,
        metric=args.metric,
        per_class=args.per_class,
        min_pairs=args.min_pairs,
        progress=None if args.quiet else progress_bar("search"),
        overwrite=args.overwrite,
        rank_by=args.rank_by,
        status=status_printer(args.quiet),
    )
    rows = {}
    for row in res.rows:
        name = ("* " if row["candidate"] == res.best else "  ") + ", ".join(
            f"{k}={v}" for k, v in row["settings"].items()
        )
        rows[name] = {
            "threshold": row["threshold"],
            args.metric: row[args.metric],
            "maxboxacc": row["maxboxacc"],
            "maxboxacc_v2": row["maxboxacc_v2"],
            "img/s": row["images_per_second"],
        }
    keys = tuple(dict.fromkeys(("threshold", args.metric, "maxboxacc", "maxboxacc_v2", "img/s")))
    print(format_table(rows, keys=keys, first="candidate"))
    best = shlex.join(["wsol", "run", str(res.best_config)])
    print(
        f"\n* best. Table: {res.table}\nBest config: {res.best_config}. Run it on other "
        f"images by adding data.root=... (or data.split=...) and out=... to\n  {best}"
    )
    return EXIT_OK


def cmd_compare(args) -> int:
    from wsol.compare.protocol import compare_config
    from wsol.config import load_config
    from wsol.errors import UsageError
    from wsol.run.grid_search import load_grid, parse_grid

    if not (args.search or args.grid):
        raise UsageError("wsol compare needs the candidates: --grid FILE or --search KEY=[...]")
    cfg = load_config(args.config, args.overrides)
    grid = {**(load_grid(args.grid) if args.grid else {}), **parse_grid(args.search or [])}
    t0 = time.perf_counter()
    res = compare_config(
        cfg,
        grid,
        args.select,
        args.report,
        metric=args.metric,
        rank_by=args.rank_by,
        progress=None if args.quiet else progress_bar,
        overwrite=args.overwrite,
        status=status_printer(args.quiet),
        resamples=args.resamples,
        seed=args.seed,
    )
    keys = ("maxboxacc", "maxboxacc_v2", "corloc", "cut", "img/s")
    table, errors = {}, []
    for r in res.rows:
        mark = "* " if r.get("reference") else "  "
        name = f"{mark}{r['row']:03d} {r['name']}"
        if r["error"]:
            table[name] = {k: None for k in ("maxboxacc", "maxboxacc_v2", "corloc")}
            errors.append(f"{r['row']:03d} could not run: {r['error']}")
            continue
        table[name] = {
            "maxboxacc": r["maxboxacc"],
            "maxboxacc_v2": r["maxboxacc_v2"],
            "corloc": r["corloc"],
            "cut": r["cut"],
            "img/s": r["img_per_s"],
        }
    print(format_table(table, keys=keys, first="candidate"))
    if errors:
        print("\n" + "\n".join(errors))
    failed = len(errors)
    print(
        f"\n* the best (by {args.rank_by}); {failed} of {len(res.rows)} candidates could not "
        f"run.\nwsol compare: {time.perf_counter() - t0:.1f} s. Leaderboard: "
        f"{res.out_dir / 'leaderboard.md'} (and .csv, .html); each row's config: "
        f"{res.out_dir / 'rows'}/NNN/config.yaml"
    )
    return EXIT_ERROR if failed == len(res.rows) else EXIT_OK
