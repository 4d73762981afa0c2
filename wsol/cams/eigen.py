"""Eigen-CAM: the first principal component of the target layer's activations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod, ForwardPass


class EigenCAM(CamMethod):
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020). Class-agnostic: every target of an
    image gets the same map, computed once.

    The activation is read as ``h w`` samples of ``C`` features, ``X [hw, C]``, centred
    per channel (as pytorch-grad-cam does), and projected on its first right singular
    vector ``v``: ``L = ReLU(X v)`` laid out as ``[h, w]``.

    Sign convention: an SVD fixes ``v`` only up to sign, and pytorch-grad-cam keeps
    whatever sign LAPACK returns, so its map (after its ReLU) is sometimes the
    complement of the salient region. Here ``v`` is flipped so that ``sum_k v_k > 0``,
    which is the same as making ``X v`` correlate positively with the channel-summed
    activation ``sum_k A^k``: the component points towards more activation, as the
    uncentred component of non-negative features in the paper does. The maps therefore
    equal pytorch-grad-cam's up to that sign: ``ReLU(s * P)`` for its projection ``P``
    and ``s = sign(<P, sum_k A^k>)`` (tested).
    """

    name = "eigencam"
    needs_gradients = False

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        a = torch.nan_to_num(fp.activation)
        b, _, h, w = a.shape
        x = a.flatten(2).transpose(1, 2)  # [B, hw, C]
        x = x - x.mean(dim=1, keepdim=True)
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        v = vh[:, 0]  # [B, C]
        sign = torch.where(v.sum(1) < 0, -1.0, 1.0).to(v)
        proj = (x @ (v * sign[:, None])[:, :, None]).view(b, 1, h, w)
        proj = F.relu(proj) if self.rectify else proj
        return proj.expand(-1, fp.targets.shape[1], -1, -1)
