"""The CAM engine: one forward per batch, K targets per image, maps on the device.

A method is a small subclass of :class:`CamMethod` that turns the hooked activation
``A [B, C, h, w]`` (and, for gradient methods, ``dy/dA``) into a map ``[B, h, w]``.
The base class owns everything else: the hook, the model's state, target selection
and the gradient, which is taken with ``torch.autograd.grad`` on the hooked activation,
so the backward pass stops at the target layer and no parameter ``.grad`` is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from wsol.models import ModelSpec, resolve_module

TargetFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class CamOutput:
    """Maps ``[B, K, h, w]`` (fp32, >= 0 where the method rectifies), the logits ``[B, C]``
    and the model class each map is for, ``[B, K]`` (``-1``: padding, map is zero)."""

    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor


class _Store:
    activation: torch.Tensor | None = None


@contextlib.contextmanager
def hooked_activation(net: nn.Module, layer: str, track_grad: bool) -> Iterator[_Store]:
    """Capture ``layer``'s output during the forward passes run inside the block.

    With ``track_grad``, the output is replaced by a leaf that requires grad, so that
    gradients can be taken with respect to it while every parameter stays frozen.
    The model's train/eval mode and ``requires_grad`` flags are restored on exit, and
    the hook is removed even if the block raises.
    """
    module = resolve_module(net, layer)
    store = _Store()
    was_training = net.training
    flags = [(p, p.requires_grad) for p in net.parameters()]

    def hook(_module, _inputs, output):
        if isinstance(output, tuple | list):
            raise TypeError(f"layer {layer!r} returns a {type(output).__name__}; hook a layer "
                            "that returns a tensor")
        if track_grad:
            leaf = output.detach().requires_grad_(True)
            store.activation = leaf
            # Hand the network a view of the leaf, so in-place ops downstream (ReLU) do not
            # touch the leaf itself.
            return leaf.view_as(leaf)
        store.activation = output
        return None

    handle = module.register_forward_hook(hook)
    try:
        net.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield store
    finally:
        handle.remove()
        for p, flag in flags:
            p.requires_grad_(flag)
        net.train(was_training)


class CamMethod:
    """Base class: subclasses set the class attributes and implement :meth:`map`.

    Attributes:
        name: registry name.
        needs_gradients: whether :meth:`map` needs ``dy^c/dA``.
        layer_kind: ``"target"`` hooks the spec's (or the user's) target layer;
            ``"cam"`` hooks the layer that feeds global average pooling.
    """

    name: str = ""
    needs_gradients: bool = True
    layer_kind: str = "target"

    def __init__(self, spec: ModelSpec, layer: str | None = None):
        self.spec = spec
        default = spec.cam_layer if self.layer_kind == "cam" else spec.target_layer
        self.layer = layer or default
        if not self.layer:
            raise ValueError(f"{self.name}: {spec.net.__class__.__name__} has no default layer; "
                             "set model.target_layer")
        resolve_module(spec.net, self.layer)

    def map(self, activation: torch.Tensor, grad: torch.Tensor | None,
            target: torch.Tensor) -> torch.Tensor:
        """Map ``[B, h, w]`` for model classes ``target [B]`` from ``A [B, C, h, w]``."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, targets: torch.Tensor | TargetFn,
                 autocast_dtype: torch.dtype | None = None) -> CamOutput:
        """Run one forward over ``images [B, 3, H, W]`` and compute K maps per image.

        ``targets`` is ``[B, K]`` model class indices (``-1`` pads), or a function of the
        logits ``[B, C]`` that returns them (used to pick predicted classes).
        """
        net = self.spec.net
        with hooked_activation(net, self.layer, self.needs_gradients) as store, \
                torch.set_grad_enabled(self.needs_gradients):
            ctx = (torch.autocast(images.device.type, dtype=autocast_dtype)
                   if autocast_dtype is not None else contextlib.nullcontext())
            with ctx:
                logits = net(images)
            act = store.activation
            if act is None:
                raise RuntimeError(f"layer {self.layer!r} was not reached by the forward pass")
            tgt = targets(logits.detach().float()) if callable(targets) else targets
            tgt = tgt.to(logits.device, torch.long)
            b, k = tgt.shape
            maps = []
            for j in range(k):
                t = tgt[:, j].clamp(min=0)
                grad = None
                if self.needs_gradients:
                    # Images in a batch are independent in eval mode, so the gradient of
                    # the summed scores gives every image its own dy^c/dA at once.
                    score = logits.gather(1, t[:, None]).sum()
                    (grad,) = torch.autograd.grad(score, act, retain_graph=j < k - 1)
                    grad = grad.float()
                maps.append(self.map(act.detach().float(), grad, t))
            if maps:
                out = torch.stack(maps, 1)
            else:
                out = act.new_zeros((b, 0, *act.shape[2:]), dtype=torch.float32)
            out = torch.where((tgt >= 0)[:, :, None, None], out, torch.zeros_like(out))
        return CamOutput(maps=out.detach(), logits=logits.detach().float(), targets=tgt)
