"""Class activation mapping from the classifier's own weights (no gradients)."""

from __future__ import annotations

import contextlib
import logging

import torch
import torch.nn.functional as F
from torch import nn

from wsol.cams.base import CamMethod, ForwardPass
from wsol.cams.gradcam import weighted_sum
from wsol.cams.hooks import CamError
from wsol.models import resolve_module

logger = logging.getLogger(__name__)


class CAM(CamMethod):
    """CAM (Zhou et al., CVPR 2016): ``M_c = ReLU(sum_k w_k^c P^k)``.

    ``P [B, C, h, w]`` is the tensor that global average pooling turns into the
    classifier's input and ``w^c`` the linear classifier's row for class ``c`` (no bias,
    as in the paper). The ReLU (absent from the paper's formula) keeps CAM equal to
    Grad-CAM at the pooled layer up to the positive factor ``h w``.

    Conv-classifier heads (SqueezeNet: 1x1 conv to the classes, ReLU, average pooling)
    have the class maps before pooling: with ``fc_layer`` a ``Conv2d`` that is also the
    CAM layer, ``M_c`` is channel ``c`` of ``P``.

    ``P`` is checked on every batch: its spatial mean must equal the classifier's input
    (the logits for conv heads). ``P`` is the hooked layer's output, or its ReLU when the
    network rectifies between the layer and the pooling with a functional ``relu`` that
    no hook can see (torchvision DenseNet). Any other layer raises, so CAM is never
    silently computed on a layer that does not feed the pooling.

    The layer is always the spec's ``cam_layer``: ``model.target_layer`` names the layer
    of the gradient methods and does not apply here.
    """

    name = "cam"
    needs_gradients = False
    layer_kind = "cam"

    def __init__(self, spec, layer=None):
        if layer and layer != spec.cam_layer:
            logger.info(
                "cam hooks the pooled layer %r, not the target layer %r", spec.cam_layer, layer
            )
        if not (spec.fc_layer and spec.cam_layer):
            raise CamError(
                f"cam needs a global-average-pooling + linear (or 1x1 conv) head; "
                f"{type(spec.net).__name__} has none known. Use a gradient method such as "
                "gradcam"
            )
        super().__init__(spec, None)
        fc = resolve_module(spec.net, spec.fc_layer)
        if isinstance(fc, nn.Conv2d):
            if spec.fc_layer != self.layer or fc.kernel_size != (1, 1):
                raise CamError(
                    f"cam: conv classifier {spec.fc_layer!r} must be a 1x1 conv "
                    "and the CAM layer itself"
                )
        elif not isinstance(fc, nn.Linear):
            raise CamError(
                f"cam: {spec.fc_layer!r} is a {type(fc).__name__}, not a Linear or 1x1 Conv2d"
            )
        self.fc = fc
        self._fc_input: torch.Tensor | None = None

    def hooks(self, stack: contextlib.ExitStack) -> None:
        if isinstance(self.fc, nn.Linear):

            def grab(_module, inputs):
                self._fc_input = inputs[0].detach()

            handle = self.fc.register_forward_pre_hook(grab)
            stack.callback(handle.remove)
            stack.callback(setattr, self, "_fc_input", None)

    def pooled(self, fp: ForwardPass) -> torch.Tensor:
        """``P [B, C, h, w]``: the hooked activation or its ReLU, whichever the pooling
        saw (see the class docstring)."""
        a = fp.activation
        ref = fp.logits if isinstance(self.fc, nn.Conv2d) else self._fc_input
        if ref is None:
            raise RuntimeError(f"cam: classifier {self.spec.fc_layer!r} was not reached")
        # Pooling in half precision (autocast) rounds to ~3 significant digits.
        rel = 1e-3 if fp.raw.dtype == ref.dtype == torch.float32 else 3e-2
        ref = ref.float().flatten(1)
        if ref.shape != a.shape[:2]:
            raise CamError(
                f"cam: layer {self.layer!r} has {a.shape[1]} channels but the "
                f"classifier takes {ref.shape[1]}"
            )
        tol = rel * (float(ref.abs().max()) + 1e-6)
        for candidate in (a, F.relu(a)):
            if float((candidate.mean(dim=(2, 3)) - ref).abs().max()) <= tol:
                return candidate
        raise CamError(
            f"cam: the classifier's input is not the global average of layer "
            f"{self.layer!r}; CAM needs the layer that feeds global average pooling. "
            "Use a gradient method such as gradcam"
        )

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        p = self.pooled(fp)
        t = fp.targets.clamp(min=0)  # [B, K]
        if isinstance(self.fc, nn.Conv2d):
            maps = p.gather(1, t[:, :, None, None].expand(-1, -1, *p.shape[2:]))
        else:
            w = self.fc.weight.detach().float()
            maps = torch.stack([weighted_sum(w[t[:, j]], p) for j in range(t.shape[1])], 1)
        return F.relu(maps) if self.rectify else maps
