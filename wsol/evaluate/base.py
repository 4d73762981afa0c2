"""The evaluator protocol, a composite of evaluators, and what they share.

Evaluators share one interface: ``reset()``, ``update(samples, results)`` and
``compute() -> dict``. Their state is a handful of integer counters (per class and per
threshold at most), so memory does not grow with the dataset, and two evaluators fed
disjoint streams merge by adding their counters: that is how a resumed run restores the
scores of the chunks it does not redo.

The unit of scoring is an (image, class) pair for every class with at least one
non-ignored GT box in the image (VOC ``difficult`` / COCO ``iscrowd`` boxes are
ignored; a pair whose boxes are all ignored is left out). A predicted box is correct
when its IoU with any GT box of the class (ignored ones included, so a hit on a
difficult object is not penalised) is at least ``delta``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from wsol.boxes import box_iou
from wsol.data.base import Sample
from wsol.localize.results import ImageResult


def sweep_thresholds(step: float = 0.01, values: list[float] | None = None) -> np.ndarray:
    """The sweep ``[T]``: ``values`` sorted and deduplicated if given, else
    ``0, step, 2 step, ... < 1`` (wsolevaluation's ``cam_curve_interval``), rounded to 12
    decimals so that 0.57 is 0.57, not ``np.arange``'s 0.5700000000000001."""
    if values:
        return np.unique(np.asarray(values, np.float64))
    return np.round(np.arange(0.0, 1.0, step), 12)


def gt_pairs(sample: Sample) -> dict[int, np.ndarray]:
    """Class -> all GT boxes of that class, for classes with a non-ignored box."""
    out = {}
    for c in np.unique(sample.box_labels[~sample.ignore]):
        out[int(c)] = sample.boxes[sample.box_labels == c]
    return out


def scored_pairs(
    sample: Sample, result: ImageResult, class_agnostic: bool = False
) -> dict[int, np.ndarray]:
    """The pairs an image is scored on: :func:`gt_pairs`, or with ``class_agnostic`` one
    pair, the most probable target's class against all the image's GT boxes
    (wsolevaluation's single-object protocol carried over to multi-object images)."""
    gt = gt_pairs(sample)
    if not class_agnostic or not gt:
        return gt
    best = max(result.classes, key=lambda c: c.prob, default=None)
    return {best.dataset_class if best else min(gt): sample.boxes}


def image_key(path: str) -> str:
    """The key of an image's per-image rows: its file's resolved absolute path."""
    return os.path.realpath(path)


def any_hit(boxes: np.ndarray, gt: np.ndarray, delta: float) -> bool:
    """Whether any of ``boxes [N, 4]`` has IoU ``>= delta`` with any of ``gt [M, 4]``."""
    return len(boxes) > 0 and bool((box_iou(boxes, gt) >= delta).any())


def ratio(hits, pairs) -> float | None:
    return float(hits / pairs) if pairs else None


class Evaluator:
    """The shared interface; the state is the integer counters named in ``state_fields``
    and, when ``rows`` is kept (``per_image``), what each scored image added to them:
    ``rows[field]`` lists one value per image (for ``row_fields``), in the order the
    images were scored. Counters merge by adding, rows by appending."""

    state_fields: tuple[str, ...] = ()
    row_fields: tuple[str, ...] = ()
    rows: dict[str, list] | None = None

    @property
    def needs_maps(self) -> bool:
        """Whether :meth:`update` reads ``ClassResult.norm_map`` (the float maps on the
        host); a run then asks the Localizer for them."""
        return False

    @property
    def sweep_thresholds(self) -> np.ndarray | None:
        """The ascending thresholds at which :meth:`update` reads each map's levels
        (``ClassResult.sweep``, made on the model's device), or None."""
        return None

    def init_args(self) -> dict:
        """Constructor arguments that build an empty evaluator like this one."""
        raise NotImplementedError

    def empty(self) -> Evaluator:
        """A fresh evaluator with the same settings and no counts."""
        return type(self)(**self.init_args())

    def state_dict(self) -> dict:
        out = {k: np.asarray(getattr(self, k)).tolist() for k in self.state_fields}
        if self.rows is not None:
            out["rows"] = {k: [np.asarray(v).tolist() for v in self.rows[k]] for k in self.rows}
        return out

    def _new_rows(self, per_image: bool) -> None:
        self.rows = {k: [] for k in self.row_fields} if per_image else None

    def merge_state(self, state: dict) -> None:
        if self.rows is not None:
            if "rows" not in state:
                raise ValueError("cannot merge a state without per-image rows into one with")
            for k in self.row_fields:  # arrays, not nested lists: a tenth of the memory
                self.rows[k] += [
                    v if isinstance(v, str) else np.asarray(v) for v in state["rows"][k]
                ]
        for k in self.state_fields:
            cur = getattr(self, k)
            add = np.asarray(state[k], dtype=np.int64)
            if isinstance(cur, np.ndarray):
                if add.shape != cur.shape:
                    raise ValueError(f"cannot merge {k}: shape {add.shape} != {cur.shape}")
                setattr(self, k, cur + add)
            else:
                setattr(self, k, int(cur) + int(add))

    def reset(self) -> None:
        raise NotImplementedError

    def update(
        self, samples: Sequence[Sample], results: Sequence[ImageResult], map_fn: Callable = map
    ) -> None:
        """Add a batch. ``map_fn`` may run independent per-pair work (``map``, or a thread
        pool's); the state must not depend on it."""
        raise NotImplementedError

    def compute(self) -> dict:
        raise NotImplementedError

    def per_class(self, class_names: list[str]) -> dict[str, dict]:
        """Per class name, this evaluator's metrics (classes it did not score left out)."""
        return {}


class Evaluators(Evaluator):
    """Named evaluators run as one: the same calls fan out, the metrics and per-class
    tables merge in order, and the state is ``{name: state}``."""

    def __init__(self, members: dict[str, Evaluator]):
        self.members = dict(members)

    def init_args(self) -> dict:
        return {"members": {k: e.empty() for k, e in self.members.items()}}

    def __contains__(self, name: str) -> bool:
        return name in self.members

    @property
    def sweep_thresholds(self) -> np.ndarray | None:
        """The first member's sweep (members built from one config share it)."""
        return next(
            (e.sweep_thresholds for e in self.members.values() if e.sweep_thresholds is not None),
            None,
        )

    @property
    def needs_maps(self) -> bool:
        """A member reads the float maps, or sweeps other thresholds than the first."""
        sweep = self.sweep_thresholds
        return any(
            e.needs_maps
            or (e.sweep_thresholds is not None and not np.array_equal(e.sweep_thresholds, sweep))
            for e in self.members.values()
        )

    def __getitem__(self, name: str) -> Evaluator:
        return self.members[name]

    def state_dict(self) -> dict:
        return {k: e.state_dict() for k, e in self.members.items()}

    def merge_state(self, state: dict) -> None:
        for k, e in self.members.items():
            e.merge_state(state[k])

    def reset(self) -> None:
        for e in self.members.values():
            e.reset()

    def update(
        self, samples: Sequence[Sample], results: Sequence[ImageResult], map_fn: Callable = map
    ) -> None:
        for e in self.members.values():
            e.update(samples, results, map_fn)

    def compute(self) -> dict:
        out: dict = {}
        for e in self.members.values():
            out.update(e.compute())
        return out

    def per_class(self, class_names: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for e in self.members.values():
            for name, row in e.per_class(class_names).items():
                out.setdefault(name, {}).update(row)
        return out
