"""A fresh head for a dataset's classes: global average pooling and one linear layer.

That head is what CAM needs (Zhou et al. 2016): the class map of class ``c`` is the last
feature map weighted by row ``c`` of the linear layer. :func:`fit_head` replaces a
pretrained classifier's head with it, by the shape of the network:

- timm models: ``reset_classifier`` (their pooling is already global average);
- a linear ``fc`` (ResNet, RegNet, GoogLeNet, ShuffleNet, the demo's ShapesNet) or a
  linear ``classifier`` (DenseNet) is replaced;
- a ``classifier`` whose only linear layer is the last (EfficientNet, MobileNetV2,
  MNASNet, ConvNeXt): that layer is replaced;
- SqueezeNet's 1x1-conv classifier gets a conv with one channel per class;
- an MLP head (VGG, AlexNet, MobileNetV3) becomes global average pooling of
  ``features`` and one linear layer, so CAM applies to it too.
"""

from __future__ import annotations

from torch import nn

from wsol.models.layers import timm_layers, torchvision_layers
from wsol.models.spec import ModelError, ModelSpec


def _channels(features: nn.Module) -> int:
    """Output channels of a feature extractor: its last conv or batch norm."""
    last = [m for m in features.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    if not last:
        raise ModelError("cannot tell how many channels the features have")
    m = last[-1]
    return m.out_channels if isinstance(m, nn.Conv2d) else m.num_features


def _replace_classifier(net: nn.Module, num: int) -> tuple[str, str | None]:
    """Swap the head in place; returns ``(fc_layer, cam_layer or None if unknown)``."""
    head = getattr(net, "classifier", None)
    if isinstance(getattr(net, "fc", None), nn.Linear):
        net.fc = nn.Linear(net.fc.in_features, num)
        return "fc", None
    if isinstance(head, nn.Linear):
        net.classifier = nn.Linear(head.in_features, num)
        return "classifier", None
    if not isinstance(head, nn.Sequential):
        raise ModelError(f"cannot fit a new head to {type(net).__name__}: no fc or classifier")
    layers = list(head)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    linears = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    if convs:
        i = convs[-1]
        head[i] = nn.Conv2d(layers[i].in_channels, num, 1)
        return f"classifier.{i}", f"classifier.{i}"
    if linears == [len(layers) - 1]:
        head[linears[0]] = nn.Linear(layers[linears[0]].in_features, num)
        return f"classifier.{linears[0]}", None
    if isinstance(getattr(net, "features", None), nn.Module) and hasattr(net, "avgpool"):
        net.avgpool = nn.AdaptiveAvgPool2d(1)
        net.classifier = nn.Linear(_channels(net.features), num)
        return "classifier", "features"
    raise ModelError(f"cannot fit a new head to {type(net).__name__}: unknown classifier shape")


def fit_head(spec: ModelSpec, arch: str, classes: list[str], multi_label: bool) -> ModelSpec:
    """``spec`` with a fresh GAP + linear head for ``classes`` (random weights), its
    layers found again for the new head. Changes ``spec.net`` in place."""
    net, num = spec.net, len(classes)
    if not num:
        raise ModelError("a new head needs at least one class")
    if hasattr(net, "reset_classifier"):  # timm
        net.reset_classifier(num)
        classifier = net.get_classifier()
        spec.head = next(n for n, m in net.named_modules() if m is classifier)
        target, cam, fc = timm_layers(net)
        spec.target_layer = spec.target_layer or target
        spec.cam_layer, spec.fc_layer = spec.cam_layer or cam, spec.fc_layer or fc
    else:
        fc, cam = _replace_classifier(net, num)
        spec.head = fc
        target, default_cam, _ = torchvision_layers(arch, net)
        spec.target_layer = spec.target_layer or target
        spec.fc_layer = fc if (cam or default_cam or spec.cam_layer) else spec.fc_layer
        spec.cam_layer = cam or spec.cam_layer or default_cam
    spec.class_names = list(classes)
    spec.multi_label = multi_label
    return spec
