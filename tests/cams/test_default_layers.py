"""Default target layers of the model families, checked by running the methods on them.

Random weights (``weights=none``, timm ``pretrained=False``), one or two small images.
Where a family has a CAM layer, the CAM identity pins it: the spatial mean of the
unrectified class map plus the classifier's bias is the logit.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsol.cams import build_method
from wsol.models import build_model, resolve_module

# arch -> (target_layer, cam_layer, fc_layer, input size, target-layer grid)
FAMILIES = {
    "resnet18": ("layer4", "layer4", "fc", 64, (2, 2)),
    "vgg11": ("features.19", None, None, 64, (4, 4)),
    "densenet121": ("features", "features", "classifier", 64, (2, 2)),
    "efficientnet_b0": ("features", "features", "classifier.1", 64, (2, 2)),
    "mobilenet_v2": ("features", "features", "classifier.1", 64, (2, 2)),
    "mobilenet_v3_small": ("features", None, None, 64, (2, 2)),
    "convnext_tiny": ("features", None, None, 64, (2, 2)),
    "squeezenet1_1": ("features", "classifier.1", "classifier.1", 64, (3, 3)),
    "shufflenet_v2_x0_5": ("conv5", "conv5", "fc", 64, (2, 2)),
    "timm:resnet18": ("layer4", "layer4", "fc", 64, (2, 2)),
    "timm:efficientnet_b0": ("bn2", "bn2", "classifier", 64, (2, 2)),
    "timm:mobilenetv3_small_050": ("blocks.5", None, None, 64, (2, 2)),
    "timm:convnext_atto": ("stages.3", None, None, 64, (2, 2)),
    "timm:vit_tiny_patch16_224": ("blocks.11.norm1", None, None, 224, (14, 14)),
    "timm:deit_tiny_distilled_patch16_224": ("blocks.11.norm1", None, None, 224, (14, 14)),
    "timm:swin_tiny_patch4_window7_224": ("layers.3", None, None, 224, (7, 7)),  # NHWC
    "efficientnet_lite0": ("conv_head", "bn2", "classifier", 64, (2, 2)),
}


@pytest.mark.e2e  # ImageNet-sized models
@pytest.mark.parametrize("arch", list(FAMILIES))
def test_default_layers_and_maps(arch):
    if arch.startswith("timm:") or arch == "efficientnet_lite0":
        pytest.importorskip("timm", reason="timm models need timm (the 'lite' extra)")
    target, cam, fc, size, grid = FAMILIES[arch]
    torch.manual_seed(0)
    spec = build_model(arch, "none")
    assert (spec.target_layer, spec.cam_layer, spec.fc_layer) == (target, cam, fc)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([[1, 7]])
    out = build_method("gradcam", spec)(x, t)
    assert out.maps.shape == (1, 2, *grid) and torch.isfinite(out.maps).all()
    if cam is None:
        with pytest.raises(ValueError, match="cam needs a global-average-pooling"):
            build_method("cam", spec)
        return
    m = build_method("cam", spec)
    m.rectify = False
    out = m(x, t)
    head = resolve_module(spec.net, fc)
    bias = torch.zeros(1000) if isinstance(head, nn.Conv2d) else head.bias.detach()
    got = out.maps.double().mean(dim=(2, 3)) + bias[t]
    logits = out.logits.gather(1, t).double()
    assert float((got - logits).abs().max()) <= 1e-4 * float(out.logits.abs().max())


@pytest.mark.e2e
def test_vgg_default_is_the_last_relu_of_any_depth():
    assert build_model("vgg11_bn", "none").target_layer == "features.27"


@pytest.mark.e2e  # ViT-B/16
def test_torchvision_vit_lays_its_tokens_on_the_grid():
    spec = build_model("vit_b_16", "none")
    assert spec.target_layer == "encoder.layers.encoder_layer_11.ln_1"
    assert isinstance(resolve_module(spec.net, spec.target_layer), nn.LayerNorm)


@pytest.mark.e2e
def test_unknown_family_asks_for_model_target_layer():
    spec = build_model("swin_t", "none")
    assert spec.target_layer == ""
    with pytest.raises(ValueError, match=r"no default target layer .* set model\.target_layer"):
        build_method("gradcam", spec)
    assert build_model("swin_t", "none", target_layer="features").target_layer == "features"
