"""The console's furniture: progress bars and summary tables (the library prints nothing)."""

from __future__ import annotations

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


def progress_bar(desc: str):
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
