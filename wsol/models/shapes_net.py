"""ShapesNet, the demo's small CAM-ready classifier, and its packaged checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wsol.models.checkpoint import NO_WEIGHTS, load_into, load_state
from wsol.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelError, ModelSpec

# Trained by `wsol train configs/demo_train.yaml` on the rendered shapes (see apps/demo.py).
DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "shapes_net.pt"


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ShapesNet(nn.Module):
    """A small CAM-ready CNN: conv backbone at stride 8, global average pooling, linear.

    ``layer3`` and ``layer4`` both run at stride 8; ``layer4`` feeds the pooling, so it
    is the CAM layer, and Grad-CAM one block lower (``layer3``) gives tighter maps.
    ``dilate_last`` drops ``layer2``'s stride and dilates what follows: maps at stride 4,
    with the same weights' shapes.
    """

    def __init__(self, num_classes: int, width: int = 32, dilate_last: bool = False):
        super().__init__()
        w, d = width, 2 if dilate_last else 1
        self.stem = _conv(3, w // 2, 2)
        self.layer1 = nn.Sequential(_conv(w // 2, w, 2), _conv(w, w))
        self.layer2 = nn.Sequential(_conv(w, 2 * w, 2 // d), _conv(2 * w, 2 * w, dilation=d))
        self.layer3 = _conv(2 * w, 3 * w, dilation=d)
        self.layer4 = _conv(3 * w, 4 * w, dilation=d)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def build_shapes_net(
    weights: str, classes: list[str] | None, dilate_last: bool = False
) -> ModelSpec:
    """``weights``: ``none`` (random, classes from the dataset), ``DEFAULT`` (the demo's
    checkpoint) or a checkpoint path."""
    meta: dict = {}
    state = None
    if weights.lower() not in NO_WEIGHTS:
        path = DEMO_CHECKPOINT if weights.upper() == "DEFAULT" else Path(weights)
        state, meta = load_state(path)
    names = list(meta.get("class_names") or classes or [])
    if not names:
        raise ModelError("shapes_net needs class names from its checkpoint or the dataset")
    dilate_last = bool(meta.get("dilate_last", dilate_last))
    net = ShapesNet(len(names), width=int(meta.get("width", 32)), dilate_last=dilate_last)
    if state is not None:
        load_into(net, {k: v.float() for k, v in state.items()}, weights)
    return ModelSpec(
        net=net,
        class_names=names,
        target_layer="layer3",
        cam_layer="layer4",
        fc_layer="fc",
        input_size=tuple(meta.get("input_size", (128, 128))),
        mean=tuple(meta.get("mean", IMAGENET_MEAN)),
        std=tuple(meta.get("std", IMAGENET_STD)),
        multi_label=True,
        extra={k: v for k, v in meta.items() if k in ("threshold", "train_config")},
    )
