"""What ``leaderboard.html`` draws besides the table, read from each row's report run:
the box accuracy-versus-threshold curves (``sweep.json``), MaxBoxAccV2 per class
(``metrics_per_class.json``) and the images where the two best rows disagree most
(``pseudo_labels.json`` against the dataset's GT boxes)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from wsol.boxes import coco_to_xyxy
from wsol.config import load_config
from wsol.data import build_dataset
from wsol.data.decode import decode_image
from wsol.errors import WsolError
from wsol.readfile import MAX_JSON_BYTES, InputFileError, read_text
from wsol.report.picks import image_quality

logger = logging.getLogger(__name__)
LEVELS = ("30", "50", "70")
DISAGREEMENTS = 4  # images shown
MIN_GAP = 0.05  # an IoU difference smaller than this is not a disagreement


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(read_text(path, MAX_JSON_BYTES))
    except (InputFileError, json.JSONDecodeError):
        return None


def curves(rows: list[dict]) -> dict[int, dict]:
    """Row -> ``{"thresholds", "levels": {"30", "50", "70"}, "cut"}`` from its report
    run's sweep (rows without a sweep are left out)."""
    out = {}
    for r in rows:
        sweep = _read_json(Path(r["report_run"]) / "sweep.json") if r.get("report_run") else None
        if not sweep or not sweep.get("thresholds"):
            continue
        levels = {lv: sweep.get(f"maxboxacc_v2_iou{lv}") for lv in LEVELS}
        out[r["row"]] = {
            "thresholds": sweep["thresholds"],
            "levels": {lv: v for lv, v in levels.items() if v is not None},
            "cut": r.get("cut"),
        }
    return out


def per_class(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Row -> class -> MaxBoxAccV2 on the report side."""
    out = {}
    for r in rows:
        doc = (
            _read_json(Path(r["report_run"]) / "metrics_per_class.json")
            if r.get("report_run")
            else None
        )
        if doc:
            values = {c: m.get("maxboxacc_v2") for c, m in doc.items() if isinstance(m, dict)}
            out[r["row"]] = {c: v for c, v in values.items() if v is not None}
    return {k: v for k, v in out.items() if v}


def _boxes(doc: dict) -> dict[int, list[list[float]]]:
    out: dict[int, list[list[float]]] = {}
    for a in doc.get("annotations", []):
        out.setdefault(a["image_id"], []).append(coco_to_xyxy([a["bbox"]])[0].tolist())
    return out


def disagreements(rows: list[dict], count: int = DISAGREEMENTS) -> list[dict]:
    """The report images where the two rows' boxes are furthest apart in quality (the
    mean over the image's GT classes of the best IoU of a box of the class with a GT box
    of the class), with both rows' boxes and the GT, in original pixels. Empty where
    the runs wrote no COCO pseudo-labels or their data cannot be read again."""
    if len(rows) < 2:
        return []
    a, b = rows[:2]
    docs = [_read_json(Path(r["report_run"]) / "pseudo_labels.json") for r in (a, b)]
    if any(d is None for d in docs):
        return []
    try:
        cfg = load_config(Path(a["report_run"]) / "config.yaml")
        dataset = build_dataset(cfg.data)
    except WsolError as e:
        logger.warning("no disagreements shown: the report data cannot be read again (%s)", e)
        return []
    qualities = []
    for doc in docs:
        ids = {c["name"]: c["id"] for c in doc.get("categories", [])}
        qualities.append(
            image_quality(doc, dataset.samples, [ids.get(c, -1) for c in dataset.classes])
        )
    gaps = []
    for pos, qa in qualities[0].items():
        qb = qualities[1].get(pos)
        if qa is not None and qb is not None and abs(qa - qb) >= MIN_GAP:
            gaps.append((-abs(qa - qb), pos, qa, qb))
    boxes = [_boxes(d) for d in docs]
    out = []
    for _, pos, qa, qb in sorted(gaps)[:count]:
        s = dataset.samples[pos]
        try:
            image, _ = decode_image(s.path)
        except WsolError:
            continue
        out.append(
            {
                "path": s.file_name,
                "image": image,
                "gt": s.boxes[~s.ignore].tolist(),
                "boxes": {
                    a["row"]: boxes[0].get(s.image_id, []),
                    b["row"]: boxes[1].get(s.image_id, []),
                },
                "iou": {a["row"]: qa, b["row"]: qb},
            }
        )
    return out
