"""Default hook points of architecture families: which layer each CAM method hooks.

Each entry is ``(target_layer, cam_layer, fc_layer)``. ``target_layer`` is the last conv
stage (what the Grad-CAM literature hooks); a function of the built network where the
name depends on the depth. ``cam_layer`` is the tensor that global average pooling feeds
to ``fc_layer``, None where the head is not GAP + linear (VGG's MLP, MobileNetV3's and
ConvNeXt's layers after the pooling). SqueezeNet's classifier is a 1x1 conv whose
output channels are the class maps.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from wsol.models.spec import ModelError, resolve_module

LayerFn = Callable[[nn.Module], str]


def _last(container: str, kind: type[nn.Module]) -> LayerFn:
    """The last ``kind`` module inside ``container``, e.g. VGG-16's ``features.29``."""

    def find(net: nn.Module) -> str:
        names = [
            n for n, m in resolve_module(net, container).named_modules() if isinstance(m, kind)
        ]
        if not names:
            raise ModelError(f"no {kind.__name__} in {container!r}; set model.target_layer")
        return f"{container}.{names[-1]}"

    return find


def _vit_encoder_norm(net: nn.Module) -> str:
    """torchvision ViT: the norm before the last block's attention (see _timm_layers)."""
    last = list(net.encoder.layers.named_children())[-1][0]
    return f"encoder.layers.{last}.ln_1"


_TORCHVISION_LAYERS: dict[str, tuple[str | LayerFn, str | None, str | None]] = {
    "resnet": ("layer4", "layer4", "fc"),
    "resnext": ("layer4", "layer4", "fc"),
    "wide_resnet": ("layer4", "layer4", "fc"),
    # The rectified last conv (14x14 at 224, the Grad-CAM paper's layer), not the 7x7
    # output of the last max pooling.
    "vgg": (_last("features", nn.ReLU), None, None),
    "alexnet": (_last("features", nn.ReLU), None, None),
    # DenseNet pools relu(features) with a functional relu; CAM checks and applies it.
    "densenet": ("features", "features", "classifier"),
    "efficientnet": ("features", "features", "classifier.1"),
    "mobilenet_v2": ("features", "features", "classifier.1"),
    "mobilenet_v3": ("features", None, None),
    "mnasnet": ("layers", "layers", "classifier.1"),
    "shufflenet_v2": ("conv5", "conv5", "fc"),
    "googlenet": ("inception5b", "inception5b", "fc"),
    "inception_v3": ("Mixed_7c", "Mixed_7c", "fc"),
    "convnext": ("features", None, None),
    "squeezenet": ("features", "classifier.1", "classifier.1"),
    "regnet": ("trunk_output", "trunk_output", "fc"),
    "vit_": (_vit_encoder_norm, None, None),
}


def torchvision_layers(
    arch: str, net: nn.Module | None = None
) -> tuple[str, str | None, str | None]:
    """Default layers of a torchvision family; ``("", None, None)`` for an unknown one
    (the methods that need a layer then ask for ``model.target_layer``)."""
    for prefix in sorted(_TORCHVISION_LAYERS, key=len, reverse=True):
        if arch.startswith(prefix):
            target, cam, fc = _TORCHVISION_LAYERS[prefix]
            if callable(target):
                if net is None:
                    raise ModelError(f"the default layer of {arch} depends on the network")
                target = target(net)
            return target, cam, fc
    return "", None, None


def timm_layers(net: nn.Module) -> tuple[str, str | None, str | None]:
    """(target_layer, cam_layer, fc_layer) of a timm model; ``("", None, None)`` if unknown.

    - Vision transformers (``blocks`` of token outputs with prefix tokens): the norm
      before the last block's attention. The head reads only the prefix (class) tokens
      of the last block's output, so the patch tokens there get no gradient.
    - EfficientNet-style models (``conv_head`` then ``bn2``, a norm + activation, then
      pooling): ``bn2``, the tensor that is pooled. MobileNetV3 pools before its
      ``conv_head``; it falls to the next rule.
    - Otherwise the last entry of timm's ``feature_info`` (``layer4``, ``stages.3``,
      ``features.norm5``, ...).

    The CAM layer is the target layer where the head is global average pooling straight
    into a linear classifier (checked again on every batch by ``cam``).
    """
    names = dict(net.named_modules())
    if getattr(net, "num_prefix_tokens", 0) and "blocks" in names:
        last = len(net.blocks) - 1
        target = f"blocks.{last}.norm1"
        return (target if target in names else f"blocks.{last}"), None, None
    efficientnet_head = "conv_head" in names and "bn2" in names
    if efficientnet_head:
        target = "bn2"
    else:
        info = getattr(net, "feature_info", None)
        target = info[-1]["module"] if info else ""
        if target not in names:
            return "", None, None
    fc = net.default_cfg.get("classifier")
    pool = getattr(getattr(net, "global_pool", None), "pool_type", "")
    gap_linear = (
        isinstance(fc, str)
        and isinstance(names.get(fc), nn.Linear)
        and pool == "avg"
        and (efficientnet_head or "conv_head" not in names)
    )
    return target, (target if gap_linear else None), (fc if gap_linear else None)
