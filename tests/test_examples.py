"""Every public name of ``wsol`` documents its arguments, result and errors, and its
example runs (as a doctest; the examples of its methods too)."""

from __future__ import annotations

import doctest
import inspect
import tempfile

import pytest

import wsol

# The examples that run the pipeline; the rest take a second or two.
PIPELINE = {"run", "calibrate", "compare"}
# Public objects that cannot carry a docstring.
UNDOCUMENTED = {"__version__"}
# Examples beyond the public names: the registry every register_* call fills.
MODULES = ("wsol.registry",)


def _public() -> list:
    return [
        pytest.param(name, marks=pytest.mark.e2e if name in PIPELINE else ())
        for name in sorted(set(wsol.__all__) - UNDOCUMENTED)
    ]


def _run_examples(obj, name: str, globs: dict) -> int:
    """Runs ``obj``'s doctests (and its members'); returns how many examples ran."""
    tests = doctest.DocTestFinder().find(obj, name, globs=globs)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    failed, tried = runner.summarize(verbose=False)
    assert failed == 0, "".join(report)
    return tried


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Examples make their folders with tempfile: here, under the test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.mark.parametrize("name", _public())
def test_public_name_is_documented_and_its_example_runs(name, private_tmp):
    obj = getattr(wsol, name)
    doc = inspect.getdoc(obj) or ""
    missing = [s for s in ("Args:", "Returns:", "Raises:", "Example:") if s not in doc]
    assert not missing, f"wsol.{name}'s docstring lacks {', '.join(missing)}"
    module = inspect.getmodule(obj)
    assert _run_examples(obj, f"wsol.{name}", dict(vars(module))) >= 1


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_run(module, private_tmp):
    import importlib

    mod = importlib.import_module(module)
    assert _run_examples(mod, module, dict(vars(mod))) >= 1
