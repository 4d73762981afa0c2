"""Shared fixtures: real data from ../shared and a tiny generated shapes dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VOC_ROOT = SHARED / "voc2012_sample" / "VOCdevkit" / "VOC2012"
COCO_ROOT = SHARED / "coco128"
COCO_ANN = COCO_ROOT / "annotations" / "instances_train2017.json"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is beside the repo in CI)")
    return path


@pytest.fixture(scope="session")
def voc_root() -> Path:
    return _need(VOC_ROOT)


@pytest.fixture(scope="session")
def coco_root() -> Path:
    _need(COCO_ANN)
    return COCO_ROOT


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """24 test and 16 val images of the demo's shapes dataset (seed 1)."""
    from wsol.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("shapes"), {"test": 24, "val": 16}, seed=1)


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


def register_bright_net(gain: float = 1.0, input_size=(60, 90)) -> None:
    """Make ``model.arch=bright_net`` build a :class:`BrightNet` (class ``bright``)."""
    from wsol.models import MODELS, ModelSpec

    def build(weights, classes):
        return ModelSpec(net=BrightNet(gain), class_names=["bright"], target_layer="features",
                         cam_layer="features", fc_layer="fc", input_size=input_size,
                         mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), multi_label=True)

    MODELS["bright_net"] = build


@pytest.fixture
def bright_model():
    from wsol.models import MODELS

    saved = MODELS.get("bright_net")
    register_bright_net()
    yield
    if saved is None:
        MODELS.pop("bright_net", None)
    else:
        MODELS["bright_net"] = saved
