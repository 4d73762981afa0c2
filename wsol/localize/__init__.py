"""From maps to boxes: the device stage, the host stage, their results, and the Localizer."""

from __future__ import annotations

from wsol.localize.components import detect, sweep_components
from wsol.localize.localizer import Localizer
from wsol.localize.maps import MAP_REASONS, prepare_maps
from wsol.localize.params import PRECISIONS, BoxParams, TargetPolicy
from wsol.localize.results import ClassResult, Detections, ImageResult, MapBatch
from wsol.localize.views import Views

__all__ = [
    "MAP_REASONS",
    "PRECISIONS",
    "BoxParams",
    "ClassResult",
    "Detections",
    "ImageResult",
    "Localizer",
    "MapBatch",
    "TargetPolicy",
    "Views",
    "detect",
    "prepare_maps",
    "sweep_components",
]
