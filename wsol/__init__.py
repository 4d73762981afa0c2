"""wsol: weakly supervised object localization, from class activation maps to boxes.

The Python API::

    import wsol

    model = wsol.load_model("efficientnet_lite0")        # ImageNet weights, offline
    result = wsol.explain(model, "photo.jpg", method="gradcam", topk=3)
    result.boxes, result.labels, result.scores
    result.save("overlay.png")
    metrics = wsol.run("configs/voc_lite0.yaml", overrides={"data.root": "..."}).metrics
    rows = wsol.compare("configs/voc_lite0.yaml", {"cam.method": ["gradcam", "layercam"]},
                        select={"data.split": "train"}, report={"data.split": "val"})

Importing ``wsol`` loads no heavy module: every name below but ``run``, ``calibrate``
and ``compare`` (whose modules are light) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# wsol.run and wsol.compare are packages whose __init__ only defines these functions;
# binding them here makes ``wsol.run(...)`` and ``wsol.compare(...)`` the functions, for
# good (the packages stay importable as ``from wsol.run import ...``).
from wsol.compare import compare
from wsol.run import calibrate, run

__version__ = "0.2.0"

_LAZY = {
    "BoxParams": "wsol.localize",
    "Config": "wsol.config",
    "Explanation": "wsol.apps.explain",
    "Localizer": "wsol.localize",
    "TargetPolicy": "wsol.localize",
    "WsolError": "wsol.errors",
    "explain": "wsol.apps.explain",
    "load_config": "wsol.config",
    "load_model": "wsol.models",
    "register_export": "wsol.export",
    "register_method": "wsol.cams",
    "register_model": "wsol.models",
}

__all__ = [
    "BoxParams",
    "Config",
    "Explanation",
    "Localizer",
    "TargetPolicy",
    "WsolError",
    "__version__",
    "calibrate",
    "compare",
    "explain",
    "load_config",
    "load_model",
    "register_export",
    "register_method",
    "register_model",
    "run",
]

if TYPE_CHECKING:
    from wsol.apps.explain import Explanation, explain
    from wsol.cams import register_method
    from wsol.config import Config, load_config
    from wsol.errors import WsolError
    from wsol.export import register_export
    from wsol.localize import BoxParams, Localizer, TargetPolicy
    from wsol.models import load_model, register_model


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wsol' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
