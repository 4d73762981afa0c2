"""Batched components and boxes (wsol.localize.device_boxes) against the host path.

The host path (wsol.localize.components: cv2, one map at a time) is the reference: on the
same normalized maps and cuts, boxes, areas, label order and scores must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.localize.components import component_boxes, detect
from wsol.localize.device_boxes import (
    component_areas,
    component_stats,
    cut_masks,
    detect_largest,
    largest_boxes,
    largest_dense,
)
from wsol.localize.labelling import LABEL_BACKENDS, label_components
from wsol.localize.maps import minmax_normalize, normalized_threshold

HOST_BACKENDS = [b for b in LABEL_BACKENDS if b != "cupy"]


def _blob_maps(rng: np.random.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """``n`` maps ``[h, w]`` of a few Gaussian blobs plus noise, min-max normalized."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    maps = rng.random((n, h, w)) * 0.3
    for k in range(n):
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            s = rng.uniform(0.5, max(1.0, min(h, w) / 4))
            maps[k] += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / s**2)
    norm, *_ = minmax_normalize(torch.from_numpy(maps).float())
    return norm


def _cases(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Groups of same-size normalized maps ``[N, H, W]`` and float64 cuts ``[N]``: blobs
    at assorted cuts (fraction rule, pixel values exactly, empty regions, everything),
    sparse noise (many single pixels, many ties in area) and hand-made ties."""
    rng = np.random.default_rng(seed)
    groups = []
    for h, w in [(1, 1), (1, 9), (8, 1), (2, 2), (5, 7), (13, 17), (32, 24), (75, 100)]:
        norm = _blob_maps(rng, 6, h, w)
        flat = norm.reshape(6, -1)
        cuts = normalized_threshold(
            "fraction", torch.tensor(rng.uniform(0.1, 0.9, 6)), flat.amin(1), flat.amax(1)
        )
        pick = flat[torch.arange(6), torch.as_tensor(rng.integers(0, h * w, 6))].double()
        cuts[:2] = pick[:2]  # a cut equal to a pixel value keeps that pixel
        cuts[2] = 1.5  # empty region
        cuts[3] = 0.0  # everything
        groups.append((norm, cuts))
    for h, w in [(9, 9), (16, 21)]:
        sparse = torch.from_numpy(rng.random((8, h, w))).float()
        groups.append((sparse, torch.full((8,), 0.8, dtype=torch.float64)))
    # Equal-area components whose first pixels and first 2x2 blocks come in different
    # orders: cv2 labels the (1, 0) pixel before the (0, 3) one.
    tie = torch.zeros(3, 4, 6)
    tie[0, 1, 0] = tie[0, 0, 3] = 1.0
    tie[1, 1, 2] = tie[1, 0, 4] = tie[1, 3, 0] = 1.0
    tie[2, 0, 1] = tie[2, 1, 1] = tie[2, 1, 4] = tie[2, 0, 5] = 1.0
    groups.append((tie, torch.full((3,), 0.5, dtype=torch.float64)))
    return groups


def test_cases_cover_fifty_maps():
    assert sum(len(n) for n, _ in _cases()) >= 50


def test_cut_masks_matches_float64_comparison():
    x = torch.tensor([0.1, 0.2, 0.29, 0.3, 0.7], dtype=torch.float32)
    for c in [0.29, 0.1, float(np.float32(0.2)), np.nextafter(float(np.float32(0.3)), 1.0), 1.0]:
        host = x.numpy() >= np.float64(c)
        got = cut_masks(x.view(1, 1, 5), torch.tensor([c], dtype=torch.float64))[0, 0]
        np.testing.assert_array_equal(got.numpy(), host, err_msg=f"cut {c!r}")
    # 0.29 in float64 lies above its float32 rounding; a float32 comparison would keep it.
    assert float(np.float32(0.29)) < 0.29
    assert not cut_masks(torch.tensor([[[np.float32(0.29)]]]), 0.29).item()


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_labels_are_unique_across_masks(backend):
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, 0, 0] = True  # the same pixel in every mask: three components, not one
    masks[1, 2:, 2:] = True
    masks[2, 1, 1] = True  # touches (0, 0) diagonally: joins it
    labels, count = label_components(masks, backend)
    assert labels.dtype == torch.int32 and count == 4
    assert labels[0, 0, 0] != labels[1, 0, 0] != labels[2, 0, 0]
    assert labels[2, 1, 1] == labels[2, 0, 0]
    assert sorted(labels.unique().tolist()) == [0, 1, 2, 3, 4]
    assert torch.equal(labels > 0, masks)


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: cupy, cv2, scipy"):
        label_components(torch.zeros(1, 2, 2, dtype=torch.bool), "skimage")
    with pytest.raises(ValueError, match="CUDA"):
        label_components(torch.zeros(1, 2, 2, dtype=torch.bool), "cupy")


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_every_component_matches_host_in_cv2_order(backend):
    for norm, cuts in _cases():
        masks = cut_masks(norm, cuts)
        labels, count = label_components(masks, backend)
        stats = component_stats(labels, count, norm)
        index = stats["index"].numpy()
        assert np.all(np.diff(index) >= 0)
        for k in range(len(norm)):
            host_mask = norm[k].numpy() >= np.float64(cuts[k].item())
            np.testing.assert_array_equal(masks[k].numpy(), host_mask)
            boxes, areas, host_labels = component_boxes(host_mask)
            rows = index == k
            np.testing.assert_array_equal(stats["boxes"][rows].numpy(), boxes)
            np.testing.assert_array_equal(stats["area"][rows].numpy(), areas)
            flat = host_labels.ravel()
            values = norm[k].numpy().ravel()
            sums = np.bincount(flat, weights=values, minlength=len(areas) + 1)[1:]
            peak = np.zeros(len(areas) + 1)
            np.maximum.at(peak, flat, values)
            np.testing.assert_array_equal(stats["sum"][rows].numpy(), sums)
            np.testing.assert_array_equal(stats["max"][rows].numpy(), peak[1:])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("score", ["mean", "max"])
def test_largest_box_and_score_match_detect(backend, score):
    rng = np.random.default_rng(1)
    seen_empty = seen_tie = 0
    for norm, cuts in _cases():
        probs = torch.from_numpy(rng.random(len(norm))).float()
        boxes, scores, empty = detect_largest(norm, cuts, probs, score, backend)
        for k in range(len(norm)):
            cut, prob = cuts[k].item(), probs[k].item()
            host = detect(norm[k].numpy(), cut, prob, "largest", score=score)
            if len(host.boxes) == 0:
                assert empty[k] and host.reason == "no pixel above the threshold"
                seen_empty += 1
                continue
            assert not empty[k]
            np.testing.assert_array_equal(boxes[k].numpy(), host.boxes[0])
            np.testing.assert_array_equal(boxes[k].numpy(), host.largest[0])
            assert scores[k].item() == host.scores[0]  # exact, not approximate
            areas = component_boxes(norm[k].numpy() >= np.float64(cut))[1]
            seen_tie += int((areas == areas.max()).sum() > 1)
    assert seen_empty >= 8 and seen_tie >= 10, (seen_empty, seen_tie)


def test_ties_follow_cv2_block_order_not_first_pixel():
    # Two single pixels: (0, 3) comes first in raster order, but (1, 0) lies in the
    # first 2x2 block, so cv2 labels it first and the host keeps it.
    norm = torch.zeros(1, 2, 4)
    norm[0, 0, 3] = norm[0, 1, 0] = 1.0
    boxes, _, empty = detect_largest(norm, torch.tensor([0.5], dtype=torch.float64))
    assert not empty[0]
    assert boxes[0].tolist() == [0.0, 1.0, 1.0, 2.0]
    assert detect(norm[0].numpy(), 0.5, 1.0).boxes[0].tolist() == [0.0, 1.0, 1.0, 2.0]


def test_hand_made_boxes_and_scores():
    norm = torch.zeros(2, 5, 6)
    norm[0, 1:3, 1:4] = 0.5  # 6 pixels, rows 1-2, cols 1-3
    norm[0, 1, 2] = 1.0
    norm[0, 4, 5] = 0.9  # a single pixel
    norm[1, 0, 0] = 0.4  # under the cut: empty mask
    cuts = torch.tensor([0.5, 0.5], dtype=torch.float64)
    labels, count = label_components(cut_masks(norm, cuts))
    stats = component_stats(labels, count, norm)
    assert count == 2
    assert stats["index"].tolist() == [0, 0]
    assert stats["area"].tolist() == [6, 1]
    assert stats["boxes"].tolist() == [[1, 1, 4, 3], [5, 4, 6, 5]]
    assert stats["mean"].tolist() == [3.5 / 6, float(np.float32(0.9))]
    assert stats["max"].tolist() == [1.0, float(np.float32(0.9))]
    boxes, scores, empty = largest_boxes(stats, 2, "mean", torch.tensor([1.0, 0.5]))
    assert boxes.tolist() == [[1, 1, 4, 3], [0, 0, 0, 0]]
    assert scores.tolist() == [3.5 / 6, 0.0]
    assert empty.tolist() == [False, True]


def test_no_component_anywhere():
    stats = component_stats(*label_components(torch.zeros(3, 4, 5, dtype=torch.bool)))
    assert all(len(t) == 0 for t in stats.values())
    boxes, scores, empty = largest_boxes(stats, 3)
    assert boxes.shape == (3, 4) and scores.tolist() == [0, 0, 0] and empty.all()


def test_detect_largest_keeps_leading_shape():
    norm = _blob_maps(np.random.default_rng(3), 6, 10, 12).reshape(2, 3, 10, 12)
    boxes, scores, empty = detect_largest(norm, 0.5, torch.ones(2, 3))
    assert boxes.shape == (2, 3, 4) and scores.shape == (2, 3) and empty.shape == (2, 3)
    for b in range(2):
        for k in range(3):
            host = detect(norm[b, k].numpy(), 0.5, 1.0)
            np.testing.assert_array_equal(boxes[b, k].numpy(), host.boxes[0])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_chunked_labelling_keeps_labels_unique(backend, monkeypatch):
    norm, cuts = _cases()[5]
    masks = cut_masks(norm, cuts)
    whole, count = label_components(masks, backend)
    monkeypatch.setattr("wsol.localize.labelling._MAX_LABEL_ELEMENTS", 2 * masks[0].numel())
    chunked, count_chunked = label_components(masks, backend)
    assert count_chunked == count
    a, b = component_stats(whole, count, norm), component_stats(chunked, count, norm)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_gpus_dense_sums_agree_with_the_ordered_ones():
    """On a GPU the mean's sum is a tree reduction (no atomics): the same scores to the
    last bits of float64, the same boxes."""
    for norm, cuts in _cases():
        labels, count = label_components(cut_masks(norm, cuts))
        a = largest_dense(labels, count, norm, "mean", ordered_sums=True)
        b = largest_dense(labels, count, norm, "mean", ordered_sums=False)
        assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
        torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=0)


def test_padding_is_in_no_component():
    """A canvas pads smaller maps with -inf: below every cut, even a cut of 0 (and
    below none of the map's own pixels)."""
    norm, cuts = _cases()[6]  # blobs
    h, w = norm.shape[-2:]
    pad = torch.full((len(norm), h + 7, w + 4), float("-inf"))
    pad[:, :h, :w] = norm
    for c in (cuts, torch.zeros_like(cuts)):
        want = detect_largest(norm, c, score="max")
        got = detect_largest(pad, c, score="max")
        for x, y in zip(want, got, strict=True):
            assert torch.equal(x, y)


def test_spread_background_bins_give_the_same_areas():
    """On a GPU with many labels the background is counted into many bins (no hot
    address in a global-memory histogram): the areas are the same."""
    norm, cuts = _cases()[8]  # sparse noise: many components
    labels, count = label_components(cut_masks(norm, cuts))
    flat = labels.reshape(-1)
    plain = component_areas(flat, count, spread=False)
    assert torch.equal(component_areas(flat, count, spread=True), plain)
    assert plain[0] == 0 and int(plain.sum()) == int((flat > 0).sum())
