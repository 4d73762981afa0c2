"""Inputs already on the device: the bare forward (the floor), wsol's maps against
pytorch-grad-cam's, and maps to boxes for each test-time view setting."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from wsol.apps.bench.timing import Status, synchronizer, timed
from wsol.cams import build_method
from wsol.localize import PRECISIONS
from wsol.models import ModelSpec, build_model
from wsol.models.fold import fold_model
from wsol.models.spec import channels_last


def model_on(arch: str, size: int, device: torch.device, prepared: bool = True) -> ModelSpec:
    """``arch`` with random weights (throughput does not depend on them), seeded, in
    eval mode on ``device`` and fed ``size x size`` inputs; channels-last. ``prepared``:
    also its BatchNorms folded, as ``wsol run`` runs a model by default
    (``model.channels_last``, ``model.fold_bn``); without it, the model as a peer
    library gets it."""
    torch.manual_seed(0)
    spec = build_model(arch, "none")
    spec.net.eval().to(device).to(memory_format=torch.channels_last)
    spec.input_size = (size, size)
    if prepared:
        fold_model(spec, [spec.target_layer], spec.input_size)
    return spec


def forward_floor(spec: ModelSpec, x: torch.Tensor, precision: str) -> Callable[[], None]:
    """The bare forward of ``x`` ``[B, 3, H, W]``: no gradients, under autocast for
    ``bf16``/``fp16``, channels-last like the model. No CAM method can be faster than
    this."""
    dtype = PRECISIONS[precision]
    if channels_last(spec.net):
        x = x.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.no_grad(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            spec.net(x)

    return forward


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
    ours: bool = True,
) -> dict:
    """Images per second for the bare forward and wsol's maps (if ``ours``), and (if
    installed and ``reference``) pytorch-grad-cam's maps of the same model, inputs already
    on the device. ``status(line)`` hears of each measurement as it starts.

    Random weights (``weights=none``): throughput does not depend on them.
    """
    say = status or (lambda line: None)
    say(f"building {arch} (random weights) on {device}")
    dev = torch.device(device)
    spec = model_on(arch, size, dev)
    x = torch.randn(batch_size, 3, size, size, device=dev)
    targets = torch.zeros(batch_size, 1, dtype=torch.long, device=dev)
    dtype = PRECISIONS[precision]
    sync = synchronizer(dev)
    cam = build_method(method, spec)

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
        ("forward", forward_floor(spec, x, precision)),
        (f"wsol {method}", lambda: cam(x, targets, dtype)),
        (f"wsol {method} + upsample", upsampled),
    )[: 3 if ours else 0]:
        say(f"timing {name} ({repeats} batches of {batch_size} after a warm-up)")
        rows[name] = batch_size / timed(fn, repeats, sync)
    if reference and method == "gradcam":
        try:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError:
            pass
        else:
            from wsol.models import resolve_module

            ref_net = model_on(arch, size, dev, prepared=False).net  # the same weights
            layer = resolve_module(ref_net, spec.target_layer)
            ref_targets = [ClassifierOutputTarget(0)] * batch_size
            say("timing pytorch-grad-cam GradCAM")
            with GradCAM(model=ref_net, target_layers=[layer]) as ref:
                rows["pytorch-grad-cam GradCAM"] = batch_size / timed(
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

    dev = torch.device(device)
    spec = model_on(arch, size, dev)
    sync = synchronizer(dev)
    rows = {}
    sizes = [original] * batch_size
    for scales, flip in settings:
        loc = Localizer(
            spec, method, targets="topk", views=Views(scales, flip), precision=precision
        )
        images = torch.randint(
            0, 256, (batch_size, 3, *loc.input_size), dtype=torch.uint8, device=dev
        )
        name = f"wsol {method} to boxes, scales {list(scales)}{' + flip' if flip else ''}"
        if status is not None:
            status(f"timing {name}")
        rows[name] = batch_size / timed(lambda loc=loc, im=images: loc(im, sizes), repeats, sync)
    return rows
