"""Keeping a long run's memory bounded by its batch, not by how long it has run.

glibc's allocator raises its mmap threshold as large blocks are freed, after which the
maps of every batch (tens of MB, a different size each time) come from the heap, which
fragments: a 10,000-image run measured 13% more peak RSS than a 1,000-image one, with
no Python object left behind. Handing the heap's free pages back to the system after
each batch keeps it flat (measured: a 4,000-image run's RSS stayed within 850-900 MiB
instead of climbing from 900 to 1,250 MiB), for about 5% of the time of a tiny model's
run and less for real ones.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return freed heap memory to the system (glibc's ``malloc_trim``); False where
    the C library has no such call (not glibc), where it is not needed."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
