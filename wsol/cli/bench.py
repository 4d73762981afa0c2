"""``wsol bench``: time the library against the forward floor and a peer glue pipeline,
print the table and write ``bench.json``."""

from __future__ import annotations

from pathlib import Path

from wsol.cli.commands import EXIT_OK
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
        ("--rounds", args.rounds, 1),
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
        f"warm-up run, the fastest of {s.get('rounds', 1)}",
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


def format_config_bench(result: dict) -> str:
    """The header, the table and the ratios of a
    :func:`wsol.apps.bench.config_run.bench_config` result."""
    s, m = result["settings"], result["machine"]
    h, w = s["input_size"]
    lines = [
        f"wsol bench --config {s['config']}"
        + (f" {' '.join(s['overrides'])}" if s["overrides"] else ""),
        f"job: {s['arch']} {s['method']}, views {s['scales']} (fed at {w}x{h}), batch "
        f"{s['batch_size']}, {s['precision']}, decoding on the {s['decode']}, {s['images']} "
        f"images, unscored, no report",
        f"device: {m['device_name']}; torch {m['torch']}, python {m['python']}",
        "",
        format_table(
            {
                name: {col: row.get(key) for key, col in BENCH_COLUMNS if key in row}
                for name, row in result["rows"].items()
            },
            keys=[col for _, col in BENCH_COLUMNS],
        ),
        "",
    ]
    lines += [f"{name}: {value:.2f}x" for name, value in result["ratios"].items()]
    if result.get("stage_seconds"):
        lines.append(
            f"wsol run stage seconds (busy; stages overlap): {_seconds(result['stage_seconds'])}"
        )
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
    resolve_device(args.device, "bench --device")  # cuda without a GPU: one line, exit 2
    if args.threads:
        torch.set_num_threads(args.threads)
    say = status_printer(args.quiet)
    progress = None if args.quiet else progress_bar
    out = Path(args.out)
    if args.config is not None:
        from wsol.apps.bench.config_run import bench_config

        if args.data is not None:
            raise UsageError("bench --config reads the config's data: give data.root=DIR")
        result = bench_config(
            args.config, out, args.overrides, args.repeats, args.rounds, progress, say
        )
        print(format_config_bench(result))
        atomic_write_json(out / "bench.json", result)
        print(f"\nResults in {out / 'bench.json'}")
        return EXIT_OK
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
        rounds=args.rounds,
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
