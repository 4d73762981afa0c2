"""Classifiers, and everything wsol must know about one: layers, classes and inputs."""

from __future__ import annotations

from wsol.models.build import MODELS, build_model, load_model, register_model
from wsol.models.shapes_net import DEMO_CHECKPOINT, ShapesNet
from wsol.models.spec import IMAGENET_MEAN, IMAGENET_STD, ModelError, ModelSpec, resolve_module

__all__ = [
    "DEMO_CHECKPOINT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "ModelError",
    "ModelSpec",
    "ShapesNet",
    "build_model",
    "load_model",
    "register_model",
    "resolve_module",
]
