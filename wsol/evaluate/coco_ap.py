"""COCO box AP through pycocotools' ``COCOeval``, and its per-class breakdown."""

from __future__ import annotations

import contextlib
import io


def coco_ap(gt: dict, predictions: list[dict], per_class: bool = False) -> dict:
    """COCO box AP of ``predictions`` (a COCO results list) against the GT dict.

    Runs pycocotools' ``COCOeval`` (evaluate, accumulate, summarize) with its printing
    captured. Returns ``coco_ap`` (AP@[.5:.95], 100 detections per image), ``coco_ap50``
    and ``coco_ap75``; an empty prediction list scores 0. With ``per_class``, also
    ``per_category``: ``{category_id: {"coco_ap", "coco_ap50"}}`` read from
    ``eval["precision"]`` ``[iou T, recall R, category K, area A, max dets M]``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not any(True for a in gt.get("annotations", []) if not a.get("iscrowd", 0)):
        return {}
    if not predictions:
        out: dict = {"coco_ap": 0.0, "coco_ap50": 0.0, "coco_ap75": 0.0}
        if per_class:
            cats = {a["category_id"] for a in gt["annotations"] if not a.get("iscrowd", 0)}
            out["per_category"] = {c: {"coco_ap": 0.0, "coco_ap50": 0.0} for c in sorted(cats)}
        return out
    # pycocotools prints progress to stdout; a library must not, so it is captured.
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "info": gt.get("info", {}), "licenses": []}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(predictions)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = sorted(im["id"] for im in gt["images"])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[k] is -1 when no GT exists for that setting; report those as absent.
    names = ("coco_ap", "coco_ap50", "coco_ap75")
    out = {n: float(v) for n, v in zip(names, ev.stats[:3], strict=True) if v >= 0}
    if per_class:
        prec = ev.eval["precision"]  # -1 marks settings without GT
        out["per_category"] = {}
        for k, cat in enumerate(ev.params.catIds):
            allp, p50 = prec[:, :, k, 0, -1], prec[0, :, k, 0, -1]
            if (allp > -1).any():
                out["per_category"][int(cat)] = {
                    "coco_ap": float(allp[allp > -1].mean()),
                    "coco_ap50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else None,
                }
    return out


def add_coco_ap(
    metrics: dict,
    per_class: dict[str, dict],
    gt: dict,
    predictions: list[dict],
    classes: list[str],
    category_ids: list[int],
) -> None:
    """Score ``predictions`` against ``gt`` with :func:`coco_ap` and add the result to
    ``metrics`` and to each class's row of ``per_class`` (rows are created for classes
    that have an AP but no row yet)."""
    ap = coco_ap(gt, predictions, per_class=True)
    per_cat = ap.pop("per_category", {})
    metrics.update(ap)
    for name, cid in zip(classes, category_ids, strict=True):
        if cid in per_cat:
            per_class.setdefault(name, {}).update(per_cat[cid])
