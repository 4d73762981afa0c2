"""The console's furniture: progress bars and summary tables (the library prints nothing)."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

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
# The run summary: (metrics.json key, column), grouped by the cut each number is at.
SUMMARY_COLUMNS = (
    ("num_images", "images"),
    ("num_failed", "failed"),
    ("corloc", "corloc@cut"),
    ("gt_known_loc", "gt_known@cut"),
    ("coco_ap", "coco_ap@cut"),
    ("coco_ap50", "ap50@cut"),
    ("whole_image_boxes", "whole_img@cut"),
    ("maxboxacc", "maxboxacc@best"),
    ("maxboxacc_v2", "v2@best"),
    ("pxap", "pxap@sweep"),
    ("images_per_second", "img/s"),
)


def status_printer(quiet: bool):
    """``status(line)`` for the library's phase messages: ``wsol: line`` on stderr (above
    any progress bar); None with ``--quiet``."""
    if quiet:
        return None

    def say(line: str) -> None:
        tqdm.write(f"wsol: {line}", file=sys.stderr)

    return say


class LogLines(logging.StreamHandler):
    """Log records on stderr, each on a line of its own above any progress bar (a plain
    stream handler would write after the bar's text, on the bar's line)."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's contract: a handler never raises
            self.handleError(record)


def progress_bar(desc: str):
    bar: dict = {}

    def update(done: int, total: int) -> None:
        if "b" not in bar:  # the first call may report images an earlier run did
            bar["b"] = tqdm(
                total=total,
                initial=done,
                desc=desc,
                unit="img",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        bar["b"].update(done - bar["b"].n)
        if done >= total:
            bar["b"].close()

    return update


def format_table(rows: dict[str, dict], keys=SUMMARY_KEYS, first: str = "run") -> str:
    """A plain-text table: one row per run, one column per metric present."""
    cols = [k for k in keys if any(k in m for m in rows.values())]
    header = [first, *cols]
    body = [[name] + [format_value(m.get(k)) for k in cols] for name, m in rows.items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def format_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.3f}"
    return str(v)


def format_summary(rows: dict[str, dict]) -> str:
    """The table printed after runs, then a line per run saying which cut is which:
    ``@cut`` columns score the boxes written at the run's cut, ``@best`` ones the best
    cut of the threshold sweep, ``@sweep`` the whole sweep."""
    table = {
        name: {col: m.get(key) for key, col in SUMMARY_COLUMNS if key in m}
        for name, m in rows.items()
    }
    lines = [format_table(table, keys=[col for _, col in SUMMARY_COLUMNS])]
    for name, m in rows.items():
        if "cut" not in m:
            continue
        best = (
            f"; @best: the sweep's best cut (maxboxacc at {m['maxboxacc_threshold']:.2f})"
            if "maxboxacc_threshold" in m
            else ""
        )
        sweep = (
            "; @sweep: over every cut of the sweep, not one cut (pixel AP)" if "pxap" in m else ""
        )
        lines.append(f"{name}: @cut: {m['cut']}{best}{sweep}")
    return "\n".join(lines)


def outputs_line(out_dir, metrics: dict, report: bool) -> str:
    """Where the outputs are, naming report.html (when drawn) and, when images failed,
    failures.jsonl with the most common reasons."""
    from pathlib import Path

    out = Path(out_dir)
    lines = [f"Outputs in {out}/"]
    if report:
        lines.append(f"Report: {out / 'report.html'}")
    failed = metrics.get("num_failed") or 0
    if failed:
        where = out / "failures.jsonl"
        if metrics.get("num_images") == 0:
            lines.append(f"No image was read: all {failed} failed; each is in {where}")
        else:
            lines.append(f"{failed} images failed; each is in {where}")
        lines += [f"  {line}" for line in failure_reasons(where)]
    return "\n".join(lines)


def failure_reasons(path) -> list[str]:
    """The most common reasons in a ``failures.jsonl``, counted, each with the way out
    (none when it cannot be read)."""
    import json

    from wsol.run.failures import common_reasons

    try:
        failures = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    except (OSError, ValueError):
        return []
    return common_reasons([f for f in failures if isinstance(f, dict)])


class TrainProgress:
    """``wsol train``'s console: a line as each phase starts (reading the data, loading
    the model, validating), a bar while the shapes are rendered, then a bar of optimizer
    steps with the epoch, loss and img/s, and a line per finished epoch."""

    def __init__(self):
        self.status: tqdm | None = None
        self.bar: tqdm | None = None

    def __call__(self, event: str, done: int, total: int, info: dict) -> None:
        if event.startswith("render"):
            if self.status is None:
                self.status = tqdm(desc=event, unit="img", file=sys.stderr, leave=False)
            self.status.set_description(event, refresh=False)
            self.status.total = total
            self.status.update(done - self.status.n)
            return
        if self.status is not None:
            self.status.close()
            self.status = None
        if event == "status":
            tqdm.write(f"wsol: {info['line']}", file=sys.stderr)
        elif event == "resume":
            part = f" and {info['batch']} batches of the next" if info.get("batch") else ""
            tqdm.write(
                f"wsol: resuming: {done} of {total} epochs{part} already trained", file=sys.stderr
            )
        elif event == "stopped" and self.bar is not None:
            self.bar.close()
            self.bar = None
        elif event == "train":
            if self.bar is None:
                self.bar = tqdm(desc="train", unit="step", total=total, file=sys.stderr)
            self.bar.set_postfix(
                epoch=info["epoch"],
                loss=f"{info['loss']:.4f}",
                img_s=f"{info['img_s']:.1f}",
                refresh=False,
            )
            self.bar.update(done - self.bar.n)
        elif event == "epoch":
            val = "n/a" if info["val_map"] is None else f"{info['val_map']:.4f}"
            tqdm.write(
                f"epoch {done}/{total}: loss {info['train_loss']:.4f}  val mAP {val}  "
                f"{info['train_img_per_s']:.1f} img/s",
                file=sys.stderr,
            )

    def close(self) -> None:
        for b in (self.status, self.bar):
            if b is not None:
                b.close()
