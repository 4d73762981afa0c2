"""The reference libraries are the oracle: pytorch-grad-cam for the CAM family, captum
for the gradient visualizations.

torchvision resnet18 and vgg11 with seeded random weights on seeded random batches.
Maps are compared after an exact per-map min-max normalization at the target layer's
resolution (pytorch-grad-cam is kept from upsampling by answering ``None`` for its
target size, so its own normalization runs and nothing else); pixel-level maps are
compared at the input resolution, and their gradients before the channel reduction.
Tolerance: max abs difference 1e-4 (measured: at most 4e-6 for every method).
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
import torchvision

from wsol.cams import build_method
from wsol.models import ModelSpec, resolve_module

pgc = pytest.importorskip(
    "pytorch_grad_cam",
    reason="pytorch-grad-cam (pip package grad-cam, a "
    "dev dependency) is the reference for the CAM family",
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection  # noqa: E402

# torchvision resnet18 and vgg11: models bigger than the demo's
pytestmark = pytest.mark.e2e

TOL = 1e-4
REFERENCE = {
    "gradcam": pgc.GradCAM,
    "gradcampp": pgc.GradCAMPlusPlus,
    "xgradcam": pgc.XGradCAM,
    "layercam": pgc.LayerCAM,
    "hirescam": pgc.HiResCAM,
    "eigencam": pgc.EigenCAM,
    "scorecam": pgc.ScoreCAM,
}
# (arch, target layer, input size): vgg11's features.19 is the ReLU after its last conv.
NETS = [("resnet18", "layer4", 96), ("resnet18", "layer3", 64), ("vgg11", "features.19", 64)]
TARGETS = torch.tensor([[3, 500], [7, 10], [999, 3]])


def minmax(m) -> np.ndarray:
    m = np.asarray(m, np.float64)
    lo, hi = m.min(axis=(-2, -1), keepdims=True), m.max(axis=(-2, -1), keepdims=True)
    assert (hi > lo).all(), "a constant map would make the comparison vacuous"
    return (m - lo) / (hi - lo)


@functools.cache
def _nets(arch: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The seeded network, and an independent copy for the references, built once per
    module (vgg11 takes seconds). The copy's parameters are frozen so that the
    references' ``backward()`` does not spend its time writing 100M parameter grads;
    gradients still reach every activation because the input requires grad."""
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None).eval()
    ref = copy.deepcopy(net).requires_grad_(False)
    return net, ref


def setup(arch: str, layer: str, size: int, n: int = 3):
    """Our spec, the reference's network and a seeded batch ``[n, 3, size, size]``."""
    net, ref = _nets(arch)
    spec = ModelSpec(net=net, class_names=[str(i) for i in range(1000)], target_layer=layer)
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    return spec, ref, x


def reference_maps(cls, net, layer: str, x: torch.Tensor, targets: torch.Tensor, **attrs):
    """pytorch-grad-cam maps ``[B, K, h, w]`` at feature resolution: the K target columns
    are stacked into one batch of ``K * B`` images."""
    cam = cls(model=net, target_layers=[resolve_module(net, layer)])
    cam.get_target_width_height = lambda _input: None  # no upsampling, normalization only
    for k, v in attrs.items():
        setattr(cam, k, v)
    b, k = targets.shape
    stacked = x.repeat(k, 1, 1, 1).requires_grad_(True)
    maps = cam(
        input_tensor=stacked, targets=[ClassifierOutputTarget(int(c)) for c in targets.T.flatten()]
    )
    cam.activations_and_grads.release()
    return maps.reshape(k, b, *maps.shape[1:]).transpose(1, 0, 2, 3)


@pytest.mark.parametrize(("arch", "layer", "size"), NETS)
@pytest.mark.parametrize("name", ["gradcam", "gradcampp", "xgradcam", "layercam", "hirescam"])
def test_gradient_cams_match_pytorch_grad_cam(name, arch, layer, size):
    spec, ref, x = setup(arch, layer, size)
    ours = build_method(name, spec)(x, TARGETS).maps
    theirs = reference_maps(REFERENCE[name], ref, layer, x, TARGETS)
    assert ours.shape == theirs.shape
    assert np.abs(minmax(ours) - minmax(theirs)).max() <= TOL


def _activation(net, layer: str, x: torch.Tensor) -> np.ndarray:
    got = {}
    handle = resolve_module(net, layer).register_forward_hook(
        lambda _m, _i, o: got.setdefault("a", o.detach().clone())
    )
    with torch.no_grad():
        net(x)
    handle.remove()
    return got["a"].numpy()


@pytest.mark.parametrize(("arch", "layer", "size"), NETS)
def test_eigencam_matches_pytorch_grad_cam_up_to_the_documented_sign(arch, layer, size):
    """Ours is ReLU(s * P) for pytorch-grad-cam's projection P with
    s = sign(<P, sum_k A^k>); pytorch-grad-cam itself gives ReLU(P) whatever LAPACK's
    sign, so it equals ours exactly where that sign agrees, else our map flipped."""
    spec, ref, x = setup(arch, layer, size)
    ours = build_method("eigencam", spec)(x, TARGETS).maps
    assert torch.equal(ours[:, 0], ours[:, 1])  # class-agnostic
    a = _activation(ref, layer, x)
    proj = get_2d_projection(a)  # [B, h, w], sign as LAPACK returned it
    summed = a.sum(axis=1)
    s = np.sign(((proj - proj.mean((1, 2), keepdims=True)) * summed).sum((1, 2)))
    expected = np.maximum(s[:, None, None] * proj, 0)
    assert np.abs(minmax(ours[:, 0]) - minmax(expected)).max() <= TOL
    theirs = reference_maps(pgc.EigenCAM, ref, layer, x, TARGETS[:, :1])[:, 0]
    flipped = np.maximum(-s[:, None, None] * proj, 0)
    for b in range(len(x)):
        options = [minmax(ours[b, 0]), minmax(flipped[b])]
        assert min(np.abs(o - minmax(theirs[b])).max() for o in options) <= TOL


# Score-CAM runs B * C masked forward passes on each side; one image, layers with 128
# and 64 channels and small inputs keep that to seconds. The grids are 6x6 and 16x16.
@pytest.mark.parametrize(
    ("arch", "layer", "size"), [("resnet18", "layer2", 48), ("vgg11", "features.2", 32)]
)
def test_scorecam_matches_pytorch_grad_cam_with_its_upsampling(arch, layer, size):
    spec, ref, x = setup(arch, layer, size, n=1)
    targets = TARGETS[:1]
    m = build_method("scorecam", spec)
    m.align_corners = True  # pytorch-grad-cam's nn.UpsamplingBilinear2d (documented)
    ours = m(x, targets).maps
    theirs = reference_maps(pgc.ScoreCAM, ref, layer, x, targets, batch_size=64)
    assert np.abs(minmax(ours) - minmax(theirs)).max() <= TOL
    m.align_corners = False  # the default (the paper's code) differs, if slightly
    assert np.abs(minmax(m(x, targets).maps) - minmax(theirs)).max() > TOL


@pytest.fixture
def captum():
    return pytest.importorskip(
        "captum.attr",
        reason="captum (a dev dependency) is the reference for the gradient visualizations",
    )


@pytest.mark.parametrize(("arch", "layer", "size"), [NETS[0], NETS[2]])
@pytest.mark.parametrize(
    ("name", "ref_name"),
    [
        ("guided_backprop", "GuidedBackprop"),
        ("deconvnet", "Deconvolution"),
        ("gradient", "Saliency"),
    ],
)
def test_input_gradients_match_captum(captum, name, ref_name, arch, layer, size):
    spec, ref, x = setup(arch, layer, size, n=2)
    targets = TARGETS[:2]
    m = build_method(name, spec)
    attr = m.attributions(x, targets).maps  # [B, K, 3, H, W]
    maps = m(x, targets).maps
    algo = getattr(captum, ref_name)(ref)
    for j in range(targets.shape[1]):
        kw = {"abs": False} if ref_name == "Saliency" else {}
        theirs = algo.attribute(x.clone(), target=targets[:, j].tolist(), **kw).detach()
        scale = float(theirs.abs().max())
        assert scale > 0
        assert float((attr[:, j] - theirs).abs().max()) <= TOL * scale
        reduced = theirs.abs().amax(dim=1)
        assert np.abs(minmax(maps[:, j]) - minmax(reduced)).max() <= TOL


@pytest.mark.parametrize(("arch", "layer", "size"), [NETS[0], NETS[2]])
def test_guided_gradcam_matches_captum_with_bilinear_upsampling(captum, arch, layer, size):
    spec, ref, x = setup(arch, layer, size, n=2)
    targets = TARGETS[:2]
    m = build_method("guided_gradcam", spec)
    attr = m.attributions(x, targets).maps
    algo = captum.GuidedGradCam(ref, resolve_module(ref, layer))
    for j in range(targets.shape[1]):
        theirs = algo.attribute(
            x.clone(), target=targets[:, j].tolist(), interpolate_mode="bilinear"
        ).detach()
        scale = float(theirs.abs().max())
        assert scale > 0
        assert float((attr[:, j] - theirs).abs().max()) <= TOL * scale
