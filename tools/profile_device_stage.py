"""Profile wsol's device stage per operator: one Localizer.maps + boxes_for call.

    python tools/profile_device_stage.py [--device cuda] [--precision bf16] [--batch 256]
        [--arch resnet50] [--size 224] [--orig 375x500] [--sweep] [--boxes-on-device on]
        [--repeats 3] [--top 25] [--json FILE]

The model has random weights, is folded and channels-last (as ``wsol run`` runs it); the
batch is ``--batch`` random uint8 images at the input size whose originals are ``--orig``
(so maps are upsampled to that size, as for 500x375 photos). After a warm-up call,
``--repeats`` calls run under ``torch.profiler``; the table lists the operators by their
own time on the device (CUDA) or the CPU, per call. ``--sweep`` also makes the levels of
a 100-threshold sweep (what a scored run sends to the host).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from wsol.apps.bench.maps import model_on
from wsol.apps.bench.timing import machine_info, synchronizer
from wsol.evaluate import sweep_thresholds
from wsol.localize import BoxParams, Localizer, TargetPolicy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--method", default="gradcam")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--orig", default="375x500", help="original image size, HxW")
    ap.add_argument("--sweep", action="store_true", help="also make a 100-threshold sweep's levels")
    ap.add_argument("--boxes-on-device", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", default=None, help="write the table here as JSON")
    args = ap.parse_args(argv)

    dev = torch.device(args.device)
    h, w = (int(v) for v in args.orig.lower().split("x"))
    spec = model_on(args.arch, args.size, dev)
    loc = Localizer(
        spec,
        args.method,
        targets=TargetPolicy("topk", 1),
        boxes=BoxParams(threshold=0.2),
        precision=args.precision,
        device_boxes=args.boxes_on_device,
    )
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), generator=gen)
    images = images.to(torch.uint8).to(dev)
    sizes = [(h, w)] * args.batch
    sweep = sweep_thresholds(0.01) if args.sweep else None
    sync = synchronizer(dev)

    def call() -> None:
        kwargs = {"sweep": sweep} if sweep is not None else {}  # older wsol: no sweep
        loc.boxes_for(loc.maps(images, sizes, keep_maps=False, **kwargs))

    call()
    sync()
    start = time.perf_counter()
    for _ in range(args.repeats):
        call()
    sync()
    per_call = (time.perf_counter() - start) / args.repeats
    activities = [ProfilerActivity.CPU]
    if dev.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(args.repeats):
            call()
        sync()
    key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    total = sum(getattr(e, key, 0) for e in events) / args.repeats / 1e3
    rows = []
    for e in events[: args.top]:
        own = getattr(e, key, 0) / args.repeats / 1e3
        rows.append({"op": e.key, "ms": own, "share": own / total if total else 0.0})
    info = machine_info(dev)
    print(
        f"{args.arch} {args.method}, batch {args.batch} at {args.size} px, originals {w}x{h}, "
        f"{args.precision}, boxes on the device: {loc.boxes_on_device}, sweep levels: "
        f"{args.sweep}; on {info['device_name']}, torch {info['torch']}"
    )
    print(
        f"per call: {per_call * 1e3:.1f} ms wall ({args.batch / per_call:.0f} img/s); "
        f"profiled {'device' if dev.type == 'cuda' else 'CPU'} time {total:.1f} ms"
    )
    print(f"{'op':<44}{'ms/call':>10}{'share':>8}")
    for r in rows:
        print(f"{r['op'][:43]:<44}{r['ms']:>10.2f}{r['share']:>8.1%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "settings": vars(args),
                    "machine": info,
                    "wall_ms_per_call": per_call * 1e3,
                    "images_per_second": args.batch / per_call,
                    "profiled_ms_per_call": total,
                    "ops": rows,
                },
                f,
                indent=1,
            )
    return 0 if np.isfinite(per_call) else 1


if __name__ == "__main__":
    sys.exit(main())
