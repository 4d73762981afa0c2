"""Shared fixtures: real data from ../shared, a tiny generated shapes dataset, the test
tiers and their time budgets.

Tiers: a test that runs the pipeline, starts a process or builds a model bigger than the
demo's is ``e2e``; ``pytest -m "not e2e"`` runs the others, the unit tier. A test gets
the mark from a fixture that implies it (:data:`E2E_FIXTURES`), from ``slow`` (the
longest e2e tests), or explicitly; a unit test that does any of the three fails, saying
so. Every test has a time budget: ``timeout`` in pyproject.toml for a unit test,
:data:`E2E_TIMEOUT` seconds for an e2e test, or its own ``pytest.mark.timeout``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VOC_ROOT = SHARED / "voc2012_sample" / "VOCdevkit" / "VOC2012"
COCO_ROOT = SHARED / "coco128"
COCO_ANN = COCO_ROOT / "annotations" / "instances_train2017.json"


# Fixtures that run the pipeline or start processes (chromium: a headless browser): their
# tests are e2e.
E2E_FIXTURES = frozenset({"wsol_processes", "reference_run", "method_runs", "chromium"})
E2E_TIMEOUT = 300  # seconds, for an e2e test without its own budget
# The demo's ShapesNet has 237k parameters; a unit test builds nothing much bigger.
UNIT_MAX_PARAMETERS = 1_000_000


@pytest.hookimpl(tryfirst=True)  # before -m selects by the marks
def pytest_collection_modifyitems(config, items):
    """Marks the e2e tests and gives them their budget; tests marked ``gpu`` skip, with
    the reason, where no CUDA device is usable."""
    for item in items:
        if item.get_closest_marker("slow") or E2E_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in gpu:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _cpu_unless_marked_gpu(request, monkeypatch):
    """Tests not marked ``gpu`` run as on CI, on the CPU, also on a machine with a GPU:
    their pinned numbers were measured there (``model.device=auto`` would otherwise take
    the GPU, whose TF32 and bf16 kernels round differently). Subprocesses see no GPU
    either. The ``gpu`` tests are the ones that check CUDA."""
    if request.node.get_closest_marker("gpu") is not None:
        return
    import torch

    if torch.cuda.is_available():
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _unit_tests_stay_small(request, monkeypatch):
    """A test not marked e2e fails where it runs the pipeline, starts a process or builds
    a model bigger than the demo's, naming the mark it needs."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    import subprocess

    from wsol.models import build
    from wsol.run import loop

    def refuse(*args, **kwargs):
        _not_a_unit_test("runs the pipeline")

    monkeypatch.setattr(loop._Chunks, "__init__", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", _no_python_processes(subprocess.Popen))
    for name in ("_construct", "_build_trained"):
        monkeypatch.setattr(build, name, _small_models_only(getattr(build, name)))


def _not_a_unit_test(what: str) -> None:
    pytest.fail(f"this test {what}: mark it @pytest.mark.e2e (see tests/conftest.py)")


def _no_python_processes(popen):
    """``Popen.__init__`` that refuses Python, wsol, torchrun and a browser (a library's
    own helper, such as ldconfig, may run)."""
    init = popen.__init__

    def start(self, args, *rest, **kwargs):
        program = args if isinstance(args, str | bytes | os.PathLike) else args[0]
        name = Path(os.fsdecode(program).split()[0]).name
        if name.startswith(("python", "wsol", "torchrun", "chrom")) or program == sys.executable:
            _not_a_unit_test(f"starts a process ({name})")
        init(self, args, *rest, **kwargs)

    return start


def _small_models_only(builder):
    def build(*args, **kwargs):
        spec = builder(*args, **kwargs)
        n = sum(p.numel() for p in spec.net.parameters())
        if n > UNIT_MAX_PARAMETERS:
            _not_a_unit_test(f"builds a model of {n:,} parameters, more than the demo's")
        return spec

    return build


@pytest.fixture(scope="session")
def wsol_processes():
    """``wsol`` commands in processes forked from one warm process
    (:class:`tests.processes.WsolProcesses`), on the CPU as the other tests."""
    from tests.processes import WsolProcesses

    procs = WsolProcesses({**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    yield procs
    procs.close()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is beside the repo in CI)")
    return path


@pytest.fixture(scope="session")
def voc_root() -> Path:
    return _need(VOC_ROOT)


@pytest.fixture(scope="session")
def coco_root() -> Path:
    _need(COCO_ANN)
    return COCO_ROOT


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """24 test and 16 val images of the demo's shapes dataset (seed 1)."""
    from wsol.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("shapes"), {"test": 24, "val": 16}, seed=1)


@pytest.fixture(scope="session")
def reference_run(shapes_root, tmp_path_factory):
    """The run many tests read and none writes to (:func:`tests.helpers.reference_config`):
    its :class:`~wsol.run.finalize.RunResult`."""
    from tests.helpers import reference_config
    from wsol.run import run

    return run(reference_config(shapes_root, tmp_path_factory.mktemp("reference") / "run"))


@pytest.fixture(scope="session")
def method_runs(shapes_root, tmp_path_factory):
    """``method_runs(name)``: the run of method ``name`` (:func:`tests.helpers.method_config`),
    made the first time a test asks for it; each of the twelve runs once."""
    from tests.helpers import method_config
    from wsol.run import run

    folder = tmp_path_factory.mktemp("methods")
    runs = {}

    def get(method: str):
        if method not in runs:
            runs[method] = run(method_config(shapes_root, folder / method, method))
        return runs[method]

    return get


@pytest.fixture
def register_model():
    """``wsol.register_model`` for one test: the names it registers go when it ends."""
    import wsol
    from wsol.models import MODELS

    names: list[str] = []

    def register(name: str, builder) -> None:
        assert name not in MODELS, f"model {name!r} is registered already"
        wsol.register_model(name, builder)
        names.append(name)

    yield register
    for name in names:
        MODELS.unregister(name)


@pytest.fixture
def bright_model(register_model):
    """``model.arch=bright_net``: a model whose map is the image's brightness."""
    from tests.helpers import bright_net_builder

    register_model("bright_net", bright_net_builder())
