"""Throughput benchmarks behind ``wsol bench``: maps per second, and the pipeline end to end.

Speed targets live here and in ``docs/benchmarks.md``, never in timed tests.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from wsol.cams import build_method
from wsol.models import build_model

Status = Callable[[str], None]  # hears of each measurement as it starts
ProgressFactory = Callable[[str], Callable[[int, int], None] | None]


def _timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    fn()  # warm-up: allocator, cuDNN autotuning, lazy inits
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bench_maps(
    arch: str = "resnet50",
    method: str = "gradcam",
    batch_size: int = 16,
    size: int = 224,
    repeats: int = 3,
    device: str = "cpu",
    precision: str = "fp32",
    reference: bool = True,
    status: Status | None = None,
) -> dict:
    """Images per second for the bare forward, wsol's maps, and (if installed and
    ``reference``) pytorch-grad-cam's maps of the same model, inputs already on the device.
    ``status(line)`` hears of each measurement as it starts.

    Random weights (``weights=none``): throughput does not depend on them.
    """
    say = status or (lambda line: None)
    say(f"building {arch} (random weights) on {device}")
    torch.manual_seed(0)
    dev = torch.device(device)
    spec = build_model(arch, "none")
    spec.net.eval().to(dev)
    x = torch.randn(batch_size, 3, size, size, device=dev)
    targets = torch.zeros(batch_size, 1, dtype=torch.long, device=dev)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cam = build_method(method, spec)

    def forward():
        with torch.no_grad():
            spec.net(x)

    def upsampled():
        # The same output as pytorch-grad-cam's API: maps at input size, min-max normalized.
        m = F.interpolate(
            cam(x, targets, dtype).maps, size=(size, size), mode="bilinear", align_corners=False
        )
        flat = m.flatten(2)
        lo, hi = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
        return ((flat - lo) / (hi - lo).clamp_min(1e-7)).view_as(m)

    rows = {}
    for name, fn in (
        ("forward", forward),
        (f"wsol {method}", lambda: cam(x, targets, dtype)),
        (f"wsol {method} + upsample", upsampled),
    ):
        say(f"timing {name} ({repeats} batches of {batch_size} after a warm-up)")
        rows[name] = batch_size / _timed(fn, repeats, sync)
    if reference and method == "gradcam":
        try:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError:
            pass
        else:
            from wsol.models import resolve_module

            ref_net = copy.deepcopy(spec.net)  # its hooks never touch the model wsol times
            layer = resolve_module(ref_net, spec.target_layer)
            ref_targets = [ClassifierOutputTarget(0)] * batch_size
            say("timing pytorch-grad-cam GradCAM")
            with GradCAM(model=ref_net, target_layers=[layer]) as ref:
                rows["pytorch-grad-cam GradCAM"] = batch_size / _timed(
                    lambda: ref(input_tensor=x, targets=ref_targets), repeats, sync
                )
    return {
        "arch": arch,
        "batch_size": batch_size,
        "size": size,
        "device": str(dev),
        "precision": precision,
        "images_per_second": rows,
    }


VIEW_SETTINGS = (
    ((1.0,), False),
    ((1.0,), True),
    ((1.5,), False),
    ((2.0,), False),
    ((1.0, 1.5, 2.0), False),
    ((1.0, 1.5, 2.0), True),
)


def bench_views(
    arch: str = "resnet50",
    method: str = "gradcam",
    batch_size: int = 16,
    size: int = 224,
    repeats: int = 3,
    device: str = "cpu",
    precision: str = "fp32",
    settings=VIEW_SETTINGS,
    original: tuple[int, int] = (375, 500),
    status: Status | None = None,
) -> dict:
    """Images per second of the :class:`~wsol.localize.Localizer` from uint8 inputs to
    boxes in ``original``-sized pixels (a VOC photo), for each ``(scales, flip)`` of
    ``settings``: what each test-time view setting costs."""
    from wsol.localize import Localizer, Views

    torch.manual_seed(0)
    dev = torch.device(device)
    spec = build_model(arch, "none")
    spec.net.eval().to(dev)
    spec.input_size = (size, size)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = {}
    sizes = [original] * batch_size
    for scales, flip in settings:
        loc = Localizer(
            spec, method, targets="topk", views=Views(scales, flip), precision=precision
        )
        images = torch.randint(0, 256, (batch_size, 3, *loc.input_size), dtype=torch.uint8)
        name = f"wsol {method} to boxes, scales {list(scales)}{' + flip' if flip else ''}"
        if status is not None:
            status(f"timing {name}")
        rows[name] = batch_size / _timed(lambda loc=loc, im=images: loc(im, sizes), repeats, sync)
    return rows


def bench_demo(
    out: str | Path,
    images: int = 300,
    progress: ProgressFactory | None = None,
    status: Status | None = None,
) -> dict:
    """End-to-end images per second of the demo pipeline (decode to boxes to metrics);
    ``progress(method)`` makes a ``(done, total)`` callback for each run."""
    from wsol.apps.demo import demo_config, make_demo_data
    from wsol.run.pipeline import run_config

    out = Path(out)
    if status is not None:
        status(f"rendering {images} demo images")
    root = make_demo_data(out / "data", {"test": images})
    rows = {}
    for method in ("gradcam", "cam"):
        cfg = demo_config(out / method, method, root, overrides=["report.enabled=false"])
        start = time.perf_counter()
        result = run_config(
            cfg, progress(method) if progress else None, overwrite=True, status=status
        )
        rows[f"demo {method} (loop)"] = result.metrics["images_per_second"]
        rows[f"demo {method} (incl. scoring)"] = images / (time.perf_counter() - start)
    return {"images": images, "images_per_second": rows}
