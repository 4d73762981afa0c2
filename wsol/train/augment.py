"""Training-time augmentation with albumentations, and the validation transform.

Training images get a random resized crop (or the whole image), flips, optional quarter
turns and colour jitter, all at the model's input size. Each image's draw is seeded by
``(seed, epoch, index)``, so an epoch is the same whatever the worker count or a resume.
Validation images get exactly what ``wsol run`` feeds the model: the whole image
resized by :func:`wsol.data.loader.resize`. Both stay ``uint8`` here; normalization
happens on the device, by the same function ``wsol run`` uses.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from wsol.data.loader import resize
from wsol.train_config import AugmentConfig


def training_transform(cfg: AugmentConfig, size: tuple[int, int]) -> A.Compose:
    """The augmentation pipeline for ``(H, W)`` inputs."""
    h, w = size
    steps: list = []
    if cfg.crop_scale is not None:
        steps.append(
            A.RandomResizedCrop(
                size=(h, w),
                scale=tuple(cfg.crop_scale),
                ratio=tuple(cfg.crop_ratio),
                interpolation=cv2.INTER_LINEAR,
                area_for_downscale="image",
            )
        )
    else:
        steps.append(A.Resize(h, w, interpolation=cv2.INTER_AREA))
    if cfg.hflip:
        steps.append(A.HorizontalFlip(p=cfg.hflip))
    if cfg.rotate90:
        steps.append(A.RandomRotate90(p=1.0))
    if cfg.jitter_p and (cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue):
        steps.append(
            A.ColorJitter(
                brightness=cfg.brightness,
                contrast=cfg.contrast,
                saturation=cfg.saturation,
                hue=cfg.hue,
                p=cfg.jitter_p,
            )
        )
    return A.Compose(steps, seed=0)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one image in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def augment(transform: A.Compose, pixels: np.ndarray, seed: int) -> np.ndarray:
    """``transform`` applied to RGB ``uint8 [H, W, 3]`` with its random draw fixed by ``seed``."""
    transform.set_random_seed(seed)
    return transform(image=pixels)["image"]


def validation_transform(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What ``wsol run`` does to an image before the model (stretch to ``size``)."""
    return resize(pixels, size)
