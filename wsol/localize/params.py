"""What a :class:`~wsol.localize.Localizer` is built with, besides the model and method:
the target policy, the box parameters and the precision names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

import torch

from wsol.cams.targets import TARGET_MODES
from wsol.errors import UsageError, unknown_choice
from wsol.localize.components import COMPONENT_MODES, MERGE_MODES, SCORE_MODES
from wsol.localize.maps import THRESHOLD_MODES

if TYPE_CHECKING:
    from wsol.config import BoxesConfig

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Where the largest component's box is found: auto (on a CUDA device with CuPy), on, off
DEVICE_BOXES = ("auto", "on", "off")


def choice(what: str, value: str, valid) -> None:
    if value not in valid:
        raise UsageError(unknown_choice(what, value, valid))


@dataclass(frozen=True)
class TargetPolicy:
    """Which classes of an image get a map: its ground-truth labels (``gt``), the
    ``topk`` most probable, or every class with probability ``>= min_prob``.

    Args:
        mode: ``gt``, ``topk`` or ``prob``.
        topk: how many classes ``topk`` takes (>= 1).
        min_prob: the probability ``prob`` asks for, in ``[0, 1]``.

    Returns:
        The policy, for :class:`~wsol.localize.Localizer`'s ``targets``.

    Raises:
        UsageError: an unknown mode, or a count or probability out of range.

    Example:
        >>> TargetPolicy("prob", min_prob=0.3)
        TargetPolicy(mode='prob', topk=1, min_prob=0.3)
        >>> TargetPolicy("all")
        Traceback (most recent call last):
        wsol.errors.UsageError: unknown target mode 'all'; valid: gt, prob, topk
    """

    mode: str = "topk"
    topk: int = 1
    min_prob: float = 0.5

    def __post_init__(self) -> None:
        choice("target mode", self.mode, TARGET_MODES)
        if self.topk < 1 or not 0.0 <= self.min_prob <= 1.0:
            raise UsageError(
                f"topk must be >= 1 and min_prob in [0, 1], got {self.topk}, {self.min_prob}"
            )


class CalibratedCuts(Protocol):
    """What :meth:`BoxParams.from_config` reads of a calibration
    (:class:`wsol.evaluate.calibration.Calibration`): the global cut and each class's."""

    threshold: float

    def thresholds_for(self, class_names: list[str]) -> Sequence[float]: ...


# The cut: set by the config's threshold keys, or by a calibration; every other field of
# BoxParams is the config key of the same name.
_CUT_FIELDS = ("threshold_mode", "threshold", "class_thresholds")


@dataclass(frozen=True)
class BoxParams:
    """How maps become boxes (the ``boxes.*`` keys of a run config; :meth:`from_config`).

    Args:
        threshold_mode: ``fraction`` (of each map's maximum), ``absolute`` (on the
            min-max normalized map) or ``otsu``.
        threshold: the cut, in ``[0, 1]`` (0.15 Grad-CAM paper, 0.2 CAM paper).
        class_thresholds: one absolute cut per dataset class, from a calibration; it
            replaces ``threshold_mode`` and ``threshold`` when given.
        components: ``largest`` (one box per map) or ``all`` (one per 8-connected
            component).
        min_area: the smallest component ``all`` keeps, as a fraction of the image.
        merge: with ``all``: ``none``, ``nested`` or ``overlap`` boxes merged.
        score: a box's score: the ``mean`` or ``max`` of the map inside it, times the
            class probability.
        nms_iou: per-class NMS at this IoU (None: off).
        smooth: a Gaussian blur of the map first, sigma as a fraction of its long side.
        max_side: the longest side maps are upsampled to (boxes are scaled back).

    Returns:
        The parameters, for :class:`~wsol.localize.Localizer`'s ``boxes``.

    Raises:
        UsageError: a mode, component rule, merge or score that is not one of its
            choices.

    Example:
        >>> BoxParams(threshold=0.15).describe_cut()
        "fraction 0.15 of each map's maximum"
        >>> BoxParams(components="some")
        Traceback (most recent call last):
        wsol.errors.UsageError: unknown components 'some'; valid: all, largest
    """

    threshold_mode: str = "fraction"
    threshold: float = 0.2
    class_thresholds: tuple[float, ...] | None = None
    components: str = "largest"
    min_area: float = 0.0
    merge: str = "none"
    score: str = "mean"
    nms_iou: float | None = None
    smooth: float = 0.0
    max_side: int = 4096

    @classmethod
    def from_config(
        cls,
        boxes: BoxesConfig,
        calibration: CalibratedCuts | None = None,
        classes: list[str] | None = None,
    ) -> BoxParams:
        """The box parameters of a run config's ``boxes`` section.

        Args:
            boxes: the section (:class:`wsol.config.BoxesConfig`); each field of this
                class but the cut is its key of the same name.
            calibration: the cuts ``boxes.threshold=calibrated`` applies (absolute, on
                the min-max normalized map).
            classes: the dataset classes, in order, for one calibrated cut per class;
                without them every class gets the calibration's global cut.

        Returns:
            The parameters, checked.

        Raises:
            UsageError: ``boxes.threshold=calibrated`` without a calibration, or a
                choice that is not valid.

        Example:
            >>> from wsol.config import BoxesConfig
            >>> BoxParams.from_config(BoxesConfig(threshold=0.35)).describe_cut()
            "fraction 0.35 of each map's maximum"
        """
        same = {f.name: getattr(boxes, f.name) for f in fields(cls) if f.name not in _CUT_FIELDS}
        if boxes.threshold != "calibrated":
            return cls(
                threshold_mode=boxes.threshold_mode, threshold=float(boxes.threshold), **same
            )
        if calibration is None:
            raise UsageError("boxes.threshold=calibrated needs the calibration it names")
        per_class = calibration.thresholds_for(classes) if classes is not None else None
        return cls(
            threshold_mode="absolute",
            threshold=float(calibration.threshold),
            class_thresholds=tuple(map(float, per_class)) if per_class is not None else None,
            **same,
        )

    def describe_cut(self) -> str:
        """The operating cut in words, e.g. ``fraction 0.15 of each map's maximum``."""
        if self.class_thresholds is not None:
            cuts = sorted(set(self.class_thresholds))
            values = f"{cuts[0]:g}" if len(cuts) == 1 else f"{cuts[0]:g}..{cuts[-1]:g} per class"
            return f"calibrated: absolute {values} on the min-max normalized map"
        if self.threshold_mode == "fraction":
            return f"fraction {self.threshold:g} of each map's maximum"
        if self.threshold_mode == "absolute":
            return f"absolute {self.threshold:g} on the min-max normalized map"
        return "Otsu's threshold of each map"

    def __post_init__(self) -> None:
        choice("threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        choice("components", self.components, COMPONENT_MODES)
        choice("merge", self.merge, MERGE_MODES)
        choice("score", self.score, SCORE_MODES)


DEFAULT_TARGETS = TargetPolicy()
DEFAULT_BOXES = BoxParams()
