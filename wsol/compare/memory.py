"""Peak memory while a block of code runs: the process's resident set, sampled by a
thread, and on CUDA the allocator's peak.

The kernel's own high-water mark (``VmHWM``) spans the whole process, so it cannot say
what one candidate of a compare needed after another; sampling ``/proc/self/statm``
every few milliseconds can (a spike shorter than the interval may be missed).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path

MIB = 1024 * 1024
STATM = Path("/proc/self/statm")


def rss_bytes() -> int:
    """The resident set size of this process now; where ``/proc`` is missing (not
    Linux), the process's peak so far."""
    try:
        pages = int(STATM.read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; else KiB


def _cuda():
    """torch.cuda when torch is loaded and CUDA is in use; None otherwise (this module
    does not import torch itself)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda


class PeakMemory:
    """``with PeakMemory() as peak: ...``, then ``peak.rss_mib`` (the largest resident
    set sampled, MiB) and ``peak.cuda_mib`` (``torch.cuda.max_memory_allocated`` over the
    block, MiB; None without CUDA)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.rss_mib = 0.0
        self.cuda_mib: float | None = None
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while True:
            self._peak = max(self._peak, rss_bytes())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        cuda = _cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()
        self._peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="wsol-peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.rss_mib = round(self._peak / MIB, 1)
        cuda = _cuda()  # a model built inside the block may have started CUDA
        if cuda is not None:
            self.cuda_mib = round(cuda.max_memory_allocated() / MIB, 1)
