"""Train the demo's multi-label classifier on procedurally rendered shapes.

The data are rendered in memory from ``(data_seed, "train", index)``; the held-out
splits the demo scores (``val``, ``test``) come from other split names, so they never
overlap the training images. The checkpoint is saved in fp16 with its class names,
preprocessing and the config that produced it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from wsol.config import ConfigError, TrainConfig
from wsol.data.synthetic import SHAPES, ShapeSpec, render
from wsol.models import IMAGENET_MEAN, IMAGENET_STD, ShapesNet

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, dict], None]


def render_split(seed: int, split: str, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, H, W, 3]`` (RGB, JPEG round-tripped like the files on disk)
    and multi-hot labels ``float32 [N, C]``."""
    spec = ShapeSpec(image_size=size)
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.zeros((count, len(SHAPES)), np.float32)
    for i in range(count):
        r = render(seed, split, i, spec)
        _ok, buf = cv2.imencode(".jpg", r.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images[i] = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        labels[i, r.labels] = 1.0
    return images, labels


def _to_input(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of the non-interpolated AP of ``scores [N, C]`` vs ``{0,1} [N, C]``."""
    aps = []
    for c in range(scores.shape[1]):
        pos = targets[:, c] > 0
        if not pos.any():
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        hits = pos[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else math.nan


def train(cfg: TrainConfig, progress: Progress | None = None) -> dict:
    """Fit :class:`ShapesNet` and save ``<out>/model.pt``; returns the final metrics."""
    if cfg.arch != "shapes_net":
        raise ConfigError(f"wsol train supports arch=shapes_net, got {cfg.arch!r}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    images, labels = render_split(cfg.data_seed, "train", cfg.num_images, cfg.image_size)
    val_images, val_labels = render_split(cfg.data_seed, "val", cfg.val_images, cfg.image_size)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    net = ShapesNet(len(SHAPES), width=cfg.width)
    steps_per_epoch = cfg.num_images // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    loss_fn = nn.BCEWithLogitsLoss()
    step = 0
    for _epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(cfg.num_images)
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            batch = images[idx]
            # Shapes have no canonical orientation: flips and quarter turns are free data.
            k = int(rng.integers(4))
            batch = np.rot90(batch, k, axes=(1, 2))
            if rng.random() < 0.5:
                batch = batch[:, :, ::-1]
            x = _to_input(np.ascontiguousarray(batch), mean, std)
            loss = loss_fn(net(x), torch.from_numpy(labels[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress is not None:
                progress(step, total, {"loss": float(loss.detach())})

    net.eval()
    with torch.no_grad():
        scores = torch.cat(
            [
                torch.sigmoid(net(_to_input(val_images[i : i + 256], mean, std)))
                for i in range(0, len(val_images), 256)
            ]
        ).numpy()
    metrics = {"val_map": average_precision(scores, val_labels), "steps": step}
    ckpt = {
        "state_dict": {k: v.half() for k, v in net.state_dict().items()},
        "class_names": list(SHAPES),
        "width": cfg.width,
        "input_size": [cfg.image_size, cfg.image_size],
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "train_config": asdict(cfg),
        "train_metrics": metrics,
    }
    torch.save(ckpt, out / "model.pt")
    logger.info("saved %s (val mAP %.4f)", out / "model.pt", metrics["val_map"])
    return metrics
