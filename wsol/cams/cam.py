"""Class activation mapping from the classifier's own weights (no gradients)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsol.cams.base import CamMethod
from wsol.models import resolve_module


class CAM(CamMethod):
    """CAM (Zhou et al., CVPR 2016): ``M_c = ReLU(sum_k w_k^c A^k)``.

    ``A`` is the layer that feeds global average pooling and ``w^c`` the row of the
    linear classifier for class ``c``. The ReLU (absent in the paper's formula) keeps
    CAM equal to Grad-CAM up to a positive scale, and only clips what min-max
    normalization would map near zero anyway.
    """

    name = "cam"
    needs_gradients = False
    layer_kind = "cam"

    def __init__(self, spec, layer=None):
        super().__init__(spec, layer)
        if not spec.fc_layer:
            raise ValueError(
                f"cam needs a global-average-pooling + linear head; {type(spec.net).__name__} "
                "has none known. Use a gradient method such as gradcam"
            )
        fc = resolve_module(spec.net, spec.fc_layer)
        if not isinstance(fc, nn.Linear):
            raise ValueError(f"cam: {spec.fc_layer!r} is a {type(fc).__name__}, not nn.Linear")
        self.fc = fc

    def map(self, activation, grad, target):
        w = self.fc.weight.detach().float()[target]  # [B, C]
        if w.shape[1] != activation.shape[1]:
            raise ValueError(
                f"cam: layer {self.layer!r} has {activation.shape[1]} channels but the "
                f"classifier expects {w.shape[1]}"
            )
        return F.relu(torch.einsum("bc,bchw->bhw", w, activation))
