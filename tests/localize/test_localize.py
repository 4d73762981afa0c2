"""Maps -> boxes on tiny hand-made maps whose boxes and IoUs are worked out by hand.

Conventions (wsol.boxes): a component covering pixel columns a..b and rows c..d has the
continuous box (a, c, b + 1, d + 1). A region is ``norm >= cut``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsol.boxes import box_iou, xyxy_to_voc
from wsol.localize.components import (
    NO_COMPONENT,
    boxes_at,
    component_boxes,
    detect,
    nms,
    prepare_sweep,
    select_components,
    sweep_by_labelling,
    sweep_components,
)
from wsol.localize.maps import (
    MAP_CONSTANT,
    MAP_NONFINITE,
    MAP_OK,
    MAP_REASONS,
    map_problems,
    minmax_normalize,
    normalized_threshold,
    otsu_cut,
    prepare_maps,
)


def _upsample(maps: torch.Tensor, sizes) -> list[torch.Tensor]:
    """Reference: each image's maps ``[K, h, w]`` resized on their own to its size."""
    return [
        F.interpolate(m[None].float(), size=s, mode="bilinear", align_corners=False)[0]
        for m, s in zip(maps, sizes, strict=True)
    ]


# Unimodal: a 3x3 bump in a 5x5 map. Raw max 4, min 0, so normalized values are
# 0 (border), 0.25 (corners of the bump), 0.5 (its edges) and 1 (centre).
UNIMODAL = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 1, 2, 1, 0],
        [0, 2, 4, 2, 0],
        [0, 1, 2, 1, 0],
        [0, 0, 0, 0, 0],
    ],
    np.float64,
)
BUMP = np.array([[1, 1, 4, 4]], np.float64)  # the GT: the 3x3 bump, area 9


def _norm(raw: np.ndarray) -> np.ndarray:
    norm, _lo, _hi, ok = minmax_normalize(torch.tensor(raw, dtype=torch.float32))
    assert bool(ok)
    return norm.numpy().astype(np.float64)


@pytest.mark.parametrize(
    "cut, box, iou",
    [
        (0.6, [2, 2, 3, 3], 1 / 9),  # centre pixel only: 1 px inside the 9 px bump
        (0.5, [1, 1, 4, 4], 1.0),  # the plus sign (centre + 4 edges) spans the bump
        (0.25, [1, 1, 4, 4], 1.0),  # the whole 3x3 bump
        (0.0, [0, 0, 5, 5], 9 / 25),  # everything: the image, 25 px, holds the 9 px bump
    ],
)
def test_unimodal_box_per_threshold(cut, box, iou):
    norm = _norm(UNIMODAL)
    boxes = boxes_at(norm, cut)
    np.testing.assert_array_equal(boxes, [box])
    assert box_iou(boxes, BUMP)[0, 0] == pytest.approx(iou, abs=1e-12)


def test_unimodal_fraction_and_absolute_cuts():
    lo, hi = torch.tensor([0.0]), torch.tensor([4.0])
    # fraction 0.3 of the max 4 keeps raw >= 1.2: values 2 and 4, the plus sign.
    cut = float(normalized_threshold("fraction", 0.3, lo, hi))
    assert cut == pytest.approx(0.3)
    np.testing.assert_array_equal(boxes_at(_norm(UNIMODAL), cut), [[1, 1, 4, 4]])
    # With the map shifted down by 1 (min -1, max 3), fraction 0.5 keeps raw >= 1.5,
    # i.e. only the centre (3); on the normalized map that is (1.5 + 1) / 4 = 0.625.
    shifted = UNIMODAL - 1
    cut = float(normalized_threshold("fraction", 0.5, torch.tensor([-1.0]), torch.tensor([3.0])))
    assert cut == pytest.approx(0.625)
    np.testing.assert_array_equal(boxes_at(_norm(shifted), cut), [[2, 2, 3, 3]])
    # absolute: the cut is tau itself, per map, and may be a per-map tensor.
    cuts = normalized_threshold("absolute", torch.tensor([0.1, 0.7]), torch.zeros(2), torch.ones(2))
    np.testing.assert_allclose(cuts.numpy(), [0.1, 0.7])


def test_unimodal_detection_scores():
    norm = _norm(UNIMODAL)
    # At cut 0.5 the plus sign holds 1 + 4 * 0.5 = 3 over 5 px: mean 0.6, max 1.0.
    det = detect(norm, 0.5, class_prob=0.5, score="mean")
    np.testing.assert_array_equal(det.boxes, [[1, 1, 4, 4]])
    assert det.scores[0] == pytest.approx(0.3)
    assert detect(norm, 0.5, 0.5, score="max").scores[0] == pytest.approx(0.5)
    assert det.reason is None


# Bimodal: peak A (4 px at 9) top-left and a wider, lower plateau B (9 px at 5).
BIMODAL = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 9, 9, 0, 0, 0, 0, 0],
        [0, 9, 9, 0, 0, 5, 5, 5],
        [0, 0, 0, 0, 0, 5, 5, 5],
        [0, 0, 0, 0, 0, 5, 5, 5],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ],
    np.float64,
)
BOX_A = [1, 1, 3, 3]  # 2x2
BOX_B = [5, 2, 8, 5]  # 3x3; normalized value 5/9 = 0.556


def test_bimodal_largest_and_all_differ():
    norm = _norm(BIMODAL)
    # Above 5/9 only A exists: both modes give A.
    np.testing.assert_array_equal(boxes_at(norm, 0.6, "largest"), [BOX_A])
    np.testing.assert_array_equal(boxes_at(norm, 0.6, "all"), [BOX_A])
    # At 0.5 both exist. largest: B (9 px beats 4 px). all: A then B in raster order.
    np.testing.assert_array_equal(boxes_at(norm, 0.5, "largest"), [BOX_B])
    np.testing.assert_array_equal(boxes_at(norm, 0.5, "all"), [BOX_A, BOX_B])
    # detect orders by score: A's mean is 1.0, B's 5/9, so the top box is A, not B.
    det = detect(norm, 0.5, 1.0, components="all")
    np.testing.assert_array_equal(det.boxes, [BOX_A, BOX_B])
    np.testing.assert_allclose(det.scores, [1.0, 5 / 9])
    # IoU of B with A is 0: a GT on A is missed by largest, hit by all.
    gt = np.array([BOX_A], np.float64)
    assert box_iou(boxes_at(norm, 0.5, "largest"), gt).max() == 0.0
    assert box_iou(boxes_at(norm, 0.5, "all"), gt).max() == 1.0
    # min_area is a fraction of the image (48 px): 5/48 drops A (4 px), keeps B (9 px).
    det = detect(norm, 0.5, 1.0, components="all", min_area=5 / 48)
    np.testing.assert_array_equal(det.boxes, [BOX_B])
    det = detect(norm, 0.5, 1.0, components="all", min_area=10 / 48)
    assert len(det.boxes) == 0 and det.reason == NO_COMPONENT


def test_eight_connectivity():
    # Two pixels touching only at a corner are one component under 8-connectivity.
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    boxes, areas, _ = component_boxes(mask)
    np.testing.assert_array_equal(boxes, [[0, 0, 2, 2]])
    np.testing.assert_array_equal(areas, [2])


def test_constant_nan_and_inf_maps_give_no_box_and_a_reason():
    maps = torch.stack(
        [
            torch.full((4, 4), 3.0),  # constant
            torch.tensor(UNIMODAL[:4, :4], dtype=torch.float32),  # fine
            torch.tensor(UNIMODAL[:4, :4], dtype=torch.float32).index_put(
                (torch.tensor([0]), torch.tensor([0])), torch.tensor(float("nan"))
            ),
            torch.tensor(UNIMODAL[:4, :4], dtype=torch.float32).index_put(
                (torch.tensor([1]), torch.tensor([1])), torch.tensor(float("inf"))
            ),
            torch.zeros(4, 4),  # constant zero
        ]
    )
    norm, _lo, _hi, ok = minmax_normalize(maps)
    assert ok.tolist() == [False, True, False, False, False]
    assert torch.isfinite(norm).all() and (norm[~ok] == 0).all()
    codes = map_problems(maps).tolist()
    assert codes == [MAP_CONSTANT, MAP_OK, MAP_NONFINITE, MAP_NONFINITE, MAP_CONSTANT]
    assert MAP_REASONS[MAP_CONSTANT] == "map is constant"
    assert "NaN" in MAP_REASONS[MAP_NONFINITE]
    # Cuts stay finite for every map, in every mode.
    lo = maps.flatten(1).nan_to_num(0, 0, 0).amin(1)
    for mode in ("fraction", "absolute", "otsu"):
        cuts = normalized_threshold(
            mode, 0.2, lo, maps.flatten(1).nan_to_num(0, 0, 0).amax(1), norm
        )
        assert torch.isfinite(cuts).all(), mode


# Border: an L in the top-left corner and one pixel in the bottom-right corner.
BORDER = np.array(
    [
        [8, 8, 0, 0, 0],
        [8, 4, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 6],
    ],
    np.float64,
)


def test_map_touching_the_border():
    norm = _norm(BORDER)  # / 8: L = 1, 1, 1 and 0.5; corner pixel 0.75
    # At 0.5 the L is a full 2x2 block; the corner pixel ends exactly at the image edge
    # (x2 = width = 5, y2 = height = 4), never beyond.
    np.testing.assert_array_equal(boxes_at(norm, 0.5, "all"), [[0, 0, 2, 2], [4, 3, 5, 4]])
    # At 0.6 the L loses (1, 1) but keeps its box; it is still the largest (3 px vs 1).
    np.testing.assert_array_equal(boxes_at(norm, 0.6, "largest"), [[0, 0, 2, 2]])
    # In VOC terms the corner pixel (column 4, row 3) is xmin = xmax = 5, ymin = ymax = 4.
    np.testing.assert_array_equal(xyxy_to_voc([[4, 3, 5, 4]]), [[5, 4, 5, 4]])
    # At 0.8 only the L's three 1.0 pixels remain.
    np.testing.assert_array_equal(boxes_at(norm, 0.8, "all"), [[0, 0, 2, 2]])


def test_upsample_is_bilinear_without_corner_alignment():
    # 1x2 -> 1x4 with align_corners=False: output x maps to input (x + 0.5) / 2 - 0.5,
    # i.e. -0.25, 0.25, 0.75, 1.25 -> clamped to 0, 0.25, 0.75, 1.
    maps = torch.tensor([[[[0.0, 1.0]]]])
    (pm,) = prepare_maps(maps, [(1, 4)], "absolute", 0.5)
    np.testing.assert_allclose(pm.norm[0], [[0.0, 0.25, 0.75, 1.0]])
    # Images of different sizes in one batch each get their own size.
    pms = prepare_maps(torch.rand(2, 3, 4, 4), [(8, 6), (5, 7)], "absolute", 0.5)
    assert [p.norm.shape for p in pms] == [(3, 8, 6), (3, 5, 7)]


def test_otsu_matches_cv2_on_8bit_maps():
    rng = np.random.default_rng(0)
    for _ in range(5):
        # Two overlapping intensity populations, as a background and an object.
        img = (
            np.clip(np.concatenate([rng.normal(60, 20, 300), rng.normal(170, 25, 100)]), 0, 255)
            .astype(np.uint8)
            .reshape(20, 20)
        )
        img[0, 0], img[0, 1] = 0, 255  # so min-max normalization keeps v / 255
        t_cv, _ = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        norm = torch.tensor(img / 255.0)
        cut = float(otsu_cut(norm))
        # cv2's foreground is > t; ours is norm >= cut: the same pixels.
        np.testing.assert_array_equal(norm.numpy() >= cut, img > t_cv)


def test_otsu_hand_case():
    # 12 pixels at 0.1 and 4 at 0.9: the only sensible split; the cut is the smallest
    # foreground value, 0.9.
    norm = torch.tensor([0.1] * 12 + [0.9] * 4).view(4, 4)
    norm[0, 0], norm[3, 3] = 0.0, 1.0
    cut = float(otsu_cut(norm))
    assert cut == pytest.approx(0.9)
    batched = otsu_cut(torch.stack([norm, norm.flip(0)]))
    assert batched.shape == (2,) and torch.allclose(batched, torch.tensor([0.9, 0.9]))


def test_nms_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    # IoU of the first two: 81 / (100 + 100 - 81) = 0.68.
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [0, 1, 2])
    np.testing.assert_array_equal(nms(boxes, scores[::-1].copy(), 0.5), [2, 1])


def test_nested_merge():
    # A ring (16 px at 0.5) around a centre pixel (1.0), not touching it.
    m = np.zeros((7, 7))
    m[1, 1:6] = m[5, 1:6] = m[1:6, 1] = m[1:6, 5] = 0.5
    m[3, 3] = 1.0
    plain = detect(m, 0.4, 1.0, components="all")
    np.testing.assert_array_equal(plain.boxes, [[3, 3, 4, 4], [1, 1, 6, 6]])
    merged = detect(m, 0.4, 1.0, components="all", merge="nested")
    np.testing.assert_array_equal(merged.boxes, [[1, 1, 6, 6]])
    assert merged.scores[0] == pytest.approx((16 * 0.5 + 1.0) / 17)  # mean over 17 px
    assert detect(m, 0.4, 1.0, components="all", merge="nested", score="max").scores[
        0
    ] == pytest.approx(1.0)


def test_overlap_merge():
    # L-shaped A (box 0,0,4,4) and block B (box 2,2,5,4) do not touch, and their boxes
    # overlap without nesting: nested keeps both, overlap merges them into (0,0,5,4).
    m = np.zeros((5, 6))
    m[0, 0:4] = m[0:4, 0] = 1.0
    m[2:4, 2:5] = 0.5
    assert len(detect(m, 0.4, 1.0, components="all", merge="nested").boxes) == 2
    det = detect(m, 0.4, 1.0, components="all", merge="overlap")
    np.testing.assert_array_equal(det.boxes, [[0, 0, 5, 4]])
    assert det.scores[0] == pytest.approx((7 * 1.0 + 6 * 0.5) / 13)


def _tree_sweep(norm_map, thresholds):
    """sweep_components once the component tree is compiled (it labels each tau until
    then)."""
    prepare_sweep().join()
    return sweep_components(norm_map, thresholds)


@pytest.mark.parametrize("sweep", [_tree_sweep, sweep_by_labelling])
def test_sweep_components_equals_one_labelling_per_threshold(sweep):
    rng = np.random.default_rng(3)
    taus = np.arange(0.0, 1.0, 0.05)
    for shape in [(9, 13), (16, 16), (5, 31)]:
        # Coarse levels make plateaus and equal-area components (ties).
        norm = rng.integers(0, 6, size=shape) / 5.0
        comps = sweep(norm, taus)
        largest = comps.largest()
        for j, tau in enumerate(taus):
            boxes, areas, _ = component_boxes(norm >= tau)
            np.testing.assert_array_equal(comps.boxes[comps.index == j], boxes)
            np.testing.assert_array_equal(comps.areas[comps.index == j], areas)
            if len(areas):
                k = select_components(areas, "largest", 0)[0]
                np.testing.assert_array_equal(comps.boxes[largest[j]], boxes[k])
            else:
                assert largest[j] == -1
    # cv2 numbers components by 2x2 blocks: a crop starting on an odd row would reorder
    # these two single pixels and break the area tie the other way than detect does.
    norm = np.zeros((4, 6))
    norm[2, 1] = norm[1, 4] = 1.0
    comps = sweep(norm, np.array([0.5]))
    want = detect(norm, 0.5, 1.0).largest[0]
    np.testing.assert_array_equal(comps.boxes[comps.largest()[0]], want)
    np.testing.assert_array_equal(want, [4, 1, 5, 2])
    # Thresholds above the maximum give nothing, and no error.
    comps = sweep(np.full((3, 3), 0.5), np.array([0.6, 0.7]))
    assert len(comps.boxes) == 0 and comps.largest().tolist() == [-1, -1]


def test_the_component_tree_gives_what_labelling_each_threshold_gives():
    import wsol.localize.components as components

    prepare_sweep().join()
    assert components._compiled_sweep is not None  # numba is a dependency
    rng = np.random.default_rng(7)
    taus = np.round(np.arange(100) * 0.01, 12)
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        if i % 3 == 0:  # noise: many small components and ties
            norm = rng.random((h, w))
        elif i % 3 == 1:  # a CAM-like map: a coarse grid upsampled
            small = torch.rand(1, 1, max(2, h // 8), max(2, w // 8))
            norm = F.interpolate(small, size=(h, w), mode="bilinear").numpy()[0, 0]
        else:  # plateaus
            norm = np.round(rng.random((h, w)) * 5) / 5
        norm = norm.astype(np.float32)
        fast, ref = sweep_components(norm, taus), sweep_by_labelling(norm, taus)
        np.testing.assert_array_equal(fast.index, ref.index)
        np.testing.assert_array_equal(fast.boxes, ref.boxes)
        np.testing.assert_array_equal(fast.areas, ref.areas)
        np.testing.assert_array_equal(fast.largest(), ref.largest())
    # Thresholds that do not ascend are labelled one by one, with the same result.
    norm, down = rng.random((12, 9)), taus[::-1][:50]
    comps, ref = sweep_components(norm, down), sweep_by_labelling(norm, down)
    np.testing.assert_array_equal(comps.boxes, ref.boxes)
    np.testing.assert_array_equal(comps.index, ref.index)
    assert comps.index.max() == 49  # the last tau, 0.50, is the lowest: it has components


@pytest.mark.e2e
@pytest.mark.parametrize(
    "bias, reason", [(1.0, "map is constant"), (float("nan"), "map has NaN or Inf values")]
)
def test_unusable_maps_are_counted_in_metrics(tmp_path, shapes_root, register_model, bias, reason):
    """A network whose maps are constant (or NaN) gives no box, no crash, no NaN metric,
    and metrics.json says how many maps were unusable and why."""
    import json
    import math

    from torch import nn

    from wsol.config import load_config
    from wsol.models import ModelSpec
    from wsol.run import run

    def build(weights, classes, dilate_last=False):
        net = nn.Sequential()
        net.features = nn.Conv2d(3, 2, 1)
        net.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        net.fc = nn.Linear(2, len(classes))
        with torch.no_grad():
            net.features.weight.zero_()
            net.features.bias.fill_(bias)  # every activation is the bias: a flat map
        return ModelSpec(
            net=net,
            class_names=list(classes),
            target_layer="features",
            cam_layer="features",
            fc_layer="fc",
            input_size=(32, 32),
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            multi_label=True,
        )

    register_model("flat_net", build)
    cfg = load_config(
        None,
        [
            f"data.root={shapes_root}",
            "data.split=val",
            "data.limit=4",
            "model.arch=flat_net",
            f"out={tmp_path / 'out'}",
            "report.enabled=false",
        ],
    )
    m = run(cfg).metrics
    pairs = m["num_pairs"]
    assert pairs >= 4
    assert m["num_bad_maps"] == pairs and m["empty_detections"] == {reason: pairs}
    assert m["num_boxes_found"] == 0 and m["corloc"] == 0.0 and m["maxboxacc"] == 0.0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert all(math.isfinite(v) for v in saved.values() if isinstance(v, float))


def test_cuts_compare_in_float64_everywhere():
    # A float32 pixel at 0.29 is 0.28999999165...: below the float64 tau 0.29. The
    # operating cut, the sweep and a calibrated (absolute) cut must all leave it out,
    # or the calibrated accuracy would not be the swept one.
    norm = np.zeros((3, 3), np.float32)
    norm[1, 1], norm[0, 0] = 1.0, np.float32(0.29)
    tau = np.arange(0.0, 1.0, 0.01)[29]
    cut = normalized_threshold(
        "absolute", torch.tensor([tau], dtype=torch.float64), torch.zeros(1), torch.ones(1)
    )
    assert cut.dtype == torch.float64 and float(cut) == tau
    np.testing.assert_array_equal(boxes_at(norm, float(cut)), [[1, 1, 2, 2]])
    np.testing.assert_array_equal(detect(norm, float(cut), 1.0).boxes, [[1, 1, 2, 2]])
    comps = sweep_components(norm, np.array([tau]))
    np.testing.assert_array_equal(comps.boxes, [[1, 1, 2, 2]])
    # A float threshold from the config is not rounded to float32 on the way either.
    cut = normalized_threshold("absolute", 0.29, torch.zeros(1), torch.ones(1))
    assert float(cut) == 0.29


def test_prepare_maps_matches_the_per_map_functions():
    torch.manual_seed(0)
    maps = torch.rand(3, 2, 4, 5)
    maps[1, 1] = 7.0  # constant
    maps[2, 0, 0, 0] = float("nan")
    sizes = [(8, 10), (9, 7), (8, 10)]
    tau = torch.tensor([[0.2, 0.3], [0.4, 0.5], [0.6, 0.7]], dtype=torch.float64)
    for mode, t in (("fraction", 0.25), ("absolute", tau), ("otsu", 0.0)):
        prepared = prepare_maps(maps, sizes, mode, t)
        ups = _upsample(maps, sizes)
        for i, (pm, up) in enumerate(zip(prepared, ups, strict=True)):
            norm, _lo, hi, _ok = minmax_normalize(up)
            lo = up.flatten(1).nan_to_num(0.0).amin(1)
            ti = t[i] if isinstance(t, torch.Tensor) else t
            cuts = normalized_threshold(mode, ti, lo, hi, norm)
            good = pm.problems == MAP_OK
            np.testing.assert_array_equal(pm.norm[good], norm.numpy()[good])
            np.testing.assert_array_equal(pm.cuts[good], cuts.numpy()[good])
            assert (pm.norm[~good] == 0).all()
    assert [p.problems.tolist() for p in prepare_maps(maps, sizes, "fraction", 0.2)] == [
        [MAP_OK, MAP_OK],
        [MAP_OK, MAP_CONSTANT],
        [MAP_NONFINITE, MAP_OK],
    ]


def test_a_constant_map_stays_constant_through_upsampling():
    # Bilinear weights do not sum to exactly 1 in float32: a constant 7 upsampled is not
    # exactly constant, and min-max normalization would turn that noise into [0, 1].
    maps = torch.full((1, 1, 7, 7), 7.0)
    (up,) = _upsample(maps, [(33, 29)])
    assert up.max() > up.min()  # the hazard is real
    (pm,) = prepare_maps(maps, [(33, 29)], "fraction", 0.2)
    assert pm.problems.tolist() == [MAP_CONSTANT] and (pm.norm == 0).all()


def test_smooth_maps_is_a_normalized_symmetric_blur():
    from wsol.localize.maps import smooth_maps

    m = torch.zeros(1, 2, 9, 9)
    m[0, 0, 4, 4] = 1.0
    out = smooth_maps(m, 0.1)  # sigma 0.9 px, radius 3 px: the impulse stays inside
    assert out.shape == m.shape
    assert out[0, 0].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert out[0, 0, 4, 4] == out[0, 0].max() and out[0, 0, 4, 4] < 0.5
    torch.testing.assert_close(out[0, 0], out[0, 0].T)  # isotropic
    torch.testing.assert_close(out[0, 0], out[0, 0].flip(0))
    assert (out[0, 1] == 0).all()  # maps are blurred independently
    assert smooth_maps(m, 0.0) is m
    const = torch.full((1, 1, 1, 3), 2.0)  # tiny maps: the kernel is cut to what fits
    torch.testing.assert_close(smooth_maps(const, 0.3), const)
    nan = torch.full((1, 1, 4, 4), float("nan"))
    assert torch.isnan(smooth_maps(nan, 0.1)).all()


def test_a_component_tree_that_fails_to_compile_leaves_the_labelling_sweep(monkeypatch, caplog):
    import wsol.localize.component_tree as tree
    import wsol.localize.components as components

    def broken(norm_map, taus):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(tree, "sweep_tree", broken)
    monkeypatch.setattr(components, "_compiled_sweep", None)
    with caplog.at_level("WARNING", logger="wsol.localize.components"):
        components._load_sweep()
    assert components._compiled_sweep is None
    assert "did not compile (no LLVM here)" in caplog.text
    norm = np.zeros((5, 5))
    norm[1:3, 1:4] = 1.0
    comps = sweep_components(norm, np.array([0.5]))  # labelled, the same answer
    np.testing.assert_array_equal(comps.boxes, [[1, 1, 4, 3]])
