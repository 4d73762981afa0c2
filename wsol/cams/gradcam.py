"""Grad-CAM and relatives: channel weights from the gradient at the target layer."""

from __future__ import annotations

import torch.nn.functional as F

from wsol.cams.base import CamMethod


class GradCAM(CamMethod):
    """Grad-CAM (Selvaraju et al., ICCV 2017).

    ``alpha_k^c = mean_ij dy^c / dA_ij^k`` and ``L^c = ReLU(sum_k alpha_k^c A^k)``, where
    ``y^c`` is the pre-softmax score. For a GAP + linear head at the pooled layer this
    is CAM up to the positive factor ``1 / (h w)``.
    """

    name = "gradcam"

    def map(self, activation, grad, target):
        alpha = grad.mean(dim=(2, 3), keepdim=True)
        return F.relu((alpha * activation).sum(1))
