"""CAM methods and gradient visualizations, picked by name from :data:`METHODS`.

Class activation maps (``[B, K, h, w]`` at the target layer's grid): ``cam``, ``gradcam``,
``gradcampp``, ``xgradcam``, ``layercam``, ``hirescam``, ``scorecam``, ``eigencam``.
Pixel-level maps (``[B, K, H, W]`` at the input size, ``method.pixel_level``):
``gradient``, ``deconvnet``, ``guided_backprop``, ``guided_gradcam``. Which classes get a
map is :mod:`wsol.cams.targets`' job.
"""

from __future__ import annotations

from wsol.cams.base import CamMethod, CamOutput, ForwardPass, tokens_to_grid
from wsol.cams.cam import CAM
from wsol.cams.eigen import EigenCAM
from wsol.cams.gradcam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from wsol.cams.guided import Deconvnet, Gradient, GuidedBackprop, GuidedGradCAM, relu_rule
from wsol.cams.hooks import CamError, frozen_model, hooked_activation
from wsol.cams.scorecam import ScoreCAM
from wsol.errors import unknown_choice
from wsol.models import ModelSpec

__all__ = [
    "CAM",
    "METHODS",
    "CamError",
    "CamMethod",
    "CamOutput",
    "Deconvnet",
    "EigenCAM",
    "ForwardPass",
    "GradCAM",
    "GradCAMPlusPlus",
    "Gradient",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "XGradCAM",
    "build_method",
    "frozen_model",
    "hooked_activation",
    "relu_rule",
    "tokens_to_grid",
]

METHODS: dict[str, type[CamMethod]] = {
    cls.name: cls
    for cls in (
        CAM,
        GradCAM,
        GradCAMPlusPlus,
        XGradCAM,
        LayerCAM,
        HiResCAM,
        ScoreCAM,
        EigenCAM,
        Gradient,
        Deconvnet,
        GuidedBackprop,
        GuidedGradCAM,
    )
}


def build_method(name: str, spec: ModelSpec, layer: str | None = None) -> CamMethod:
    """Instantiate the method ``name`` on ``spec`` (unknown names list the valid ones).

    ``layer`` overrides the spec's target layer (``cam`` always hooks the pooled layer;
    ``gradient``, ``deconvnet`` and ``guided_backprop`` hook none).
    """
    if name not in METHODS:
        raise CamError(unknown_choice("cam.method", name, METHODS))
    return METHODS[name](spec, layer)
