"""The public API: ``import wsol`` is light, names are lazy, the README's examples run."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import wsol
from tests.helpers import REPO
from wsol.models.build import default_arch


def _python(code: str) -> str:
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.mark.e2e  # a fresh Python process
def test_import_is_light_and_names_are_lazy():
    heavy = _python(
        "import sys, wsol; print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'torch', 'torchvision', 'cv2', 'numpy', 'PIL', 'timm', 'pycocotools'}))"
    )
    assert heavy == "[]"
    assert re.fullmatch(r"\d+\.\d+\.\d+", wsol.__version__)
    assert {
        "run",
        "calibrate",
        "compare",
        "explain",
        "load_model",
        "Localizer",
        "BoxParams",
        "TargetPolicy",
        "load_config",
        "Config",
        "WsolError",
    } <= set(dir(wsol))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = wsol.nope


@pytest.mark.e2e  # a fresh Python process
def test_wsol_run_stays_the_function_once_its_package_is_imported():
    out = _python(
        "import wsol.run.pipeline, wsol; from wsol.run import journal; "
        "import wsol.run; print(callable(wsol.run), wsol.run.__module__)"
    )
    assert out == "True wsol.run"


@pytest.mark.e2e  # a fresh Python process
def test_wsol_compare_stays_the_function_once_its_package_is_imported():
    out = _python(
        "import wsol.compare.page, wsol; from wsol.compare import leaderboard; "
        "import wsol.compare; print(callable(wsol.compare), wsol.compare.__module__)"
    )
    assert out == "True wsol.compare"


@pytest.mark.e2e  # a fresh Python process
def test_importing_every_module_writes_no_global_state():
    code = """
import importlib, os, pkgutil
from PIL import Image
import wsol
before = (Image.MAX_IMAGE_PIXELS, os.umask(0o022))
os.umask(before[1])
for m in pkgutil.walk_packages(wsol.__path__, "wsol."):
    if m.name != "wsol.__main__":
        importlib.import_module(m.name)
after = (Image.MAX_IMAGE_PIXELS, os.umask(0o022))
print(before == after)
"""
    assert _python(code) == "True"


@pytest.mark.e2e  # a fresh Python process
def test_the_demos_modules_import_no_torchvision():
    """torchvision's import brings torch._dynamo (~1.7 s of every process's start); the
    command line, the pipeline and the demo's model need neither."""
    code = """
import sys
import wsol.cli, wsol.cli.commands, wsol.run.pipeline, wsol.apps.demo, wsol.data.gpu_decode
from wsol.models import build_model
build_model("shapes_net", "none", ["circle", "square"])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torchvision", "timm")))
"""
    assert _python(code) == "[]"


def test_every_user_error_shares_one_base():
    from wsol.cams import CamError
    from wsol.cams.targets import TargetError
    from wsol.config import ConfigError
    from wsol.data import AnnotationError, DataError, DataNotFoundError
    from wsol.data.decode import DecodeError
    from wsol.errors import UsageError, WsolError
    from wsol.evaluate.calibration import CalibrationError
    from wsol.models import ModelError
    from wsol.models.class_maps import ClassMapError
    from wsol.run.journal import RunExistsError

    for cls in (
        CamError,
        TargetError,
        ConfigError,
        AnnotationError,
        DataError,
        DataNotFoundError,
        DecodeError,
        UsageError,
        CalibrationError,
        ModelError,
        ClassMapError,
        RunExistsError,
    ):
        assert issubclass(cls, WsolError), cls


def _readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_readme_python_examples_run(voc_root, tmp_path, monkeypatch):
    """Every ```python block of the README runs, on a real VOC photo and the VOC sample."""
    blocks = _readme_python_blocks()
    assert len(blocks) >= 2
    photo = voc_root / "JPEGImages" / "2007_000528.jpg"
    monkeypatch.chdir(REPO)
    namespace: dict = {}  # shared: later blocks may use earlier blocks' names
    for block in blocks:
        code = (
            block.replace('"2007_000528.jpg"', repr(str(photo)))
            .replace('"VOCdevkit/VOC2012"', repr(str(voc_root)))
            .replace('"overlay.png"', repr(str(tmp_path / "overlay.png")))
            .replace('"runs/', json.dumps(str(tmp_path))[:-1] + "/")
        )
        exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "overlay.png").is_file()
    assert namespace["metrics"]["num_images"] == 100 and (tmp_path / "voc").is_dir()
    assert len(namespace["result"].boxes) == len(namespace["result"].labels) >= 1
    assert namespace["image"].classes, "the Localizer example explained no class"
    if default_arch() == "efficientnet_lite2":  # the README shows Lite2's output
        _assert_readme_shows(namespace["result"])


def _assert_readme_shows(result) -> None:
    """The output the README pastes under its explain example is what it prints."""
    text = (REPO / "README.md").read_text()
    boxes, labels = re.search(r"^(\[\[[^\n]*\]\]) (\[[^\n]*\])$", text, re.M).groups()
    assert ast.literal_eval(labels) == result.labels
    np.testing.assert_allclose(ast.literal_eval(boxes), result.boxes, atol=2)
