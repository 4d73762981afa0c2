"""``wsol bench --config``: a run config against its own forward floor.

For the model, method, views, batch size and precision a config asks for, on its data:

- the bare forward of the model as wsol runs it (channels-last, BatchNorm folded), at
  the size the images are fed (the largest view), inputs already on the device: the
  floor;
- the config's :class:`~wsol.localize.Localizer` from uint8 inputs on the device to
  boxes (the dataset's first batch, its labels for ``gt`` targets);
- ``wsol run`` of the config from the files to ``pseudo_labels.json``, unscored and
  without the report: the whole call, and its loop alone (``metrics.json``
  ``images_per_second``: no model build, no final assembly).

The weights are the config's own (no download happens that the run would not make).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsol.apps.bench.maps import forward_floor
from wsol.apps.bench.pipeline import time_runs
from wsol.apps.bench.timing import (
    Status,
    end_to_end_row,
    machine_info,
    synchronizer,
    timed,
)
from wsol.errors import UsageError

ROWS = {
    "forward": "forward, no grad (the floor)",
    "device": "wsol, uint8 on the device to boxes",
    "wsol": "wsol run, files to COCO JSON (whole call)",
    "loop": "wsol run, its loop (metrics.json)",
}


def _first_batch(plan) -> tuple[torch.Tensor, list, list, list]:
    """The dataset's first ``cam.batch_size`` images (repeated if fewer) decoded and
    prepared as the run's loader does, their original sizes, regions and labels."""
    from wsol.data.decode import decode_image

    loc, samples = plan.localizer, plan.dataset.samples
    images, sizes, regions, labels = [], [], [], []
    for i in range(plan.cfg.cam.batch_size):
        sample = samples[i % len(samples)]
        pixels, orig = decode_image(sample.path, max(loc.input_size))
        x, region = loc.prepare(pixels)
        images.append(x)
        sizes.append(orig)
        regions.append(region)
        labels.append(np.asarray(sample.labels))
    return torch.stack(images), sizes, regions, labels


def bench_config(
    config: str | Path,
    out: str | Path,
    overrides: list[str] | None = None,
    repeats: int = 3,
    rounds: int = 2,
    progress=None,
    status: Status | None = None,
) -> dict:
    """Time ``config`` (with ``overrides``) against its own forward floor; scratch
    outputs in ``out``. Rows as in the module docstring; ``of_floor`` is each row's
    share of the floor. Returns ``{"settings", "machine", "rows", "ratios",
    "stage_seconds"}``."""
    from wsol.config import load_config
    from wsol.run.build import plan_run

    if rounds < 1 or repeats < 1:
        raise UsageError("bench: --rounds and --repeats must be at least 1")
    say = status or (lambda line: None)
    out = Path(out)
    keys = [*(overrides or []), "eval.enabled=false", "report.enabled=false"]
    cfg = load_config(config, [*keys, f"out={out / 'run'}"])
    say(f"building the run of {config}")
    plan = plan_run(cfg, say)
    loc, dev = plan.localizer, plan.localizer.device
    batch, precision = plan.cfg.cam.batch_size, plan.cfg.model.precision
    sync = synchronizer(dev)
    h, w = loc.input_size
    say(f"timing the bare forward at {w}x{h} ({repeats} batches of {batch} after a warm-up)")
    x = torch.randn(batch, 3, h, w, device=dev)
    floor = batch / timed(forward_floor(loc.model, x, precision), repeats, sync)
    images, sizes, regions, labels = _first_batch(plan)
    images = images.to(dev)

    def to_boxes() -> None:
        loc.boxes_for(loc.maps(images, sizes, labels, regions, keep_maps=False))

    say(f"timing the Localizer from uint8 on the device to boxes ({repeats} batches)")
    rows = {"forward": {"images_per_second": floor}}
    rows["device"] = {"images_per_second": batch / timed(to_boxes, repeats, sync)}
    n = len(plan.dataset.samples)
    warm = load_config(config, [*keys, f"out={out / 'warmup'}", f"data.limit={min(n, batch)}"])
    result, times = time_runs(warm, cfg, rounds, progress, status, f"{n} images")
    rows["wsol"] = end_to_end_row(n, times, result.num_boxes_found)
    loop = result.metrics.get("images_per_second")
    if loop:
        rows["loop"] = {"images_per_second": loop, "images": n}
    for row in rows.values():
        row["of_floor"] = row["images_per_second"] / floor
    c = plan.cfg
    return {
        "settings": {
            "config": str(config),
            "overrides": list(overrides or []),
            "arch": c.model.arch,
            "method": c.cam.method,
            "scales": list(c.cam.scales),
            "input_size": [h, w],
            "batch_size": batch,
            "precision": precision,
            "device": str(dev),
            "decode": c.data.decode,
            "images": n,
            "repeats": repeats,
            "rounds": rounds,
        },
        "machine": machine_info(dev),
        "rows": {ROWS[k]: v for k, v in rows.items()},
        "ratios": {f"{ROWS[k]} / floor": v["of_floor"] for k, v in rows.items() if k != "forward"},
        "stage_seconds": result.metrics.get("stage_seconds"),
    }
