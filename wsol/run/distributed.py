"""One run across many processes: ``torchrun --nproc_per_node=N -m wsol run CONFIG``.

torchrun starts one process per GPU (or per CPU share) and sets ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK``. Every rank reads the dataset in the same order and localizes one
contiguous shard of it, :func:`shard_bounds`, journaling its chunks in its own folder
``out/ranks/<rank>/`` (its own ``run_state.json``, chunks and lock). When every shard is
journaled, rank 0 concatenates the ranks' chunks in dataset order (checksums verified),
sums their evaluator counters as a resumed run does, and writes the outputs through
:func:`~wsol.run.finalize.finalize`; the other ranks write no output file and return
what rank 0 wrote.

The ranks exchange nothing but a go-ahead (the run's fingerprint, or rank 0's refusal)
and two barriers: results travel through the shared ``out`` folder, so NCCL (GPU) or
gloo (CPU) only keeps the ranks in step. The collectives are waited for in short Python
steps, so that a rank stopped by torchrun (because another one failed) handles its
SIGTERM at once, with its finished chunks on disk.

Guarantees: shards are whole batches of ``cam.batch_size``, so every image is in the
same batch as in a one-process run; ``pseudo_labels.json`` and the other exports are
byte-identical to one process's, and ``metrics.json`` equal except its timing keys:
``images_per_second`` (here the images over the longest rank's seconds: the throughput
of all ranks together) and ``stage_seconds`` (rank 0's own stages, as one process
reports its own). A killed rank resumes with the same command: each rank redoes only what its
own journal lacks. A run is resumed only by the same number of processes; another
number is refused (its shards would cover other images).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from pathlib import Path

import torch

from wsol.config import Config, dump_config
from wsol.errors import WsolError
from wsol.fileio import atomic_write_text
from wsol.run.build import RunPlan, Status, plan_run
from wsol.run.failures import FailureWarnings
from wsol.run.finalize import RunResult, finalize
from wsol.run.fingerprint import fingerprint, input_parts
from wsol.run.journal import RANK_DIR, STATE_FILE, Journal, RunExistsError
from wsol.run.loop import Progress, Totals, run_batches
from wsol.run.process_group import (
    barrier,
    broadcast_json,
    join_group,
    rank,
    world_size,
)

logger = logging.getLogger(__name__)

LISTING_GRACE_SECONDS = 60.0  # NFS caches a folder's listing for up to acdirmax (60 s)


def shard_bounds(num_images: int, world_size: int, batch_size: int) -> list[tuple[int, int]]:
    """Each rank's dataset positions ``[start, end)``: contiguous, in rank order, covering
    ``[0, num_images)``, and made of whole batches of ``batch_size`` counted from 0, so
    that every batch holds the images it holds in a one-process run. Rank ``r`` gets
    batches ``[r * B // W, (r + 1) * B // W)`` of the ``B`` batches: sizes differ by at
    most one batch (a rank may get none when there are fewer batches than ranks)."""
    if world_size < 1 or batch_size < 1 or num_images < 0:
        raise ValueError(f"bad shard request: {num_images} images, {world_size}, {batch_size}")
    batches = -(-num_images // batch_size)
    cuts = [min(num_images, r * batches // world_size * batch_size) for r in range(world_size)]
    cuts.append(num_images)
    return list(itertools.pairwise(cuts))


class ShardedJournal(Journal):
    """The folder of a sharded run: its own state file and lock (held by rank 0), and
    rank ``r``'s chunks in ``ranks/<r>/``, positions counted from its shard's start."""

    def __init__(self, out: str | Path, shards: list[tuple[int, int]]):
        super().__init__(out)
        self.shards = shards

    def rank_journal(self, r: int) -> Journal:
        return Journal(self.out / RANK_DIR / str(r))

    def rank_chunks(self, r: int) -> list[dict]:
        """Rank ``r``'s chunks, checked whole (no gap, checksums) and covering its shard.

        Raises:
            RunExistsError: a damaged chunk, or a shard not journaled to its end.
        """
        start, end = self.shards[r]
        chunks = self.rank_journal(r).chunks()
        done = chunks[-1]["end"] if chunks else 0
        if done != end - start:
            raise RunExistsError(
                f"{self.out}: rank {r} journaled {done} of its {end - start} images; run the "
                "command again to finish its shard"
            )
        return chunks

    def chunks(self) -> list[dict]:
        """Every rank's chunks in dataset order, with dataset positions."""
        out = []
        for r, (start, _) in enumerate(self.shards):
            for c in self.rank_chunks(r):
                out.append({**c, "start": c["start"] + start, "end": c["end"] + start})
        return out


def run_sharded(cfg: Config, progress: Progress | None, overwrite: bool, say: Status) -> RunResult:
    """This process's part of a run over ``WORLD_SIZE`` processes (see the module's
    docstring). Rank 0 writes the outputs; every rank returns them. Only rank 0 calls
    ``progress`` (for its own shard) and ``say``."""
    if rank() != 0:  # the console is rank 0's
        progress, say = None, (lambda line: None)
    device = join_group(cfg)
    plan = plan_run(cfg, say)
    shards = shard_bounds(len(plan.dataset), world_size(), plan.cfg.cam.batch_size)
    journal = ShardedJournal(plan.cfg.out, shards)
    try:
        fp = _open_on_rank0(plan, journal, overwrite, device)
        mine = _run_shard(plan, journal, fp, progress, say)
        if len(shards) > 1:
            say("waiting for the other ranks to finish their shards")
        barrier(device)
        if rank() == 0:
            report = plan.cfg.report
            drawing = f", drawing the report ({report.num_images} images)" if report.enabled else ""
            say(f"merging the {len(shards)} shards, writing the outputs{drawing}")
            metrics, sweep = _merge(plan, journal, mine.stages)
        barrier(device)  # rank 0's outputs are in place
    finally:
        journal.close()  # (only rank 0 holds its lock)
    if rank() != 0:
        metrics = json.loads((journal.out / "metrics.json").read_text())
        has_sweep = plan.evaluators is not None
        sweep = json.loads((journal.out / "sweep.json").read_text()) if has_sweep else None
    return RunResult(
        journal.out, metrics, metrics["num_boxes_found"], sweep, plan.dataset, plan.cfg
    )


def _run_shard(
    plan: RunPlan,
    journal: ShardedJournal,
    fp: dict[str, str],
    progress: Progress | None,
    say: Status,
) -> Totals:
    """Localize this rank's shard into ``ranks/<rank>/``, after what it journaled before;
    returns what this rank's chunks add up to."""
    me = rank()
    start, end = journal.shards[me]
    share = f"images {start + 1}-{end}, which the bar counts" if end > start else "none"
    say(
        f"{len(journal.shards)} processes share the {len(plan.dataset)} images; "
        f"rank {me} does {share}"
    )
    own = journal.rank_journal(me)
    resuming = own.open({**fp, "shard": f"rank {me}: [{start}, {end})"}, False)
    try:
        shard = dataclasses.replace(plan.dataset, samples=plan.dataset.samples[start:end])
        totals = Totals(plan.evaluators.empty() if plan.evaluators else None)
        done = 0
        for chunk in own.resumable_chunks() if resuming else []:  # done is not redone
            totals.add(chunk)
            done = chunk["end"]
        if resuming:
            say(
                f"resuming the run in {journal.out}: rank {me} had done {done} of its "
                f"{len(shard)} images"
            )
        if progress is not None:
            progress(done, len(shard))
        failed = FailureWarnings()
        if me == 0:  # the images refused while listing them: every rank listed them
            failed.warn(plan.dataset.failures)
        if done < len(shard):
            run_batches(
                dataclasses.replace(plan, dataset=shard), own, done, totals, progress, failed
            )
        failed.close()
    finally:
        own.close()
    return totals


def _merge(
    plan: RunPlan, journal: ShardedJournal, stages: dict[str, float]
) -> tuple[dict, dict | None]:
    """Rank 0: add up every rank's chunks and write the outputs. ``images_per_second``
    is over the longest rank's seconds; ``stage_seconds`` (``stages``) is rank 0's own."""
    totals = Totals(plan.evaluators.empty() if plan.evaluators else None)
    slowest = 0.0
    for r in range(len(journal.shards)):
        chunks = _rank_chunks_seen(journal, r)
        for chunk in chunks:
            totals.add(chunk)
        slowest = max(slowest, sum(c["seconds"] for c in chunks))
    return finalize(plan, journal, totals.evaluators, totals.reasons, slowest, stages)


def _rank_chunks_seen(journal: ShardedJournal, r: int) -> list[dict]:
    """Rank ``r``'s chunks, waiting up to :data:`LISTING_GRACE_SECONDS` for them: a
    shared file system (NFS) may list a folder's new files late on another node."""
    deadline = time.monotonic() + LISTING_GRACE_SECONDS
    while True:
        try:
            return journal.rank_chunks(r)
        except RunExistsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _open_on_rank0(
    plan: RunPlan, journal: ShardedJournal, overwrite: bool, device: torch.device
) -> dict[str, str]:
    """Rank 0 locks ``out`` and checks it (resume, refuse or start afresh, as one process
    would) and sends the run's fingerprint to the others, or its refusal, which they
    raise too. Returns the fingerprint."""
    cfg, size = plan.cfg, len(journal.shards)
    if rank() != 0:
        answer = broadcast_json(None, device)
        if "error" in answer:
            raise RunExistsError(answer["error"])
        return answer["fingerprint"]
    try:
        image_list = [(s.image_id, s.path) for s in plan.dataset.samples]
        fp = fingerprint(cfg, image_list, input_parts(cfg, plan.dataset))
        fp["world size"] = str(size)
        try:
            journal.open(fp, overwrite)
        except RunExistsError as e:
            raise RunExistsError(_other_world_size(journal.out, fp) or str(e)) from None
        atomic_write_text(journal.out / "config.yaml", dump_config(cfg))
    except WsolError as e:
        broadcast_json({"error": str(e)}, device)
        raise
    broadcast_json({"fingerprint": fp}, device)
    return fp


def _other_world_size(out: Path, fp: dict[str, str]) -> str | None:
    """A clearer refusal when ``out`` holds this run split across another number of
    processes (or run by one); None when something else differs."""
    try:
        previous = json.loads((out / STATE_FILE).read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    before = previous.get("world size", "1")
    same = {k: v for k, v in previous.items() if k != "world size"}
    if before == fp["world size"] or same != {k: v for k, v in fp.items() if k != "world size"}:
        return None
    return (
        f"{out} holds this run split across {before} process(es); resume it with "
        f"{before} (torchrun's --nnodes times --nproc_per_node), or pass --overwrite to "
        f"start afresh with {fp['world size']}"
    )
