"""Issue 21 item 8: a torch and torchvision that do not go together are one line at the
start of any command, with the pair to install, and exit 2 (versions monkeypatched:
nothing is reinstalled)."""

from __future__ import annotations

import doctest
from importlib import metadata

import pytest

from wsol import versions
from wsol.versions import (
    TorchVersionError,
    check_torch_pair,
    matching_torchvision,
    pair_problem,
    torchvision_failure,
)


@pytest.mark.parametrize(
    ("torch", "vision"),
    [
        ("2.14.1", "0.29.1"),  # PyPI's
        ("2.14.1+cpu", "0.29.1+cpu"),  # PyTorch's CPU index
        ("2.11.0+cu128", "0.26.0+cu128"),
        ("2.2.2", "0.17.2"),
        ("2.14.1", "0.29.0"),  # patch versions may differ
        ("2.15.0a0+git1a2b3c", "0.22.0"),  # a build of one's own: not judged
        ("2.14.1+git1a2b3c", "0.29.1"),
        ("1.13.1", "0.14.1"),  # torch 1.x: the rule does not cover it
        (None, None),  # torch's metadata missing: the import will speak
    ],
)
def test_pairs_that_go_together_or_cannot_be_judged(torch, vision):
    assert pair_problem(torch, vision) is None


@pytest.mark.parametrize(
    ("torch", "vision", "says", "command"),
    [
        (
            "2.14.1+cpu",
            "0.28.0+cpu",
            "torch 2.14 needs torchvision 0.29",
            "pip install torch==2.14.1+cpu torchvision==0.29.1+cpu "
            "--index-url https://download.pytorch.org/whl/cpu",
        ),
        (
            "2.11.0",
            "0.29.1",
            "torch 2.11 needs torchvision 0.26",
            "pip install --force-reinstall torch==2.11.0 torchvision==0.26.0",
        ),
        (
            # the case: a CPU torch, and PyPI's (CUDA) torchvision of the release
            "2.14.1+cpu",
            "0.29.1",
            "different builds (cpu and PyPI)",
            "pip install torch==2.14.1+cpu torchvision==0.29.1+cpu "
            "--index-url https://download.pytorch.org/whl/cpu",
        ),
        (
            "2.14.1",
            "0.29.1+cpu",
            "different builds (PyPI and cpu)",
            # "==0.29.1" is met by the installed 0.29.1+cpu: only a reinstall replaces it
            "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1",
        ),
        (
            "2.14.1+cu130",
            "0.29.1+cpu",
            "different builds (cu130 and cpu)",
            "--index-url https://download.pytorch.org/whl/cu130",
        ),
        (
            "2.14.1+cpu",
            None,
            "torchvision is not installed",
            "torchvision==0.29.1+cpu",
        ),
    ],
)
def test_pairs_that_do_not_go_together_name_the_pair_and_the_command(torch, vision, says, command):
    line = pair_problem(torch, vision)
    assert line is not None and "\n" not in line
    assert says in line and command in line


def test_the_rule_is_minor_plus_15():
    assert matching_torchvision("2.14.1+cpu") == "0.29.1"
    assert matching_torchvision("2.11.0") == "0.26.0"
    assert matching_torchvision("1.13.1") is None


def _installed(monkeypatch, torch, vision):
    found = {"torch": torch, "torchvision": vision}

    def version(name):
        if found.get(name) is None:
            raise metadata.PackageNotFoundError(name)
        return found[name]

    monkeypatch.setattr(versions.metadata, "version", version)
    monkeypatch.delenv(versions.SKIP_ENV, raising=False)


def test_check_reads_the_installed_metadata(monkeypatch):
    _installed(monkeypatch, "2.14.1+cpu", "0.28.1+cpu")
    with pytest.raises(TorchVersionError, match="torch 2.14 needs torchvision 0.29"):
        check_torch_pair()
    monkeypatch.setenv(versions.SKIP_ENV, "1")  # a build of one's own: the way out
    check_torch_pair()
    _installed(monkeypatch, "2.14.1+cpu", "0.29.1+cpu")
    check_torch_pair()


def test_the_installed_pair_goes_together():
    """The environment the tests run in passes its own check."""
    check_torch_pair()


def test_the_cli_says_one_line_and_exits_2_before_the_command_runs(monkeypatch, capsys):
    from wsol.cli import main

    _installed(monkeypatch, "2.14.1+cpu", "0.29.1")
    ran = []
    monkeypatch.setattr("wsol.cli.parser.cmd_eval", lambda args: ran.append(args) or 0)
    assert main(["eval", "--gt", "g.json", "--pred", "p.json"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsol: error: torch 2.14.1+cpu")
    assert "pip install torch==2.14.1+cpu torchvision==0.29.1+cpu --index-url" in lines[0]
    assert not ran


def test_a_torchvision_that_fails_to_import_is_the_same_one_line(monkeypatch, capsys):
    """What a mismatch the metadata does not show ends in, turned into one line."""
    from wsol.cli import main, parser

    _installed(monkeypatch, "2.14.1", "0.29.1")

    def broken(args):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(parser, "cmd_eval", broken)
    assert main(["eval", "--gt", "g.json", "--pred", "p.json"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "torchvision 0.29.1 does not load with torch 2.14.1" in line
    assert "operator torchvision::nms does not exist" in line
    assert line.endswith("pip install --force-reinstall torch==2.14.1 torchvision==0.29.1")


@pytest.mark.parametrize(
    ("error", "about_torchvision"),
    [
        (RuntimeError("operator torchvision::nms does not exist"), True),
        (ImportError("cannot import name '_C'", name="torchvision._C"), True),
        (ModuleNotFoundError("No module named 'torchvision'", name="torchvision"), True),
        (RuntimeError("CUDA out of memory"), False),
        (RuntimeError("torchvision roi_align: bad shape"), False),  # not an import failure
        (ImportError("No module named 'timm'", name="timm"), False),
        (TorchVersionError("torchvision::x does not exist"), False),  # already the line
    ],
)
def test_only_torchvision_import_failures_are_translated(error, about_torchvision):
    assert (torchvision_failure(error) is not None) is about_torchvision


def test_the_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(versions):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted >= 2


@pytest.mark.e2e
def test_a_mismatched_torchvision_is_one_line(tmp_path):
    """In a process of its own, as a user meets it: a torchvision whose import fails as a
    mismatched build's does, then one whose metadata says another release."""
    import os
    import subprocess
    import sys

    from PIL import Image

    from tests.helpers import REPO

    fake = tmp_path / "site"
    (fake / "torchvision").mkdir(parents=True)
    (fake / "torchvision" / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{REPO}"}
    env.pop(versions.SKIP_ENV, None)
    demo = ["demo", "--out", str(tmp_path / "out")]
    # The demo's model and CPU decoding import no torchvision; a torchvision model does.
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (40, 30), (90, 140, 60)).save(images / "a.jpg")
    (tmp_path / "run.yaml").write_text(f"out: {tmp_path / 'run'}\n")
    resnet = ["-q", "run", str(tmp_path / "run.yaml"), "data.format=folder", f"data.root={images}"]
    resnet += ["model.arch=resnet18", "model.weights=none", "cam.targets=topk"]

    def wsol(args):
        cmd = [sys.executable, "-m", "wsol", *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        return lines[0]

    torch = metadata.version("torch")
    # 1. the import fails (the metadata shows nothing wrong), once a command needs it
    line = wsol(resnet)
    assert "operator torchvision::nms does not exist" in line
    assert f"torch=={torch} torchvision=={matching_torchvision(torch)}" in line
    # 2. the metadata says another release: refused before anything is imported
    info = fake / "torchvision-0.20.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.20.0\n")
    line = wsol(demo)
    assert "torchvision 0.20.0 do not go together" in line and "pip install" in line
