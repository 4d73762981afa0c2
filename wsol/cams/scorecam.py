"""Score-CAM: channel weights from forward passes of the input masked by each channel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod, ForwardPass
from wsol.cams.gradcam import weighted_sum


class ScoreCAM(CamMethod):
    """Score-CAM (Wang et al., CVPR Workshops 2020).

    Each channel ``A^k [h, w]`` is upsampled to the input size and min-max normalized to
    a mask ``H^k = (up(A^k) - min) / (max - min + 1e-8)`` (a constant channel gives an
    all-zero mask). The masked input ``X * H^k`` is scored by the network,
    ``w^c = softmax_k(y^c(X * H^k))`` and ``L^c = ReLU(sum_k w_k^c A^k)``. The paper's
    baseline score ``y^c(X_b)`` is the same for every ``k``, and softmax is invariant to
    it, so it is not computed.

    Cost: ``B * C`` extra forward passes, batched across images and channels,
    ``chunk_size`` masked inputs per pass (memory grows with it). All K targets of an
    image come from the same passes. They run under the same autocast as the main pass.

    Convention: ``align_corners`` of the bilinear upsampling. The paper's official code
    uses ``False`` (the default here, as in localization); pytorch-grad-cam uses
    ``nn.UpsamplingBilinear2d``, i.e. ``True``. With ``align_corners = True`` the maps
    match pytorch-grad-cam to 1e-4 after min-max normalization (tested).
    """

    name = "scorecam"
    needs_gradients = False
    chunk_size: int = 64
    align_corners: bool = False

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        a = fp.activation  # [B, C, h, w]
        b, c = a.shape[:2]
        size = tuple(fp.images.shape[-2:])
        t = fp.targets.clamp(min=0)  # [B, K]
        channels = a.flatten(0, 1)[:, None]  # [B*C, 1, h, w], image-major
        owner = torch.arange(b, device=a.device).repeat_interleave(c)
        scores = a.new_empty(b * c, t.shape[1])
        for s in range(0, b * c, self.chunk_size):
            e = min(s + self.chunk_size, b * c)
            m = F.interpolate(
                channels[s:e], size=size, mode="bilinear", align_corners=self.align_corners
            )
            lo = m.amin(dim=(2, 3), keepdim=True)
            hi = m.amax(dim=(2, 3), keepdim=True)
            m = (m - lo) / (hi - lo + 1e-8)
            idx = owner[s:e]
            with fp.autocast():
                logits = self.spec.net(fp.images[idx] * m.to(fp.images.dtype))
            scores[s:e] = logits.float().gather(1, t[idx])
        weights = torch.softmax(scores.view(b, c, -1), dim=1)  # [B, C, K]
        maps = torch.stack([weighted_sum(weights[:, :, j], a) for j in range(t.shape[1])], 1)
        return F.relu(maps) if self.rectify else maps
