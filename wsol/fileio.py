"""Atomic file writes, and the fault points that tests use to kill a run mid-write.

Every file wsol writes goes through :func:`atomic_write_text`: a temp file in the same
folder, fsync, rename. Readers see the old file or the new one, never a mix, and a
killed run never leaves a half-written file under its final name.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FAULT_ENV = "WSOL_FAULT"


def fault_point(name: str) -> None:
    """Test hook: ``WSOL_FAULT=name`` kills the process here with SIGKILL, as a crash or
    an out-of-memory kill would, so tests can interrupt a run at an exact point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@functools.cache
def _file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask.

    The umask can only be read by setting it; it is set back at once, on the first
    write rather than at import.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a mix."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a binary temp file beside ``path``, then rename it to ``path``
    (``torch.save(obj, f)`` fits: readers see the old file or the new, never a mix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        fault_point(f"atomic:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    """Compact JSON (no spaces), one trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=None, separators=(",", ":")) + "\n")
