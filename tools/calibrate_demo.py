"""Choose the demo's per-method thresholds on the shapes ``val`` split (never on ``test``).

    python tools/calibrate_demo.py [--images 300] [--checkpoint PATH] [--thresholds PATH]
                                   [--test]

A thin loop over :func:`wsol.run.calibrate`: for each demo method, the tau that
maximizes MaxBoxAcc on ``val`` goes into ``--thresholds`` (default
``wsol/assets/demo_thresholds.json``). The maps are ReLU-rectified (minimum 0), so the
calibrated cut on the normalized map is also the fraction-of-max threshold the demo
applies. ``--test`` then scores the ``test`` split at those cuts, as ``wsol demo``
does, which compares checkpoints (for example one trained with ``model.dilate_last``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from wsol.apps.demo import CHECKPOINT, METHODS, TEST_IMAGES, THRESHOLDS, demo_config, make_demo_data
from wsol.run import calibrate, run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--checkpoint", default=str(CHECKPOINT))
    p.add_argument("--thresholds", default=str(THRESHOLDS), help="where the cuts are written")
    p.add_argument("--test", action="store_true", help="also score the test split at them")
    args = p.parse_args()
    chosen = {}
    with tempfile.TemporaryDirectory() as tmp:
        splits = {"val": args.images, **({"test": TEST_IMAGES} if args.test else {})}
        root = make_demo_data(Path(tmp) / "shapes", splits)
        weights = f"model.weights={args.checkpoint}"
        for method in METHODS:
            cfg = demo_config(
                Path(tmp) / method,
                method,
                root,
                split="val",
                overrides=[weights, "report.enabled=false", "eval.coco_ap=false"],
            )
            cal = calibrate(cfg, metric="maxboxacc").calibration
            chosen[method] = round(cal.threshold, 2)
            print(
                f"{method}: val maxboxacc {cal.score:.4f} at tau {chosen[method]} "
                f"({cal.pairs} pairs)"
            )
            if args.test:
                test = demo_config(
                    Path(tmp) / f"{method}_test",
                    method,
                    root,
                    overrides=[
                        weights,
                        f"boxes.threshold={chosen[method]}",
                        "report.enabled=false",
                    ],
                )
                m = run(test).metrics
                print(
                    f"{method}: test corloc {m['corloc']:.3f}, maxboxacc {m['maxboxacc']:.3f}, "
                    f"maxboxacc_v2 {m['maxboxacc_v2']:.3f}, pxap {m['pxap']:.3f}"
                )
    Path(args.thresholds).write_text(json.dumps(chosen, indent=2) + "\n")
    print(f"wrote {args.thresholds}: {chosen}")


if __name__ == "__main__":
    main()
