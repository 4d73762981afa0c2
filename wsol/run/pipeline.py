"""``wsol run`` in one process: plan, open the journal, the batch loop, the outputs.

A folder holding an unfinished run of the same config and images resumes after its last
complete chunk (:mod:`wsol.run.journal`) and ends with the same ``pseudo_labels.json``
byte for byte; the loop itself is :mod:`wsol.run.loop`, the outputs
:mod:`wsol.run.finalize`. Under torchrun each process runs its shard instead
(:mod:`wsol.run.distributed`).
"""

from __future__ import annotations

import dataclasses

import torch

from wsol.config import Config, dump_config
from wsol.data.cache import DecodeCache
from wsol.fileio import atomic_write_text
from wsol.run.build import Status, plan_run
from wsol.run.distributed import run_sharded
from wsol.run.finalize import RunResult, finalize
from wsol.run.fingerprint import fingerprint, input_parts
from wsol.run.journal import Journal
from wsol.run.loop import Progress, Totals, run_batches
from wsol.run.process_group import world_size

__all__ = ["Progress", "RunResult", "run_config"]


def run_config(
    cfg: Config,
    progress: Progress | None = None,
    overwrite: bool = False,
    status: Status | None = None,
    decode_cache: DecodeCache | None = None,
) -> RunResult:
    """Run the whole pipeline as configured and write the output contract to ``cfg.out``.

    A folder holding an unfinished run of the same config and images is resumed after
    its last complete chunk; anything else already there is refused unless ``overwrite``.
    ``progress(done, total)`` is called as images are done (first with the images an
    earlier run did), ``status(line)`` as each phase starts. ``decode_cache``: a
    :class:`~wsol.data.cache.DecodeCache` shared by the runs of one process, so an image
    decoded for a view size by one run is not decoded again by the next (with
    ``data.decode=cpu``, in a one-process run); the results are the same without it.
    """
    say = status or (lambda line: None)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if world_size() > 1:  # under torchrun: this process does one shard
        return run_sharded(cfg, progress, overwrite, say)
    plan = dataclasses.replace(plan_run(cfg, say), decode_cache=decode_cache)
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
        run_batches(plan, journal, start, totals, progress)
        report = (
            f", drawing the report ({cfg.report.num_images} images)" if cfg.report.enabled else ""
        )
        say(f"writing the outputs{report}")
        metrics, sweep = finalize(
            plan, journal, totals.evaluators, totals.reasons, totals.seconds, totals.stages
        )
    finally:
        journal.close()
    return RunResult(journal.out, metrics, metrics["num_boxes_found"], sweep, plan.dataset, cfg)
