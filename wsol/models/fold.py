"""Folding BatchNorm into the convolution before it, for inference.

In eval mode a BatchNorm is an affine map per channel, ``y = (x - mean) / sqrt(var + eps)
* gamma + beta``, so when it only ever sees a convolution's output it can be merged into
that convolution's weights and bias: the network computes the same function with one
operator less per pair. On a CPU that is about a sixth of a ResNet-50's forward pass.

Which convolution feeds which BatchNorm is read off one traced forward pass (a
BatchNorm whose input is the very tensor a convolution returned). A forward pass cannot
see every other use of that tensor, so the folded network is checked against the
original on the same input (logits and the activations of the layers a method hooks);
anything beyond float rounding undoes every fold.

The check must see the fold's rounding, not the device's: a GPU runs float32
convolutions in TF32 by default (10 bits of mantissa), whose error through a deep
network is far above the fold's. So off the CPU both passes of the check run in float64
(the network is converted for them and back, which is exact), where nothing rounds to
TF32; on the CPU float32 is IEEE float32 and the check runs as the model does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from wsol.models.spec import ModelSpec, channels_last, resolve_module

# |folded - original| may be this much of the largest |original| (float32 rounding
# through a deep network is about 1e-6 of it; a wrong fold is of the order of 1).
TOLERANCE = 1e-3


class _ActAfterFold(nn.Module):
    """What is left of a BatchNorm-with-activation (timm's ``BatchNormAct2d``) once its
    normalization is folded into the convolution: its dropout and its activation, the
    same module objects."""

    def __init__(self, drop: nn.Module, act: nn.Module):
        super().__init__()
        self.drop = drop
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


@dataclass(frozen=True)
class FoldReport:
    """``folded`` (convolution, BatchNorm) pairs merged; ``undone`` why none were, if
    the check failed."""

    folded: int
    undone: str = ""


def _remainder(bn: nn.Module) -> nn.Module | None:
    """The module that replaces ``bn`` once folded, or None for a kind this cannot
    fold exactly."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if type(bn).__name__ == "BatchNormAct2d" and isinstance(bn, nn.BatchNorm2d):
        return _ActAfterFold(bn.drop, bn.act)
    return None


def _foldable(bn: nn.BatchNorm2d) -> bool:
    return bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None


class _Tracer:
    """Forward hooks that find the (convolution, BatchNorm) name pairs where the
    BatchNorm's input is the very tensor the convolution returned, each module called
    once in the pass."""

    def __init__(self, net: nn.Module):
        self.convs = {n: m for n, m in net.named_modules() if isinstance(m, nn.Conv2d)}
        self.norms = {n: m for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
        self.calls: dict[str, int] = {}
        self.made: dict[int, str] = {}  # id(output tensor) -> the conv that returned it
        self.fed: dict[str, int] = {}  # bn -> id(its input tensor)
        self.alive: list[torch.Tensor] = []  # the traced tensors: no id is reused
        self.handles = [m.register_forward_hook(self._on_conv(n)) for n, m in self.convs.items()]
        self.handles += [
            m.register_forward_pre_hook(self._on_norm(n)) for n, m in self.norms.items()
        ]

    def _on_conv(self, name: str):
        def hook(_m, _i, out):
            self.calls[name] = self.calls.get(name, 0) + 1
            self.alive.append(out)
            self.made[id(out)] = name

        return hook

    def _on_norm(self, name: str):
        def hook(_m, inputs):
            self.calls[name] = self.calls.get(name, 0) + 1
            self.alive.append(inputs[0])
            self.fed[name] = id(inputs[0])

        return hook

    def pairs(self) -> list[tuple[str, str]]:
        """Removes the hooks; the pairs seen."""
        for h in self.handles:
            h.remove()
        self.alive.clear()
        out = []
        for bn_name, tensor_id in self.fed.items():
            conv_name = self.made.get(tensor_id)
            if conv_name is None or self.calls[conv_name] != 1 or self.calls[bn_name] != 1:
                continue
            if self.convs[conv_name].out_channels == self.norms[bn_name].num_features:
                out.append((conv_name, bn_name))
        return out


def check_dtype(device: torch.device) -> torch.dtype:
    """The precision the fold is checked in on ``device``: float32 on the CPU, float64
    elsewhere (see the module docstring)."""
    return torch.float32 if device.type == "cpu" else torch.float64


@contextmanager
def _in_dtype(net: nn.Module, dtype: torch.dtype) -> Iterator[None]:
    """``net``'s floating parameters and buffers in ``dtype`` inside the block, each back
    in its own type after it (float32 -> float64 -> float32 is exact)."""
    tensors = [t for t in [*net.parameters(), *net.buffers()] if t.is_floating_point()]
    before = [t.dtype for t in tensors]
    if all(d == dtype for d in before):
        yield
        return
    for t in tensors:
        t.data = t.data.to(dtype)
    try:
        yield
    finally:
        for t, d in zip(tensors, before, strict=True):
            t.data = t.data.to(d)


def _outputs(net: nn.Module, example: torch.Tensor, layers: list[str]) -> list[torch.Tensor]:
    """The logits and the outputs of ``layers`` for ``example``, in ``example``'s
    precision (the network is converted to it for the pass)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        resolve_module(net, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone())
        )
        for name in layers
    ]
    try:
        with torch.no_grad(), _in_dtype(net, example.dtype):
            logits = net(example)
    finally:
        for h in handles:
            h.remove()
    return [logits, *(seen[n] for n in layers if n in seen)]


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x, y = x.float(), y.float()
        if x.shape != y.shape or not torch.isfinite(x).all():
            return False
        if (x - y).abs().max() > TOLERANCE * y.abs().max().clamp_min(1e-12):
            return False
    return True


def _fold_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv``'s weight and bias with ``bn`` (eval mode) folded in, in the weight's own
    memory format."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    bias = (bias - bn.running_mean) * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.ndim - 1)))
    if conv.weight.is_contiguous(memory_format=torch.channels_last):
        weight = weight.contiguous(memory_format=torch.channels_last)
    return weight.detach(), bias.detach()


def _set(modules: dict[str, nn.Module], name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(modules[parent], leaf, module)


def fold_batchnorm(net: nn.Module, example: torch.Tensor, keep: Iterable[str] = ()) -> FoldReport:
    """Fold every BatchNorm that only normalizes a convolution's output into that
    convolution, in place; ``net`` must be in eval mode (it is left so).

    The convolution keeps its module (and its class: a padding-``same`` subclass stays
    one) and gets the folded weight and a bias; the BatchNorm is replaced by
    ``nn.Identity``, or by its own dropout and activation for timm's ``BatchNormAct2d``.

    Args:
        net: the network, on the device of ``example``.
        example: an input ``[1, 3, H, W]`` for the traced and the checking pass, in the
            precision the check runs in (see :func:`check_dtype`).
        keep: layer names whose outputs must stay as they are (the layers a method
            hooks): a convolution among them is not folded, and their outputs are
            checked along with the logits.

    Returns:
        how many pairs were folded; with ``undone`` set, the check failed and the
        network is exactly as it was.
    """
    if net.training:
        raise ValueError("fold_batchnorm folds the running statistics of a model in eval mode")
    keep = [k for k in dict.fromkeys(keep) if k]
    tracer = _Tracer(net)
    try:
        before = _outputs(net, example, keep)
    finally:
        pairs = tracer.pairs()
    modules = dict(net.named_modules())
    changed: list[tuple[nn.Conv2d, nn.Parameter, nn.Parameter | None, str, nn.Module]] = []
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        remainder = _remainder(bn)
        if conv_name in keep or remainder is None or not _foldable(bn):
            continue
        with torch.no_grad():
            weight, bias = _fold_weights(conv, bn)
        changed.append((conv, conv.weight, conv.bias, bn_name, bn))
        conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
        conv.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
        _set(modules, bn_name, remainder)
    if not changed:
        return FoldReport(0)
    if _close(_outputs(net, example, keep), before):
        return FoldReport(len(changed))
    for conv, weight, bias, bn_name, bn in reversed(changed):
        conv.weight, conv.bias = weight, bias
        _set(modules, bn_name, bn)
    return FoldReport(0, "the folded network did not compute what the original did")


def fold_model(spec: ModelSpec, layers: Iterable[str], input_size: tuple[int, int]) -> FoldReport:
    """:func:`fold_batchnorm` on ``spec.net`` (in eval mode, on its device, in its memory
    format), keeping ``layers`` (the method's hooked layer) and the model's CAM and
    classifier layers as they are; the example is seeded noise at ``input_size`` (the
    same values on every device, in :func:`check_dtype`), and the global random state is
    left alone."""
    param = next(spec.net.parameters(), None)
    if param is None:
        return FoldReport(0)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, *input_size, generator=gen, dtype=torch.float64)
    example = example.to(param.device, check_dtype(param.device))
    if channels_last(spec.net):
        example = example.contiguous(memory_format=torch.channels_last)
    spec.net.eval()
    return fold_batchnorm(spec.net, example, [*layers, spec.cam_layer or "", spec.fc_layer or ""])
