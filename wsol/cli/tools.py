"""The inspection subcommands (``eval``, ``explain``): each takes the parsed arguments,
calls the library, prints the outcome and returns the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from wsol.cli.commands import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from wsol.cli.console import format_table, status_printer
from wsol.errors import UsageError

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
    from wsol.readfile import MAX_JSON_BYTES, InputFileError, read_text

    if not 0.0 < args.iou <= 1.0:  # NaN fails this too
        raise UsageError(f"--iou must be in (0, 1], got {args.iou}")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    say = status_printer(args.quiet) or (lambda line: None)
    say(f"reading the ground truth in {args.gt}")
    dataset = load_ground_truth(args.gt, args.gt_format, args.split)
    try:
        doc = json.loads(read_text(args.pred, MAX_JSON_BYTES))
    except (ValueError, InputFileError) as e:  # malformed JSON, unreadable file
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

    model, arch = _explainer(args)
    out = Path(args.out)
    stems: set[str] = set()
    failed = 0
    for image in args.images:
        try:
            exp = explain(
                model,
                image,
                args.method if not args.config else None,  # a config's is in its Localizer
                topk=args.topk,
                classes=[args.cls] if args.cls else None,
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
        print(f"{image}: {arch} predicts")
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
            print(f"  {exp.method} for {name!r}: boxes (x1, y1, x2, y2) {boxes}")
        print(
            f"  wrote {len(files)} files to {out}/ ({files[0].name}, ...)"
            if files
            else "  nothing to draw"
        )
    if failed and failed == len(args.images):
        return EXIT_USAGE  # nothing could be explained: as a wrong command, exit 2
    return EXIT_PARTIAL if failed else EXIT_OK


def _explainer(args):
    """What ``wsol explain`` explains with, and the architecture's name: with
    ``--config``, the Localizer a run of that config builds (``--model``, ``--weights``
    and ``--method`` override its keys), so the boxes are the run's; without, the model
    alone, which :func:`wsol.explain` gives the recommended method, views and cut."""
    from wsol.models.build import default_arch
    from wsol.models.checkpoint import trained_checkpoint

    weights = args.weights or "DEFAULT"
    arch = args.model
    if arch is None and weights != "DEFAULT" and trained_checkpoint(weights) is not None:
        arch = ""  # a checkpoint from wsol train names its own architecture
    if args.config:
        from wsol.config import load_config
        from wsol.run.build import explain_localizer

        flags = {"model.arch": arch, "model.weights": args.weights, "cam.method": args.method}
        cfg = load_config(args.config, [f"{k}={v}" for k, v in flags.items() if v is not None])
        localizer = explain_localizer(cfg)
        return localizer, cfg.model.arch or localizer.model.extra.get("arch", weights)
    from wsol.models import load_model

    arch = default_arch() if arch is None else arch
    model = load_model(arch, weights)
    return model, arch or model.extra.get("arch", weights)
