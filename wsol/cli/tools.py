"""The inspection subcommands (``eval``, ``explain``, ``bench``): each takes the parsed
arguments, calls the library, prints the outcome and returns the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from wsol.cli.commands import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from wsol.cli.console import format_table, progress_bar, status_printer
from wsol.errors import UsageError

BENCH_IMAGES = 64  # synthetic files `wsol bench` writes unless --images says otherwise
BENCH_COLUMNS = (
    ("images_per_second", "img/s"),
    ("seconds", "seconds"),
    ("images", "images"),
    ("boxes", "boxes"),
    ("of_floor", "x floor"),
)


def _check_bench_args(args) -> None:
    for flag, value, low in (
        ("--batch-size", args.batch_size, 1),
        ("--repeats", args.repeats, 1),
        ("--size", args.size, 32),
        ("--images", args.images, 1),
        ("--workers", args.workers, 0),
        ("--threads", args.threads, 1),
    ):
        if value is not None and value < low:
            raise UsageError(f"bench {flag} must be at least {low}, got {value}")
    if args.data is not None and not Path(args.data).is_dir():
        raise UsageError(f"bench --data {args.data} is not a folder")


def _seconds(stages: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in stages.items())


def format_bench(result: dict) -> str:
    """The header, the table, the ratios and the stage breakdown of a
    :func:`wsol.apps.bench.bench_pipeline` result."""
    from wsol.apps.bench import row_names

    s, m = result["settings"], result["machine"]
    h, w = s["original_size"]
    versions = ", ".join(
        f"{name} {m[key] or 'not installed'}"
        for name, key in (
            ("torch", "torch"),
            ("torchvision", "torchvision"),
            ("opencv", "opencv"),
            ("pytorch-grad-cam", "pytorch_grad_cam"),
        )
    )
    lines = [
        f"wsol bench: {s['arch']} {s['method']}, {s['size']}x{s['size']}, batch "
        f"{s['batch_size']}, {s['precision']}, on {s['device']}",
        f"device: {m['device_name']}" + (f" (CPU: {m['cpu']})" if s["device"] != "cpu" else ""),
        f"software: {versions}, python {m['python']}",
        f"settings: {m['torch_threads']} torch threads, {s['workers']} loader workers"
        + (" (the run's automatic choice)" if s.get("automatic_workers") else "")
        + (f"; run overrides: {' '.join(s['overrides'])}" if s.get("overrides") else ""),
        f"files: {s['images']} JPEG files ({s['megabytes']:.1f} MB, the first one {w}x{h}) in "
        f"{s['folder']}",
        f"job: top-1 class, boxes at {s['boxes']}; random weights; on-device rows: mean of "
        f"{s['repeats']} batches after a warm-up; end-to-end rows: the whole call after a "
        "warm-up run",
        "",
    ]
    rows = {
        name: {col: row.get(key) for key, col in BENCH_COLUMNS if key in row}
        for name, row in result["rows"].items()
    }
    lines.append(format_table(rows, keys=[col for _, col in BENCH_COLUMNS]))
    lines += [f"{name}: skipped, {why}" for name, why in result["skipped"].items()]
    lines.append("")
    lines += [f"{name}: {value:.2f}x" for name, value in result["ratios"].items()]
    wsol_row = result["rows"][row_names(s["method"])["wsol"]]
    loop = wsol_row.get("loop_images_per_second")
    loop_part = (
        f"; its loop alone {loop:.1f} img/s (metrics.json images_per_second)" if loop else ""
    )
    lines.append(f"wsol run: whole call {wsol_row['seconds']:.2f} s{loop_part}")
    stages = result["stage_seconds"]
    lines.append(
        "wsol run stage seconds (busy; stages overlap): "
        + (_seconds(stages["wsol"]) if stages.get("wsol") else "not reported by this version")
    )
    if stages.get("glue"):
        lines.append(f"glue stage seconds (main process): {_seconds(stages['glue'])}")
    return "\n".join(lines)


def _img_s_table(rows: dict[str, float]) -> str:
    return format_table({k: {"img/s": v} for k, v in rows.items()}, keys=("img/s",))


def cmd_bench(args) -> int:
    import torch

    from wsol.apps.bench import (
        bench_demo,
        bench_maps,
        bench_pipeline,
        bench_views,
        image_folder,
        write_jpegs,
    )
    from wsol.fileio import atomic_write_json
    from wsol.models.spec import resolve_device

    _check_bench_args(args)
    resolve_device(args.device)  # cuda without a GPU: one line, exit 2
    if args.threads:
        torch.set_num_threads(args.threads)
    say = status_printer(args.quiet)
    progress = None if args.quiet else progress_bar
    out = Path(args.out)
    if args.data is None:
        count = args.images or BENCH_IMAGES
        if say:
            say(f"writing {count} synthetic 500x375 JPEG files to {out / 'images'}")
        write_jpegs(out / "images", count)
        folder, limit = out / "images", count
    else:
        folder, limit = image_folder(args.data), args.images
    settings = (
        args.arch,
        args.method,
        args.batch_size,
        args.size,
        args.repeats,
        args.device,
        args.precision,
    )
    # pytorch-grad-cam runs last: after it has run in the process, later timings come out
    # faster than they are alone (measured; cause unknown). The pipeline's glue row is
    # its last row, and the maps-only reference rows come after it.
    views = bench_views(*settings, status=say) if args.views else {}
    demo = (
        bench_demo(out / "demo", progress=progress, status=say)["images_per_second"]
        if args.demo
        else {}
    )
    maps = (
        bench_maps(*settings, reference=False, status=say)["images_per_second"] if args.maps else {}
    )
    result = bench_pipeline(
        folder,
        out,
        limit,
        *settings,
        workers=args.workers,
        glue=not args.no_glue,
        overrides=args.overrides,
        progress=progress,
        status=say,
    )
    if args.maps:
        maps.update(bench_maps(*settings, ours=False, status=say)["images_per_second"])
    print(format_bench(result))
    for title, rows in (
        ("maps to boxes for each test-time view setting, inputs on the device", views),
        ("maps only, inputs on the device", maps),
        ("the demo end to end", demo),
    ):
        if rows:
            print(f"\n{title}:\n{_img_s_table(rows)}")
    atomic_write_json(out / "bench.json", {**result, "views": views, "maps": maps, "demo": demo})
    print(f"\nResults in {out / 'bench.json'}")
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


def classes_line(classes: list[str], per_class: dict, doc, which: str) -> str:
    """Which classes were scored, and a hint when the predictions cover fewer."""
    boxed = [c for c in classes if c in per_class]
    line = f"Scored {len(classes)} classes ({len(boxed)} with GT boxes here): {', '.join(classes)}"
    named = doc.get("categories") if isinstance(doc, dict) else None
    if which == "all" and named and len(named) < len(classes):
        line += (
            f"\nThe predictions name {len(named)} of these classes (a run with "
            "model.skip_unmapped leaves some out); --classes pred scores only those, as the "
            "run did."
        )
    return line


def cmd_eval(args) -> int:
    import json

    from wsol.evaluate.predictions import (
        evaluate_predictions,
        load_ground_truth,
        load_predictions,
        scored_classes,
    )
    from wsol.fileio import atomic_write_json

    if not 0.0 < args.iou <= 1.0:  # NaN fails this too
        raise UsageError(f"--iou must be in (0, 1], got {args.iou}")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    say = status_printer(args.quiet) or (lambda line: None)
    say(f"reading the ground truth in {args.gt}")
    dataset = load_ground_truth(args.gt, args.gt_format, args.split)
    try:
        doc = json.loads(Path(args.pred).read_text())
    except (ValueError, OSError) as e:  # malformed JSON, unreadable file
        print(f"wsol: error: {args.pred}: {e}", file=sys.stderr)
        return EXIT_USAGE
    classes = scored_classes(dataset, doc, args.classes)
    if len(classes) < len(dataset.classes):
        dataset = dataset.restrict_classes(classes)
    try:
        preds, counts = load_predictions(doc, dataset, match_ids=args.match_ids)
    except ValueError as e:  # malformed predictions
        print(f"wsol: error: {args.pred}: {e}", file=sys.stderr)
        return EXIT_USAGE
    say(f"scoring {len(preds)} boxes on {len(dataset)} images (CorLoc, COCO AP)")
    metrics, per_class = evaluate_predictions(dataset, preds, args.iou)
    metrics.update(counts)
    metrics["classes"] = classes
    print(format_table({Path(args.pred).name: metrics}, keys=EVAL_KEYS))
    print(f"\n{classes_line(classes, per_class, doc, args.classes)}")
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "metrics.json", metrics)
        atomic_write_json(out / "metrics_per_class.json", per_class)
        print(f"\nMetrics in {out / 'metrics.json'}")
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
