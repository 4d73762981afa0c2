"""Per-image evaluation rows (``per_image.npz``) and the metrics they add up to.

A run with ``eval.per_image=true`` writes one row per scored image (an image with at
least one non-ignored GT box), in dataset order: what each image added to the
evaluators' counters. Every metric of :mod:`wsol.evaluate` is a ratio of sums of such
counters, so the rows of any resample of the images (repeats allowed) give that
resample's metrics, the same numbers, to the last digit, as a run over those images
would: the input of bootstrap intervals and paired tests (:mod:`wsol.compare.stats`).

The arrays of ``per_image.npz`` (``N`` rows, ``T`` sweep thresholds):

- ``keys`` str ``[N]``: the image file's resolved absolute path; rows of two runs over
  the same images are paired by it.
- ``thresholds`` f64 ``[T]``: the sweep's normalized thresholds.
- ``pairs`` i64 ``[N]``: the image's scored (image, class) pairs, the denominator of
  MaxBoxAcc, MaxBoxAccV2, CorLoc and GT-known Loc.
- ``v1`` i64 ``[N, T]``: MaxBoxAcc hits (IoU >= ``eval.iou``) over the image's pairs at
  each threshold.
- ``v2`` i64 ``[N, T, 3]``: MaxBoxAccV2 hits at IoU 0.3, 0.5 and 0.7.
- ``corloc`` i64 ``[N]``: CorLoc hits at the run's cut.
- ``gt_known`` i64 ``[N]``: GT-known Loc hits at the run's cut; only where the run
  defines GT-known Loc (a map for every GT class, pairs per class).
- ``top1_hits``, ``top1_images`` i64 ``[N]``: Top-1 Loc's hit (0 or 1) and whether the
  image counts (1 for a scored image).
- ``pxap_tp``, ``pxap_fp`` i64 ``[N, T]`` and ``pxap_fg`` i64 ``[N]``: the image's
  foreground and background pixels at or above each threshold, and its foreground
  pixels; only where the run scored PxAP (a dataset with masks).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from wsol.evaluate.base import Evaluators
from wsol.evaluate.box_accuracy import box_metrics
from wsol.evaluate.max_box_acc import V2_DELTAS, sweep_metrics
from wsol.evaluate.pixel_ap import pixel_ap
from wsol.fileio import atomic_write
from wsol.readfile import MAX_JSON_BYTES, read_bytes

PER_IMAGE_FILE = "per_image.npz"
# Fields that a run may leave out (None), and the arrays that hold one value per row.
OPTIONAL = ("gt_known", "pxap_tp", "pxap_fp", "pxap_fg")


@dataclass(frozen=True)
class PerImage:
    """The rows of ``per_image.npz`` (the module docstring gives each array)."""

    keys: np.ndarray
    thresholds: np.ndarray
    pairs: np.ndarray
    v1: np.ndarray
    v2: np.ndarray
    corloc: np.ndarray
    top1_hits: np.ndarray
    top1_images: np.ndarray
    gt_known: np.ndarray | None = None
    pxap_tp: np.ndarray | None = None
    pxap_fp: np.ndarray | None = None
    pxap_fg: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keys)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "thresholds" or value is None:
                continue
            if len(value) != n:
                raise ValueError(f"per-image rows: {f.name} has {len(value)} rows, keys {n}")
        t = len(self.thresholds)
        if self.v1.shape[1:] != (t,) or self.v2.shape[1:] != (t, 3):
            raise ValueError(
                f"per-image rows: v1 {self.v1.shape} and v2 {self.v2.shape} do not fit "
                f"{t} thresholds"
            )
        if (self.pxap_tp is None) != (self.pxap_fp is None) or (self.pxap_tp is None) != (
            self.pxap_fg is None
        ):
            raise ValueError("per-image rows: pxap_tp, pxap_fp and pxap_fg come together")

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, idx: np.ndarray) -> PerImage:
        """The rows at positions ``idx`` (a reordering, subset or resample)."""
        idx = np.asarray(idx, np.int64)
        return replace(
            self,
            **{
                f.name: getattr(self, f.name)[idx]
                for f in fields(self)
                if f.name != "thresholds" and getattr(self, f.name) is not None
            },
        )


def save_per_image(path: str | Path, rows: PerImage) -> None:
    """Write ``rows`` to ``path`` (``.npz``, uncompressed) atomically."""
    arrays = {
        f.name: getattr(rows, f.name) for f in fields(rows) if getattr(rows, f.name) is not None
    }
    arrays["keys"] = np.asarray(rows.keys, dtype=str)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_per_image(path: str | Path) -> PerImage:
    """The rows a run wrote to ``per_image.npz`` (``eval.per_image=true``).

    Raises:
        InputFileError: a path that is not a readable regular file.
        ValueError: a file that does not hold per-image rows.
    """
    data = read_bytes(path, MAX_JSON_BYTES)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a per-image rows file ({e})") from None
    names = {f.name for f in fields(PerImage)}
    missing = sorted(names - set(OPTIONAL) - set(arrays))
    if missing:
        raise ValueError(f"{path}: not a per-image rows file (no {', '.join(missing)})")
    return PerImage(**{k: v for k, v in arrays.items() if k in names})


def rows_from_evaluators(evaluators: Evaluators) -> PerImage:
    """The rows that a run's evaluators (built with ``per_image=True``) kept, as
    :class:`PerImage`; ``gt_known`` only where the run defines GT-known Loc.

    Raises:
        ValueError: evaluators that kept no rows, or rows that do not line up.
    """
    sweep, box = evaluators["max_box_acc"], evaluators["box_acc"]
    if sweep.rows is None or box.rows is None:
        raise ValueError("the evaluators kept no per-image rows (build them with per_image=True)")
    t = len(sweep.thresholds)

    def stack(rows: list, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(rows, np.int64).reshape(len(rows), *shape)

    arrays = {
        "keys": np.asarray(sweep.rows["key"], dtype=str),
        "thresholds": np.asarray(sweep.thresholds, np.float64),
        "pairs": stack(sweep.rows["pairs"], ()),
        "v1": stack(sweep.rows["v1"], (t,)),
        "v2": stack(sweep.rows["v2"], (t, len(V2_DELTAS))),
        "corloc": stack(box.rows["corloc"], ()),
        "top1_hits": stack(box.rows["top1_hits"], ()),
        "top1_images": stack(box.rows["top1_images"], ()),
    }
    if box.defines_gt_known:
        arrays["gt_known"] = stack(box.rows["gt_known"], ())
    if "pixel_ap" in evaluators and evaluators["pixel_ap"].rows is not None:
        px = evaluators["pixel_ap"]
        tp = len(px.thresholds)
        arrays["pxap_tp"] = stack(px.rows["tp"], (tp,))
        arrays["pxap_fp"] = stack(px.rows["fp"], (tp,))
        arrays["pxap_fg"] = stack(px.rows["fg"], ())
    return PerImage(**arrays)


def _sums(values: np.ndarray, counts: np.ndarray | None) -> np.ndarray:
    """The sum over rows of ``values [N, ...]``, each row counted ``counts[i]`` times
    (once each where ``counts`` is None). Integer arithmetic: exact."""
    if counts is None:
        return values.sum(0)
    return np.tensordot(counts, values, axes=(0, 0))


def metrics_from_rows(rows: PerImage, idx: np.ndarray | None = None) -> dict:
    """The metrics a run over the images ``idx`` (row positions, repeats allowed; all
    rows when None) would write to ``metrics.json``: ``maxboxacc``, ``maxboxacc_v2``,
    ``maxboxacc_v2_iou30/50/70`` (each with its ``_threshold``), ``corloc``,
    ``top1_loc``, ``gt_known_loc`` (where the rows hold it), ``num_pairs`` and ``pxap``
    (where the rows hold it and the images have foreground pixels). Over all rows the
    numbers equal the run's ``metrics.json`` to the last digit: they are the same sums
    put through the same functions. ``{}`` when the images hold no pair."""
    counts = None
    if idx is not None:
        idx = np.asarray(idx, np.int64)
        counts = np.bincount(idx, minlength=len(rows)).astype(np.int64)
    total = {
        name: _sums(getattr(rows, name), counts)
        for name in ("pairs", "v1", "v2", "corloc", "top1_hits", "top1_images", *OPTIONAL)
        if getattr(rows, name) is not None
    }
    out = sweep_metrics(total["v1"], total["v2"], int(total["pairs"]), rows.thresholds)
    known = int(total["gt_known"]) if "gt_known" in total else None
    box = box_metrics(
        int(total["pairs"]),
        int(total["corloc"]),
        known,
        int(total["top1_hits"]),
        int(total["top1_images"]),
    )
    if box:
        out.update(box)
    if "pxap_fg" in total:
        ap = pixel_ap(total["pxap_tp"], total["pxap_fp"], int(total["pxap_fg"]))
        if ap is not None:
            out["pxap"] = ap
    return out
