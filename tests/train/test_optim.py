"""Learning-rate schedule, class weights and the backbone/head split, checked by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from wsol.models.build import build_classifier
from wsol.train.optim import class_weights, lr_factor, make_optimizer
from wsol.train_config import OptimConfig


def test_cosine_with_warmup():
    cfg = OptimConfig(warmup_epochs=1.0, schedule="cosine")
    f = [lr_factor(s, 40, 10, cfg) for s in range(40)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f[10] == 1.0 and f[25] == pytest.approx(0.5) and f[39] < 0.01
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


def test_step_schedule():
    cfg = OptimConfig(warmup_epochs=0, schedule="step", step_epochs=2, gamma=0.5)
    assert [lr_factor(s, 60, 10, cfg) for s in (0, 19, 20, 39, 40)] == [1, 1, 0.5, 0.5, 0.25]


def test_positive_weights_are_negatives_over_positives_capped():
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)
    # a: 3 pos / 1 neg -> 1/3, raised to 1; b: 1 / 3 -> 3; c: no positive -> the cap.
    assert class_weights(labels, True, 20.0).tolist() == [1.0, 3.0, 20.0]


def test_single_label_weights_are_inverse_frequency():
    labels = np.eye(2, dtype=np.float32)[[0, 0, 0, 1]]
    assert class_weights(labels, False, 20.0) == pytest.approx([4 / 6, 2.0])


def test_frozen_backbone_trains_the_head_only_and_lower_rate_otherwise():
    spec = build_classifier("shapes_net", ["a", "b"], weights="none")
    opt = make_optimizer(spec.net, spec.head, OptimConfig(lr=0.01, backbone_lr=0.1), False)
    assert [g["lr"] for g in opt.param_groups] == [0.01, pytest.approx(0.001)]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(spec.net.parameters()))
    spec = build_classifier("shapes_net", ["a", "b"], weights="none")
    opt = make_optimizer(spec.net, spec.head, OptimConfig(lr=0.01), True)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 2
    trainable = [n for n, p in spec.net.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert isinstance(spec.net.fc, torch.nn.Linear)
