"""The ``wsol`` command: a thin layer over the library that owns the console.

Exit codes: 0 the run completed; 3 it completed but some images failed (see
``failures.jsonl``); 2 the command or config was wrong and nothing was done;
1 an unexpected error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

SUMMARY_KEYS = ("num_images", "num_failed", "corloc", "gt_known_loc", "maxboxacc",
                "maxboxacc_v2", "coco_ap", "coco_ap50", "images_per_second")


def _progress(desc: str):
    bar: dict = {}

    def update(done: int, total: int) -> None:
        if "b" not in bar:
            bar["b"] = tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr,
                            dynamic_ncols=True)
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
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
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
    from wsol.demo import run_demo

    t0 = time.perf_counter()
    results = run_demo(args.out, _progress if not args.quiet else None)
    rows = {m: r.metrics for m, r in results.items()}
    print(format_table(rows))
    print(f"\nwsol demo: {time.perf_counter() - t0:.1f} s. Outputs in {Path(args.out)}/ "
          f"(pseudo_labels.json, metrics.json, report.html; CAM in {Path(args.out) / 'cam'}/)")
    return max(_status(r.metrics) for r in results.values())


def cmd_run(args) -> int:
    from wsol.config import load_config
    from wsol.pipeline import run

    cfg = load_config(args.config, args.overrides)
    result = run(cfg, None if args.quiet else _progress(cfg.cam.method), overwrite=args.overwrite)
    print(format_table({cfg.cam.method: result.metrics}))
    print(f"\nOutputs in {result.out_dir}/")
    return _status(result.metrics)


def cmd_train(args) -> int:
    from wsol.config import TrainConfig, load_config
    from wsol.train import train

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wsol", description="Weakly supervised object localization:"
                                " class activation maps to boxes to COCO pseudo-labels.")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from wsol.config import ConfigError
    from wsol.data.voc import AnnotationError
    from wsol.models import ModelError
    from wsol.pipeline import RunExistsError
    from wsol.targets import TargetError

    try:
        return args.func(args)
    except (ConfigError, ModelError, TargetError, AnnotationError, RunExistsError,
            FileNotFoundError) as e:
        print(f"wsol: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wsol: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
