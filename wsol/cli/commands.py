"""The ``wsol`` subcommands: each takes the parsed arguments, calls the library, prints
the outcome and returns the exit code (see :mod:`wsol.cli`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from wsol.cli.console import TrainProgress, format_summary, format_table, progress_bar
from wsol.errors import UsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def _status(metrics: dict) -> int:
    return EXIT_PARTIAL if metrics.get("num_failed") else EXIT_OK


def cmd_demo(args) -> int:
    from wsol.apps.demo import run_demo

    t0 = time.perf_counter()
    results = run_demo(args.out, progress_bar if not args.quiet else None)
    rows = {m: r.metrics for m, r in results.items()}
    print(format_summary(rows))
    print(
        f"\nwsol demo: {time.perf_counter() - t0:.1f} s. Outputs in {Path(args.out)}/ "
        f"(pseudo_labels.json, metrics.json, report.html; CAM in {Path(args.out) / 'cam'}/)"
    )
    return max(_status(r.metrics) for r in results.values())


def cmd_run(args) -> int:
    from wsol.config import load_config
    from wsol.run import run

    cfg = load_config(args.config, args.overrides)
    result = run(
        cfg, progress=None if args.quiet else progress_bar(cfg.cam.method), overwrite=args.overwrite
    )
    print(format_summary({cfg.cam.method: result.metrics}))
    print(f"\nOutputs in {result.out_dir}/")
    return _status(result.metrics)


def cmd_train(args) -> int:
    from wsol.config import load_config
    from wsol.train import train
    from wsol.train_config import TrainConfig

    cfg = load_config(args.config, args.overrides, cls=TrainConfig)
    progress = None if args.quiet else TrainProgress()
    try:
        result = train(cfg, progress, overwrite=args.overwrite)
    finally:
        if progress is not None:
            progress.close()
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
    if m["failures"]:
        print(f"\n{len(m['failures'])} images could not be read (see train_metrics.json)")
    print(f"\nCheckpoint: {result.checkpoint}")
    print(f"Use it:     wsol run CONFIG model.weights={result.checkpoint}")
    return EXIT_OK


def cmd_bench(args) -> int:
    from wsol.apps.bench import bench_demo, bench_maps, bench_views
    from wsol.models.spec import resolve_device

    for flag, value, low in (
        ("--batch-size", args.batch_size, 1),
        ("--repeats", args.repeats, 1),
        ("--size", args.size, 32),
    ):
        if value < low:
            raise UsageError(f"bench {flag} must be at least {low}, got {value}")
    resolve_device(args.device)  # cuda without a GPU: one line, exit 2

    settings = (
        args.arch,
        args.method,
        args.batch_size,
        args.size,
        args.repeats,
        args.device,
        args.precision,
    )
    # Views first: after pytorch-grad-cam has run in the process, later timings come out
    # faster than they are alone (measured; cause unknown), so the reference goes last.
    views = bench_views(*settings) if args.views else {}
    result = bench_maps(*settings)
    result["images_per_second"].update(views)
    print(
        f"{result['arch']}, batch {result['batch_size']}, {result['size']}x{result['size']}, "
        f"{result['device']}, {result['precision']}"
    )
    print(
        format_table(
            {k: {"images_per_second": v} for k, v in result["images_per_second"].items()},
            keys=("images_per_second",),
        )
    )
    if args.demo:
        demo = bench_demo(args.out)
        print(
            format_table(
                {k: {"images_per_second": v} for k, v in demo["images_per_second"].items()},
                keys=("images_per_second",),
            )
        )
    return EXIT_OK


EVAL_KEYS = (
    "num_images",
    "num_pairs",
    "num_predictions",
    "num_invalid",
    "num_dropped",
    "corloc",
    "coco_ap",
    "coco_ap50",
    "coco_ap75",
)


def cmd_eval(args) -> int:
    import json

    from wsol.evaluate.predictions import (
        evaluate_predictions,
        load_ground_truth,
        load_predictions,
    )
    from wsol.fileio import atomic_write_json

    if not 0.0 < args.iou <= 1.0:  # NaN fails this too
        raise UsageError(f"--iou must be in (0, 1], got {args.iou}")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    dataset = load_ground_truth(args.gt, args.gt_format, args.split)
    try:
        doc = json.loads(Path(args.pred).read_text())
        preds, counts = load_predictions(doc, dataset, match_ids=args.match_ids)
    except (ValueError, OSError) as e:  # malformed JSON or predictions, unreadable file
        print(f"wsol: error: {args.pred}: {e}", file=sys.stderr)
        return EXIT_USAGE
    metrics, per_class = evaluate_predictions(dataset, preds, args.iou)
    metrics.update(counts)
    print(format_table({Path(args.pred).name: metrics}, keys=EVAL_KEYS))
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "metrics.json", metrics)
        atomic_write_json(out / "metrics_per_class.json", per_class)
        print(f"\nMetrics in {out / 'metrics.json'}")
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
    )
    cal = res.calibration
    rows = {"(all)": {"pairs": cal.pairs, "threshold": cal.threshold, cal.metric: cal.score}}
    for name, e in cal.per_class.items():
        rows[name] = {"pairs": e["pairs"], "threshold": e["threshold"], cal.metric: e["score"]}
    print(format_table(rows, keys=("pairs", "threshold", cal.metric)))
    print(
        f"\nCalibration: {res.path}\nApply it to another split: wsol run {args.config} "
        f"boxes.threshold=calibrated boxes.calibration={res.path} data.split=..."
    )
    return _status(res.metrics)


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
    print(
        f"\n* best. Table: {res.table}\nBest config: {res.best_config}; run it on other "
        f"images: wsol run {res.best_config} data.split=... out=..."
    )
    return EXIT_OK


def cmd_explain(args) -> int:
    from wsol.apps.explain import explain, write_explanation
    from wsol.data.decode import DecodeError
    from wsol.localize import BoxParams
    from wsol.models import load_model

    options = {
        "arch": args.model,
        "weights": args.weights,
        "method": args.method,
        "layer": None,
        "class_map": None,
        "boxes": BoxParams(),
        "precision": "fp32",
        "device": "cpu",
    }
    if args.config:
        from wsol.config import load_config
        from wsol.run.build import explain_options

        options.update(explain_options(load_config(args.config)))
    for key in ("model", "weights", "method"):  # flags given explicitly win over the config
        if getattr(args, key) != EXPLAIN_DEFAULTS[key]:
            options["arch" if key == "model" else key] = getattr(args, key)
    if args.model == EXPLAIN_DEFAULTS["model"] and options["weights"] != "DEFAULT":
        from wsol.models.checkpoint import trained_checkpoint

        if trained_checkpoint(options["weights"]) is not None:
            options["arch"] = ""  # a checkpoint from wsol train names its own architecture
    model = load_model(
        options["arch"], options["weights"], device=options["device"], target_layer=options["layer"]
    )
    out = Path(args.out)
    stems: set[str] = set()
    failed = 0
    for image in args.images:
        try:
            exp = explain(
                model,
                image,
                options["method"],
                topk=args.topk,
                classes=[args.cls] if args.cls else None,
                class_map=options["class_map"],
                boxes=options["boxes"],
                precision=options["precision"],
            )
        except DecodeError as e:  # one bad file does not stop the others
            print(f"wsol: error: {image}: {e}", file=sys.stderr)
            failed += 1
            continue
        stem = Path(image).stem
        while stem in stems:  # two images with one name must not overwrite each other
            stem += "_"
        stems.add(stem)
        files = write_explanation(exp, out, stem)
        print(f"{image}: {options['arch']} predicts")
        for name, p in exp.top(5):
            print(f"  {p:6.3f}  {name}")
        for name, c in zip(exp.targets, exp.result.classes, strict=True):
            boxes = (
                ", ".join(
                    f"[{b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f}] {s:.2f}"
                    for b, s in zip(c.detections.boxes, c.detections.scores, strict=True)
                )
                or c.detections.reason
                or "none"
            )
            print(f"  {options['method']} for {name!r}: boxes (x1, y1, x2, y2) {boxes}")
        print(
            f"  wrote {len(files)} files to {out}/ ({files[0].name}, ...)"
            if files
            else "  nothing to draw"
        )
    return EXIT_PARTIAL if failed else EXIT_OK


EXPLAIN_DEFAULTS = {"model": "efficientnet_lite0", "weights": "DEFAULT", "method": "gradcam"}
