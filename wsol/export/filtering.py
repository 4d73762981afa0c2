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
