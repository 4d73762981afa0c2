"""Every input file is a bounded regular file, or a one-line error at once (issue 23)."""

from __future__ import annotations

import os

import pytest

from tests.data.test_readers import within
from wsol.errors import WsolError
from wsol.readfile import InputFileError, InputMissingError, read_bytes, read_text


@pytest.fixture(params=["fifo", "dev_zero", "folder"])
def not_a_file(request, tmp_path):
    """A path named like a data file that is a FIFO, a link to /dev/zero, or a folder."""
    path = tmp_path / "input.json"
    if request.param == "fifo":
        os.mkfifo(path)
    elif request.param == "dev_zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


def test_read_bytes_refuses_what_is_not_a_regular_file(not_a_file):
    with pytest.raises(InputFileError, match="not a regular file"):
        within(10, read_bytes, not_a_file, 2**20)


def test_size_limits_and_text(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 2048)
    with pytest.raises(InputFileError, match="file of 2048 bytes is over the 1024 bytes limit"):
        read_bytes(tmp_path / "big", 1024)
    assert read_bytes(tmp_path / "big", 2048) == b"x" * 2048
    with pytest.raises(InputMissingError, match="file not found"):
        read_bytes(tmp_path / "absent", 1024)
    (tmp_path / "bin").write_bytes(b"a\xff")
    with pytest.raises(InputFileError, match="not UTF-8 text"):
        read_text(tmp_path / "bin")
    (tmp_path / "bom").write_bytes(b"\xef\xbb\xbfa,b")
    assert read_text(tmp_path / "bom", encoding="utf-8-sig") == "a,b"


def _checkpoint(path):
    from wsol.models.checkpoint import load_state

    load_state(path)


def _calibration(path):
    from wsol.evaluate.calibration import load_calibration

    load_calibration(path)


def _class_map(path):
    from wsol.models.class_maps import load_class_map

    load_class_map(str(path), ["a", "b"])


def _config(path):
    from wsol.config import load_config

    load_config(path)


def _grid(path):
    from wsol.run.grid_search import load_grid

    load_grid(path)


def _coco(path):
    from wsol.data import load_coco

    load_coco(path.parent, path)


def _labels(path):
    from wsol.data import load_folder

    load_folder(path.parent, str(path))


def _predictions(path):
    import subprocess
    import sys

    from tests.helpers import REPO

    gt = path.parent / "gt.json"
    gt.write_text('{"images": [], "categories": [{"id": 1, "name": "a"}], "annotations": []}')
    cmd = [sys.executable, "-m", "wsol", "-q", "eval", "--gt", str(gt), "--pred", str(path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if p.returncode == 2 and p.stderr.count("\n") == 1:
        raise WsolError(p.stderr.strip())


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        (_checkpoint, "not a regular file"),
        (_calibration, "not a regular file"),
        (_class_map, "not a regular file|nor an existing YAML file"),
        (_config, "not a regular file"),
        (_grid, "not a regular file"),
        (_coco, "not a regular file"),
        (_labels, "not a regular file"),
        pytest.param(  # `wsol eval` in a process of its own: a hang would be killed
            _predictions,
            "wsol: error: .*input.json: not a regular file",
            marks=pytest.mark.e2e,
        ),
    ],
)
def test_every_reader_refuses_a_fifo_or_a_device_at_once(not_a_file, reader, message, capsys):
    # A hang never ends; the budget only has to cover the work. A subprocess starts
    # Python and imports torch, which takes tens of seconds on a loaded 2-core machine.
    budget = 90 if reader is _predictions else 10
    with pytest.raises(WsolError, match=message) as e:
        within(budget, reader, not_a_file)
    assert "\n" not in str(e.value)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 1
