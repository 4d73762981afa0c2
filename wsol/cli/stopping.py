"""Ctrl-C in ``wsol train``: the first asks the run to stop after the batch it is in
(it says so at once, then saves that point so that the same command resumes from it);
a second one, or one before the first batch is done, stops it at once."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wsol.fileio import deferring

STOPPING = "stopping after this batch... (Ctrl-C again to stop at once)"


def _stderr(line: str) -> None:
    print(f"\nwsol: {line}", file=sys.stderr, flush=True)


class StopRequest:
    """The library's ``stop()`` (true once asked) and the SIGINT handler that asks."""

    def __init__(self, say: Callable[[str], None] = _stderr):
        self.requested = False
        self.polled = False  # the run has polled: it is in its batches, and can stop there
        self._say = say

    def __call__(self) -> bool:
        self.polled = True
        return self.requested

    def handle(self, signum=signal.SIGINT, frame=None) -> None:
        """SIGINT: ask once, while the run is in its batches; otherwise interrupt."""
        if self.requested or not self.polled:
            raise KeyboardInterrupt
        self.requested = True
        self._say(STOPPING)

    @contextmanager
    def on_sigint(self) -> Iterator[StopRequest]:
        """This handler for SIGINT inside the block (deferred while a file is being
        written, as the CLI's own), the one before it after."""
        previous = signal.signal(signal.SIGINT, deferring(self.handle))
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
