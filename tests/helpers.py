"""Test helpers shared across test packages: a tiny model whose CAM is the image's brightness."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


class BrightNet(nn.Module):
    """Its CAM is the image's brightness: 1x1 conv (mean of RGB), GAP, linear.

    ``gain`` scales the conv: 0 gives a dead layer (constant maps), NaN poisons it."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.features = nn.Conv2d(3, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 1)
        with torch.no_grad():
            self.features.weight.fill_(gain / 3)
            self.features.bias.zero_()
            self.fc.weight.fill_(1.0)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def bright_net_builder(gain: float = 1.0, input_size=(60, 90)):
    """A builder of :class:`BrightNet` (class ``bright``), for ``wsol.register_model``."""
    from wsol.models import ModelSpec

    def build(weights, classes, dilate_last=False):
        return ModelSpec(
            net=BrightNet(gain),
            class_names=["bright"],
            target_layer="features",
            cam_layer="features",
            fc_layer="fc",
            input_size=input_size,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            multi_label=True,
        )

    return build


def register_bright_net(gain: float = 1.0, input_size=(60, 90)) -> None:
    """Make ``model.arch=bright_net`` build a :class:`BrightNet`, for good: for a child
    process. A test registers it with the ``register_model`` fixture instead."""
    import wsol

    wsol.register_model("bright_net", bright_net_builder(gain, input_size))


# The shared runs (tests/conftest.py): whose settings the tests that read them rely on.
REFERENCE_OVERRIDES = [
    "data.split=test",  # 24 images
    "model.device=cpu",
    "cam.batch_size=8",
    "chunk_images=16",  # 2 chunks: 16 images, then 8
    "boxes.components=all",  # several boxes per (image, class): ranked when scored
    "export.formats=[coco, results, voc, yolo, labelstudio]",
    "report.num_images=7",
]


def reference_config(shapes_root: Path, out: Path, *overrides: str):
    """The reference run's config: the demo's model and Grad-CAM cut (0.35) on the shapes
    test split, every export format, a report of 7 images; ``overrides`` on top."""
    from wsol.apps.demo import demo_config

    return demo_config(out, "gradcam", shapes_root, overrides=[*REFERENCE_OVERRIDES, *overrides])


def method_config(shapes_root: Path, out: Path, method: str, *overrides: str):
    """A method's shared run: the demo's config and model, cut at 0.3 of the maximum, on
    4 images of the shapes val split, a report of 2 images; ``overrides`` on top."""
    from wsol.apps.demo import CHECKPOINT, DEMO_CONFIG
    from wsol.config import load_config

    base = [f"out={out}", f"data.root={shapes_root}", "data.split=val", "data.limit=4"]
    base += [f"model.weights={CHECKPOINT}", "model.device=cpu", f"cam.method={method}"]
    return load_config(DEMO_CONFIG, [*base, "report.num_images=2", *overrides])
