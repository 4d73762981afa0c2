"""The engine's context: modes and flags come back exactly as they were."""

from __future__ import annotations

import pytest
import torch

from wsol.cams import build_method, frozen_model
from wsol.models import ModelSpec, ShapesNet


def _spec() -> ModelSpec:
    torch.manual_seed(0)
    return ModelSpec(
        net=ShapesNet(3, width=8),
        class_names=["a", "b", "c"],
        target_layer="layer3",
        cam_layer="layer4",
        fc_layer="fc",
        input_size=(32, 32),
        multi_label=True,
    )


def _state(net):
    return (
        {n: m.training for n, m in net.named_modules()},
        {n: p.requires_grad for n, p in net.named_parameters()},
    )


@pytest.mark.parametrize("method", ["gradcam", "cam", "guided_backprop", "scorecam"])
def test_a_frozen_batchnorm_inside_a_training_model_stays_frozen(method):
    spec = _spec()
    net = spec.net.train()
    net.layer2.eval()  # a frozen block (BatchNorm statistics fixed) while fine-tuning
    net.fc.weight.requires_grad_(False)
    before = _state(net)
    running = net.layer2[0][1].running_mean.clone()
    build_method(method, spec)(torch.rand(2, 3, 32, 32), torch.tensor([[0], [2]]))
    assert _state(net) == before
    assert not net.layer2[0][1].training and net.training and net.layer1.training
    assert torch.equal(net.layer2[0][1].running_mean, running)  # eval mode inside


def test_modes_come_back_after_an_exception():
    spec = _spec()
    net = spec.net.train()
    net.layer1.eval()
    before = _state(net)
    with pytest.raises(RuntimeError, match="boom"), frozen_model(net):
        assert not any(m.training for m in net.modules())
        raise RuntimeError("boom")
    assert _state(net) == before


def test_forward_context_lets_the_caller_choose_targets_from_the_logits():
    spec = _spec()
    cam = build_method("gradcam", spec)
    x = torch.rand(2, 3, 32, 32)
    with cam.forward(x) as fp:
        best = fp.logits.detach().argmax(1, keepdim=True)
        maps = fp.maps(best)
    assert maps.shape == (2, 1, 4, 4) and not maps.requires_grad
    expected = cam(x, lambda logits: logits.argmax(1, keepdim=True)).maps
    torch.testing.assert_close(maps, expected)
