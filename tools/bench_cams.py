"""Throughput of wsol's gradcam against pytorch-grad-cam's GradCAM, side by side.

    python tools/bench_cams.py [--arch resnet50] [--batch-size 16] [--size 224] [--device cpu]

A thin wrapper over ``wsol bench`` (:func:`wsol.bench.bench_maps`): random weights,
inputs already on the device, one warm-up call, then timed calls of the bare forward,
wsol's maps, wsol's maps upsampled and normalized like pytorch-grad-cam's output, and
pytorch-grad-cam itself.
"""

from __future__ import annotations

import sys

from wsol.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
