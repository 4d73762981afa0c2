"""Decoded images kept across runs in one process: a bounded, least-recently-used cache.

Several runs over the same images at the same view size (the candidates of ``wsol
compare``, a grid search) decode every image again for each run. A
:class:`DecodeCache` passed to those runs keeps the array the model sees, the image
decoded, turned upright and resized (``uint8 [3, H, W]``), with its original size and
letterbox region, so the next run at that size reads it from memory.

An entry is keyed by everything its pixels depend on: the file's resolved path, size
and modification time (an edited file is a new key, so a stale entry is never used),
the view size, the resize policy and its fill colour. Failures are not kept: a file
that failed is read again, and fails again with the same reason.

Entries are put in by the process that owns the cache, from the batches it receives
(decoding worker processes work on a copy; under the ``spawn`` start method on an
empty one, so they only decode).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import NamedTuple

import torch

DEFAULT_MAX_BYTES = 2 * 2**30

# (resolved path, size in bytes, mtime in ns, (H, W), resize policy, fill colour)
CacheKey = tuple[str, int, int, tuple[int, int], str, tuple[int, int, int]]


class Decoded(NamedTuple):
    """A cached view: pixels ``uint8 [3, H, W]``, the original ``(H, W)`` and the
    fraction ``(fy, fx)`` of the view the image covers (``(1, 1)`` unless letterboxed)."""

    pixels: torch.Tensor
    orig: tuple[int, int]
    region: tuple[float, float]


def cache_key(
    path: str,
    size: tuple[int, int],
    policy: str,
    fill: tuple[int, int, int],
    max_bytes: int | None = None,
) -> CacheKey | None:
    """The key of ``path``'s view at ``size``; None for a file that cannot be looked
    up (missing, not a regular file) or is over ``max_bytes``: it goes to the decoder,
    which says why it fails."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except (OSError, ValueError):
        return None
    if not os.path.isfile(real) or (max_bytes is not None and st.st_size > max_bytes):
        return None
    return (
        real,
        st.st_size,
        st.st_mtime_ns,
        tuple(int(v) for v in size),
        policy,
        tuple(int(v) for v in fill),
    )


class DecodeCache:
    """Decoded views, at most ``max_bytes`` of pixels, the least recently used dropped
    first. ``hits`` and ``misses`` count the lookups of the runs that used it (a miss
    is a decode)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, Decoded] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: CacheKey) -> bool:
        return key in self._entries

    def get(self, key: CacheKey | None) -> Decoded | None:
        """The view under ``key`` (made the most recently used), or None."""
        if key is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: CacheKey | None, value: Decoded) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used entries to
        stay within ``max_bytes`` (a view larger than that is not kept)."""
        if key is None:
            return
        size = value.pixels.numel() * value.pixels.element_size()
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.pixels.numel() * old.pixels.element_size()
            while self._entries and self.nbytes + size > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.nbytes -= dropped.pixels.numel() * dropped.pixels.element_size()
            self._entries[key] = value
            self.nbytes += size

    def count(self, hits: int, misses: int) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0

    def __getstate__(self) -> dict:
        """Pickled (for a worker process under ``spawn``) as an empty cache: the entries
        stay in the process that owns them."""
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_bytes"])
