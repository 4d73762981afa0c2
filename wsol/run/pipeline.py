"""The run loop: dataset -> loader -> Localizer -> records and scores -> journal, one pass.

Each batch goes through the stages and is then dropped: memory is bounded by the batch
size. Every ``chunk_images`` images or ``chunk_seconds`` seconds, the results and the
evaluators' counters since the last chunk are journaled as one atomic chunk; the final
outputs are assembled from the chunks (:mod:`wsol.run.finalize`). A run that is killed
resumes after its last chunk (:mod:`wsol.run.journal`) and ends with the same
``pseudo_labels.json`` byte for byte.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wsol.config import Config, dump_config
from wsol.data import Dataset
from wsol.data.loader import make_loader
from wsol.evaluate import Evaluators
from wsol.export import annotations_for, image_entry
from wsol.fileio import atomic_write_text, fault_point
from wsol.run.build import RunPlan, Status, plan_run
from wsol.run.finalize import finalize
from wsol.run.fingerprint import fingerprint, input_parts
from wsol.run.journal import Journal

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class RunResult:
    """What a finished run wrote and measured.

    ``metrics`` is what ``metrics.json`` holds; ``sweep`` what ``sweep.json`` holds (None
    when nothing was scored); ``dataset`` the images and classes the run covered;
    ``config`` the resolved config, as ``config.yaml`` holds it.
    """

    out_dir: Path
    metrics: dict
    num_annotations: int
    sweep: dict | None
    dataset: Dataset
    config: Config


@dataclass
class Totals:
    """What the chunks so far add up to: evaluator counters, seconds, empty-map reasons."""

    evaluators: Evaluators | None
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    chunks: int = 0

    def add(self, chunk: dict) -> None:
        self.chunks += 1
        if self.evaluators is not None:
            self.evaluators.merge_state(chunk["eval"])
        self.seconds += chunk["seconds"]
        for k, n in chunk["reasons"].items():
            self.reasons[k] = self.reasons.get(k, 0) + n


def run_config(
    cfg: Config,
    progress: Progress | None = None,
    overwrite: bool = False,
    status: Status | None = None,
) -> RunResult:
    """Run the whole pipeline as configured and write the output contract to ``cfg.out``.

    A folder holding an unfinished run of the same config and images is resumed after
    its last complete chunk; anything else already there is refused unless ``overwrite``.
    ``progress(done, total)`` is called as images are done (first with the images an
    earlier run did), ``status(line)`` as each phase starts.
    """
    say = status or (lambda line: None)
    torch.manual_seed(cfg.seed)
    plan = plan_run(cfg, say)
    cfg = plan.cfg  # resolved: absolute paths, the model's defaults spelled out
    journal = Journal(cfg.out)
    image_list = [(s.image_id, s.path) for s in plan.dataset.samples]
    fp = fingerprint(cfg, image_list, input_parts(cfg, plan.dataset))
    resuming = journal.open(fp, overwrite)
    try:
        atomic_write_text(journal.out / "config.yaml", dump_config(cfg))
        totals = Totals(plan.evaluators.empty() if plan.evaluators else None)
        start = 0
        for chunk in journal.resumable_chunks() if resuming else []:  # done is not redone
            totals.add(chunk)
            start = chunk["end"]
        if resuming:
            say(
                f"resuming the run in {journal.out}: {start} of {len(plan.dataset)} images "
                "were done before"
            )
        if progress is not None:
            progress(start, len(plan.dataset))
        _loop(plan, journal, start, totals, progress)
        report = (
            f", drawing the report ({cfg.report.num_images} images)" if cfg.report.enabled else ""
        )
        say(f"writing the outputs{report}")
        metrics, sweep = finalize(plan, journal, totals.evaluators, totals.reasons, totals.seconds)
    finally:
        journal.close()
    return RunResult(journal.out, metrics, metrics["num_annotations"], sweep, plan.dataset, cfg)


def _loop(
    plan: RunPlan, journal: Journal, start: int, totals: Totals, progress: Progress | None
) -> None:
    """Localize, record and score ``dataset.samples[start:]``, a chunk every
    ``chunk_images`` images or ``chunk_seconds`` seconds."""
    cfg, dataset, localizer = plan.cfg, plan.dataset, plan.localizer
    evaluators = plan.evaluators.empty() if plan.evaluators else None
    loader = make_loader(
        dataset.samples[start:],
        localizer.input_size,
        cfg.cam.batch_size,
        cfg.data.num_workers,
        localizer.model.resize,
        localizer.letterbox_fill,
        int(cfg.data.max_file_mb * 2**20),
    )
    records: dict[str, list] = {"images": [], "annotations": [], "failures": []}
    reasons: dict[str, int] = {}
    chunk_start, done, tick = start, start, time.perf_counter()
    for b, batch in enumerate(loader):
        samples = [dataset.samples[start + i] for i in batch.indices]
        fails = [f.to_dict() for f in batch.failures]
        for f in fails:
            logger.warning("image %s failed at %s: %s", f["path"], f["stage"], f["reason"])
        for w in batch.warnings:
            logger.warning(w)
        results = (
            localizer(batch.images, batch.orig_sizes, [s.labels for s in samples], batch.regions)
            if samples
            else []
        )
        for s, r in zip(samples, results, strict=True):
            records["images"].append(image_entry(s.image_id, s.file_name, r.size))
            for c in r.classes:
                records["annotations"] += annotations_for(
                    s.image_id, dataset.category_ids[c.dataset_class], c.detections
                )
                if c.detections.reason:
                    reasons[c.detections.reason] = reasons.get(c.detections.reason, 0) + 1
        records["failures"] += fails
        if evaluators is not None:
            evaluators.update(samples, results)
        done += len(samples) + len(fails)
        fault_point(f"batch:{b}")
        now = time.perf_counter()
        if (
            done - chunk_start >= cfg.chunk_images
            or now - tick >= cfg.chunk_seconds
            or done == len(dataset)
        ):
            chunk = {
                "seconds": now - tick,
                "reasons": reasons,
                "eval": evaluators.state_dict() if evaluators else {},
            }
            journal.write_chunk(chunk_start, done, records, chunk)
            totals.add(chunk)
            fault_point(f"chunk:{totals.chunks - 1}")
            if evaluators is not None:
                evaluators.reset()
            records = {"images": [], "annotations": [], "failures": []}
            reasons, chunk_start, tick = {}, done, now
        if progress is not None:
            progress(done, len(dataset))
