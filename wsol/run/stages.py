"""How a run's stages share the machine: thread counts, a stage clock, and the host stage.

The run overlaps three kinds of work. DataLoader worker processes decode the next
batches; the main thread runs the device stage of batch ``b + 1`` (forward, backward,
maps, upsample, normalize, cut: :meth:`wsol.localize.Localizer.maps`); one host thread
meanwhile finishes batch ``b`` (components and boxes, records, scores, journal), its
per-image box step spread over a small thread pool (cv2 releases the GIL). Batches are
finished in order, one at a time, so the output is the same as a sequential run's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import cv2

STAGES = ("decode", "model", "boxes", "score", "write")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_threads(threads: int) -> None:
    """Give the model ``threads`` torch threads (``threads``/``train.threads``; 0 keeps
    torch's default, one per usable core). ``wsol run`` and ``wsol train`` both call it."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def plan_threads(
    device: str,
    workers: int | None = None,
    host: int = 0,
    cpus: int | None = None,
    decode: str = "cpu",
) -> tuple[int, int]:
    """``(decoding worker processes, host threads)`` for a run on ``device`` (``cpu`` or
    ``cuda``), where ``workers=None`` and ``host=0`` ask for the automatic choice.

    On a CPU the model's own threads use every core, and decoding and boxes are a small
    part of the work: one worker and one host thread keep them off the model's path
    without crowding it. On a GPU the CPU does nothing but decode and box (and sweep
    the thresholds of a scored run), so they share the cores: about half for decoding,
    the rest (at most 8) for the host stage. With ``decode="device"`` the workers only
    read files: a quarter of the cores (at most 4) read, and the host stage gets the
    rest but one (the main thread's, which drives the device).
    """
    cpus = cpus or usable_cpus()
    if device == "cuda" and decode == "device":
        auto_workers = max(1, min(4, cpus // 4))
        auto_host = max(1, min(16, cpus - auto_workers - 1))
    elif device == "cuda":
        auto_workers = max(1, min(16, cpus // 2))
        auto_host = max(1, min(8, cpus - auto_workers))
    else:
        auto_workers, auto_host = (1 if cpus >= 2 else 0), 1
    return (auto_workers if workers is None else workers), (host or auto_host)


@contextmanager
def single_threaded_cv2() -> Iterator[None]:
    """cv2 without its own thread pool inside the block (and as it was after): the host
    stage spreads images over its threads instead, and the model keeps the cores.
    Decoding processes forked inside the block inherit the setting (calling
    ``cv2.setNumThreads`` in a forked child can hang on the parent's thread pool)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class StageClock:
    """Busy seconds per stage, added from any thread; stages may overlap in time, so
    their sum can exceed the run's wall time."""

    def __init__(self):
        self._lock = threading.Lock()
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] += time.perf_counter() - start

    def take(self) -> dict[str, float]:
        """The seconds since the last ``take``, and start again from zero."""
        with self._lock:
            out, self.seconds = self.seconds, dict.fromkeys(STAGES, 0.0)
        return out


class HostStage:
    """Runs one batch's host work at a time, in submission order, on its own thread,
    while the caller goes on with the next batch; :meth:`map` spreads a batch's
    per-image work over ``threads`` threads. An error in a batch is raised in the
    caller at the next :meth:`submit` or on leaving the ``with`` block."""

    def __init__(self, threads: int = 1):
        self._batches = ThreadPoolExecutor(1, thread_name_prefix="wsol-host")
        self._images = ThreadPoolExecutor(threads, "wsol-boxes") if threads > 1 else None
        self._pending: Future | None = None

    def map(self, fn: Callable, items) -> Iterator:
        return self._images.map(fn, items) if self._images is not None else map(fn, items)

    def submit(self, fn: Callable[[], None]) -> None:
        """Queue ``fn`` after waiting for the batch before it (so at most one batch
        waits here while the caller works on the next)."""
        self.wait()
        self._pending = self._batches.submit(fn)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> HostStage:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            # On an error (Ctrl-C included) the batch in hand still finishes: its chunk
            # is written whole or not at all.
            self._batches.shutdown(wait=True)
            if self._images is not None:
                self._images.shutdown(wait=True)
