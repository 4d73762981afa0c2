"""The cut rule (wsol.localize.cut): ``norm >= cut`` in float64, whatever the library."""

from __future__ import annotations

import numpy as np
import torch

from wsol.localize.cut import (
    cut_mask,
    cut_masks,
    device_levels,
    float32_cuts,
    levels_dtype,
    levels_of,
)


def _near_cut_values(rng: np.random.Generator, cuts: np.ndarray) -> np.ndarray:
    """float32 values on and around each cut: its float32 neighbours, the values where
    a float32 comparison and a float64 one disagree."""
    down = cuts.astype(np.float32)
    vals = [down, np.nextafter(down, np.float32(1)), np.nextafter(down, np.float32(0))]
    vals.append(rng.random(200).astype(np.float32))
    return np.concatenate(vals).astype(np.float32)


def test_float32_ceiling_is_the_smallest_float32_not_below_the_cut():
    rng = np.random.default_rng(0)
    cuts = np.r_[rng.random(500), 0.29, 0.1, 0.0, 1.0, float(np.float32(0.3))]
    up = float32_cuts(cuts)
    assert up.dtype == np.float32
    assert np.all(up.astype(np.float64) >= cuts)
    below = np.nextafter(up, np.float32(-np.inf)).astype(np.float64)
    assert np.all(below < cuts)
    # 0.29 lies above its float32 rounding: the ceiling is the next float32 up
    assert float32_cuts(0.29) > np.float32(0.29)


def test_masks_are_the_float64_comparison_on_host_and_device():
    rng = np.random.default_rng(1)
    cuts = np.r_[rng.random(40), 0.29, 0.57, 0.1]
    values = _near_cut_values(rng, cuts)
    # NumPy 2 compares a float32 array with a Python float in float32: the trap the rule
    # exists for. At 0.29 the two disagree on float32(0.29).
    x = np.array([np.float32(0.29)])
    assert (x >= 0.29)[0] and not (x.astype(np.float64) >= 0.29)[0]
    for c in cuts:
        want = values.astype(np.float64) >= c
        np.testing.assert_array_equal(cut_mask(values, c), want)
        np.testing.assert_array_equal(cut_mask(values.astype(np.float64), c), want)
        got = cut_masks(torch.from_numpy(values).view(1, 1, -1), torch.tensor([c]))[0, 0]
        np.testing.assert_array_equal(got.numpy(), want)


def test_levels_count_the_thresholds_each_pixel_reaches():
    rng = np.random.default_rng(2)
    taus = np.round(np.arange(100) * 0.01, 12)
    values = _near_cut_values(rng, taus).reshape(1, -1)
    want = (values.astype(np.float64)[..., None] >= taus).sum(-1)
    levels = levels_of(values, taus)
    assert levels.dtype == np.uint8
    np.testing.assert_array_equal(levels, want)
    np.testing.assert_array_equal(levels_of(values.astype(np.float64), taus), want)
    dev = device_levels(torch.from_numpy(values), taus)
    assert dev.dtype == torch.uint8
    np.testing.assert_array_equal(dev.numpy(), want)
    # NaN and the canvas padding (-inf) reach no threshold
    odd = torch.tensor([[float("nan"), float("-inf"), 1.0]])
    assert device_levels(odd, taus).tolist() == [[0, 0, 100]]
    assert levels_of(odd.numpy(), taus).tolist() == [[0, 0, 100]]


def test_levels_type_grows_with_the_number_of_thresholds():
    assert levels_dtype(255) == np.uint8
    assert levels_dtype(256) == np.int16
    assert levels_dtype(40_000) == np.int32
    taus = np.arange(300) / 300
    x = torch.tensor([[0.5, 1.0]])
    assert device_levels(x, taus).dtype == torch.int16
    assert device_levels(x, taus).tolist() == [[151, 300]]
