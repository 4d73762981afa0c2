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
