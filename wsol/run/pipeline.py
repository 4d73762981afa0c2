"""The run loop: dataset -> loader -> Localizer -> records and scores -> journal, one pass.

Each batch goes through the stages and is then dropped: memory is bounded by the batch
size. Every ``chunk_images`` images or ``chunk_seconds`` seconds, the results and the
evaluators' counters since the last chunk are journaled as one atomic chunk; the final
outputs are assembled from the chunks (:mod:`wsol.run.finalize`). A run that is killed
resumes after its last chunk (:mod:`wsol.run.journal`) and ends with the same
``pseudo_labels.json`` byte for byte.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wsol.config import Config, dump_config
from wsol.data import Dataset
from wsol.data.gpu_decode import decode_batch
from wsol.data.loader import FileBatch, make_loader
from wsol.evaluate import Evaluators
from wsol.export import annotations_for, image_entry
from wsol.fileio import atomic_write_text, fault_point
from wsol.run.build import RunPlan, Status, plan_run
from wsol.run.distributed import run_sharded
from wsol.run.finalize import finalize
from wsol.run.fingerprint import fingerprint, input_parts
from wsol.run.journal import Journal
from wsol.run.memory import release_free_memory
from wsol.run.process_group import world_size
from wsol.run.stages import HostStage, StageClock, plan_threads, single_threaded_cv2

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
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if world_size() > 1:  # under torchrun: this process does one shard
        return run_sharded(cfg, progress, overwrite, say)
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
        metrics, sweep = finalize(
            plan, journal, totals.evaluators, totals.reasons, totals.seconds, totals.stages
        )
    finally:
        journal.close()
    return RunResult(journal.out, metrics, metrics["num_annotations"], sweep, plan.dataset, cfg)


def _loop(
    plan: RunPlan, journal: Journal, start: int, totals: Totals, progress: Progress | None
) -> None:
    """Localize, record and score ``dataset.samples[start:]``, a chunk every
    ``chunk_images`` images or ``chunk_seconds`` seconds. The device stage of each
    batch overlaps the host stage of the one before (:mod:`wsol.run.stages`)."""
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
    )
    clock = StageClock()
    chunks = _Chunks(plan, journal, totals, progress, clock, start)
    # What the scores read on the host: the maps' levels for the sweeps (small, made on
    # the device), the float maps only where an evaluator needs them.
    needs_maps = plan.evaluators is not None and plan.evaluators.needs_maps
    sweep = plan.evaluators.sweep_thresholds if plan.evaluators is not None else None
    batches = iter(loader)
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


class _Chunks:
    """The host stage of a run: a batch's boxes, records and scores, journaled as a chunk
    every ``chunk_images`` images or ``chunk_seconds`` seconds. Called for one batch at
    a time, in order."""

    def __init__(self, plan, journal, totals, progress, clock, start):
        self.plan, self.journal, self.totals, self.progress = plan, journal, totals, progress
        self.clock = clock
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
        for f in fails:
            logger.warning("image %s failed at %s: %s", f["path"], f["stage"], f["reason"])
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
