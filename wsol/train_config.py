"""Training configuration: the sections of ``wsol train`` (load it with
``load_config(path, overrides, cls=TrainConfig)``).

The data section is the run's, plus the rendered shapes; the others say which network
to fit, how to augment, and how to optimize. See ``docs/training.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from wsol.config import DataConfig, check_device, check_out
from wsol.schema import Section, between

__all__ = [
    "AugmentConfig",
    "OptimConfig",
    "ShapesConfig",
    "TrainConfig",
    "TrainDataConfig",
    "TrainModelConfig",
    "ValConfig",
]


@dataclass
class TrainDataConfig(DataConfig):
    """The training images and their image-level labels (boxes are never read)."""

    # shapes: the demo's procedurally rendered shapes (see the shapes section)
    format: Literal["voc", "coco", "folder", "shapes"] = "voc"
    split: str = "train"
    # decoding processes (0: in the main process; unset: as `wsol run`, 1 on a CPU)
    num_workers: int | None = field(default=None, metadata=between(0))


@dataclass
class ValConfig(Section):
    """Where validation images come from: the dataset's own split, else a held-out part."""

    section: ClassVar[str] = "val"
    split: str = ""  # VOC: a split file of the same root (e.g. val)
    ann_file: str = ""  # COCO: an instances JSON of other images
    labels_file: str = ""  # folder: a labels file of other images (same root)
    # without any of those: this seeded fraction of the training images is held out
    fraction: float = field(default=0.1, metadata=between(0, 1, lo_open=True, hi_open=True))


@dataclass
class ShapesConfig(Section):
    """``data.format=shapes``: images rendered in memory from ``(seed, split, index)``."""

    section: ClassVar[str] = "shapes"
    seed: int = 1  # the demo's test/val images come from other split names of this seed
    num_images: int = field(default=20000, metadata=between(1))
    val_images: int = field(default=500, metadata=between(1))
    image_size: int = field(default=128, metadata=between(64))  # objects are 22-48 px


@dataclass
class TrainModelConfig(Section):
    """The network to fit: a backbone and a fresh GAP + linear head for the classes."""

    section: ClassVar[str] = "model"
    arch: str = "efficientnet_lite0"
    # DEFAULT: pretrained (offline for efficientnet_lite0/1/2); none: from scratch; a path
    weights: str = "DEFAULT"
    # [H, W]; empty: the backbone's own
    input_size: list[int] | None = field(default=None, metadata=between(1, length=2))
    # drop the last stage's stride (dilating it): maps at 2x the resolution
    dilate_last: bool = False
    freeze_backbone: bool = False  # train the head only (backbone batch norms frozen too)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    save_dtype: Literal["fp32", "fp16"] = "fp32"  # of model.pt's weights (fp16: half the size)

    def check(self) -> None:
        check_device(self.device)


@dataclass
class AugmentConfig(Section):
    """Training-time augmentation (albumentations). Validation images get exactly what
    ``wsol run`` feeds the model: the whole image resized to the input size."""

    section: ClassVar[str] = "augment"
    # random resized crop: area fraction and aspect range; null: the whole image, resized
    crop_scale: list[float] | None = field(
        default_factory=lambda: [0.35, 1.0], metadata=between(0, 1, lo_open=True, length=2)
    )
    crop_ratio: list[float] = field(
        default_factory=lambda: [0.75, 1.3333], metadata=between(0, lo_open=True, length=2)
    )
    hflip: float = field(default=0.5, metadata=between(0, 1))  # probability
    rotate90: bool = False  # random quarter turns (for data with no up, like the shapes)
    brightness: float = field(default=0.3, metadata=between(0, 1))
    contrast: float = field(default=0.3, metadata=between(0, 1))
    saturation: float = field(default=0.3, metadata=between(0, 1))
    hue: float = field(default=0.05, metadata=between(0, 0.5))
    jitter_p: float = field(default=0.8, metadata=between(0, 1))  # colour jitter probability


@dataclass
class OptimConfig(Section):
    """The training loop."""

    section: ClassVar[str] = "train"
    epochs: int = field(default=10, metadata=between(1))
    batch_size: int = field(default=32, metadata=between(2))
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = field(default=1e-3, metadata=between(0, lo_open=True))
    backbone_lr: float = field(default=0.1, metadata=between(0))  # times lr, for the backbone
    weight_decay: float = field(default=1e-4, metadata=between(0))
    momentum: float = field(default=0.9, metadata=between(0, 1, hi_open=True))  # sgd
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = field(default=1.0, metadata=between(0))
    step_epochs: int = field(default=10, metadata=between(1))  # schedule=step: every N epochs
    gamma: float = field(default=0.1, metadata=between(0, 1, lo_open=True))  # schedule=step
    grad_clip: float = field(default=5.0, metadata=between(0))  # max gradient norm; 0: off
    # multi-label (sigmoid + BCE) or single-label (softmax + cross-entropy); auto: single
    # when every training image has exactly one label
    labels: Literal["auto", "multi", "single"] = "auto"
    # class imbalance: BCE positive weights neg/pos (capped), CE class weights; none: off
    balance: Literal["auto", "none"] = "auto"
    max_pos_weight: float = field(default=20.0, metadata=between(1))
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, off on CPU
    threads: int = field(default=0, metadata=between(0))  # torch threads; 0: the default


@dataclass
class TrainConfig(Section):
    """``wsol train``: fit a CAM-ready classifier on a dataset's image-level labels."""

    out: str = "runs/train"
    seed: int = field(default=0, metadata=between(0, 2**63 - 1))
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    model: TrainModelConfig = field(default_factory=TrainModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def check(self) -> None:
        check_out(self.out)
