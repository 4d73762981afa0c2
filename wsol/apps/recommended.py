"""What :func:`wsol.explain` does when it is told nothing: the recommended configs' setup.

The recommended configs were found by a search on coco128's everyday photos (see the
header of ``configs/voc.yaml``): EfficientNet-Lite2 with HiResCAM at twice its input
size and an absolute cut of 0.19 (``configs/voc.yaml``); the fast variant, Lite0 with
Grad-CAM, one view and Otsu's cut of each map (``configs/voc_lite0.yaml``). A model
loaded with Lite2's packaged ImageNet weights gets the first; any other model the
second, whose cut needs no calibration (as ``configs/trained.yaml`` for a trained
checkpoint). A method other than the recommended one keeps the views and takes Otsu's
cut: the absolute cut was calibrated for HiResCAM's maps, and other methods' maps are
peaked differently.

``tests/apps/test_recommended.py`` keeps these equal to the config files.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsol.localize import BoxParams, Views
from wsol.models import ModelSpec


@dataclass(frozen=True)
class Setup:
    """A method, its views and its cut: how one model's maps become boxes."""

    method: str
    views: Views
    boxes: BoxParams
    config: str  # the config file it comes from, under configs/


LITE2 = Setup(
    "hirescam",
    Views((2.0,)),
    BoxParams(threshold_mode="absolute", threshold=0.19, components="largest"),
    "voc.yaml",
)
LITE0 = Setup(
    "gradcam", Views(), BoxParams(threshold_mode="otsu", components="largest"), "voc_lite0.yaml"
)
# The architecture whose packaged ImageNet weights the setup was chosen for.
SETUPS = {"efficientnet_lite2": LITE2, "efficientnet_lite0": LITE0}
OTSU = BoxParams(threshold_mode="otsu", components="largest")


def setup_for(model: ModelSpec, method: str | None = None) -> Setup:
    """The recommended setup of ``model`` (Lite2's for Lite2 with its ImageNet weights,
    Lite0's otherwise), for ``method`` (default: the setup's own; another one keeps
    the views and takes Otsu's cut)."""
    setup = SETUPS.get(model.extra.get("pretrained", ""), LITE0)
    if method is None or method == setup.method:
        return setup
    return Setup(method, setup.views, OTSU, setup.config)
