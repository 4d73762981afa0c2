"""``wsol bench``'s comparison for one model and batch size, on the same JPEG files:

- the bare forward pass, inputs already on the device: the floor;
- wsol's :class:`~wsol.localize.Localizer`, uint8 inputs already on the device, to
  boxes in original-size pixels;
- wsol end to end: a real run (:func:`wsol.run.pipeline.run_config`) from the files to
  boxes and ``pseudo_labels.json``, the wall time of the whole call;
- the pytorch-grad-cam + cv2 glue pipeline (:mod:`wsol.apps.bench.glue`) on the same
  files, the wall time of the whole call;

and their ratios. Random weights, seeded: throughput does not depend on them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import torch
from PIL import Image

from wsol.apps.bench.glue import GLUE_METHODS, glue_pipeline
from wsol.apps.bench.images import list_images
from wsol.apps.bench.maps import forward_floor, model_on
from wsol.apps.bench.timing import (
    ProgressFactory,
    Status,
    end_to_end_row,
    fastest,
    machine_info,
    synchronizer,
    timed,
)
from wsol.errors import UsageError


def row_names(method: str) -> dict[str, str]:
    """The table's row for each measurement (stable: docs and tests name them)."""
    glue = GLUE_METHODS.get(method, method)
    return {
        "forward": "forward, no grad (the floor)",
        "device": f"wsol {method}, uint8 on the device to boxes",
        "wsol": f"wsol {method}, JPEG files to COCO JSON",
        "glue": f"glue: pytorch-grad-cam {glue} + cv2, files to JSON",
    }


def run_overrides(
    folder: Path,
    out: Path,
    images: int,
    arch: str,
    method: str,
    batch_size: int,
    size: int,
    device: str,
    precision: str,
    workers: int | None,
) -> dict:
    """The ``wsol run`` config the end-to-end row times: the folder's first ``images``
    files, the top-1 class of each, default boxes, no scoring and no report; ``workers``
    None leaves the decoding processes to the run's automatic choice."""
    keys = {
        "out": str(out),
        "data.format": "folder",
        "data.root": str(folder),
        "data.limit": images,
        "model.arch": arch,
        "model.weights": "none",
        "model.input_size": [size, size],
        "model.device": device,
        "model.precision": precision,
        "cam.method": method,
        "cam.targets": "topk",
        "cam.topk": 1,
        "cam.batch_size": batch_size,
        "eval.enabled": False,
        "report.enabled": False,
    }
    if workers is not None:
        keys["data.num_workers"] = workers
    return keys


def loader_workers(device: torch.device, workers: int | None) -> int:
    """The decoding processes a ``wsol run`` on ``device`` uses: ``workers``, or its
    automatic choice for ``None`` (0 where this wsol has none)."""
    if workers is not None:
        return workers
    try:
        from wsol.run.stages import plan_threads
    except ImportError:
        return 0
    return plan_threads(device.type, None)[0]


def _first_batch(files: list[Path], batch_size: int, loc) -> tuple[torch.Tensor, list]:
    """The first ``batch_size`` files (repeated if fewer) decoded as the run's loader
    does, ``uint8 [B, 3, H, W]``, and their original ``(height, width)``."""
    images, sizes = [], []
    for i in range(batch_size):
        path = files[i % len(files)]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UsageError(f"bench: cannot read {path} as an image")
        images.append(loc.prepare(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))[0])
        with Image.open(path) as im:  # the header's size, as the run reports it
            sizes.append((im.height, im.width))
    return torch.stack(images), sizes


def _device_rows(
    files: list[Path],
    arch: str,
    method: str,
    batch_size: int,
    size: int,
    repeats: int,
    dev: torch.device,
    precision: str,
    say: Status,
) -> dict[str, dict]:
    """The floor and wsol's Localizer, a batch of the files already on the device."""
    from wsol.localize import Localizer, TargetPolicy

    sync = synchronizer(dev)
    say(f"building {arch} (random weights) on {dev}")
    spec = model_on(arch, size, dev)
    x = torch.randn(batch_size, 3, size, size, device=dev)
    say(f"timing the bare forward ({repeats} batches of {batch_size} after a warm-up)")
    floor = batch_size / timed(forward_floor(spec, x, precision), repeats, sync)
    loc = Localizer(spec, method, targets=TargetPolicy("topk", 1), precision=precision)
    pixels, sizes = _first_batch(files, batch_size, loc)
    pixels = pixels.to(dev)
    h, w = sizes[0]

    def to_boxes() -> None:  # as a run without scoring: no map leaves the device for boxes
        loc.boxes_for(loc.maps(pixels, sizes, keep_maps=False))

    say(f"timing wsol {method} from uint8 on the device to boxes at {w}x{h}")
    return {
        "forward": {"images_per_second": floor},
        "device": {
            "images_per_second": batch_size / timed(to_boxes, repeats, sync),
            "original_size": sizes[0],
        },
    }


def time_runs(
    warm, cfg, rounds: int, progress: ProgressFactory | None, status: Status | None, what: str
):
    """``wsol run`` of the config ``warm`` (untimed: CUDA kernels, autotuning, numba),
    then ``rounds`` timed runs of ``cfg``: ``(the fastest run's result, every round's
    seconds)``, from the call to the files on disk."""
    from wsol.run.pipeline import run_config

    say = status or (lambda line: None)
    say(f"wsol run: a warm-up run on {warm.data.limit} images")
    run_config(warm, overwrite=True)
    return fastest(
        lambda: run_config(
            cfg, progress("wsol run") if progress else None, overwrite=True, status=status
        ),
        rounds,
        lambda r: say(
            f"timing wsol run on {what}" + (f" (round {r + 1} of {rounds})" if rounds > 1 else "")
        ),
    )


def bench_pipeline(
    folder: str | Path,
    out: str | Path,
    images: int | None = None,
    arch: str = "resnet50",
    method: str = "gradcam",
    batch_size: int = 16,
    size: int = 224,
    repeats: int = 3,
    device: str = "cpu",
    precision: str = "fp32",
    workers: int | None = None,
    glue: bool = True,
    overrides: list[str] | None = None,
    progress: ProgressFactory | None = None,
    status: Status | None = None,
    rounds: int = 2,
) -> dict:
    """Time the four rows (see the module docstring) on the first ``images`` files of
    ``folder`` (all when None), scratch outputs in ``out``. ``workers`` decoding
    processes serve both end-to-end rows (None: the run's automatic choice);
    ``overrides`` (``["section.key=value", ...]``) change the timed run's config.

    The on-device rows are the mean of ``repeats`` batches after a warm-up batch. The
    end-to-end rows run once on the first batch of files (untimed warm-up: CUDA kernels,
    autotuning), then ``rounds`` times on all of them, each timed from the call to the JSON
    on disk; the fastest counts (slow spells of a shared machine only add time) and all
    are in ``all_seconds``. The glue runs last: timings taken after pytorch-grad-cam in
    one process come out faster. Every file is read once first (the OS page cache).

    Returns ``{"settings", "machine", "rows", "skipped", "ratios", "stage_seconds"}``:
    ``rows[key]`` holds ``images_per_second`` (and for the end-to-end rows ``seconds``,
    ``images``, ``boxes``), ``skipped[key]`` why a row was not measured,
    ``stage_seconds["wsol"]`` the run's ``metrics.json`` ``stage_seconds`` when it
    writes them, ``stage_seconds["glue"]`` the glue's.
    """
    from wsol.config import load_config, with_overrides

    if rounds < 1:
        raise UsageError(f"bench: rounds must be at least 1, got {rounds}")
    say = status or (lambda line: None)
    folder, out = Path(folder), Path(out)

    def _of(r: int) -> str:
        return f" (round {r + 1} of {rounds})" if rounds > 1 else ""

    files = list_images(folder, images)
    if not files:
        raise UsageError(f"bench: no image files in {folder}")
    n, names = len(files), row_names(method)
    dev = torch.device(device)
    say(f"reading the {n} files once, so that every row finds them cached")
    megabytes = sum(len(p.read_bytes()) for p in files) / 2**20
    rows = _device_rows(files, arch, method, batch_size, size, repeats, dev, precision, say)
    skipped: dict[str, str] = {}

    base = run_overrides(
        folder, out / "wsol", n, arch, method, batch_size, size, device, precision, workers
    )
    warm = {**base, "out": str(out / "wsol-warmup"), "data.limit": min(n, batch_size)}
    cfg = with_overrides(load_config(None, base), overrides)
    result, times = time_runs(
        with_overrides(load_config(None, warm), overrides),
        cfg,
        rounds,
        progress,
        status,
        f"{n} files: JPEG files to boxes and JSON",
    )
    rows["wsol"] = end_to_end_row(n, times, result.num_boxes_found)
    rows["wsol"]["loop_images_per_second"] = result.metrics.get("images_per_second")
    stages = result.metrics.get("stage_seconds")
    stage_seconds = {"wsol": dict(stages) if isinstance(stages, dict) else None, "glue": None}

    if not glue:
        skipped["glue"] = "--no-glue"
    elif method not in GLUE_METHODS:
        skipped["glue"] = f"pytorch-grad-cam has no twin of cam method {method!r}"
    else:
        try:
            import pytorch_grad_cam  # noqa: F401
        except ImportError as e:
            skipped["glue"] = f"pytorch-grad-cam is not installed ({e}; pip install grad-cam)"
    if "glue" not in skipped:
        options = {
            "method": method,
            "size": size,
            "batch_size": batch_size,
            "device": device,
            "workers": loader_workers(dev, cfg.data.num_workers),
            "threshold": float(cfg.boxes.threshold),
            "seed": cfg.seed,
        }
        say(f"glue: a warm-up run on {min(n, batch_size)} files")
        glue_pipeline(files[:batch_size], out / "glue-warmup.json", arch, **options)
        peer, times = fastest(
            lambda: glue_pipeline(files, out / "glue.json", arch, **options),
            rounds,
            lambda r: say(f"timing the glue on {n} files (pytorch-grad-cam + cv2, fp32){_of(r)}"),
        )
        rows["glue"] = end_to_end_row(n, times, peer["boxes"])
        stage_seconds["glue"] = peer["stage_seconds"]

    original = rows["device"].pop("original_size")
    floor = rows["forward"]["images_per_second"]
    for row in rows.values():
        row["of_floor"] = row["images_per_second"] / floor
    ratios = {}
    if "glue" in rows:
        ratios["wsol end to end / glue"] = (
            rows["wsol"]["images_per_second"] / rows["glue"]["images_per_second"]
        )
    ratios["wsol end to end / forward floor"] = rows["wsol"]["of_floor"]
    ratios["wsol on the device / forward floor"] = rows["device"]["of_floor"]
    return {
        "settings": {
            "arch": arch,
            "method": method,
            "size": size,
            "batch_size": batch_size,
            "precision": precision,
            "device": str(dev),
            "workers": loader_workers(dev, cfg.data.num_workers),
            "automatic_workers": cfg.data.num_workers is None,
            "overrides": list(overrides or []),
            "repeats": repeats,
            "rounds": rounds,
            "images": n,
            "megabytes": megabytes,
            "folder": str(folder),
            "original_size": original,
            "boxes": cfg.boxes.threshold_mode + f" {cfg.boxes.threshold:g}, "
            f"{cfg.boxes.components} component",
        },
        "machine": machine_info(dev),
        "rows": {names[k]: v for k, v in rows.items()},
        "skipped": {names[k]: v for k, v in skipped.items()},
        "ratios": ratios,
        "stage_seconds": stage_seconds,
    }
