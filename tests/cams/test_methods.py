"""The CAM engine on tiny seeded models and hand-made activations.

Parity with pytorch-grad-cam and captum is in test_cams_parity.py; the default target
layers of the model families are in test_cams_models.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.cams import METHODS, ScoreCAM, build_method, hooked_activation, tokens_to_grid
from wsol.cams.guided import relu_rule
from wsol.errors import UsageError
from wsol.models import ModelSpec, ShapesNet

CAM_FAMILY = (
    "cam",
    "gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "hirescam",
    "scorecam",
    "eigencam",
)
PIXEL = ("gradient", "deconvnet", "guided_backprop", "guided_gradcam")


def minmax(m: torch.Tensor) -> torch.Tensor:
    """Exact per-map min-max normalization of ``[..., h, w]`` (constant maps -> 0)."""
    f = m.flatten(-2).double()
    lo, hi = f.amin(-1, keepdim=True), f.amax(-1, keepdim=True)
    return ((f - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))).view(m.shape)


def shapes_spec(width: int = 8, seed: int = 0) -> ModelSpec:
    """A seeded ShapesNet whose BatchNorms are calibrated on random images, so that its
    activations neither vanish nor explode and its maps depend on the class."""
    torch.manual_seed(seed)
    net = ShapesNet(4, width=width)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        net.train()(images(64, seed=99))
    for m in bns:
        m.momentum = 0.1
    net.eval()
    return ModelSpec(
        net=net,
        class_names=list("abcd"),
        target_layer="layer3",
        cam_layer="layer4",
        fc_layer="fc",
        input_size=(32, 32),
        multi_label=True,
    )


def images(n: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_every_method_and_rejects_unknown_names():
    assert set(METHODS) == set(CAM_FAMILY) | set(PIXEL)
    with pytest.raises(ValueError, match="valid: cam, deconvnet, eigencam"):
        build_method("gradcam2", shapes_spec())
    for name, cls in METHODS.items():
        assert cls.__doc__ and "(" in cls.__doc__, f"{name} needs a docstring with its paper"


@pytest.mark.parametrize("name", [*CAM_FAMILY, *PIXEL])
def test_shapes_and_padding(name):
    spec = shapes_spec()
    t = torch.tensor([[0, 2], [3, -1]])
    out = build_method(name, spec)(images(2), t)
    hw = (32, 32) if name in PIXEL else (4, 4)  # layer3/layer4 run at stride 8
    assert out.maps.shape == (2, 2, *hw) and out.maps.dtype == torch.float32
    assert out.logits.shape == (2, 4) and torch.equal(out.targets, t)
    assert torch.all(out.maps[1, 1] == 0), "a padded target gets an all-zero map"
    assert out.maps[t >= 0].amax() > 0 and not out.maps.requires_grad
    assert out.maps.min() >= 0


def test_cam_equals_gradcam_times_hw_on_gap_linear():
    """Selvaraju et al.: at the pooled layer alpha_k^c = w_k^c / (h w), so Grad-CAM is
    CAM times 1 / (h w), a positive scale."""
    spec = shapes_spec()
    x, t = images(3), torch.tensor([[0, 1], [2, 3], [1, 1]])
    cam = build_method("cam", spec)(x, t).maps
    grad = build_method("gradcam", spec, "layer4")(x, t).maps
    assert cam.amax(dim=(2, 3)).min() > 0
    torch.testing.assert_close(grad * 16, cam, rtol=1e-5, atol=1e-6 * float(cam.max()))


def test_cam_unrectified_mean_plus_bias_is_the_logit():
    spec = shapes_spec()
    m = build_method("cam", spec)
    m.rectify = False
    x, t = images(2), torch.tensor([[0, 3], [2, 1]])
    out = m(x, t)
    bias = spec.net.fc.bias.detach()[t]
    torch.testing.assert_close(
        out.maps.mean(dim=(2, 3)) + bias, out.logits.gather(1, t), rtol=1e-5, atol=1e-5
    )


def test_cam_ignores_the_target_layer_and_rejects_a_layer_that_does_not_feed_pooling():
    spec = shapes_spec()
    assert build_method("cam", spec, "layer3").layer == "layer4"
    spec.cam_layer = "layer4.0"  # same 32 channels, but before BatchNorm + ReLU
    with pytest.raises(ValueError, match=r"not the global average of layer 'layer4\.0'"):
        build_method("cam", spec)(images(1), torch.tensor([[0]]))


class _ConvHeadNet(nn.Module):
    """SqueezeNet's head in miniature: 1x1 conv to the classes, ReLU, average pooling."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(6, 3, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def test_cam_on_a_conv_classifier_is_the_class_channel_before_pooling():
    torch.manual_seed(0)
    net = _ConvHeadNet()
    spec = ModelSpec(
        net=net,
        class_names=list("abc"),
        target_layer="features",
        cam_layer="classifier.1",
        fc_layer="classifier.1",
    )
    x, t = images(2, 16), torch.tensor([[2, 0], [1, 2]])
    out = build_method("cam", spec)(x, t)
    with torch.no_grad():
        expected = F.relu(net.classifier[1](net.features(x)))
    assert out.maps.shape == (2, 2, 8, 8)
    for b in range(2):
        for k in range(2):
            torch.testing.assert_close(out.maps[b, k], expected[b, t[b, k]])
    # The pooled class map is the logit itself.
    torch.testing.assert_close(out.maps.mean(dim=(2, 3)), out.logits.gather(1, t))


class _FunctionalReluNet(nn.Module):
    """DenseNet's head in miniature: features end in BatchNorm (negative values), then a
    functional in-place ReLU that no module hook sees, pooling and a linear layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, 2, 1), nn.BatchNorm2d(5))
        self.classifier = nn.Linear(5, 3)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


def test_cam_applies_the_functional_relu_between_layer_and_pooling():
    torch.manual_seed(0)
    net = _FunctionalReluNet()
    spec = ModelSpec(
        net=net,
        class_names=list("abc"),
        target_layer="features",
        cam_layer="features",
        fc_layer="classifier",
    )
    x, t = images(2, 16), torch.tensor([[0], [2]])
    with torch.no_grad():
        a = net.eval().features(x)
    assert (a < 0).any()
    w = net.classifier.weight.detach()[t[:, 0]]
    expected = F.relu(torch.einsum("bc,bchw->bhw", w, F.relu(a)))
    torch.testing.assert_close(build_method("cam", spec)(x, t).maps[:, 0], expected)
    # Grad-CAM sees the layer's own output, untouched by the in-place ReLU downstream.
    assert build_method("gradcam", spec)(x, t).maps.shape == (2, 1, 8, 8)


@pytest.mark.parametrize("name", [*CAM_FAMILY, *PIXEL])
def test_batch_invariance(name):
    """One image gives the same map alone and inside a batch of 32. Tolerance 1e-5 on
    min-max normalized maps: batched kernels sum in another order (fp32 eps 1.2e-7 over
    sums of hundreds of terms; measured <= 8e-7)."""
    spec = shapes_spec()
    x = images(32)
    t = torch.randint(0, 4, (32, 2), generator=torch.Generator().manual_seed(3))
    m = build_method(name, spec)
    whole = m(x, t).maps
    alone = m(x[5:6], t[5:6]).maps
    assert alone.amax() > 0
    assert (minmax(whole[5:6]) - minmax(alone)).abs().max() <= 1e-5


@pytest.mark.parametrize("name", [*CAM_FAMILY, *PIXEL])
def test_several_targets_equal_separate_single_target_runs(name):
    spec = shapes_spec()
    x = images(3)
    t = torch.tensor([[0, 1, 3], [2, 2, -1], [3, 0, 1]])
    m = build_method(name, spec)
    together = m(x, t).maps
    for j in range(3):
        alone = m(x, t[:, j : j + 1]).maps[:, 0]
        torch.testing.assert_close(
            together[:, j], alone, rtol=1e-5, atol=1e-6 * float(alone.abs().max())
        )
    if name != "eigencam":  # Eigen-CAM is class-agnostic
        assert not torch.allclose(together[:, 0], together[:, 1])


def test_targets_may_be_a_function_of_the_logits():
    spec = shapes_spec()
    seen = {}

    def top2(logits):
        seen["logits"] = logits
        return logits.topk(2, dim=1).indices

    out = build_method("gradcam", spec)(images(2), top2)
    assert seen["logits"].shape == (2, 4) and not seen["logits"].requires_grad
    assert torch.equal(out.targets, out.logits.topk(2, dim=1).indices)


def test_bad_targets_are_rejected():
    m = build_method("gradcam", shapes_spec())
    with pytest.raises(ValueError, match="out of range for 4"):
        m(images(2), torch.tensor([[4], [0]]))
    with pytest.raises(ValueError, match=r"\[B, K\] with B=2"):
        m(images(2), torch.tensor([0, 1]))


class _CountingBackward(torch.autograd.Function):
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        _CountingBackward.calls += 1
        return g


class _Probe(nn.Module):
    def forward(self, x):
        return _CountingBackward.apply(x)


@pytest.mark.parametrize("name", ["gradcam", "gradcampp", "layercam"])
def test_gradients_stop_at_the_target_layer(name):
    """A module below the target layer never runs backward, even when the input
    requires grad; only the input-gradient methods go through it."""
    spec = shapes_spec()
    spec.net.stem = nn.Sequential(_Probe(), spec.net.stem)
    x = images(2).requires_grad_(True)
    _CountingBackward.calls = 0
    build_method(name, spec)(x, torch.tensor([[0], [1]]))
    assert _CountingBackward.calls == 0
    build_method("gradient", spec)(x, torch.tensor([[0], [1]]))
    assert _CountingBackward.calls == 1  # the probe would count, had it been reached


def _hook_state(net: nn.Module) -> list[int]:
    return [
        len(d)
        for m in net.modules()
        for d in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks)
    ]


@pytest.mark.parametrize("name", [*CAM_FAMILY, *PIXEL])
def test_no_hooks_or_state_leak_even_after_an_exception(name):
    spec = shapes_spec()
    net = spec.net
    net.train()
    net.layer1.requires_grad_(False)  # a mix of flags, which must come back as they were
    flags = [p.requires_grad for p in net.parameters()]
    inplace = [m.inplace for m in net.modules() if isinstance(m, nn.ReLU)]
    before = _hook_state(net)
    assert sum(before) == 0 and all(inplace)
    m = build_method(name, spec)

    def check():
        assert _hook_state(net) == before
        assert net.training and all(mod.training for mod in net.modules())
        assert [p.requires_grad for p in net.parameters()] == flags
        assert all(p.grad is None for p in net.parameters())
        assert [mod.inplace for mod in net.modules() if isinstance(mod, nn.ReLU)] == inplace

    m(images(2), torch.tensor([[0, 1], [2, -1]]))
    check()

    def boom(_logits):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m(images(2), boom)
    check()

    def broken(_fp):  # fails after the forward, in the middle of the map computation
        raise RuntimeError("broken")

    m.compute = broken
    with pytest.raises(RuntimeError, match="broken"):
        m(images(2), torch.tensor([[0], [1]]))
    check()


@pytest.mark.parametrize(
    "name", ["cam", "gradcam", "gradcampp", "xgradcam", "scorecam", "eigencam"]
)
def test_bf16_autocast_is_close_to_fp32(name):
    """Tolerance: mean abs difference <= 0.02 over the min-max normalized maps.

    bf16 keeps 8 significant bits (relative rounding 2^-9 per op); through the
    network's ~10 layers that compounds to about 1% of the activations, which is what
    the mean sees (measured <= 0.0104 for these methods over two seeds). The per-pixel
    maximum is not bounded: these maps sum channels with weights of both signs, and
    where the sum nearly cancels a 1% error in the terms is a large error in the map
    (measured up to 0.34 at single pixels with random weights). Methods that also
    rectify gradients elementwise (layercam, hirescam, the pixel-level ReLU masks)
    flip wherever a gradient is near zero and are not bounded by this argument.
    """
    spec = shapes_spec()
    x = images(8)
    t = torch.randint(0, 4, (8, 2), generator=torch.Generator().manual_seed(3))
    m = build_method(name, spec)
    full = m(x, t)
    half = m(x, t, torch.bfloat16)
    assert half.maps.dtype == torch.float32
    assert not torch.equal(half.logits, full.logits), "the forward ran in bf16"
    assert (minmax(half.maps) - minmax(full.maps)).abs().mean() <= 0.02


def test_fp16_autocast_runs_where_supported():
    spec = shapes_spec()
    try:
        out = build_method("gradcam", spec)(images(2), torch.tensor([[0], [1]]), torch.float16)
    except RuntimeError as e:  # CPU fp16 autocast depends on the torch build
        pytest.skip(f"fp16 autocast unavailable on CPU here: {e}")
    assert out.maps.dtype == torch.float32 and torch.isfinite(out.maps).all()


def test_tokens_to_grid_drops_prefix_tokens_and_keeps_row_major_order():
    b, c, h, w = 2, 3, 2, 3
    grid = torch.arange(b * c * h * w, dtype=torch.float32).view(b, c, h, w)
    tokens = grid.flatten(2).transpose(1, 2)  # [B, 6, C]
    prefixed = torch.cat([torch.full((b, 2, c), -1.0), tokens], 1)
    assert torch.equal(tokens_to_grid(prefixed, (32, 48), prefix=2), grid)
    assert torch.equal(tokens_to_grid(prefixed, (32, 48)), grid)  # prefix inferred: 2
    with pytest.raises(ValueError, match="cannot lay 7 tokens"):
        tokens_to_grid(torch.zeros(1, 7, 3), (32, 32), prefix=0)


class _TokenNet(nn.Module):
    """A ViT-shaped toy: patchify 8x8, one token mixer, class token, head on it."""

    num_prefix_tokens = 1

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 4, 8, 8)
        self.cls = nn.Parameter(torch.randn(1, 1, 4))
        self.norm = nn.LayerNorm(4)
        self.mix = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1)
        t = self.norm(t)
        t = t + self.mix(t).mean(1, keepdim=True)  # patch tokens reach the class token
        return self.head(t[:, 0])


def test_token_layers_are_laid_out_on_the_patch_grid():
    torch.manual_seed(0)
    spec = ModelSpec(net=_TokenNet(), class_names=list("abc"), target_layer="norm")
    x, t = images(2, 32), torch.tensor([[0], [2]])
    out = build_method("gradcam", spec)(x, t)
    assert out.maps.shape == (2, 1, 4, 4)
    # By hand: activation and gradient of the norm's output, patch tokens only.
    net = spec.net.eval()
    acts = {}
    handle = net.norm.register_forward_hook(lambda _m, _i, o: acts.setdefault("a", o))
    logits = net(x)
    handle.remove()
    a = acts["a"]
    (g,) = torch.autograd.grad(logits.gather(1, t).sum(), a)
    a, g = a[:, 1:].detach(), g[:, 1:]  # [B, 16, C]
    expected = F.relu((g.mean(1, keepdim=True) * a).sum(-1)).view(2, 4, 4)
    torch.testing.assert_close(out.maps[:, 0], expected)
    spec.net.zero_grad(set_to_none=True)


def test_no_default_layer_asks_for_model_target_layer():
    spec = shapes_spec()
    spec.target_layer = ""
    with pytest.raises(ValueError, match=r"set model\.target_layer"):
        build_method("gradcam", spec)
    build_method("gradient", spec)  # input-gradient methods need no layer


class _TinyReluNet(nn.Module):
    """y = w2 . ReLU(W1 x) with 1x1 convs; x = (1, 1, 1) gives pre-activations
    (-1, 2, 1) and dy/dReLU-output g = w2 = (1, -1, 1)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Conv2d(3, 3, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            w1 = torch.tensor([[1.0, -2, 0], [1, 0, 1], [0, 1, 0]])  # rows r1, r2, r3
            self.fc1.weight.copy_(w1[..., None, None])
            self.fc2.weight.copy_(torch.tensor([[1.0, -1, 1]])[..., None, None])

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x))).flatten(1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gradient", (-1.0, 1.0, -1.0)),  # g * 1[pre > 0] = (0, -1, 1) -> -r2 + r3
        ("deconvnet", (1.0, -1.0, 0.0)),  # ReLU(g) = (1, 0, 1) -> r1 + r3
        ("guided_backprop", (0.0, 1.0, 0.0)),  # ReLU(g) * 1[pre > 0] = (0, 0, 1) -> r3
    ],
)
def test_relu_backward_rules_by_hand(name, expected):
    spec = ModelSpec(net=_TinyReluNet(), class_names=["y"], target_layer="fc1")
    x = torch.ones(1, 3, 1, 1)
    m = build_method(name, spec)
    attr = m.attributions(x, torch.tensor([[0]])).maps
    assert attr.shape == (1, 1, 3, 1, 1)
    assert attr.flatten().tolist() == list(expected)
    assert m(x, torch.tensor([[0]])).maps.item() == max(abs(v) for v in expected)
    assert spec.net.relu.inplace


def test_relu_rule_mode_is_read_at_backward_time():
    net = _TinyReluNet()
    x = torch.ones(1, 3, 1, 1, requires_grad=True)
    with relu_rule(net, "gradient") as rule:
        y = net(x).sum()
        (g1,) = torch.autograd.grad(y, x, retain_graph=True)
        rule.mode = "deconvnet"
        (g2,) = torch.autograd.grad(y, x)
    assert g1.flatten().tolist() == [-1.0, 1.0, -1.0]
    assert g2.flatten().tolist() == [1.0, -1.0, 0.0]
    assert not net.relu._forward_hooks and net.relu.inplace


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam():
    spec = shapes_spec()
    x, t = images(2), torch.tensor([[0, 2], [1, 3]])
    ggc = build_method("guided_gradcam", spec)(x, t).maps
    gb = build_method("guided_backprop", spec)(x, t).maps
    cam = build_method("gradcam", spec)(x, t).maps
    up = F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)
    expected = gb * up
    assert expected.amax() > 0
    torch.testing.assert_close(ggc, expected, rtol=1e-5, atol=1e-6 * float(expected.max()))


class _Identity(nn.Module):
    """The target layer's output is the input itself, so activations are hand-made."""

    def __init__(self, channels: int):
        super().__init__()
        self.features = nn.Identity()
        self.fc = nn.Linear(channels, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("flip", [1.0, -1.0])
def test_eigencam_by_hand_and_its_sign_convention(flip):
    """A 2x2 blob of (1, 2, 3) on zeros, 4x4: the centred rows are 0.75 (1, 2, 3) on the
    blob and -0.25 (1, 2, 3) elsewhere, v = (1, 2, 3) / sqrt(14) (its sum is positive),
    so the map is 0.75 sqrt(14) on the blob and 0 elsewhere. Scaling the activation by
    -1 flips which side correlates with the channel sum: the map moves to the rest."""
    a = torch.zeros(1, 3, 4, 4)
    a[0, :, 1:3, 1:3] = torch.tensor([1.0, 2, 3])[:, None, None]
    spec = ModelSpec(net=_Identity(3), class_names=["p", "q"], target_layer="features")
    out = build_method("eigencam", spec)(flip * a, torch.tensor([[0, 1]])).maps
    blob = torch.zeros(4, 4, dtype=torch.bool)
    blob[1:3, 1:3] = True
    expected = torch.where(blob if flip > 0 else ~blob, 1.0, 0.0)
    expected *= 0.75 * math.sqrt(14) if flip > 0 else 0.25 * math.sqrt(14)
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 1], expected)  # class-agnostic


def test_scorecam_does_not_depend_on_the_chunk_size():
    spec = shapes_spec()
    x, t = images(3), torch.tensor([[0, 1], [2, 3], [1, 0]])
    m = build_method("scorecam", spec)
    m.chunk_size = 1000
    big = m(x, t).maps
    m.chunk_size = 7
    torch.testing.assert_close(m(x, t).maps, big, rtol=1e-5, atol=1e-6 * float(big.max()))


def _channels(spec: ModelSpec, x: torch.Tensor) -> int:
    with torch.no_grad(), hooked_activation(spec.net, spec.target_layer, False) as store:
        spec.net(x)
    return store.activation.shape[1]


def test_scorecam_with_a_budget_of_every_channel_is_the_paper_method():
    """score_channels = C (or more) scores every channel: the very maps of 0."""
    spec = shapes_spec()
    x, t = images(3), torch.tensor([[0, 1], [2, 3], [1, 0]])
    c = _channels(spec, x)
    full = build_method("scorecam", spec)(x, t).maps
    for n in (c, c + 5):
        assert torch.equal(ScoreCAM(spec, score_channels=n)(x, t).maps, full)
    fewer = ScoreCAM(spec, score_channels=c // 4)(x, t).maps
    assert not torch.allclose(fewer, full)  # a real budget changes the maps


def test_scorecam_budget_scores_only_the_channels_of_highest_variance():
    """Four hand-made channels on a 4x4 grid (the identity layer makes the input the
    activation): a constant one, a wide one (values 0..15, variance 21.25), a small
    cell of 1 (variance 15/256) and a 2x2 blob of 4 (variance 3). With a budget of 2, only
    channels 1 and 3 are scored, the softmax runs over their two scores, and the map is
    ReLU(w1 A^1 + w3 A^3), the other channels weighing 0."""
    a = torch.zeros(1, 4, 4, 4)
    a[0, 0] = 2.0
    a[0, 1] = torch.arange(16.0).view(4, 4)
    a[0, 2, 0, 0] = 1.0
    a[0, 3, 2:4, 2:4] = 4.0
    torch.manual_seed(0)
    net = _Identity(4)
    spec = ModelSpec(net=net, class_names=["p", "q"], target_layer="features")
    t = torch.tensor([[0, 1]])
    out = ScoreCAM(spec, score_channels=2)(a, t).maps
    with torch.no_grad():
        masks = {k: minmax(a[0, k]).float() for k in (1, 3)}
        y = torch.stack([net(a * masks[k])[0] for k in (1, 3)])  # [2, classes]
        w = torch.softmax(y, dim=0)
        for j, cls in enumerate((0, 1)):
            expected = F.relu(w[0, cls] * a[0, 1] + w[1, cls] * a[0, 3])
            torch.testing.assert_close(out[0, j], expected)
    # every channel scored (the paper's method) weighs channels 0 and 2 too: other maps
    assert not torch.allclose(out, ScoreCAM(spec)(a, t).maps)


def test_scorecam_budget_of_a_batch_is_that_of_each_image():
    spec = shapes_spec()
    x, t = images(3), torch.tensor([[0, 1], [2, 3], [1, 0]])
    m = ScoreCAM(spec, score_channels=5)
    batch = m(x, t).maps
    alone = torch.cat([m(x[i : i + 1], t[i : i + 1]).maps for i in range(3)])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6 * float(batch.max()))
    m.chunk_size = 4  # chunks that cut across images
    torch.testing.assert_close(m(x, t).maps, batch, rtol=1e-5, atol=1e-6 * float(batch.max()))


@pytest.mark.parametrize("bad", [-1, 2.5, True, "64"])
def test_scorecam_budget_must_be_a_count(bad):
    spec = shapes_spec()
    with pytest.raises(UsageError, match="score_channels must be an integer >= 0"):
        ScoreCAM(spec, score_channels=bad)
    m = build_method("scorecam", spec)
    with pytest.raises(UsageError, match="score_channels"):
        m.score_channels = bad
    assert m.score_channels == 0


@pytest.mark.parametrize("act, upper", [(torch.nn.ReLU(), float("inf")), (torch.nn.ReLU6(), 6.0)])
def test_relu_rules_in_closed_form_for_relu_and_relu6(act, upper):
    """``y = act(x)``, ``L = sum(w * y)``: the input gradient under each rule, by hand.
    ReLU6 (EfficientNet-Lite, MobileNet) gets the rules too, with its own mask 0 < x < 6."""
    x = torch.tensor([-1.0, 0.5, 3.0, 7.0, 2.0, -3.0])
    w = torch.tensor([2.0, -1.0, 1.5, 4.0, -2.0, -1.0])
    passing = ((x > 0) & (x < upper)).float()
    expected = {
        "gradient": w * passing,
        "guided": w.clamp(min=0) * passing,
        "deconvnet": w.clamp(min=0),
    }
    net = torch.nn.Sequential(act)
    for mode, want in expected.items():
        xi = x.clone().requires_grad_(True)
        with relu_rule(net, mode):
            y = net(xi)
        assert torch.equal(y, x.clamp(0, upper))
        (grad,) = torch.autograd.grad((w * y).sum(), xi)
        assert torch.equal(grad, want), mode


@pytest.mark.parametrize("method", ["scorecam", "gradcam"])
def test_cam_score_channels_reaches_scorecam_and_no_other_method(method):
    """The config's budget is Score-CAM's; another method runs as it would without it
    (a grid can set it for every candidate)."""
    from wsol.config import load_config
    from wsol.run.build import explain_localizer

    model = ["model.arch=shapes_net", "model.weights=DEFAULT", "model.device=cpu"]
    cfg = load_config(None, [*model, f"cam.method={method}", "cam.score_channels=7"])
    localizer = explain_localizer(cfg)
    assert localizer.method.name == method
    budget = getattr(localizer.method, "score_channels", None)
    assert budget == (7 if method == "scorecam" else None)
