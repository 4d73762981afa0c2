"""Maps of images of different sizes on one padded tensor: a canvas.

A batch of real photos holds many sizes (the VOC sample has 23 in 100 images). Each size
needs its own upsampling call, but what follows (cut masks, labelling, boxes, sweep
levels, the copy to the host) need not run once per size: the upsampled, normalized
maps of several sizes are laid on one canvas ``[G, K, H, W]``, each image's maps in the
top-left ``h x w`` corner and ``-inf`` around them. ``-inf`` is below every cut, so the
padding is in no region, no component and no level, and a box in canvas pixels is the
box in the image's pixels.

Padding costs memory and work, so images are grouped (:func:`plan_canvases`) so that a
canvas wastes a bounded share of its pixels: a 4000 x 3000 photo does not get a canvas
of its own size for 255 photos of 500 x 375.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

PAD = float("-inf")
# A canvas may hold up to this share of padding: (1 + MAX_PADDING) x the images' pixels.
MAX_PADDING = 0.5


def plan_canvases(
    sizes: Sequence[tuple[int, int]], max_padding: float = MAX_PADDING
) -> list[list[int]]:
    """Image positions grouped into canvases, each canvas's list grouped by size.

    Distinct sizes are taken largest area first (ties by height, then width, then first
    position); a size joins the open canvas when the canvas, grown to fit it, holds at
    most ``(1 + max_padding)`` times the pixels of its images, else it opens a new one.
    Images of one size always share a canvas. Deterministic: the same sizes give the
    same plan.
    """
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (h, w) in enumerate(sizes):
        by_size.setdefault((int(h), int(w)), []).append(i)
    order = sorted(by_size.items(), key=lambda kv: (-kv[0][0] * kv[0][1], -kv[0][0], -kv[0][1]))
    plans: list[list[int]] = []
    height = width = pixels = 0
    for (h, w), idx in order:
        grown_h, grown_w = max(height, h), max(width, w)
        count = (len(plans[-1]) if plans else 0) + len(idx)
        used = pixels + h * w * len(idx)
        if plans and grown_h * grown_w * count <= (1.0 + max_padding) * used:
            plans[-1].extend(idx)
            height, width, pixels = grown_h, grown_w, used
        else:
            plans.append(list(idx))
            height, width, pixels = h, w, h * w * len(idx)
    return plans


@dataclass
class Canvas:
    """The device stage's output for some of a batch's images, on the device.

    ``index``: the batch positions of its images, in canvas order; ``sizes``: their
    ``(h, w)``; ``norm [G, K, H, W]`` float32: their min-max normalized maps, each in its
    top-left ``h x w`` corner, :data:`PAD` elsewhere (flagged maps are zeros); ``cuts
    [G, K]`` float64; ``problems [G, K]`` int64 (``MAP_OK`` or the index of the reason in
    :data:`wsol.localize.maps.MAP_REASONS`).
    """

    index: list[int]
    sizes: list[tuple[int, int]]
    norm: torch.Tensor
    cuts: torch.Tensor
    problems: torch.Tensor

    @property
    def padded(self) -> bool:
        """Whether some image is smaller than the canvas."""
        return any(tuple(s) != tuple(self.norm.shape[-2:]) for s in self.sizes)
