"""Which boxes are written: a score floor and a per-(image, class) cap.

This only trims the files: the evaluators have already seen every box, so the metrics
of a run do not depend on it.
"""

from __future__ import annotations


def filter_document(doc: dict, min_score: float = 0.0, max_per_class: int = 0) -> dict:
    """A copy of the COCO document ``doc`` whose annotations are those with
    ``score >= min_score`` (none dropped when ``min_score <= 0``), and of those at most
    ``max_per_class`` per (image, category), the highest-scoring (ties: the earlier one;
    ``0``: no cap). Kept annotations stay in file order and are numbered again from 1;
    ``images`` and ``categories`` are unchanged, so an image whose boxes all went stays
    listed. ``doc`` is not modified."""
    if min_score < 0 or max_per_class < 0:
        raise ValueError(f"min_score and max_per_class must be >= 0: {min_score}, {max_per_class}")
    anns = doc["annotations"]
    keep = [min_score <= 0 or a["score"] >= min_score for a in anns]
    if max_per_class > 0:
        groups: dict[tuple[int, int], list[int]] = {}
        for i, a in enumerate(anns):
            if keep[i]:
                groups.setdefault((a["image_id"], a["category_id"]), []).append(i)
        for members in groups.values():
            # Stable sort on the negated score: equal scores keep file order.
            ranked = sorted(members, key=lambda i: -anns[i]["score"])
            for i in ranked[max_per_class:]:
                keep[i] = False
    kept = [a for a, k in zip(anns, keep, strict=True) if k]
    return {**doc, "annotations": [{**a, "id": n + 1} for n, a in enumerate(kept)]}


def dropped_boxes(doc: dict, min_score: float = 0.0, max_per_class: int = 0) -> dict[str, int]:
    """Why :func:`filter_document` with the same arguments leaves boxes of ``doc`` out:
    ``{"below export.min_score=X": n, "over export.max_per_class=K": m}``, each reason
    with at least one box (the floor applies first, so a box under it counts there
    only). Empty when every box is written."""
    anns = doc["annotations"]
    below = sum(a["score"] < min_score for a in anns) if min_score > 0 else 0
    over = len(anns) - below - len(filter_document(doc, min_score, max_per_class)["annotations"])
    out = {}
    if below:
        out[f"below export.min_score={min_score:g}"] = below
    if over:
        out[f"over export.max_per_class={max_per_class}"] = over
    return out
