"""Choose the demo's per-method thresholds on the shapes ``val`` split (never on ``test``).

    python tools/calibrate_demo.py [--images 300] [--checkpoint PATH]

Runs the demo config on ``val`` for each method, reads the box-accuracy sweep, and
writes the threshold with the best MaxBoxAcc (largest component, IoU 0.5) to
``wsol/assets/demo_thresholds.json``. The maps are ReLU-rectified, so their minimum is 0
and the sweep's cut on the normalized map equals the fraction-of-max threshold.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from wsol.demo import CHECKPOINT, METHODS, THRESHOLDS, demo_config, make_demo_data
from wsol.pipeline import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--checkpoint", default=str(CHECKPOINT))
    args = p.parse_args()
    chosen = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_data(Path(tmp) / "shapes", {"val": args.images})
        for method in METHODS:
            cfg = demo_config(Path(tmp) / method, method, root, split="val", overrides=[
                f"model.weights={args.checkpoint}", "report.enabled=false",
                "eval.coco_ap=false"])
            result = run(cfg)
            curve = json.loads((Path(tmp) / method / "sweep.json").read_text())
            acc = curve["maxboxacc"]
            best = max(range(len(acc)), key=acc.__getitem__)
            chosen[method] = round(curve["thresholds"][best], 2)
            print(f"{method}: val maxboxacc {acc[best]:.4f} at {chosen[method]} "
                  f"(corloc at the old threshold {result.metrics['corloc']:.4f})")
    THRESHOLDS.write_text(json.dumps(chosen, indent=2) + "\n")
    print(f"wrote {THRESHOLDS}: {chosen}")


if __name__ == "__main__":
    main()
