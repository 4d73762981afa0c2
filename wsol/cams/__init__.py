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
from wsol.registry import Registry

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
    "register_method",
    "relu_rule",
    "tokens_to_grid",
]

METHODS: Registry[type[CamMethod]] = Registry(
    "cam.method",
    {
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
    },
)


def register_method(name: str, method: type[CamMethod]) -> None:
    """Make ``cam.method=name`` (and ``method=name`` in the API) use a method of your own.

    Args:
        name: the method's name; replaces (with a warning) one registered before.
        method: a :class:`CamMethod` subclass, built as ``method(spec, layer)``. Most
            only implement :meth:`CamMethod.map`, which turns the hooked activation
            ``A [B, C, h, w]`` (and ``dy/dA`` when ``needs_gradients``) into maps
            ``[B, h, w]``.

    Returns:
        None. :data:`METHODS` holds the method from now on.

    Raises:
        TypeError: ``method`` is not a :class:`CamMethod` subclass.
        ValueError: ``name`` is empty.

    Example:
        >>> import wsol
        >>> class MeanCAM(GradCAM):  # every channel weighs the same
        ...     def map(self, activation, grad):
        ...         return activation.mean(1).clamp(min=0)
        >>> wsol.register_method("meancam", MeanCAM)
        >>> localizer = wsol.Localizer(wsol.load_model("shapes_net"), "meancam")
        >>> type(localizer.method).__name__
        'MeanCAM'
        >>> METHODS.unregister("meancam")
    """
    if not (isinstance(method, type) and issubclass(method, CamMethod)):
        raise TypeError(f"a cam.method must be a CamMethod subclass, got {method!r}")
    METHODS.register(name, method)


def build_method(name: str, spec: ModelSpec, layer: str | None = None) -> CamMethod:
    """Instantiate the method ``name`` on ``spec`` (unknown names list the valid ones).

    ``layer`` overrides the spec's target layer (``cam`` always hooks the pooled layer;
    ``gradient``, ``deconvnet`` and ``guided_backprop`` hook none).
    """
    if name not in METHODS:
        raise CamError(unknown_choice("cam.method", name, METHODS))
    return METHODS[name](spec, layer)
