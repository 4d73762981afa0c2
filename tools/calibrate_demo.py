"""Choose the demo's per-method thresholds on the shapes ``val`` split (never on ``test``).

    python tools/calibrate_demo.py [--images 300] [--checkpoint PATH]

A thin loop over :func:`wsol.run.calibrate`: for each demo method, the tau that
maximizes MaxBoxAcc on ``val`` goes into ``wsol/assets/demo_thresholds.json``. The maps are
ReLU-rectified (minimum 0), so the calibrated cut on the normalized map is also the
fraction-of-max threshold the demo applies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from wsol.apps.demo import CHECKPOINT, METHODS, THRESHOLDS, demo_config, make_demo_data
from wsol.run import calibrate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--checkpoint", default=str(CHECKPOINT))
    args = p.parse_args()
    chosen = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_data(Path(tmp) / "shapes", {"val": args.images})
        for method in METHODS:
            cfg = demo_config(
                Path(tmp) / method,
                method,
                root,
                split="val",
                overrides=[
                    f"model.weights={args.checkpoint}",
                    "report.enabled=false",
                    "eval.coco_ap=false",
                ],
            )
            cal = calibrate(cfg, metric="maxboxacc").calibration
            chosen[method] = round(cal.threshold, 2)
            print(
                f"{method}: val maxboxacc {cal.score:.4f} at tau {chosen[method]} "
                f"({cal.pairs} pairs)"
            )
    THRESHOLDS.write_text(json.dumps(chosen, indent=2) + "\n")
    print(f"wrote {THRESHOLDS}: {chosen}")


if __name__ == "__main__":
    main()
