"""The context a CAM method runs in: a frozen model, and a hook on the target layer.

Both are context managers that undo everything on exit, even if the block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from wsol.errors import WsolError
from wsol.models import resolve_module


class CamError(WsolError, ValueError):
    """A method that does not fit the model (no known layer, a layer of the wrong kind,
    a head that CAM cannot read)."""


class _Store:
    """What the hook saw: the layer's output (a leaf when gradients stop there)."""

    def __init__(self) -> None:
        self.activation: torch.Tensor | None = None
        self.active = True  # off: later passes (Score-CAM's masked inputs) are not stored


@contextlib.contextmanager
def frozen_model(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter inside the block.

    On exit every module gets back its own ``training`` flag (a BatchNorm frozen in eval
    mode inside a model in training mode stays frozen) and every parameter its own
    ``requires_grad``, even if the block raises.
    """
    modes = [(m, m.training) for m in net.modules()]
    flags = [(p, p.requires_grad) for p in net.parameters()]
    try:
        net.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield net
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def hooked_activation(
    net: nn.Module, layer: str, track_grad: bool, detach: bool = True
) -> Iterator[_Store]:
    """Capture ``layer``'s output during the forward passes run inside the block.

    With ``track_grad`` and ``detach``, the output is replaced by a leaf that requires
    grad, so that gradients can be taken with respect to it while the graph below it
    does not exist (the backward pass stops at the layer). With ``detach=False`` the
    output stays in the graph (for methods that also need the input's gradient).

    The network continues with a copy of the output, so an in-place op downstream
    (DenseNet's functional ``relu_``, an ``inplace=True`` ReLU after a hooked conv)
    can neither modify what was stored nor hit a view of the leaf. A module called
    several times per forward (a shared ReLU) is captured at its last call. The hook is
    removed even if the block raises.
    """
    module = resolve_module(net, layer)
    store = _Store()

    def hook(_module, _inputs, output):
        if not store.active:
            return None
        if not isinstance(output, torch.Tensor):
            raise CamError(
                f"layer {layer!r} returns a {type(output).__name__}; hook a layer "
                "that returns a tensor"
            )
        if track_grad and detach:
            output = output.detach().requires_grad_(True)
        store.activation = output
        return output.clone()

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()
