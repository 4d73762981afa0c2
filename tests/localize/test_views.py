"""Test-time views: scales and flips, fused into one map per (image, class)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import BrightNet
from wsol.errors import UsageError
from wsol.localize import BoxParams, Localizer, Views
from wsol.localize.views import fuse_maps, view_input
from wsol.models import ModelSpec


def test_views_sizes_and_checks():
    v = Views((1.0, 1.5), flip=True)
    assert v.input_size((224, 200)) == (336, 300)
    assert v.all((224, 200)) == [
        ((224, 200), False),
        ((336, 300), False),
        ((224, 200), True),
        ((336, 300), True),
    ]
    assert Views().single and not v.single
    with pytest.raises(UsageError, match="scales"):
        Views(())
    with pytest.raises(UsageError, match="unknown fuse 'sum'; valid: max, mean"):
        Views(fuse="sum")


def test_fusion_undoes_the_flip_and_weighs_views_equally():
    # View 1: a peak of 10 at the left; view 2 (mirrored input): the same object seen at
    # the right of the mirrored map, with a peak of 2 on a twice finer grid.
    a = torch.zeros(1, 1, 2, 2)
    a[0, 0, :, 0] = 10.0
    b = torch.zeros(1, 1, 4, 4)
    b[0, 0, :, 2:] = 2.0
    fused = fuse_maps([a, b], [False, True], "mean")
    assert fused.shape == (1, 1, 4, 4)  # the finest grid
    # After the flip both views put the object on the left; each is divided by its own
    # peak, so the left columns average (1 + 1) / 2 and the right ones are near 0.
    np.testing.assert_allclose(fused[0, 0, :, 0].numpy(), 1.0)
    assert float(fused[0, 0, :, 3].max()) < 0.05
    assert torch.equal(fuse_maps([a, b], [False, True], "max")[0, 0, :, 0], torch.ones(4))


def test_fusion_keeps_bad_maps_bad():
    a = torch.zeros(1, 2, 3, 3)  # class 0 all zero (a dead map) ...
    a[0, 1] = float("nan")  # ... and class 1 poisoned
    fused = fuse_maps([a, a.clone()], [False, True])
    assert torch.equal(fused[0, 0], torch.zeros(3, 3)) and torch.isnan(fused[0, 1]).all()


def test_view_input_resizes_and_mirrors():
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 3, 4, 4)
    assert torch.equal(view_input(x, (4, 4), True), x.flip(-1))
    assert view_input(x, (8, 6), False).shape == (1, 3, 8, 6)


def test_multi_scale_and_flip_boxes_land_on_the_object():
    model = ModelSpec(
        net=BrightNet(),
        class_names=["bright"],
        target_layer="features",
        cam_layer="features",
        fc_layer="fc",
        input_size=(32, 48),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        multi_label=True,
    )
    img = np.zeros((60, 90, 3), np.uint8)
    img[10:30, 50:70] = 255  # off-centre, so an un-undone flip would miss it
    one = Localizer(model, "cam", targets="topk", boxes=BoxParams(threshold=0.5))
    many = Localizer(
        model,
        "gradcam",
        targets="topk",
        boxes=BoxParams(threshold=0.5),
        views=Views((1.0, 1.5, 2.0), flip=True),
    )
    assert many.input_size == (64, 96)
    for loc in (one, many):
        (r,) = loc.localize_arrays([img])
        np.testing.assert_allclose(r.classes[0].detections.boxes[0], [50, 10, 70, 30], atol=3)


class _SizeNet(BrightNet):
    """BrightNet whose logit grows with the input's area (a sum, not a mean, of the
    brightness map): its probability at 2x is not its probability at 1x."""

    def forward(self, x):
        a = self.features(x)
        return self.fc(a.sum((2, 3)) / 400.0)


def test_probabilities_and_box_scores_do_not_depend_on_the_views():
    model = ModelSpec(
        net=_SizeNet(),
        class_names=["bright"],
        target_layer="features",
        cam_layer="features",
        fc_layer="fc",
        input_size=(32, 48),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        multi_label=True,
    )
    img = np.zeros((60, 90, 3), np.uint8)
    img[10:30, 50:70] = 255
    results = {}
    for views in (Views((1.0,)), Views((2.0,)), Views((2.0, 1.0), flip=True)):
        loc = Localizer(
            model, "gradcam", targets="topk", boxes=BoxParams(threshold=0.5), views=views
        )
        (r,) = loc.localize_arrays([img])
        results[views] = r
    plain = Localizer(model, "gradcam")
    with torch.no_grad():
        at_1x = torch.sigmoid(model.net(plain.normalize(plain.prepare(img)[0][None]))).item()
    big = Localizer(model, "gradcam", views=Views((2.0,)))
    with torch.no_grad():
        at_2x = torch.sigmoid(model.net(big.normalize(big.prepare(img)[0][None]))).item()
    assert abs(at_2x - at_1x) > 0.5 * at_1x  # this net's probability does depend on the input size
    for r in results.values():
        # The class probability is the model's at its own input size, whatever the views
        # (a 2x run makes the 1x input from its 2x one: equal up to resampling).
        assert float(r.probs[0]) == pytest.approx(at_1x, rel=1e-3)
        c = r.classes[0]
        assert c.prob == pytest.approx(at_1x, rel=1e-3)
        # A box's score: the class probability times the map's mean inside it, in [0, 1].
        assert 0.0 < c.detections.scores[0] <= c.prob
        assert c.detections.scores[0] == pytest.approx(
            c.prob * float(c.norm_map[c.norm_map >= c.cut].mean()), rel=0.05
        )
