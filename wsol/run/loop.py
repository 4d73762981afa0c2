"""The batch loop: dataset -> loader -> Localizer -> records and scores -> journal, one pass.

Each batch goes through the stages and is then dropped: memory is bounded by the batch
size. Every ``chunk_images`` images or ``chunk_seconds`` seconds, the results and the
evaluators' counters since the last chunk are journaled as one atomic chunk, which
:class:`Totals` adds up. A one-process run (:mod:`wsol.run.pipeline`) drives it over the
whole dataset, a rank of a sharded run (:mod:`wsol.run.distributed`) over its shard.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wsol.data.gpu_decode import decode_batch
from wsol.data.loader import FileBatch, make_loader, start_batches
from wsol.evaluate import Evaluators
from wsol.export import annotations_for, image_entry
from wsol.fileio import fault_point
from wsol.run.build import RunPlan
from wsol.run.failures import FailureWarnings
from wsol.run.journal import Journal
from wsol.run.memory import release_free_memory
from wsol.run.stages import HostStage, StageClock, plan_threads, single_threaded_cv2

logger = logging.getLogger(__name__)

# Hears of the images done: progress(done, total), after every batch.
Progress = Callable[[int, int], None]


@dataclass
class Totals:
    """What the chunks so far add up to: evaluator counters, seconds, empty-map reasons."""

    evaluators: Evaluators | None
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds (this process)

    def add(self, chunk: dict) -> None:
        self.chunks += 1
        if self.evaluators is not None:
            self.evaluators.merge_state(chunk["eval"])
        self.seconds += chunk["seconds"]
        for k, n in chunk["reasons"].items():
            self.reasons[k] = self.reasons.get(k, 0) + n
        for k, v in chunk.get("stages", {}).items():
            self.stages[k] = self.stages.get(k, 0.0) + v


def run_batches(
    plan: RunPlan,
    journal: Journal,
    start: int,
    totals: Totals,
    progress: Progress | None,
    failed: FailureWarnings | None = None,
) -> None:
    """Localize, record and score ``dataset.samples[start:]``, a chunk every
    ``chunk_images`` images or ``chunk_seconds`` seconds. The device stage of each
    batch overlaps the host stage of the one before (:mod:`wsol.run.stages`).
    ``failed`` warns of each image that fails to decode (a new one when None); it is
    closed at the end."""
    failed = failed if failed is not None else FailureWarnings()
    cfg, dataset, localizer = plan.cfg, plan.dataset, plan.localizer
    workers, host_threads = plan_threads(
        localizer.device.type, cfg.data.num_workers, cfg.host_threads, decode=cfg.data.decode
    )
    loader = make_loader(
        dataset.samples[start:],
        localizer.input_size,
        cfg.cam.batch_size,
        workers,
        localizer.model.resize,
        localizer.letterbox_fill,
        int(cfg.data.max_file_mb * 2**20),
        pin_memory=localizer.device.type == "cuda" and cfg.data.decode == "cpu",
        files_only=cfg.data.decode == "device",
        cache=plan.decode_cache,
    )
    clock = StageClock()
    chunks = _Chunks(plan, journal, totals, progress, clock, start, failed)
    # What the scores read on the host: the maps' levels for the sweeps (small, made on
    # the device), the float maps only where an evaluator needs them.
    needs_maps = plan.evaluators is not None and plan.evaluators.needs_maps
    sweep = plan.evaluators.sweep_thresholds if plan.evaluators is not None else None
    batches = start_batches(loader)
    with single_threaded_cv2(), HostStage(host_threads) as host:
        for b in itertools.count():
            with clock.timing("decode"):
                batch = next(batches, None)
                if isinstance(batch, FileBatch):  # data.decode=device
                    batch = decode_batch(
                        batch,
                        [dataset.samples[start + i] for i in batch.indices],
                        localizer.device,
                        localizer.input_size,
                        int(cfg.data.max_file_mb * 2**20),
                    )
            if batch is None:
                break
            samples = [dataset.samples[start + i] for i in batch.indices]
            with clock.timing("model"):
                maps = (
                    localizer.maps(
                        batch.images,
                        batch.orig_sizes,
                        [s.labels for s in samples],
                        batch.regions,
                        keep_maps=needs_maps,
                        sweep=sweep,
                    )
                    if samples
                    else None
                )
            host.submit(functools.partial(chunks.finish, b, batch, samples, maps, host.map))
    failed.close()


class _Chunks:
    """The host stage of a run: a batch's boxes, records and scores, journaled as a chunk
    every ``chunk_images`` images or ``chunk_seconds`` seconds. Called for one batch at
    a time, in order."""

    def __init__(self, plan, journal, totals, progress, clock, start, failed):
        self.plan, self.journal, self.totals, self.progress = plan, journal, totals, progress
        self.clock, self.failed = clock, failed
        self.evaluators = plan.evaluators.empty() if plan.evaluators else None
        self.chunk_start = self.done = start
        self.tick = time.perf_counter()
        self._new_chunk()

    def _new_chunk(self) -> None:
        self.records: dict[str, list] = {"images": [], "annotations": [], "failures": []}
        self.reasons: dict[str, int] = {}

    def finish(self, b: int, batch, samples: list, maps, map_fn) -> None:
        dataset, localizer, cfg = self.plan.dataset, self.plan.localizer, self.plan.cfg
        fails = [f.to_dict() for f in batch.failures]
        self.failed.warn(fails)
        for w in batch.warnings:
            logger.warning(w)
        with self.clock.timing("boxes"):
            results = localizer.boxes_for(maps, map_fn) if maps is not None else []
        for s, r in zip(samples, results, strict=True):
            self.records["images"].append(image_entry(s.image_id, s.file_name, r.size))
            for c in r.classes:
                self.records["annotations"] += annotations_for(
                    s.image_id, dataset.category_ids[c.dataset_class], c.detections
                )
                if c.detections.reason:
                    self.reasons[c.detections.reason] = self.reasons.get(c.detections.reason, 0) + 1
        self.records["failures"] += fails
        if self.evaluators is not None:
            with self.clock.timing("score"):
                self.evaluators.update(samples, results, map_fn)
        self.done += len(samples) + len(fails)
        release_free_memory()  # the batch's freed maps go back: memory stays flat
        fault_point(f"batch:{b}")
        now = time.perf_counter()
        if (
            self.done - self.chunk_start >= cfg.chunk_images
            or now - self.tick >= cfg.chunk_seconds
            or self.done == len(dataset)
        ):
            self._write(now)
        if self.progress is not None:
            self.progress(self.done, len(dataset))

    def _write(self, now: float) -> None:
        with self.clock.timing("write"):
            chunk = {
                "seconds": now - self.tick,
                "reasons": self.reasons,
                "eval": self.evaluators.state_dict() if self.evaluators else {},
            }
            self.journal.write_chunk(self.chunk_start, self.done, self.records, chunk)
        chunk["stages"] = self.clock.take()
        self.totals.add(chunk)
        fault_point(f"chunk:{self.totals.chunks - 1}")
        if self.evaluators is not None:
            self.evaluators.reset()
        self._new_chunk()
        self.chunk_start, self.tick = self.done, now
