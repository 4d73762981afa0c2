"""The optimizer, its learning-rate schedule, the loss with its class weights, and the
settings they depend on (multi- or single-label, autocast, frozen batch norms)."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from wsol.schema import ConfigError
from wsol.train_config import OptimConfig

logger = logging.getLogger(__name__)


def head_parameters(net: nn.Module, head: str) -> set[str]:
    """Names of the parameters of the module ``head`` (the fresh classifier)."""
    return {f"{head}.{n}" for n, _ in net.get_submodule(head).named_parameters()}


def make_optimizer(
    net: nn.Module, head: str, cfg: OptimConfig, freeze_backbone: bool
) -> torch.optim.Optimizer:
    """AdamW or SGD over two groups: the head at ``lr``, the backbone at ``lr *
    backbone_lr`` (left out, and frozen, with ``freeze_backbone``). Each group keeps its
    base rate in ``initial_lr`` for the schedule."""
    in_head = head_parameters(net, head)
    head_params, backbone = [], []
    for name, p in net.named_parameters():
        if name in in_head:
            head_params.append(p)
        elif freeze_backbone:
            p.requires_grad_(False)
        else:
            backbone.append(p)
    groups = [{"params": head_params, "lr": cfg.lr, "initial_lr": cfg.lr}]
    if backbone and cfg.backbone_lr > 0:
        lr = cfg.lr * cfg.backbone_lr
        groups.append({"params": backbone, "lr": lr, "initial_lr": lr})
    elif backbone:
        for p in backbone:
            p.requires_grad_(False)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, steps_per_epoch: int, cfg: OptimConfig) -> float:
    """The schedule at optimizer step ``step`` (0-based) of ``total``: a linear warm-up
    over ``warmup_epochs``, then cosine to zero, steps of ``gamma`` every
    ``step_epochs``, or constant."""
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "cosine":
        span = max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))
    if cfg.schedule == "step":
        return cfg.gamma ** (step // (cfg.step_epochs * steps_per_epoch))
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


def class_weights(labels: np.ndarray, multi_label: bool, cap: float) -> np.ndarray:
    """Per-class loss weights ``[C]`` against imbalance.

    Multi-label: BCE positive weights ``negatives / positives``, between 1 and ``cap``
    (a class with no positive gets ``cap``). Single-label: cross-entropy weights
    ``N / (C * count)``, between ``1 / cap`` and ``cap``."""
    n, c = labels.shape
    pos = labels.sum(0)
    if multi_label:
        return np.clip((n - pos) / np.maximum(pos, 1e-9), 1.0, cap).astype(np.float32)
    return np.clip(n / (c * np.maximum(pos, 1e-9)), 1.0 / cap, cap).astype(np.float32)


def make_loss(multi_label: bool, weights: np.ndarray | None, device: torch.device) -> nn.Module:
    """BCE with logits (multi-hot targets) or cross-entropy (class-index targets)."""
    w = None if weights is None else torch.as_tensor(weights, device=device)
    return nn.BCEWithLogitsLoss(pos_weight=w) if multi_label else nn.CrossEntropyLoss(weight=w)


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device``; None for full precision."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def is_multi_label(mode: str, labels: np.ndarray) -> bool:
    """``train.labels``: multi-label unless every image has exactly one label (auto)."""
    per_image = labels.sum(1)
    if mode == "multi":
        return True
    if mode == "single":
        bad = int((per_image != 1).sum())
        if bad:
            raise ConfigError(
                f"train.labels=single, but {bad} training images have no label or several; "
                "use train.labels=multi"
            )
        return False
    return not bool((per_image == 1).all())


def freeze_batch_norms(net: torch.nn.Module, head: str | None) -> None:
    """Keep the backbone's batch norms on their pretrained statistics."""
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not (
            head and name.startswith(head)
        ):
            m.eval()
