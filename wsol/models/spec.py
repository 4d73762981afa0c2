"""What wsol must know about a classifier: :class:`ModelSpec`, and finding its layers."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import torch
from torch import nn

from wsol.errors import WsolError, quote

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(WsolError, ValueError):
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
        head: the classifier module that :func:`wsol.models.heads.fit_head` made fresh.
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
    head: str | None = None

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, C]`` from logits ``[B, C]``."""
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


def resolve_device(name: str, what: str = "model.device") -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    ``what`` names the setting in errors (``--device`` for a flag).

    Raises:
        ModelError: a name torch does not take (``cpu:abc``), or CUDA without a GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelError(f"{what} must be auto, cpu, cuda or cuda:N, got {quote(name)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"{what}={name} but no CUDA device is available")
    return device


def model_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``uint8 [B, 3, H, W]`` pixels as the model's float input: ``(x / 255 - mean) / std``
    with ``mean`` and ``std`` shaped ``[1, 3, 1, 1]`` on the pixels' device. ``wsol run``
    and ``wsol train`` both feed their models through this."""
    return (images.float().div_(255.0) - mean) / std


def channels_last(net: nn.Module) -> bool:
    """Whether ``net``'s convolutions are in channels-last memory (after
    ``net.to(memory_format=torch.channels_last)``), so that inputs should be too."""
    for p in net.parameters():
        if p.ndim == 4 and p.shape[-1] * p.shape[-2] > 1 and p.shape[1] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def resolve_module(net: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted), or an error naming close matches, the
    top-level layers, and this model's own last convolutional stages as examples."""
    modules = dict(net.named_modules())
    if name not in modules:
        top = [n for n in modules if n and "." not in n]
        close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
        guess = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ModelError(
            f"model has no layer {quote(name)}{guess}. Top-level layers: {', '.join(top)}; "
            f"nested ones have dotted names, e.g. {', '.join(map(repr, conv_stages(net)))}"
        )
    return modules[name]


def conv_stages(net: nn.Module, count: int = 2) -> list[str]:
    """Names of the last ``count`` distinct two-level modules (``layer4.2``,
    ``blocks.6``) that hold a convolution: the usual target layers of this model."""
    stages: list[str] = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d) and name.count(".") >= 1:
            stage = ".".join(name.split(".")[:2])
            if stage in stages:
                stages.remove(stage)
            stages.append(stage)
    return stages[-count:]
