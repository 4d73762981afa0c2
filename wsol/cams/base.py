"""The CAM engine: one forward per batch, K targets per image, maps on the device.

A method is a small subclass of :class:`CamMethod`. Most only implement :meth:`map`,
which turns the hooked activation ``A [B, C, h, w]`` (and, for gradient methods,
``dy/dA``) into a map ``[B, h, w]`` for one target per image; methods that need the
whole pass at once (Score-CAM's masked passes, the input-gradient visualizations)
override :meth:`CamMethod.compute`.

The base class owns everything else, inside one ``with`` block that is undone in
``finally`` whatever happens: the model's eval mode and frozen parameters, the hook on
the target layer, any hooks a subclass adds, and autocast. Gradients come from
``torch.autograd.grad``: for the CAM family the hooked output is replaced by a leaf, so
the backward pass stops at the target layer and no parameter ``.grad`` is ever written.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from wsol.cams.hooks import CamError, frozen_model, hooked_activation
from wsol.models import ModelSpec, resolve_module
from wsol.models.spec import conv_stages

TargetFn = Callable[[torch.Tensor], torch.Tensor]
Reshape = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class CamOutput:
    """Maps ``[B, K, h, w]`` (fp32, >= 0 where the method rectifies), the logits ``[B, C]``
    and the model class each map is for, ``[B, K]`` (``-1``: padding, map is zero).

    ``h, w`` is the target layer's grid for the CAM family and the input's ``H, W`` for
    the pixel-level methods (``CamMethod.pixel_level``).
    """

    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor


def tokens_to_grid(
    tokens: torch.Tensor, input_hw: tuple[int, int], prefix: int | None = None
) -> torch.Tensor:
    """Vision-transformer tokens ``[B, N, C]`` -> ``[B, C, h, w]``.

    The first ``prefix`` tokens (class, distillation or register tokens) are dropped and
    the other ``h * w`` are the patch grid in row-major order, with ``h / w`` the input's
    aspect ratio. Without ``prefix``, the count (0 to 8) whose grid's aspect ratio is
    closest to the input's is used.
    """
    b, n, c = tokens.shape
    height, width = input_hw
    best: tuple[float, int, int, int] | None = None  # (aspect error, prefix, h, w)
    for p in [prefix] if prefix is not None else range(0, min(n, 9)):
        cells = n - p
        h = round(math.sqrt(cells * height / width)) if cells > 0 else 0
        if h == 0 or cells % h:
            continue
        w = cells // h
        err = abs(math.log(h * width / (w * height)))
        if best is None or err < best[0]:
            best = (err, p, h, w)
    if best is None:
        raise CamError(
            f"cannot lay {n} tokens (prefix {prefix}) out as a grid of a "
            f"{height}x{width} input; set the method's reshape function"
        )
    _, p, h, w = best
    return tokens[:, p:].reshape(b, h, w, c).permute(0, 3, 1, 2)


class ForwardPass:
    """One batch after its forward pass, inside :meth:`CamMethod.forward`.

    The logits are known here, so the caller can choose the target classes from them
    and then ask for the maps with :meth:`maps`.

    Attributes:
        images: the input ``[B, 3, H, W]`` (requires grad for pixel-level methods).
        logits: ``[B, C]`` as the network returned them (in the graph when the method
            takes gradients; possibly half precision under autocast).
        targets: model classes ``[B, K]`` (``-1`` pads) of the last :meth:`maps` call.
        raw: the hooked layer's output in its own layout, or None without a layer.
        activation: ``raw`` as an fp32 grid ``[B, C, h, w]``, detached, or None.
        autocast: a context manager factory for further forward passes.
    """

    def __init__(self, method: CamMethod, images, logits, raw, autocast):
        self.method = method
        self.images = images
        self.logits = logits
        self.targets: torch.Tensor | None = None
        self.raw = raw
        self.autocast = autocast
        self.activation = None if raw is None else method.to_grid(raw.detach(), images).float()

    def maps(
        self, targets: torch.Tensor, compute: Callable[[ForwardPass], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Maps ``[B, K, ...]`` (fp32, detached) for model classes ``targets [B, K]``
        (``-1`` pads, whose maps are zero). ``compute`` replaces the method's own
        :meth:`CamMethod.compute` (for attributions that keep the colour channels)."""
        b = self.images.shape[0]
        tgt = torch.as_tensor(targets).to(self.logits.device, torch.long)
        if tgt.ndim != 2 or tgt.shape[0] != b:
            raise ValueError(f"targets must be [B, K] with B={b}, got {tuple(tgt.shape)}")
        if tgt.numel() and int(tgt.max()) >= self.logits.shape[1]:
            raise ValueError(
                f"target class {int(tgt.max())} is out of range for "
                f"{self.logits.shape[1]} model classes"
            )
        self.targets = tgt
        if tgt.shape[1]:
            out = (compute or self.method.compute)(self).float()
        else:
            hw = self.images.shape[-2:] if self.method.pixel_level else self.activation.shape[-2:]
            out = self.images.new_zeros((b, 0, *hw), dtype=torch.float32)
        valid = (tgt >= 0).view(*tgt.shape, *[1] * (out.ndim - 2))
        return torch.where(valid, out, torch.zeros_like(out)).detach()

    def score(self, j: int) -> torch.Tensor:
        """The summed pre-softmax scores ``sum_b y_b^{c_bj}`` of target column ``j``.

        Images are independent in eval mode, so one gradient of this sum gives every
        image its own ``dy^c/d.`` at once. Padded targets use class 0; their maps are
        zeroed by the caller.
        """
        t = self.targets[:, j].clamp(min=0)
        return self.logits.gather(1, t[:, None]).sum()

    def layer_grad(self, j: int) -> torch.Tensor:
        """``dy^c/dA`` for target column ``j`` as an fp32 grid ``[B, C, h, w]``."""
        (grad,) = torch.autograd.grad(self.score(j), self.raw, retain_graph=True)
        return self.method.to_grid(grad, self.images).float()

    def input_grad(self, j: int) -> torch.Tensor:
        """``dy^c/dx`` for target column ``j``, fp32 ``[B, 3, H, W]``."""
        (grad,) = torch.autograd.grad(self.score(j), self.images, retain_graph=True)
        return grad.float()


class CamMethod:
    """Base class: subclasses set the class attributes and implement :meth:`map`.

    Attributes:
        name: registry name.
        needs_gradients: whether the method needs gradients at all.
        input_gradients: whether it needs ``dy/dx`` (pixel-level methods); the hooked
            layer then stays in the graph instead of becoming a leaf.
        layer_kind: ``"target"`` hooks the spec's (or the user's) target layer;
            ``"cam"`` the layer that feeds global average pooling; ``None`` no layer.
        pixel_level: whether maps come at input resolution (picture-like saliency).
        rectify: whether the map goes through a final ReLU (every reference does).
        reshape: optional function from the hooked output to ``[B, C, h, w]``; by default
            4-D outputs are taken as NCHW (NHWC for timm models whose ``output_fmt`` says
            so, such as Swin) and 3-D token outputs ``[B, N, C]`` (vision transformers)
            are laid out by :func:`tokens_to_grid`.
    """

    name: str = ""
    needs_gradients: bool = True
    input_gradients: bool = False
    layer_kind: str | None = "target"
    pixel_level: bool = False
    rectify: bool = True

    def __init__(self, spec: ModelSpec, layer: str | None = None):
        self.spec = spec
        self.reshape: Reshape | None = None
        self.layer = self._pick_layer(layer)
        if self.layer:
            resolve_module(spec.net, self.layer)

    def _pick_layer(self, layer: str | None) -> str | None:
        if self.layer_kind is None:
            return None
        default = self.spec.cam_layer if self.layer_kind == "cam" else self.spec.target_layer
        chosen = layer or default
        if not chosen:
            raise CamError(
                f"{self.name}: no default target layer is known for "
                f"{type(self.spec.net).__name__}; set model.target_layer to the dotted name "
                f"of a conv layer of this model, e.g. "
                f"{' or '.join(map(repr, conv_stages(self.spec.net)))}"
            )
        return chosen

    def to_grid(self, t: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The hooked layer's output (or its gradient) as ``[B, C, h, w]``."""
        if self.reshape is not None:
            return self.reshape(t)
        if t.ndim == 4:
            # timm models that work channels-last (Swin) say so; their stages are NHWC.
            nhwc = str(getattr(self.spec.net, "output_fmt", "")).endswith("NHWC")
            return t.permute(0, 3, 1, 2) if nhwc else t
        if t.ndim == 3:
            prefix = getattr(self.spec.net, "num_prefix_tokens", None)
            return tokens_to_grid(t, tuple(images.shape[-2:]), prefix)
        raise CamError(
            f"layer {self.layer!r} gives a {t.ndim}-D output {tuple(t.shape)}; "
            "hook a conv layer or set the method's reshape function"
        )

    def map(
        self, activation: torch.Tensor, grad: torch.Tensor | None, target: torch.Tensor
    ) -> torch.Tensor:
        """Map ``[B, h, w]`` for model classes ``target [B]`` from ``A [B, C, h, w]``
        and, for gradient methods, ``dy^c/dA`` of the same shape (both fp32)."""
        raise NotImplementedError

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        """Maps ``[B, K, h, w]`` (fp32) for every target column of the pass."""
        maps = []
        for j in range(fp.targets.shape[1]):
            grad = fp.layer_grad(j) if self.needs_gradients else None
            maps.append(self.map(fp.activation, grad, fp.targets[:, j].clamp(min=0)))
        return torch.stack(maps, 1)

    def hooks(self, stack: contextlib.ExitStack) -> None:
        """Enter any extra context (hooks) the method needs around the forward pass."""

    def __call__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor | TargetFn,
        autocast_dtype: torch.dtype | None = None,
    ) -> CamOutput:
        """Run one forward over ``images [B, 3, H, W]`` and compute K maps per image.

        ``targets`` is ``[B, K]`` model class indices (``-1`` pads), or a function of the
        logits ``[B, C]`` (fp32, detached) that returns them, used to pick predicted
        classes. ``autocast_dtype`` (``torch.bfloat16`` or ``torch.float16``) runs the
        forward passes under autocast; maps are always computed in fp32.
        """
        with self.forward(images, autocast_dtype) as fp:
            logits = fp.logits.detach().float()
            maps = fp.maps(targets(logits) if callable(targets) else targets)
        return CamOutput(maps=maps, logits=logits, targets=fp.targets)

    @contextlib.contextmanager
    def forward(
        self, images: torch.Tensor, autocast_dtype: torch.dtype | None = None
    ) -> Iterator[ForwardPass]:
        """The forward pass of ``images [B, 3, H, W]`` and its context (eval mode, frozen
        parameters, hooks, autocast), held open while the caller picks targets from
        ``ForwardPass.logits`` and asks for ``ForwardPass.maps``; all undone on exit."""
        net = self.spec.net

        def autocast():
            if autocast_dtype is None:
                return contextlib.nullcontext()
            return torch.autocast(images.device.type, dtype=autocast_dtype)

        with contextlib.ExitStack() as stack:
            stack.enter_context(frozen_model(net))
            # A subclass's hooks go first: where one replaces a module's output (the ReLU
            # rules), the activation hook on the same module must see the replacement.
            self.hooks(stack)
            store = None
            if self.layer:
                store = stack.enter_context(
                    hooked_activation(
                        net, self.layer, self.needs_gradients, detach=not self.input_gradients
                    )
                )
            stack.enter_context(torch.set_grad_enabled(self.needs_gradients))
            x = images.detach().requires_grad_(True) if self.input_gradients else images
            with autocast():
                logits = net(x)
            raw = None
            if store is not None:
                raw = store.activation
                if raw is None:
                    raise CamError(f"layer {self.layer!r} was not reached by the forward pass")
                store.active = False
            yield ForwardPass(self, x, logits, raw, autocast)
