"""Canvases: maps of many image sizes on one padded tensor, and the device stage on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsol.localize.canvas import PAD, plan_canvases
from wsol.localize.maps import (
    MAP_OK,
    device_maps,
    minmax_normalize,
    normalized_threshold,
    prepare_maps,
)


def test_a_plan_covers_each_image_once_with_bounded_padding():
    rng = np.random.default_rng(0)
    common = [(375, 500), (500, 375), (333, 500), (500, 333), (281, 500), (500, 500)]
    for _ in range(50):
        n = int(rng.integers(1, 40))
        sizes = [common[i] for i in rng.integers(0, len(common), n)]
        if rng.random() < 0.3:
            sizes[int(rng.integers(0, n))] = (3000, 4000)  # an outlier
        plans = plan_canvases(sizes)
        assert sorted(i for p in plans for i in p) == list(range(n))
        for p in plans:
            h = max(sizes[i][0] for i in p)
            w = max(sizes[i][1] for i in p)
            used = sum(sizes[i][0] * sizes[i][1] for i in p)
            assert h * w * len(p) <= 1.5 * used
        # images of one size share a canvas, and stand together in it
        for s in set(sizes):
            (where,) = {k for k, p in enumerate(plans) if any(sizes[i] == s for i in p)}
            pos = [j for j, i in enumerate(plans[where]) if sizes[i] == s]
            assert pos == list(range(pos[0], pos[0] + len(pos)))
        assert plans == plan_canvases(sizes)  # deterministic


def test_an_outlier_gets_its_own_canvas_and_one_size_needs_one():
    sizes = [(375, 500)] * 10 + [(3000, 4000)]
    assert plan_canvases(sizes) == [[10], list(range(10))]
    assert plan_canvases([(375, 500)] * 4) == [[0, 1, 2, 3]]
    # portrait and landscape VOC photos share a 500 x 500 canvas (a third is padding)
    assert plan_canvases([(375, 500), (500, 375)]) == [[1, 0]]  # equal areas: taller first


@pytest.mark.parametrize("mode", ["fraction", "absolute", "otsu"])
def test_device_maps_put_each_images_maps_in_its_corner(mode):
    torch.manual_seed(0)
    sizes = [(30, 40), (40, 30), (30, 40), (12, 9), (40, 30)]
    maps = torch.rand(5, 2, 4, 5)
    maps[3, 1] = 2.0  # constant: flagged, zeros
    tau = torch.rand(5, 2, dtype=torch.float64) if mode == "absolute" else 0.3
    canvases = device_maps(maps, sizes, mode, tau)
    assert sorted(i for c in canvases for i in c.index) == list(range(5))
    for c in canvases:
        for j, (i, (h, w)) in enumerate(zip(c.index, c.sizes, strict=True)):
            assert (h, w) == sizes[i]
            up = F.interpolate(maps[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)
            norm, lo, hi, _ = minmax_normalize(up[0])
            t = tau[i] if isinstance(tau, torch.Tensor) else tau
            cuts = normalized_threshold(mode, t, lo, hi, norm)
            for k in range(2):
                if c.problems[j, k] != MAP_OK:
                    assert (c.norm[j, k, :h, :w] == 0).all()
                    continue
                assert torch.equal(c.norm[j, k, :h, :w], norm[k])
                assert c.cuts[j, k] == cuts[k]
            outside = torch.ones(c.norm.shape[-2:], dtype=torch.bool)
            outside[:h, :w] = False
            assert (c.norm[j][:, outside] == PAD).all()
    assert [p.norm.shape for p in prepare_maps(maps, sizes, mode, tau)] == [(2, *s) for s in sizes]
