"""Gradient visualizations: pixel-level maps from ``dy^c/dx`` with ReLU backward rules.

Vanilla gradients, deconvnet and guided backpropagation differ only in what the
backward pass of a ReLU lets through (Springenberg et al., ICLR 2015 workshop, fig. 1),
for ``y = ReLU(x)`` and incoming gradient ``g = dL/dy``:

- ``gradient``: ``g * 1[x > 0]`` (the true gradient);
- ``deconvnet``: ``ReLU(g)`` (the forward mask is ignored);
- ``guided``: ``ReLU(g) * 1[x > 0]``.

The rule is installed by :func:`relu_rule` on every ``nn.ReLU`` and ``nn.ReLU6`` module
(EfficientNet-Lite and MobileNet use ReLU6; a functional ``relu`` is not seen, as in
captum). Maps are ``[B, K, H, W]`` at the input resolution:
the gradient ``[B, 3, H, W]`` is reduced over colour channels by the maximum absolute
value, as in Simonyan et al. (ICLR 2014 workshop, sec. 3.1). Input gradients are the
one exception to "gradients stop at the target layer"; they still come from
``torch.autograd.grad`` with frozen parameters, so no parameter ``.grad`` is written.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from wsol.cams.base import CamMethod, CamOutput, ForwardPass, TargetFn
from wsol.cams.gradcam import grad_cam

RULES = ("gradient", "deconvnet", "guided")


class ReluRule:
    """The backward rule of the hooked ReLUs; ``mode`` is read when backward runs, so one
    forward pass can serve true gradients and guided ones."""

    def __init__(self, mode: str):
        if mode not in RULES:
            raise ValueError(f"unknown ReLU rule {mode!r}; valid: {', '.join(RULES)}")
        self.mode = mode


class _RuledReLU(torch.autograd.Function):
    """``ReLU(x)`` (capped at ``upper``: 6 for ``ReLU6``) forward; backward by
    ``rule.mode`` (see the module docstring), where the forward mask is the true
    derivative's, ``1[0 < x < upper]``."""

    @staticmethod
    def forward(ctx, x, rule, upper):
        ctx.rule, ctx.upper = rule, upper
        ctx.save_for_backward(x)
        return x.clamp(min=0) if upper == math.inf else x.clamp(0, upper)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        mode = ctx.rule.mode
        if mode == "deconvnet":
            return g.clamp(min=0), None, None
        passing = (x > 0) & (x < ctx.upper)
        out = torch.where(passing, g, torch.zeros_like(g))
        return (out.clamp(min=0) if mode == "guided" else out), None, None


@contextlib.contextmanager
def relu_rule(net: nn.Module, mode: str) -> Iterator[ReluRule]:
    """Route every ``nn.ReLU`` of ``net`` through :class:`_RuledReLU` inside the block.

    ``inplace`` is switched off meanwhile: a forward hook must see the ReLU's input
    unmodified to rebuild the output from it (deconvnet passes gradients where the
    input was negative, so the graph must bypass the original ReLU). Hooks and
    ``inplace`` flags are restored even if the block raises.
    """
    rule = ReluRule(mode)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU | nn.ReLU6)]
    flags = [(m, m.inplace) for m in relus]
    handles = []

    def hook(module, inputs, _output):
        upper = 6.0 if isinstance(module, nn.ReLU6) else math.inf
        return _RuledReLU.apply(inputs[0], rule, upper)

    try:
        for m in relus:
            m.inplace = False
            handles.append(m.register_forward_hook(hook))
        yield rule
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.inplace = flag


def reduce_channels(grad: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, H, W]``: the maximum absolute value over channels."""
    return grad.abs().amax(dim=1)


class _InputGradient(CamMethod):
    """``map = max_ch |R|`` for the input gradient ``R`` under the ReLU backward ``rule``."""

    needs_gradients = True
    input_gradients = True
    layer_kind = None
    pixel_level = True
    rule: str = "gradient"

    def hooks(self, stack: contextlib.ExitStack) -> None:
        if self.rule != "gradient":
            stack.enter_context(relu_rule(self.spec.net, self.rule))

    def signal(self, fp: ForwardPass, j: int) -> torch.Tensor:
        """``R [B, 3, H, W]`` (fp32) of target column ``j``."""
        return fp.input_grad(j)

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        return torch.stack(
            [reduce_channels(self.signal(fp, j)) for j in range(fp.targets.shape[1])], 1
        )

    def attributions(
        self,
        images: torch.Tensor,
        targets: torch.Tensor | TargetFn,
        autocast_dtype: torch.dtype | None = None,
    ) -> CamOutput:
        """Like calling the method, but ``maps`` keeps the colour channels:
        ``[B, K, 3, H, W]`` (for pictures of the gradient itself)."""

        def compute(fp: ForwardPass) -> torch.Tensor:
            return torch.stack([self.signal(fp, j) for j in range(fp.targets.shape[1])], 1)

        with self.forward(images, autocast_dtype) as fp:
            logits = fp.logits.detach().float()
            maps = fp.maps(targets(logits) if callable(targets) else targets, compute)
        return CamOutput(maps=maps, logits=logits, targets=fp.targets)


class Gradient(_InputGradient):
    """Vanilla gradient saliency (Simonyan et al., ICLR 2014 workshop):
    ``max_ch |dy^c/dx|``. Matches captum ``Saliency`` (tested before the reduction)."""

    name = "gradient"
    rule = "gradient"


class Deconvnet(_InputGradient):
    """Deconvnet (Zeiler & Fergus, ECCV 2014), as a gradient with the ReLU backward
    ``ReLU(g)`` (Springenberg et al. 2015): ``max_ch |R|`` for the resulting ``R``.
    Matches captum ``Deconvolution`` (tested before the channel reduction)."""

    name = "deconvnet"
    rule = "deconvnet"


class GuidedBackprop(_InputGradient):
    """Guided backpropagation (Springenberg et al., ICLR 2015 workshop): ReLU backward
    ``ReLU(g) * 1[x > 0]``, map ``max_ch |R|``. Matches captum ``GuidedBackprop``
    (tested before the channel reduction)."""

    name = "guided_backprop"
    rule = "guided"


class GuidedGradCAM(_InputGradient):
    """Guided Grad-CAM (Selvaraju et al., ICCV 2017): guided backprop times the Grad-CAM
    map bilinearly upsampled to the input, ``max_ch |R_guided * up(L_gradcam)|``.

    One forward pass serves both: the Grad-CAM gradient is taken with the true ReLU
    backward and the input gradient with the guided one (the rule is switched between
    the two backward passes). Grad-CAM is used as computed (rectified, not min-max
    normalized), so the normalized map does not depend on its scale; pytorch-grad-cam's
    example normalizes it to ``[0, 1]`` first, which also shifts it where its minimum
    is > 0. Matches captum ``GuidedGradCam`` with ``interpolate_mode="bilinear"``
    (tested; captum's default is nearest-neighbour upsampling).
    """

    name = "guided_gradcam"
    layer_kind = "target"
    rule = "guided"

    def hooks(self, stack: contextlib.ExitStack) -> None:
        self._rule = stack.enter_context(relu_rule(self.spec.net, "gradient"))
        stack.callback(setattr, self, "_rule", None)

    def signal(self, fp: ForwardPass, j: int) -> torch.Tensor:
        self._rule.mode = "gradient"
        cam = F.relu(grad_cam(fp.activation, fp.layer_grad(j)))
        up = F.interpolate(
            cam[:, None], size=tuple(fp.images.shape[-2:]), mode="bilinear", align_corners=False
        )
        self._rule.mode = "guided"
        return fp.input_grad(j) * up
