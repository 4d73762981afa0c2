"""Grad-CAM and relatives: maps from the activation ``A`` and its gradient at the target layer.

Each method is one formula over ``A, g = dy^c/dA``, both ``[B, C, h, w]`` fp32, where
``y^c`` is the pre-softmax score. Every map is rectified (``ReLU``) as in the papers and in
pytorch-grad-cam, whose definitions these match (tests pin them to it at 1e-4 after
min-max normalization).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod


def weighted_sum(weights: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """``sum_k w_k A^k``: channel weights ``[B, C]`` (or ``[B, C, h, w]``) times
    ``A [B, C, h, w]``, summed over channels -> ``[B, h, w]``."""
    if weights.ndim == 2:
        return torch.einsum("bc,bchw->bhw", weights, activation)
    return (weights * activation).sum(1)


def grad_cam(activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Grad-CAM before the ReLU: ``sum_k mean_ij(g^k) A^k`` -> ``[B, h, w]``."""
    return weighted_sum(grad.mean(dim=(2, 3)), activation)


class _Rectified(CamMethod):
    def map(self, activation, grad, target):
        m = self.raw_map(activation, grad)
        return F.relu(m) if self.rectify else m

    def raw_map(self, activation: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class GradCAM(_Rectified):
    """Grad-CAM (Selvaraju et al., ICCV 2017).

    ``alpha_k^c = mean_ij g_ij^k`` and ``L^c = ReLU(sum_k alpha_k^c A^k)``. For a GAP +
    linear head at the pooled layer this is CAM times the positive factor ``1 / (h w)``.
    """

    name = "gradcam"

    def raw_map(self, activation, grad):
        return grad_cam(activation, grad)


class GradCAMPlusPlus(_Rectified):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, eq. 19).

    ``a_ij^k = g^2 / (2 g^2 + (sum_ab A_ab^k) g^3)``, set to 0 where ``g = 0``;
    ``w_k = sum_ij a_ij^k ReLU(g_ij^k)``; ``L = ReLU(sum_k w_k A^k)``. The higher-order
    derivatives are the powers of ``g`` that the paper derives for an exponential of the
    score; like the paper's code and pytorch-grad-cam, ``g`` is the gradient of the raw
    score. The denominator carries ``+1e-6`` (pytorch-grad-cam's value) against 0/0.
    """

    name = "gradcampp"

    def raw_map(self, activation, grad):
        g2 = grad.pow(2)
        g3 = g2 * grad
        a_sum = activation.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + a_sum * g3 + 1e-6)
        alpha = torch.where(grad != 0, alpha, torch.zeros_like(alpha))
        return weighted_sum((alpha * F.relu(grad)).sum(dim=(2, 3)), activation)


class XGradCAM(_Rectified):
    """XGrad-CAM (Fu et al., BMVC 2020).

    ``w_k = sum_ij (A_ij^k / sum_ab A_ab^k) g_ij^k`` and ``L = ReLU(sum_k w_k A^k)``,
    with ``+1e-7`` on the denominator (pytorch-grad-cam's value) for all-zero channels.
    """

    name = "xgradcam"

    def raw_map(self, activation, grad):
        a_sum = activation.sum(dim=(2, 3), keepdim=True)
        return weighted_sum((grad * activation / (a_sum + 1e-7)).sum(dim=(2, 3)), activation)


class LayerCAM(_Rectified):
    """LayerCAM (Jiang et al., IEEE TIP 2021, eq. 4-5).

    Spatial weights instead of channel weights: ``L = ReLU(sum_k ReLU(g^k) * A^k)``
    (elementwise). The paper's extra ``tanh`` scaling is for fusing shallow layers and
    is not part of the single-layer map (pytorch-grad-cam omits it too).
    """

    name = "layercam"

    def raw_map(self, activation, grad):
        return weighted_sum(F.relu(grad), activation)


class HiResCAM(_Rectified):
    """HiResCAM (Draelos & Carin, 2020, arXiv:2011.08891).

    ``L = ReLU(sum_k g^k * A^k)`` (elementwise, no averaging of the gradient). The paper
    leaves the final ReLU optional; it is applied here as in pytorch-grad-cam.
    """

    name = "hirescam"

    def raw_map(self, activation, grad):
        return weighted_sum(grad, activation)
