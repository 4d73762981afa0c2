"""CAM methods, picked by name from :data:`METHODS`."""

from __future__ import annotations

from wsol.cams.base import CamMethod, CamOutput, hooked_activation
from wsol.cams.cam import CAM
from wsol.cams.gradcam import GradCAM
from wsol.models import ModelSpec

__all__ = ["METHODS", "CamMethod", "CamOutput", "build_method", "hooked_activation"]

METHODS: dict[str, type[CamMethod]] = {cls.name: cls for cls in (CAM, GradCAM)}


def build_method(name: str, spec: ModelSpec, layer: str | None = None) -> CamMethod:
    """Instantiate the method ``name`` on ``spec`` (unknown names list the valid ones)."""
    if name not in METHODS:
        raise ValueError(f"unknown cam.method {name!r}; valid: {', '.join(sorted(METHODS))}")
    return METHODS[name](spec, layer)
