"""Test-time views: each image at several scales, and mirrored, with their maps fused.

CAMs are coarse (7 x 7 for a 224 px input to most ImageNet networks) and depend on the
input size. The classic remedy of the CAM literature is to compute the maps of the same
classes over several scales and a horizontal flip and fuse them. Here the loader gives
every image at the largest scale; each view is made from it on the device (bilinear,
antialiased when shrinking), the flip of a mirrored view's map is undone, every map is
resampled to the finest grid among the views and divided by its own maximum (so no view
dominates by magnitude), and the maps are fused by their mean (or maximum). The class
probabilities (which classes get a map, and the box scores) are not the views': they come
from the model's own input size, unmirrored, so a score means the same at any scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wsol.errors import UsageError, unknown_choice

FUSE_MODES = ("mean", "max")


@dataclass(frozen=True)
class Views:
    """``scales`` relative to the model's input size, ``flip`` adds a mirrored view of
    each, ``fuse`` is ``mean`` or ``max``. The views make the maps only: the target
    classes and the box scores come from the model's own input size, unmirrored, whatever
    the views (:meth:`wsol.localize.Localizer.class_logits`)."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    fuse: str = "mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or not all(0.0 < s <= 8.0 for s in self.scales):
            raise UsageError(
                f"scales must be a non-empty list of numbers in (0, 8], got {list(self.scales)}"
            )
        if self.fuse not in FUSE_MODES:
            raise UsageError(unknown_choice("fuse", self.fuse, FUSE_MODES))

    @property
    def single(self) -> bool:
        """Whether there is one view only (nothing to fuse)."""
        return len(self.scales) == 1 and not self.flip

    def input_size(self, base: Sequence[int]) -> tuple[int, int]:
        """The size the loader gives: ``base (H, W)`` at the largest scale."""
        return scaled(base, max(self.scales))

    def all(self, base: Sequence[int]) -> list[tuple[tuple[int, int], bool]]:
        """Every view as ``(input size, mirrored)``: the scales in order, then their
        mirrored copies."""
        out = [(scaled(base, s), False) for s in self.scales]
        if self.flip:
            out += [(size, True) for size, _ in out]
        return out


def scaled(base: Sequence[int], scale: float) -> tuple[int, int]:
    return max(1, round(base[0] * scale)), max(1, round(base[1] * scale))


def view_input(x: torch.Tensor, size: tuple[int, int], mirrored: bool) -> torch.Tensor:
    """The batch ``x [B, 3, H, W]`` resized to ``size`` and mirrored if asked."""
    if tuple(x.shape[-2:]) != tuple(size):
        shrink = size[0] < x.shape[-2]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return x.flip(-1) if mirrored else x


def fuse_maps(maps: list[torch.Tensor], mirrored: list[bool], mode: str = "mean") -> torch.Tensor:
    """Fuse the maps ``[B, K, h_v, w_v]`` of every view into ``[B, K, h, w]`` on the
    finest grid: mirrored views are flipped back, each map is divided by its maximum
    (all-zero maps stay zero; NaN stays NaN, so a broken view is still flagged), then
    ``mean`` or ``max`` over the views."""
    h = max(m.shape[-2] for m in maps)
    w = max(m.shape[-1] for m in maps)
    aligned = []
    for m, flip in zip(maps, mirrored, strict=True):
        m = m.float().flip(-1) if flip else m.float()
        if tuple(m.shape[-2:]) != (h, w):
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        peak = m.amax(dim=(-2, -1), keepdim=True)
        aligned.append(m / torch.where(peak > 0, peak, torch.ones_like(peak)))
    stacked = torch.stack(aligned)
    return stacked.mean(0) if mode == "mean" else stacked.amax(0)
