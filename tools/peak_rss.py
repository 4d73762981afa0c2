"""Peak resident memory of ``wsol run`` against the number of images: memory must not grow
with the dataset (each batch is dropped once journaled).

    python tools/peak_rss.py [--sizes 1000 10000] [--out runs/peak_rss] [--arch resnet18]

Writes ``max(--sizes)`` synthetic 500x375 JPEG files (smooth shading, texture and a few
shapes, tens of kB each) to ``OUT/images`` (kept for the next call), then for each size N
runs ``wsol -q run`` on the first N of them in its own process (random weights, top-1
class, no scoring, no report) and reads that process's peak RSS from ``os.wait4``. That
is the largest single process of its tree (the run, or a loader worker with
``--workers``), not their sum. Prints a table, the ratio of the largest size's peak to
the smallest's (the requirement: within 10%), and writes ``OUT/peak_rss.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from wsol.apps.bench import write_jpegs
from wsol.cli.console import format_table


def peak_rss_of(cmd: list[str]) -> tuple[int, float, int]:
    """Run ``cmd`` (its stdout dropped); return its exit code, wall seconds and peak
    RSS in bytes (Linux reports ``ru_maxrss`` in KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)  # its summary; errors still show
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="images per run")
    p.add_argument("--out", default="runs/peak_rss", help="scratch folder (runs/peak_rss)")
    p.add_argument("--arch", default="resnet18", help="a light model (resnet18)")
    p.add_argument("--size", type=int, default=224, help="input size (224)")
    p.add_argument("--batch-size", type=int, default=32, help="cam.batch_size (32)")
    p.add_argument(
        "--workers", type=int, default=None, help="data.num_workers (default: as wsol run chooses)"
    )
    p.add_argument("overrides", nargs="*", help="more `wsol run` overrides, e.g. cam.method=cam")
    args = p.parse_args(argv)
    if min(args.sizes) < 1:
        p.error("--sizes must be at least 1")

    out = Path(args.out).resolve()
    count = max(args.sizes)
    print(f"writing {count} synthetic 500x375 JPEG files to {out / 'images'}", file=sys.stderr)
    write_jpegs(out / "images", count)
    config = out / "config.yaml"
    config.write_text(f"out: {out / 'run'}\n")
    rows, doc = {}, {"runs": {}}
    for n in args.sizes:
        cmd = [
            sys.executable,
            "-m",
            "wsol",
            "-q",
            "run",
            str(config),
            "data.format=folder",
            f"data.root={out / 'images'}",
            f"data.limit={n}",
            f"model.arch={args.arch}",
            "model.weights=none",
            f"model.input_size=[{args.size}, {args.size}]",
            "model.device=cpu",
            "cam.targets=topk",
            f"cam.batch_size={args.batch_size}",
            "eval.enabled=false",
            "report.enabled=false",
            f"out={out / f'run_{n}'}",
            *([] if args.workers is None else [f"data.num_workers={args.workers}"]),
            *args.overrides,
            "--overwrite",
        ]
        print(f"running wsol on {n} images: {' '.join(cmd[2:])}", file=sys.stderr)
        code, seconds, rss = peak_rss_of(cmd)
        if code != 0:
            print(f"peak_rss: wsol run on {n} images exited with {code}", file=sys.stderr)
            return 1
        rows[f"{n} images"] = {
            "peak RSS MiB": rss / 2**20,
            "wall s": seconds,
            "img/s (whole process)": n / seconds,
        }
        doc["runs"][n] = {"peak_rss_bytes": rss, "seconds": seconds, "command": cmd}
    print(format_table(rows, keys=("peak RSS MiB", "wall s", "img/s (whole process)")))
    small, large = min(args.sizes), max(args.sizes)
    ratio = doc["runs"][large]["peak_rss_bytes"] / doc["runs"][small]["peak_rss_bytes"]
    doc["ratio"] = ratio
    print(
        f"\npeak RSS, {large} images / {small} images: {ratio:.3f} "
        f"({'within' if abs(ratio - 1) <= 0.10 else 'NOT within'} 10%)"
    )
    (out / "peak_rss.json").write_text(json.dumps(doc, indent=1))
    print(f"Results in {out / 'peak_rss.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
