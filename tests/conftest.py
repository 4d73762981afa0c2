"""Shared fixtures: real data from ../shared and a tiny generated shapes dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VOC_ROOT = SHARED / "voc2012_sample" / "VOCdevkit" / "VOC2012"
COCO_ROOT = SHARED / "coco128"
COCO_ANN = COCO_ROOT / "annotations" / "instances_train2017.json"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip, with the reason, where no CUDA device is usable."""
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
