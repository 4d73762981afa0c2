from __future__ import annotations

import pytest

from wsol.config import Config, ConfigError, dump_config, load_config, parse_overrides
from wsol.train_config import TrainConfig


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
    cfg = load_config(
        None, ["train.epochs=1", "data.format=coco", "data.ann_file=a.json"], cls=TrainConfig
    )
    assert cfg.train.epochs == 1 and cfg.data.format == "coco"
    with pytest.raises(ConfigError):
        load_config(None, ["cam.method=x"], cls=TrainConfig)
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(None, ["train.batch_size=1"], cls=TrainConfig)
    with pytest.raises(ConfigError, match="data.format"):
        load_config(None, ["data.format=shapes"], cls=Config)  # rendered shapes train only


def test_choices_are_the_registries():
    """The schema's Literal choices are exactly the names the code can build."""
    import typing

    from wsol.cams import METHODS
    from wsol.cams.targets import TARGET_MODES
    from wsol.config import BoxesConfig, CamConfig, DataConfig, ExportConfig
    from wsol.data import DATASETS
    from wsol.export import FORMATS
    from wsol.localize.components import COMPONENT_MODES, MERGE_MODES, SCORE_MODES
    from wsol.localize.maps import THRESHOLD_MODES

    def choices(cls, name):
        tp = typing.get_type_hints(cls)[name]
        if typing.get_origin(tp) is list:
            (tp,) = typing.get_args(tp)
        return set(typing.get_args(tp))

    assert choices(CamConfig, "method") == set(METHODS)
    assert choices(CamConfig, "targets") == set(TARGET_MODES)
    assert choices(DataConfig, "format") == set(DATASETS)
    assert choices(ExportConfig, "formats") == set(FORMATS)
    assert choices(BoxesConfig, "threshold_mode") == set(THRESHOLD_MODES)
    assert choices(BoxesConfig, "components") == set(COMPONENT_MODES)
    assert choices(BoxesConfig, "merge") == set(MERGE_MODES)
    assert choices(BoxesConfig, "score") == set(SCORE_MODES)


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.limit=-5", "data.limit must be >= 0, got -5"),
        ("data.num_workers=-1", "data.num_workers must be >= 0"),
        ("model.input_size=[0, 0]", "model.input_size must be >= 1, got 0"),
        ("model.input_size=[224]", "model.input_size must have 2 values"),
        ("model.mean=[1]", "model.mean must have 3 values"),
        ("model.std=[0.5, 0.5, 0]", "model.std must be > 0"),
        ("boxes.min_area=1", r"boxes.min_area must be in \[0, 1\), got 1"),
        ("eval.iou=0", r"eval.iou must be in \(0, 1\]"),
        ("eval.thresholds=[0.5, 2]", r"eval.thresholds must be in \[0, 1\], got 2"),
        ("cam.batch_size=0", "cam.batch_size must be >= 1"),
        ("cam.score_channels=-1", "cam.score_channels must be >= 0, got -1"),
        ("cam.score_channels=2.5", "cam.score_channels"),
        (
            "export.formats=[coco, xml]",
            "unknown export.formats 'xml'; valid: coco, labelstudio, results, voc, yolo",
        ),
        ("model.precision=fp64", "unknown model.precision 'fp64'; valid: bf16, fp16, fp32"),
    ],
)
def test_ranges_and_choices_are_checked_by_the_schema(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_sections_built_in_python_are_checked_too():
    from wsol.config import BoxesConfig

    with pytest.raises(ConfigError, match="boxes.threshold must be in"):
        BoxesConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="needs boxes.calibration"):
        BoxesConfig(threshold="calibrated")


def test_command_line_strings_stay_strings():
    """A string key takes the text as typed, not as YAML reads it (issue 14)."""
    cfg = load_config(None, ["out=2024_05_01", "data.root=0755", "data.split=no"])
    assert (cfg.out, cfg.data.root, cfg.data.split) == ("2024_05_01", "0755", "no")
    cfg = load_config(
        None, ["data.limit=007", "cam.flip=yes", "boxes.threshold=0.3", "data.limit=null"]
    )
    assert cfg.data.limit is None and cfg.cam.flip is True and cfg.boxes.threshold == 0.3
    assert (
        load_config(
            None, ["boxes.threshold=calibrated", "boxes.calibration=c.json"]
        ).boxes.threshold
        == "calibrated"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=1180591620717411303424", "seed must be in"),
        ("seed=-1", "seed must be in"),
        ("eval.sweep_step=1e-9", "eval.sweep_step must be in"),
        ("eval.thresholds=[" + ",".join(["0.5"] * 10001) + "]", "at most 10000"),
        ("data.limit=-5", "data.limit must be >= 0"),
        ("model.input_size=[0,0]", "must be >= 1"),
        ("model.mean=[1]", "must have 3 values"),
        ("data.max_file_mb=0", "data.max_file_mb must be"),
    ],
)
def test_ranges_are_checked_as_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


# --- Issue 23: a config file is read strictly, and its errors stay short -----------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- a\n- b\n", "a mapping of sections .*not a list"),
        (b"5\n", "a mapping of sections .*not a single value \\(5\\)"),
        (b"out: \xff\xfe\n", "not UTF-8 text"),
        (b"data:\n  root: a\ndata:\n  split: b\n", "duplicate key 'data' at line 3"),
        (b"cam:\n  method: cam\n  method: gradcam\n", "duplicate key 'method'"),
    ],
)
def test_config_files_that_are_not_a_mapping_of_sections_are_one_line_errors(
    tmp_path, content, message
):
    (tmp_path / "c.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(tmp_path / "c.yaml")
    assert "\n" not in str(e.value)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "base: &b {method: cam, batch_size: 4}\ncam:\n  <<: *b\n  batch_size: 8\n"
    )
    with pytest.raises(ConfigError, match="unknown config key 'base'"):
        load_config(tmp_path / "c.yaml")  # (base is no key of a run; the merge itself is fine)
    from wsol.strict_yaml import load_yaml

    assert load_yaml((tmp_path / "c.yaml").read_text())["cam"] == {"method": "cam", "batch_size": 8}


def _bomb(item: str = "x") -> str:
    """A YAML flow list of 9**9 items made of nested aliases: a few hundred bytes."""
    text = f"&a0 [{', '.join([item] * 9)}]"
    for i in range(1, 9):
        text = f"&a{i} [{text}, " + ", ".join([f"*a{i - 1}"] * 8) + "]"
    return text


@pytest.mark.e2e  # a Python process, its memory capped
@pytest.mark.parametrize("key", ["data.classes", "model.mean", "eval.thresholds"])
def test_a_yaml_alias_bomb_is_refused_while_loading(tmp_path, key):
    import resource
    import subprocess
    import sys
    import time

    from tests.helpers import REPO

    section, name = key.split(".")
    item = "x" if key == "data.classes" else "0.5"
    (tmp_path / "c.yaml").write_text(f"{section}:\n  {name}: {_bomb(item)}\n")

    def cap_memory():  # the unbounded expansion is a MemoryError, not a machine that swaps
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    started = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "wsol", "run", str(tmp_path / "c.yaml")],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        preexec_fn=cap_memory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.startswith("wsol: error: ") and "aliases expand" in p.stderr
    assert len(p.stderr) < 400
    # (it took 9 GB and SIGTERM could not stop it; now it ends at once, on its own)
    assert time.monotonic() - started < 30


def test_an_alias_bomb_in_an_override_is_refused_too():
    with pytest.raises(ConfigError, match="aliases expand") as e:
        load_config(None, [f"data.classes={_bomb()}"])
    assert len(str(e.value)) < 300


def test_values_quoted_in_errors_are_cut_short():
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"model.mean=[{', '.join(['0.5'] * 5000)}]"])
    assert "model.mean must have 3 values" in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"cam.method={'x' * 10_000}"])
    assert len(str(e.value)) < 400
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"model.device={'x' * 10_000}"])
    assert len(str(e.value)) < 400


def test_a_config_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    import os

    from tests.data.test_readers import within

    os.mkfifo(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="not a regular file"):
        within(10, load_config, tmp_path / "c.yaml")
