from __future__ import annotations

import pytest

from wsol.config import Config, ConfigError, TrainConfig, dump_config, load_config, parse_overrides


def test_defaults_and_partial_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("cam:\n  method: cam\nboxes:\n  threshold: 0.15\n")
    cfg = load_config(p)
    assert cfg.cam.method == "cam"
    assert cfg.boxes.threshold == 0.15
    assert cfg.cam.batch_size == Config().cam.batch_size  # untouched keys keep defaults
    assert cfg.out == "runs/latest"


def test_dotted_overrides_win_over_yaml_and_are_typed(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("boxes:\n  threshold: 0.15\n")
    cfg = load_config(
        p,
        [
            "boxes.threshold=0.2",
            "cam.batch_size=8",
            "out=runs/x",
            "data.classes=[a, b]",
            "eval.enabled=false",
        ],
    )
    assert cfg.boxes.threshold == 0.2 and isinstance(cfg.boxes.threshold, float)
    assert cfg.cam.batch_size == 8 and cfg.out == "runs/x"
    assert cfg.data.classes == ["a", "b"]
    assert cfg.eval.enabled is False


def test_issue_example_overrides():
    cfg = load_config(
        None,
        [
            "data.format=voc",
            "data.root=PATH",
            "data.split=val",
            "model.arch=resnet50",
            "cam.method=gradcam",
            "boxes.threshold=0.2",
            "out=runs/x",
        ],
    )
    assert (cfg.data.format, cfg.data.root, cfg.model.arch) == ("voc", "PATH", "resnet50")


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("cam.methd=gradcam", "cam.method"),  # typo: the message lists the valid keys
        ("bogus=1", "data"),
        ("data.nope.deeper=1", "valid keys"),
    ],
)
def test_unknown_key_lists_valid_keys(override, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert "unknown config key" in str(e.value)
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    "override",
    ["cam.batch_size=abc", "boxes.threshold=high", "eval.enabled=maybe", "cam.batch_size=1.5"],
)
def test_wrong_types_fail(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["cam.method"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_dump_roundtrip(tmp_path):
    cfg = load_config(None, ["cam.method=cam", "data.classes=[x]"])
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_train_config_class():
    cfg = load_config(None, ["epochs=1"], cls=TrainConfig)
    assert cfg.epochs == 1
    with pytest.raises(ConfigError):
        load_config(None, ["cam.method=x"], cls=TrainConfig)
