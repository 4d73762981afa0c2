"""The demo pipeline end to end: decode to boxes to metrics, on the shapes dataset."""

from __future__ import annotations

import time
from pathlib import Path

from wsol.apps.bench.timing import ProgressFactory, Status


def bench_demo(
    out: str | Path,
    images: int = 300,
    progress: ProgressFactory | None = None,
    status: Status | None = None,
) -> dict:
    """End-to-end images per second of the demo pipeline (decode to boxes to metrics);
    ``progress(method)`` makes a ``(done, total)`` callback for each run."""
    from wsol.apps.demo import demo_config, make_demo_data
    from wsol.run.pipeline import run_config

    out = Path(out)
    if status is not None:
        status(f"rendering {images} demo images")
    root = make_demo_data(out / "data", {"test": images})
    rows = {}
    for method in ("gradcam", "cam"):
        cfg = demo_config(out / method, method, root, overrides=["report.enabled=false"])
        start = time.perf_counter()
        result = run_config(
            cfg, progress(method) if progress else None, overwrite=True, status=status
        )
        rows[f"demo {method} (loop)"] = result.metrics["images_per_second"]
        rows[f"demo {method} (incl. scoring)"] = images / (time.perf_counter() - start)
    return {"images": images, "images_per_second": rows}
