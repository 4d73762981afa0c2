"""Models, methods and export formats registered from outside, and the config that names them."""

from __future__ import annotations

import json

import pytest

import wsol
from wsol.cams import METHODS, GradCAM
from wsol.config import ConfigError, load_config
from wsol.export import FORMATS, build_document, write_formats
from wsol.registry import Registry, RegistryWarning


class _MeanCAM(GradCAM):
    def map(self, activation, grad):
        return activation.mean(1).clamp(min=0)


@pytest.fixture
def mean_cam():
    wsol.register_method("meancam", _MeanCAM)
    yield "meancam"
    METHODS.unregister("meancam")


@pytest.fixture
def count_export():
    def count(doc, out_dir):
        path = out_dir / "count.json"
        path.write_text(json.dumps(len(doc["annotations"])))
        return [path]

    wsol.register_export("count", count)
    yield "count"
    FORMATS.unregister("count")


def test_replacing_a_name_warns_and_the_new_entry_wins():
    table = Registry("colour", {"red": 1})
    with pytest.warns(RegistryWarning, match="colour 'red' was registered already"):
        table.register("red", 2)
    assert table["red"] == 2
    with pytest.raises(ValueError, match="non-empty"):
        table.register(" ", 3)
    table.unregister("red")
    with pytest.raises(KeyError):
        table.unregister("red")


def test_a_registered_model_is_built_by_name(register_model):
    from tests.helpers import BrightNet, bright_net_builder

    register_model("bright_net", bright_net_builder(input_size=(20, 30)))
    spec = wsol.load_model("bright_net", weights="none")
    assert isinstance(spec.net, BrightNet) and spec.input_size == (20, 30)
    with pytest.warns(RegistryWarning, match="model.arch 'bright_net'"):
        wsol.register_model("bright_net", bright_net_builder(input_size=(40, 40)))
    assert wsol.load_model("bright_net", weights="none").input_size == (40, 40)


def test_a_registered_method_is_a_valid_cam_method(tmp_path, mean_cam):
    cfg = load_config(None, [f"cam.method={mean_cam}", f"out={tmp_path}"])
    assert cfg.cam.method == "meancam"
    with pytest.raises(ConfigError, match="unknown cam.method 'nope'; valid: .*meancam"):
        load_config(None, ["cam.method=nope", f"out={tmp_path}"])
    localizer = wsol.Localizer(wsol.load_model("shapes_net"), mean_cam)
    assert isinstance(localizer.method, _MeanCAM)


def test_a_method_must_be_a_cam_method_class():
    with pytest.raises(TypeError, match="CamMethod subclass"):
        wsol.register_method("lambda", lambda spec, layer: None)
    assert "lambda" not in METHODS


def test_unregistered_names_stay_invalid(tmp_path):
    for override in ("cam.method=meancam", "export.formats=[count]"):
        with pytest.raises(ConfigError, match="unknown"):
            load_config(None, [override, f"out={tmp_path}"])


def test_a_registered_export_is_a_valid_format_and_writes(tmp_path, count_export):
    cfg = load_config(None, ["export.formats=[coco, count]", f"out={tmp_path}"])
    assert cfg.export.formats == ["coco", "count"]
    anns = [{"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 2.0, 2.0], "score": 0.5}]
    doc = build_document([{"id": 1, "file_name": "a.jpg", "height": 4, "width": 4}], anns, [])
    written = write_formats(doc, tmp_path, ["count"])
    assert written == [tmp_path / "count.json"] and json.loads(written[0].read_text()) == 1
