"""A fresh GAP + linear head for a dataset's classes, and the dilated last stage."""

from __future__ import annotations

import pytest
import torch

from wsol.models import ModelError, build_model, resolve_module
from wsol.models.build import build_classifier


@pytest.mark.parametrize(
    ("arch", "cam", "fc"),
    [
        ("shapes_net", "layer4", "fc"),
        *(
            pytest.param(*case, marks=pytest.mark.e2e)  # ImageNet-sized models
            for case in [
                ("resnet18", "layer4", "fc"),
                ("densenet121", "features", "classifier"),
                ("mobilenet_v3_small", "features", "classifier"),  # MLP head -> GAP + linear
                ("vgg11", "features", "classifier"),
                ("squeezenet1_0", "classifier.1", "classifier.1"),
                ("efficientnet_b0", "features", "classifier.1"),
                ("timm:resnet18", "layer4", "fc"),
            ]
        ),
    ],
)
def test_fresh_head_has_one_output_per_class_and_is_cam_ready(arch, cam, fc):
    spec = build_classifier(arch, ["a", "b", "c"], weights="none")
    assert spec.class_names == ["a", "b", "c"]
    assert (spec.cam_layer, spec.fc_layer) == (cam, fc)
    spec.net.eval()
    with torch.no_grad():
        assert spec.net(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    head = {n for n, _ in spec.net.named_parameters() if n.startswith(spec.head + ".")}
    assert head, "the head's parameters are what the optimizer gives the full rate"


@pytest.mark.e2e
def test_lite0_keeps_its_imagenet_backbone():
    imagenet = build_model("efficientnet_lite0", "DEFAULT")
    spec = build_classifier("efficientnet_lite0", ["x", "y"])
    a, b = imagenet.net.state_dict(), spec.net.state_dict()
    backbone = [k for k in a if not k.startswith("classifier")]
    assert all(torch.equal(a[k], b[k]) for k in backbone)
    assert b["classifier.weight"].shape == (2, 1280)
    assert (spec.target_layer, spec.cam_layer, spec.fc_layer) == ("conv_head", "bn2", "classifier")


def _map_side(spec, layer: str, size: int) -> int:
    out = {}
    resolve_module(spec.net, layer).register_forward_hook(lambda m, i, o: out.update(s=o.shape))
    spec.net.eval()
    with torch.no_grad():
        spec.net(torch.zeros(1, 3, size, size))
    return out["s"][-1]


@pytest.mark.parametrize(
    ("arch", "plain", "dilated"),
    [
        pytest.param("efficientnet_lite0", 7, 14, marks=pytest.mark.e2e),
        pytest.param("resnet50", 7, 14, marks=pytest.mark.e2e),
        ("shapes_net", 28, 56),
    ],
)
def test_dilate_last_doubles_the_map_resolution(arch, plain, dilated):
    size = 224
    a = build_classifier(arch, ["a"], weights="none")
    b = build_classifier(arch, ["a"], weights="none", dilate_last=True)
    assert _map_side(a, a.cam_layer, size) == plain
    assert _map_side(b, b.cam_layer, size) == dilated
    # Same parameters: pretrained weights load into the dilated network as they are.
    assert {k: v.shape for k, v in a.net.state_dict().items()} == {
        k: v.shape for k, v in b.net.state_dict().items()
    }


def test_dilate_last_where_it_cannot_apply_is_a_clear_error():
    with pytest.raises(ModelError, match="dilate_last is not available for resnet18"):
        build_classifier("resnet18", ["a"], weights="none", dilate_last=True)


@pytest.mark.e2e
def test_trained_checkpoint_arch_conflict_is_named(tmp_path):
    from wsol.train.state import describe, model_payload, save

    spec = build_classifier("resnet18", ["cat", "dog"], weights="none")
    path = tmp_path / "m.pt"
    save(path, model_payload(spec.net, describe(spec, "resnet18", False), "fp16", {}))
    back = build_model("", str(path))
    assert back.class_names == ["cat", "dog"] and back.fc_layer == "fc"
    with pytest.raises(ModelError, match="holds a resnet18 trained by wsol"):
        build_model("resnet50", str(path))
