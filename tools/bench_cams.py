"""Throughput of wsol's gradcam against pytorch-grad-cam's GradCAM, side by side.

    python tools/bench_cams.py [--arch resnet50] [--batch 16] [--size 224] [--iters 3]
                               [--device cpu]

Random weights (no download), one seeded batch, one warm-up call each, then ``--iters``
timed calls each, interleaved so that both see the same machine load. pytorch-grad-cam
returns maps upsampled to the input and min-max normalized (its API); wsol returns maps
at the target layer, so wsol is also timed with the same upsampling and normalization
on the device ("wsol gradcam + upsample").
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
import torchvision

from wsol.cams import build_method
from wsol.models import ModelSpec, resolve_module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--layer", default="layer4")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device = torch.device(args.device)
    torch.manual_seed(0)
    net = getattr(torchvision.models, args.arch)(weights=None).eval().to(device)
    ref = copy.deepcopy(net)
    x = torch.randn(args.batch, 3, args.size, args.size,
                    generator=torch.Generator().manual_seed(1)).to(device)
    classes = torch.randint(0, 1000, (args.batch, 1), generator=torch.Generator().manual_seed(2))
    spec = ModelSpec(net=net, class_names=[str(i) for i in range(1000)], target_layer=args.layer)
    ours = build_method("gradcam", spec)
    theirs = GradCAM(model=ref, target_layers=[resolve_module(ref, args.layer)])
    targets = [ClassifierOutputTarget(int(c)) for c in classes[:, 0]]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run_ours():
        return ours(x, classes.to(device)).maps

    def run_ours_upsampled():
        m = F.interpolate(run_ours(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        lo = m.amin(dim=(2, 3), keepdim=True)
        return (m - lo) / (m.amax(dim=(2, 3), keepdim=True) - lo + 1e-7)

    def run_theirs():
        return theirs(input_tensor=x, targets=targets)

    runs = {"wsol gradcam": run_ours, "wsol gradcam + upsample": run_ours_upsampled,
            "pytorch-grad-cam GradCAM": run_theirs}
    for fn in runs.values():  # warm-up
        fn()
    sync()
    spent = dict.fromkeys(runs, 0.0)
    for _ in range(args.iters):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            sync()
            spent[name] += time.perf_counter() - t0
    print(f"{args.arch} {args.layer}, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.iters} timed batches, device {device}, torch threads {torch.get_num_threads()}")
    for name, s in spent.items():
        print(f"  {name:26s} {args.batch * args.iters / s:8.2f} img/s")


if __name__ == "__main__":
    main()
