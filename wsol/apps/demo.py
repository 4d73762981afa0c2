"""``wsol demo``: render the shapes dataset, then run Grad-CAM and CAM on its test split.

Everything comes from the package: the generator, the trained checkpoint
(``assets/shapes_net.pt``, reproduced by ``configs/demo_train.yaml``), the config
(``assets/demo.yaml``) and the per-method thresholds calibrated on the ``val`` split
(``assets/demo_thresholds.json``, written by ``tools/calibrate_demo.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from wsol.config import Config, ConfigError, load_config
from wsol.data.synthetic import write_dataset
from wsol.errors import UsageError
from wsol.models import DEMO_CHECKPOINT
from wsol.run.journal import OUTPUTS, STATE_FILE
from wsol.run.pipeline import RunResult, run_config
from wsol.schema import read_config_file
from wsol.train.state import WRITTEN as TRAIN_FILES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CHECKPOINT = DEMO_CHECKPOINT
DEMO_CONFIG = ASSETS / "demo.yaml"
THRESHOLDS = ASSETS / "demo_thresholds.json"
DATA_SEED = 1  # the seed the checkpoint was trained with; splits never overlap
TEST_IMAGES = 300
METHODS = ("gradcam", "cam")

ProgressFactory = Callable[[str], Callable[[int, int], None] | None]


def demo_config(
    out: Path, method: str, data_root: Path, split: str = "test", overrides: list[str] | None = None
) -> Config:
    """The demo's config for one method (``out`` is that method's output folder)."""
    tau = json.loads(THRESHOLDS.read_text())[method] if THRESHOLDS.is_file() else None
    base = [
        f"out={out}",
        f"data.root={data_root}",
        f"data.split={split}",
        f"model.weights={CHECKPOINT}",
        f"cam.method={method}",
    ]
    if tau is not None:
        base.append(f"boxes.threshold={tau}")
    return load_config(DEMO_CONFIG, base + list(overrides or []))


def make_demo_data(root: Path, splits: dict[str, int]) -> Path:
    """Render the splits unless ``root`` already holds exactly these files."""
    main = root / "ImageSets" / "Main"
    if all(
        (main / f"{s}.txt").is_file() and len((main / f"{s}.txt").read_text().split()) == n
        for s, n in splits.items()
    ):
        return root
    return write_dataset(root, splits, seed=DATA_SEED)


def _demo_root(folder: Path) -> Path | None:
    """The data root the run in ``folder`` read, from its ``config.yaml``; None when
    there is none, or it cannot be read."""
    try:
        root = (read_config_file(folder / "config.yaml").get("data") or {}).get("root")
    except (ConfigError, AttributeError):
        return None
    return Path(str(root)).resolve() if root else None


def check_demo_out(folder: Path, data_root: Path) -> None:
    """Refuse a folder that holds another command's results: the demo replaces only
    its own earlier runs (those that read its rendered ``data_root``).

    Raises:
        UsageError: ``folder`` holds a ``wsol train`` run, or files a run writes whose
            ``config.yaml`` names other data.
    """
    trained = [n for n in TRAIN_FILES if (folder / n).exists()]
    if trained:
        raise UsageError(
            f"--out {folder} holds a `wsol train` run ({', '.join(trained)}); the demo "
            "never writes over another command's results: choose another --out"
        )
    present = [n for n in OUTPUTS if (folder / n).exists()]
    if not present or present == [STATE_FILE]:  # (a run killed before it wrote anything)
        return
    if _demo_root(folder) != data_root.resolve():
        raise UsageError(
            f"--out {folder} holds another command's run ({', '.join(present[:3])}); the "
            "demo replaces only its own earlier results: choose another --out"
        )


def run_demo(
    out: str | Path,
    progress: ProgressFactory | None = None,
    overrides: list[str] | None = None,
    status: Callable[[str], None] | None = None,
) -> dict[str, RunResult]:
    """Grad-CAM results go to ``out``; CAM's to ``out/cam``. Returns both runs.
    ``progress(method)`` makes each run's ``(done, total)`` callback; ``status(line)``
    hears of each phase. An earlier demo there is replaced; another command's results
    are refused (:func:`check_demo_out`)."""
    out = Path(out)
    data_root = out / "data" / "shapes"
    for method in METHODS:
        check_demo_out(out if method == METHODS[0] else out / method, data_root)
    if status is not None:
        status(f"the shapes dataset: {TEST_IMAGES} test images in {out / 'data' / 'shapes'}")
    data_root = make_demo_data(data_root, {"test": TEST_IMAGES})
    results = {}
    for method in METHODS:
        method_out = out if method == METHODS[0] else out / method
        cfg = demo_config(method_out, method, data_root, overrides=overrides)
        results[method] = run_config(
            cfg, progress(method) if progress else None, overwrite=True, status=status
        )
    return results
