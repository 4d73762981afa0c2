"""The ``wsol`` command: a thin layer over the library that owns the console.

Exit codes: 0 the run completed; 3 it completed but some images failed (see
``failures.jsonl``); 2 the command or config was wrong and nothing was done;
1 an unexpected error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

from tqdm import tqdm

from wsol.errors import WsolError

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 2, 3, 130

SUMMARY_KEYS = (
    "num_images",
    "num_failed",
    "corloc",
    "gt_known_loc",
    "maxboxacc",
    "maxboxacc_v2",
    "pxap",
    "coco_ap",
    "coco_ap50",
    "images_per_second",
)


def _progress(desc: str):
    bar: dict = {}

    def update(done: int, total: int) -> None:
        if "b" not in bar:
            bar["b"] = tqdm(
                total=total, desc=desc, unit="img", leave=False, file=sys.stderr, dynamic_ncols=True
            )
        bar["b"].update(done - bar["b"].n)
        if done >= total:
            bar["b"].close()

    return update


def format_table(rows: dict[str, dict], keys=SUMMARY_KEYS) -> str:
    """A plain-text table: one row per run, one column per metric present."""
    cols = [k for k in keys if any(k in m for m in rows.values())]
    header = ["run", *cols]
    body = [[name] + [_fmt(m.get(k)) for k in cols] for name, m in rows.items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.3f}"
    return str(v)


def _status(metrics: dict) -> int:
    return EXIT_PARTIAL if metrics.get("num_failed") else EXIT_OK


def cmd_demo(args) -> int:
    from wsol.apps.demo import run_demo

    t0 = time.perf_counter()
    results = run_demo(args.out, _progress if not args.quiet else None)
    rows = {m: r.metrics for m, r in results.items()}
    print(format_table(rows))
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
        cfg, progress=None if args.quiet else _progress(cfg.cam.method), overwrite=args.overwrite
    )
    print(format_table({cfg.cam.method: result.metrics}))
    print(f"\nOutputs in {result.out_dir}/")
    return _status(result.metrics)


def cmd_train(args) -> int:
    from wsol.apps.train import train
    from wsol.config import TrainConfig, load_config

    cfg = load_config(args.config, args.overrides, cls=TrainConfig)
    bar = None if args.quiet else tqdm(desc="train", unit="step", file=sys.stderr)

    def progress(step, total, info):
        if bar is not None:
            bar.total = total
            bar.set_postfix(loss=f"{info['loss']:.4f}", refresh=False)
            bar.update(step - bar.n)

    metrics = train(cfg, progress)
    if bar is not None:
        bar.close()
    print(format_table({"train": metrics}, keys=("val_map", "steps")))
    print(f"\nCheckpoint: {Path(cfg.out) / 'model.pt'}")
    return EXIT_OK


def cmd_bench(args) -> int:
    from wsol.apps.bench import bench_demo, bench_maps

    result = bench_maps(
        args.arch,
        args.method,
        args.batch_size,
        args.size,
        args.repeats,
        args.device,
        args.precision,
    )
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

    dataset = load_ground_truth(args.gt, args.gt_format, args.split)
    try:
        preds, counts = load_predictions(json.loads(Path(args.pred).read_text()), dataset)
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
    res = calibrate(
        cfg,
        metric=args.metric,
        per_class=args.per_class,
        min_pairs=args.min_pairs,
        progress=None if args.quiet else _progress("calibrate"),
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


def cmd_explain(args) -> int:
    from wsol.apps.explain import explain, write_explanation
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
    model = load_model(
        options["arch"], options["weights"], device=options["device"], target_layer=options["layer"]
    )
    out = Path(args.out)
    stems: set[str] = set()
    for image in args.images:
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
    return EXIT_OK


EXPLAIN_DEFAULTS = {"model": "efficientnet_lite0", "weights": "DEFAULT", "method": "gradcam"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsol",
        description="Weakly supervised object localization:"
        " class activation maps to boxes to COCO pseudo-labels.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run the whole pipeline on the embedded shapes dataset")
    d.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the pipeline from a YAML config")
    r.add_argument("config", help="YAML config (see configs/)")
    r.add_argument("overrides", nargs="*", help="dotted overrides, e.g. cam.method=cam out=DIR")
    r.add_argument("--overwrite", action="store_true", help="replace results already in out")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train the demo's classifier on synthetic shapes")
    t.add_argument("config", help="YAML train config, e.g. configs/demo_train.yaml")
    t.add_argument("overrides", nargs="*")
    t.set_defaults(func=cmd_train)
    b = sub.add_parser("bench", help="measure throughput (img/s) against pytorch-grad-cam")
    b.add_argument("--arch", default="resnet50")
    b.add_argument("--method", default="gradcam")
    b.add_argument("--batch-size", type=int, default=16)
    b.add_argument("--size", type=int, default=224)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--device", default="cpu")
    b.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    b.add_argument("--demo", action="store_true", help="also time the demo pipeline end to end")
    b.add_argument("--out", default="runs/bench", help="scratch folder for --demo")
    b.set_defaults(func=cmd_bench)

    e = sub.add_parser("eval", help="score a COCO-format pseudo-label file against ground truth")
    e.add_argument("--gt", required=True, help="COCO instances JSON, or a VOC root folder")
    e.add_argument(
        "--pred",
        required=True,
        help="COCO JSON: a dataset dict with annotations, or a results list",
    )
    e.add_argument(
        "--gt-format",
        default="auto",
        choices=("auto", "coco", "voc"),
        help="auto: VOC for a folder, COCO for a file",
    )
    e.add_argument("--split", default=None, help="VOC split (needed if the root has several)")
    e.add_argument("--iou", type=float, default=0.5, help="IoU for corloc (default 0.5)")
    e.add_argument("--out", default=None, help="write metrics.json and metrics_per_class.json")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("explain", help="why did the model say that? maps and boxes for images")
    x.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    x.add_argument(
        "--config",
        default=None,
        help="take the model, method, class map and box settings from a run config",
    )
    x.add_argument(
        "--model",
        default=EXPLAIN_DEFAULTS["model"],
        help="architecture (default efficientnet_lite0, ImageNet, offline)",
    )
    x.add_argument(
        "--weights",
        default=EXPLAIN_DEFAULTS["weights"],
        help="DEFAULT (pretrained), none, or a checkpoint path",
    )
    x.add_argument("--method", default=EXPLAIN_DEFAULTS["method"], help="CAM method")
    which = x.add_mutually_exclusive_group()
    which.add_argument(
        "--class", dest="cls", default=None, metavar="NAME", help="explain this class"
    )
    which.add_argument("--topk", type=int, default=3, help="explain the K top classes (3)")
    x.add_argument("--out", default="runs/explain", help="output folder (runs/explain)")
    x.set_defaults(func=cmd_explain)

    c = sub.add_parser("calibrate", help="choose the box threshold on a split that has boxes")
    c.add_argument("config", help="YAML config; its data split is the calibration split")
    c.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.split=val out=DIR")
    from wsol.evaluate.calibration import METRICS

    c.add_argument(
        "--metric",
        default="maxboxacc",
        choices=METRICS,
        help="what tau maximizes (default maxboxacc)",
    )
    c.add_argument("--per-class", action="store_true", help="one tau per class")
    c.add_argument(
        "--min-pairs",
        type=int,
        default=1,
        help="classes with fewer boxed pairs use the global tau (default 1)",
    )
    c.add_argument("--overwrite", action="store_true", help="replace results already in out")
    c.set_defaults(func=cmd_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Big photos (over ~89 Mpx) make PIL warn of a decompression bomb; wsol drafts
    # them down and caps the maps, so the warning is noise on the console.
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        return args.func(args)
    except WsolError as e:
        print(f"wsol: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wsol: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
