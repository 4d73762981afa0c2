"""Throughput of wsol's gradcam against pytorch-grad-cam's GradCAM, side by side.

    python tools/bench_cams.py [--arch resnet50] [--batch-size 16] [--size 224] [--device cpu]

A thin wrapper over ``wsol bench --maps --no-glue``. Its maps-only rows
(:func:`wsol.apps.bench.bench_maps`: random weights, inputs already on the device, one
warm-up call) time the bare forward, wsol's maps, wsol's maps upsampled and normalized
like pytorch-grad-cam's output, and pytorch-grad-cam itself; ``wsol bench``'s own rows
(the floor, wsol on the device, wsol from JPEG files to COCO JSON) come first. Plain
``wsol bench`` adds the pytorch-grad-cam + cv2 glue pipeline on the same files.
"""

from __future__ import annotations

import sys

from wsol.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--maps", "--no-glue", *sys.argv[1:]]))
