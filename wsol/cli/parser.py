"""The ``wsol`` command line: one subparser per command, each bound to its function."""

from __future__ import annotations

import argparse
import sys
import typing
from importlib import metadata

from wsol.cli.bench import BENCH_IMAGES, cmd_bench
from wsol.cli.commands import cmd_calibrate, cmd_compare, cmd_demo, cmd_run, cmd_train
from wsol.cli.tools import cmd_eval, cmd_explain

# wsol.evaluate.calibration.METRICS, spelled out: importing the scoring package here
# would load numpy, cv2 and torch before `wsol --help` can answer (a test keeps them equal)
CALIBRATION_METRICS = (
    "maxboxacc",
    "maxboxacc_v2",
    "maxboxacc_v2_iou30",
    "maxboxacc_v2_iou50",
    "maxboxacc_v2_iou70",
    "corloc",
)
# wsol.compare.leaderboard.RANKABLE, spelled out for the same reason
RANK_METRICS = (
    "maxboxacc",
    "maxboxacc_v2",
    "maxboxacc_v2_iou30",
    "maxboxacc_v2_iou50",
    "maxboxacc_v2_iou70",
    "pxap",
    "corloc",
    "gt_known_loc",
    "top1_loc",
    "coco_ap",
)


def add_grid_arguments(parser, search_help: str, search_tail: str = "") -> None:
    """``--search KEY=[...]`` (repeatable) and ``--grid FILE``: the candidates of a grid,
    as ``wsol calibrate`` and ``wsol compare`` take them."""
    parser.add_argument(
        "--search",
        action="append",
        metavar="KEY=[V1, V2, ...]",
        help=f"{search_help}, e.g. 'cam.method=[gradcam, layercam]'{search_tail}",
    )
    parser.add_argument("--grid", default=None, help="a YAML file of keys -> lists of values")


def version_text() -> str:
    """``wsol 0.2.0 (torch 2.x, torchvision 0.x, Python 3.x)``: read from the installed
    packages' metadata, so that torch is not imported to answer."""
    from wsol import __version__

    parts = []
    for name in ("torch", "torchvision"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    parts.append(f"Python {sys.version.split()[0]}")
    return f"wsol {__version__} ({', '.join(parts)})"


class _Version(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def method_names() -> list[str]:
    """The CAM methods a run accepts: the built-in ones (from the config's list, without
    importing the methods and torch) and any registered from outside."""
    from wsol.config import METHOD_NAMES
    from wsol.registry import registered_names

    return list(dict.fromkeys([*typing.get_args(METHOD_NAMES), *registered_names("cam.method")]))


def _console_flags(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="also log details"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="no progress or status lines"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsol",
        description="Weakly supervised object localization:"
        " class activation maps to boxes to COCO pseudo-labels.",
    )
    _console_flags(p, False)
    p.add_argument(
        "--version", action=_Version, help="print the versions of wsol, torch and torchvision"
    )
    # -q and -v also after the subcommand (`wsol run C -q`); SUPPRESS keeps the value
    # given before it when they are not repeated there.
    flags = argparse.ArgumentParser(add_help=False)
    _console_flags(flags, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[flags])

    d = command("demo", help="run the whole pipeline on the embedded shapes dataset")
    d.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    d.set_defaults(func=cmd_demo)

    r = command("run", help="run the pipeline from a YAML config")
    r.add_argument("config", help="YAML config (see configs/)")
    r.add_argument("overrides", nargs="*", help="dotted overrides, e.g. cam.method=cam out=DIR")
    r.add_argument("--overwrite", action="store_true", help="replace results already in out")
    r.set_defaults(func=cmd_run)

    t = command("train", help="train a CAM-ready classifier on a dataset's image-level labels")
    t.add_argument("config", help="YAML train config, e.g. configs/train_voc_lite0.yaml")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5 out=DIR")
    t.add_argument(
        "--overwrite", action="store_true", help="start afresh instead of resuming a run in out"
    )
    t.set_defaults(func=cmd_train)
    b = command(
        "bench",
        help="measure throughput (img/s): the forward floor, wsol on the device and end to "
        "end from JPEG files to COCO JSON, and the pytorch-grad-cam + cv2 glue, side by side",
    )
    b.add_argument(
        "--config",
        default=None,
        help="time this run config (its model, method, views, batch size and precision, on "
        "its data; KEY=VALUE overrides change it) against its own forward floor, instead of "
        "the --arch/--method/--size comparison with the glue",
    )
    b.add_argument(
        "--arch", default="resnet50", help="model architecture, random weights (resnet50)"
    )
    b.add_argument(
        "--method",
        default="gradcam",
        metavar="METHOD",
        help=f"CAM method (gradcam), one of: {', '.join(method_names())}",
    )
    b.add_argument("--batch-size", type=int, default=16, help="images per batch (16)")
    b.add_argument("--size", type=int, default=224, help="input size in pixels (square)")
    b.add_argument("--repeats", type=int, default=3, help="timed batches of the on-device rows (3)")
    b.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="timed runs of each end-to-end row; the fastest counts (2)",
    )
    b.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (cpu)")
    b.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="the model's precision on the device (fp32)",
    )
    b.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="a folder of images, or a VOC root (its JPEGImages/); default: synthetic "
        "500x375 JPEG files written to --out",
    )
    b.add_argument(
        "--images",
        type=int,
        default=None,
        metavar="N",
        help=f"synthetic files to write (default {BENCH_IMAGES}), or the first N of --data "
        "(default all)",
    )
    b.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes of both end-to-end pipelines (default: as wsol run chooses)",
    )
    b.add_argument("--threads", type=int, default=None, help="torch CPU threads (default torch's)")
    b.add_argument(
        "--no-glue", action="store_true", help="leave out the pytorch-grad-cam + cv2 glue row"
    )
    b.add_argument(
        "--maps",
        action="store_true",
        help="also time maps only (no boxes): wsol's against pytorch-grad-cam's",
    )
    b.add_argument("--demo", action="store_true", help="also time the demo pipeline end to end")
    b.add_argument(
        "--views",
        action="store_true",
        help="also time maps to boxes with each test-time view setting (scales, flip)",
    )
    b.add_argument(
        "--out",
        default="runs/bench",
        help="scratch folder: synthetic files, the runs' outputs, bench.json (runs/bench)",
    )
    b.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides of the timed wsol run (of --config), e.g. host_threads=4",
    )
    b.set_defaults(func=cmd_bench)

    e = command("eval", help="score a COCO-format pseudo-label file against ground truth")
    e.add_argument("--gt", required=True, help="COCO instances JSON, or a VOC root folder")
    e.add_argument(
        "--pred",
        required=True,
        help="COCO JSON: a dataset dict with annotations, or a results list (matched by "
        "the file_name and category_name of each box where it gives them, as wsol writes it)",
    )
    e.add_argument(
        "--gt-format",
        default="auto",
        choices=("auto", "coco", "voc"),
        help="auto: VOC for a folder, COCO for a file",
    )
    e.add_argument("--split", default=None, help="VOC split (needed if the root has several)")
    e.add_argument("--iou", type=float, default=0.5, help="IoU for corloc (default 0.5)")
    e.add_argument(
        "--match-ids",
        action="store_true",
        help="assert that the prediction file's ids are the ground truth's: images are "
        "matched by id, not by file name, and so are categories where the file names "
        "none (without it, a file that names no image or no category is refused)",
    )
    e.add_argument(
        "--classes",
        default="all",
        metavar="all|pred|NAME,...",
        help="which GT classes to score: all (default), pred (those the prediction file's "
        "categories name, as the run that wrote it scored), or names",
    )
    e.add_argument("--out", default=None, help="write metrics.json and metrics_per_class.json")
    e.set_defaults(func=cmd_eval)

    x = command("explain", help="why did the model say that? maps and boxes for images")
    x.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    x.add_argument(
        "--config",
        default=None,
        help="take the model, method, class map and box settings from a run config",
    )
    x.add_argument(
        "--model",
        default=None,
        help="architecture (default efficientnet_lite2 where its weights package is "
        "installed, else efficientnet_lite0; ImageNet, offline)",
    )
    x.add_argument(
        "--weights",
        default=None,
        help="DEFAULT (pretrained, the default), none, or a checkpoint path (one from wsol "
        "train brings its own architecture and classes)",
    )
    x.add_argument(
        "--method",
        default=None,
        metavar="METHOD",
        help="CAM method (default the recommended configs': hirescam at 2x with Lite2, "
        f"else gradcam; with its cut), one of: {', '.join(method_names())}",
    )
    which = x.add_mutually_exclusive_group()
    which.add_argument(
        "--class", dest="cls", default=None, metavar="NAME", help="explain this class"
    )
    which.add_argument("--topk", type=int, default=3, help="explain the K top classes (3)")
    x.add_argument("--out", default="runs/explain", help="output folder (runs/explain)")
    x.set_defaults(func=cmd_explain)

    c = command("calibrate", help="choose the box threshold on a split that has boxes")
    c.add_argument("config", help="YAML config; its data split is the calibration split")
    c.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.split=val out=DIR")
    c.add_argument(
        "--metric",
        default="maxboxacc",
        choices=CALIBRATION_METRICS,
        help="what tau maximizes (default maxboxacc)",
    )
    c.add_argument("--per-class", action="store_true", help="one tau per class")
    c.add_argument(
        "--min-pairs",
        type=int,
        default=1,
        help="classes with fewer boxed pairs use the global tau (default 1)",
    )
    add_grid_arguments(
        c,
        "also choose this key among these values (repeat for a grid)",
        "; writes search.json and best.yaml",
    )
    c.add_argument(
        "--rank-by",
        default=None,
        choices=CALIBRATION_METRICS,
        help="with --search: what ranks the candidates (default: --metric)",
    )
    c.add_argument("--overwrite", action="store_true", help="replace results already in out")
    c.set_defaults(func=cmd_calibrate)

    m = command(
        "compare",
        help="run every candidate of a grid, choose its cut on one set of images (--select) "
        "and score it on another (--report); writes the leaderboard",
    )
    m.add_argument("config", help="YAML config both sides share")
    m.add_argument("overrides", nargs="*", help="dotted overrides of the base config, e.g. out=DIR")
    grid = m.add_argument_group("the candidates (one of, or both)")
    add_grid_arguments(grid, "try these values of this key (repeat for a grid)")
    m.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override that makes the select side, where each cut is chosen (repeat)",
    )
    m.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override that makes the report side, which gives the numbers (repeat); it "
        "must share no image with the select side",
    )
    m.add_argument(
        "--metric",
        default="maxboxacc",
        choices=CALIBRATION_METRICS,
        help="what each candidate's cut maximizes on the select side (default maxboxacc)",
    )
    m.add_argument(
        "--rank-by",
        default="maxboxacc_v2",
        choices=RANK_METRICS,
        help="the report-side metric that orders the leaderboard (default maxboxacc_v2)",
    )
    m.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    m.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    m.add_argument(
        "--overwrite", action="store_true", help="replace another compare already in out"
    )
    m.set_defaults(func=cmd_compare)
    return p
