"""Made-up leaderboard data in the shape the compare engine hands to the page."""

from __future__ import annotations

import numpy as np

COLUMNS = [
    ("maxboxacc", "MaxBoxAcc"),
    ("maxboxaccv2", "MaxBoxAccV2"),
    ("maxboxaccv2_iou30", "V2@30"),
    ("maxboxaccv2_iou50", "V2@50"),
    ("maxboxaccv2_iou70", "V2@70"),
    ("pxap", "PxAP"),
    ("corloc", "CorLoc"),
    ("gt_known", "GT-known"),
    ("top1_loc", "Top-1 Loc"),
    ("coco_ap", "COCO AP"),
    ("whole_image", "whole-image boxes"),
    ("img_per_s", "img/s"),
    ("peak_mib", "peak MiB"),
]
METHODS = ("gradcam", "hirescam", "layercam", "scorecam", "xgradcam", "cam")
CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair")
CLASSES += ("cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant")
CLASSES += ("sheep", "sofa", "train", "tvmonitor")


def leaderboard_data(n: int = 6, seed: int = 0) -> dict:
    """Keyword arguments of ``render_leaderboard``: ``n`` candidates (the last one could
    not run), best first, with curves, a per-class table and two disagreements."""
    rng = np.random.default_rng(seed)
    rows, curves, per_class = [], {}, {}
    ts = np.linspace(0, 1, 21)
    for i in range(n):
        number = [4, 1, 6, 2, 5, 3, 7, 8, 9, 10, 11, 12, 13, 14][i % 14] + 14 * (i // 14)
        method = METHODS[i % len(METHODS)]
        name = f"cam.method={method}, cam.scales=[1.0, {1.5 + i % 2 * 0.5}]"
        settings = {"cam.method": method, "cam.scales": [1.0, 1.5 + i % 2 * 0.5]}
        if i == n - 1:
            rows.append(
                {
                    "row": number,
                    "name": name,
                    "settings": settings,
                    "error": "cam needs a GAP + linear head; efficientnet_lite0 has none",
                    **{k: None for k, _ in COLUMNS},
                    "ci": {},
                    "significant": {},
                }
            )
            continue
        top = 0.7 - 0.05 * i
        row = {"row": number, "name": name, "settings": settings, "error": None}
        for k, _ in COLUMNS:
            row[k] = round(top - 0.02 * rng.random(), 4)
        row["pxap"] = None  # boxes only
        row["img_per_s"] = 41.26 - 3 * i
        row["peak_mib"] = 812.4 + 30 * i
        row["whole_image"] = 0.05 + 0.01 * i
        row["ci"] = {k: [row[k] - 0.03, row[k] + 0.03] for k in ("maxboxacc", "maxboxaccv2")}
        row["significant"] = {} if i == 0 else {"maxboxacc": i > 2, "maxboxaccv2": i > 1}
        rows.append(row)
        peak = 0.3 + 0.05 * i
        levels = {
            str(lv): np.clip(top * (1.25 - lv / 100) * np.exp(-(((ts - peak) / 0.3) ** 2)), 0, 1)
            for lv in (30, 50, 70)
        }
        curves[number] = {
            "thresholds": ts.tolist(),
            "levels": {k: v.tolist() for k, v in levels.items()},
            "cut": None if i == 2 else round(peak + 0.02, 2),
        }
        per_class[number] = {c: float(rng.random()) for c in CLASSES}
    disagreements = []
    if n < 3:  # fewer than two candidates ran: nothing to compare them on
        return {
            "rows": rows,
            "columns": COLUMNS,
            "curves": curves,
            "per_class": per_class,
            "disagreements": disagreements,
            "title": "wsol compare",
            "notes": [],
        }
    per_class[rows[0]["row"]]["cat"] = 1.0
    per_class[rows[0]["row"]]["dog"] = 0.0
    a, b = rows[0]["row"], rows[1]["row"]
    for j in range(2):
        image = np.zeros((300, 400 + 100 * j, 3), np.uint8)
        image[..., 0] = np.linspace(40, 200, image.shape[1])[None]
        image[..., 1] = np.linspace(60, 160, 300)[:, None]
        image[..., 2] = 90
        disagreements.append(
            {
                "path": f"2008_00{j}123.jpg",
                "image": image,
                "gt": [[50.0, 40.0, 250.0, 260.0]],
                "boxes": {a: [[55.5, 42.0, 240.0, 255.0]], b: [[200.0, 10.0, 390.0, 120.0]]},
                "iou": {a: 0.91, b: 0.08 + j / 10},
            }
        )
    notes = [
        "Selected on coco128 (128 images): each candidate's cut is the one that maximizes "
        "MaxBoxAcc there. Reported on the VOC sample (100 images), which shares no image "
        "with the select side.",
        "Intervals: 95% percentile bootstrap over the report images, 1,000 resamples, seed 0.",
    ]
    return {
        "title": "wsol compare: methods on efficientnet_lite0",
        "rows": rows,
        "columns": COLUMNS,
        "curves": curves,
        "per_class": per_class,
        "disagreements": disagreements,
        "notes": notes,
    }
