"""Score-CAM: channel weights from forward passes of the input masked by each channel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.cams.base import CamMethod, ForwardPass
from wsol.cams.gradcam import weighted_sum
from wsol.errors import UsageError
from wsol.models import ModelSpec


def check_score_channels(n: object) -> int:
    """``n`` as Score-CAM's channel budget: an int >= 0 (0: every channel)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UsageError(
            f"score_channels must be an integer >= 0 (0: every channel, the paper's "
            f"method; N: the N channels of highest spatial variance), got {n!r}"
        )
    return n


def top_variance_channels(activation: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` channels of each image with the largest spatial variance of
    ``A [B, C, h, w]`` (population variance over the ``h w`` cells), ``[B, n]`` in
    decreasing variance; ties go to the lower channel index."""
    var = activation.flatten(2).var(dim=2, correction=0)
    return var.argsort(dim=1, descending=True, stable=True)[:, :n]


class ScoreCAM(CamMethod):
    """Score-CAM (Wang et al., CVPR Workshops 2020), optionally on a channel budget.

    Each channel ``A^k [h, w]`` is upsampled to the input size and min-max normalized to
    a mask ``H^k = (up(A^k) - min) / (max - min + 1e-8)`` (a constant channel gives an
    all-zero mask). The masked input ``X * H^k`` is scored by the network,
    ``w^c = softmax_k(y^c(X * H^k))`` and ``L^c = ReLU(sum_k w_k^c A^k)``. The paper's
    baseline score ``y^c(X_b)`` is the same for every ``k``, and softmax is invariant to
    it, so it is not computed.

    Channel budget (``score_channels``, config ``cam.score_channels``): ``0`` (the
    default) scores every channel, the paper's method. ``N > 0`` scores, per image, only
    the ``N`` channels whose activation ``A^k`` has the largest spatial variance (over
    the ``h w`` cells of the target layer, before upsampling; ties to the lower channel
    index), as "Faster Score-CAM" in the Score-CAM authors' repository does: the softmax
    runs over those ``N`` scores only, and every other channel gets weight 0.
    ``N >= C`` is every channel, the same maps as ``0``. The cost drops from ``C`` to
    ``min(N, C)`` masked passes per image.

    Cost: ``B * min(N, C)`` extra forward passes, batched across images and channels,
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

    def __init__(self, spec: ModelSpec, layer: str | None = None, score_channels: int = 0):
        super().__init__(spec, layer)
        self.score_channels = score_channels

    @property
    def score_channels(self) -> int:
        """The channel budget: 0 every channel, ``N > 0`` the top-``N`` by variance."""
        return self._score_channels

    @score_channels.setter
    def score_channels(self, n: int) -> None:
        self._score_channels = check_score_channels(n)

    def compute(self, fp: ForwardPass) -> torch.Tensor:
        a = fp.activation  # [B, C, h, w]
        b, c = a.shape[:2]
        size = tuple(fp.images.shape[-2:])
        t = fp.targets.clamp(min=0)  # [B, K]
        n = min(self.score_channels, c) or c  # 0: every channel
        keep = None if n == c else top_variance_channels(a, n)  # [B, n]
        chosen = a
        if keep is not None:
            chosen = a.gather(1, keep[:, :, None, None].expand(-1, -1, *a.shape[2:]))
        channels = chosen.flatten(0, 1)[:, None]  # [B*n, 1, h, w], image-major
        owner = torch.arange(b, device=a.device).repeat_interleave(n)
        scores = a.new_empty(b * n, t.shape[1])
        for s in range(0, b * n, self.chunk_size):
            e = min(s + self.chunk_size, b * n)
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
        weights = torch.softmax(scores.view(b, n, -1), dim=1)  # [B, n, K], over the n scored
        if keep is not None:  # the unscored channels weigh 0
            k = t.shape[1]
            weights = a.new_zeros(b, c, k).scatter(1, keep[:, :, None].expand(-1, -1, k), weights)
        maps = torch.stack([weighted_sum(weights[:, :, j], a) for j in range(t.shape[1])], 1)
        return F.relu(maps) if self.rectify else maps
