"""The Localizer: the seam between a model and everything that uses its boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import BrightNet
from wsol.cams.targets import ClassMapping
from wsol.data.decode import decode_image
from wsol.data.voc import load_voc
from wsol.errors import UsageError
from wsol.localize import BoxParams, Localizer, TargetPolicy
from wsol.models import ModelSpec, load_model


def _bright_model() -> ModelSpec:
    return ModelSpec(
        net=BrightNet(),
        class_names=["bright"],
        target_layer="features",
        cam_layer="features",
        fc_layer="fc",
        input_size=(48, 48),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        multi_label=True,
    )


def _scene(h=60, w=90, box=(50, 10, 70, 30)) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def test_a_batch_in_boxes_in_original_pixels_out():
    loc = Localizer(_bright_model(), "cam", targets="topk", boxes=BoxParams(threshold=0.5))
    small, big = _scene(), _scene(120, 180, (100, 20, 140, 60))
    results = loc.localize_arrays([small, big])
    assert [r.size for r in results] == [(60, 90), (120, 180)]
    for r, box in zip(results, ([50, 10, 70, 30], [100, 20, 140, 60]), strict=True):
        assert r.targets == [0] and r.probs.shape == (1,)
        (c,) = r.classes
        assert c.norm_map.shape == r.size and 0.0 <= c.cut <= 1.0
        assert c.model_class == 0 and c.prob == pytest.approx(float(r.probs[0]))
        # 90x60 squeezed into 48x48 blurs the edges by about a pixel of the input.
        np.testing.assert_allclose(c.detections.boxes[0], box, atol=2.5 * r.size[1] / 48)
        np.testing.assert_array_equal(c.detections.largest, c.detections.boxes[:1])


def test_calibrated_cuts_are_per_class_and_absolute():
    loc = Localizer(
        _bright_model(), "cam", targets="topk", boxes=BoxParams(class_thresholds=(0.9,))
    )
    (r,) = loc.localize_arrays([_scene()])
    assert r.classes[0].cut == 0.9
    with pytest.raises(UsageError, match="2 class thresholds for 1 classes"):
        Localizer(_bright_model(), "cam", boxes=BoxParams(class_thresholds=(0.1, 0.2)))


def test_gt_targets_need_labels_and_names_are_checked():
    loc = Localizer(_bright_model(), "cam", targets=TargetPolicy("gt"))
    with pytest.raises(UsageError, match="labels"):
        loc.localize_arrays([_scene()])
    (r,) = loc.localize_arrays([_scene()], [np.array([0])])
    assert r.targets == [0]
    with pytest.raises(UsageError, match="unknown target mode 'all'"):
        TargetPolicy("all")
    with pytest.raises(UsageError, match="unknown components 'some'; valid: all, largest"):
        BoxParams(components="some")
    with pytest.raises(UsageError, match="unknown precision"):
        Localizer(_bright_model(), "cam", precision="fp8")


def test_uint8_batches_are_normalized_on_the_device():
    model = _bright_model()
    loc = Localizer(model, "cam")
    x = loc.normalize(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8))
    assert x.dtype == torch.float32 and torch.allclose(x, torch.ones_like(x))  # (1-.5)/.5


def test_the_run_is_the_localizer_on_its_batches(reference_run, shapes_root):
    """The run's pseudo-labels are what the Localizer returns for the same images, in
    the same batches of 8, with the box settings of the run's config."""
    doc = json.loads((reference_run.out_dir / "pseudo_labels.json").read_text())
    ds = load_voc(shapes_root, "test")
    model = load_model("shapes_net")
    loc = Localizer(
        model,
        "gradcam",
        mapping=ClassMapping.build(ds.classes, model),
        targets="gt",
        boxes=BoxParams.from_config(reference_run.config.boxes),
    )
    results = []
    for i in range(0, len(ds.samples), 8):
        batch = ds.samples[i : i + 8]
        pixels = [decode_image(s.path)[0] for s in batch]
        results += loc.localize_arrays(pixels, [s.labels for s in batch])
    mine = [
        [round(float(v), 3) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])]
        for r in results
        for c in r.classes
        for b in c.detections.boxes
    ]
    assert mine == [a["bbox"] for a in doc["annotations"]] and len(mine) >= 24
