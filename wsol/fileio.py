"""Atomic file writes, and the fault points that tests use to kill a run mid-write.

Every file wsol writes goes through :func:`atomic_write_text`: a temp file in the same
folder, fsync, rename. Readers see the old file or the new one, never a mix, and a
killed run never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, ClassVar

from wsol.errors import UsageError

FAULT_ENV = "WSOL_FAULT"
FAULT_TRACE_ENV = "WSOL_FAULT_TRACE"
_reached: dict[str, int] = {}  # how many times this process passed each fault point


def fault_point(name: str) -> None:
    """Test hook: ``WSOL_FAULT=name`` kills the process here with SIGKILL, as a crash or
    an out-of-memory kill would, so tests can interrupt a run at an exact point;
    ``name#N`` kills the N-th time the point is reached (``atomic:last.pt#2``: in the
    second epoch), ``name@R`` only the process of rank ``R`` (torchrun's ``RANK``, 0
    elsewhere). ``WSOL_FAULT_TRACE=FILE`` appends ``name#N`` for each point passed, so
    a test can list every point of a run and then kill it at each."""
    count = _reached[name] = _reached.get(name, 0) + 1
    trace = os.environ.get(FAULT_TRACE_ENV)
    if trace:
        with open(trace, "a") as f:
            f.write(f"{name}#{count}\n")
    spec, _, rank = os.environ.get(FAULT_ENV, "").partition("@")
    point, _, nth = spec.rpartition("#")
    if not nth.isdigit():  # no count (a file name may hold a '#')
        point, nth = spec, ""
    if point == name and rank in ("", os.environ.get("RANK", "0")) and nth in ("", str(count)):
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


_held = {"depth": 0, "pending": []}  # signals held back by `holding_signals` blocks


def deferring(handler: Callable) -> Callable:
    """A signal handler that waits while a :func:`holding_signals` block runs (an atomic
    write, a DataLoader starting its workers) and runs once the block is done (the CLI
    wraps its Ctrl-C and SIGTERM handlers in it). An exception raised inside a writer,
    such as torch.save's zip writer, would otherwise surface as another error."""

    def wrapped(signum, frame):
        if _held["depth"]:
            _held["pending"].append((handler, signum))
            return
        handler(signum, frame)

    return wrapped


@contextlib.contextmanager
def holding_signals():
    """Run the block whole: a Ctrl-C or SIGTERM that arrives meanwhile (handlers wrapped
    in :func:`deferring`) is handled as the block ends, where its exception leaves no
    half-done work behind (a file half in place, a DataLoader iterator half-built, whose
    finalizer would fail again and print a traceback)."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if not _held["depth"] and _held["pending"]:
            handler, signum = _held["pending"][0]
            _held["pending"].clear()
            handler(signum, None)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a binary temp file beside ``path``, then rename it to ``path``
    (``torch.save(obj, f)`` fits: readers see the old file or the new, never a mix)."""
    with holding_signals():
        _atomic_write(Path(path), write)


_TEMP_TAIL = 8 + len(".tmp")  # mkstemp's random letters, and the suffix


def temp_prefix(path: Path) -> str:
    """The prefix of ``path``'s temp files, ``.<name>.``: cut (at a character) so that a
    temp name fits the file system's name limit whenever the final name does. A legal
    253-byte name would otherwise make a temp name of 267 bytes, refused on every try."""
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    room = name_max - _TEMP_TAIL - 2
    name = path.name.encode()
    if len(name) > room:
        name = name[:room].decode(errors="ignore").encode()  # no half of a character
    return f".{name.decode()}."


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        fault_point(f"atomic:{path.name}")
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno == errno.ENOSPC and not e.filename:  # say which file could not be written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    """Compact JSON (no spaces), one trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=None, separators=(",", ":")) + "\n")


LOCK_FILE = ".wsol.lock"


class FolderBusyError(OSError):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive OS lock (``fcntl.flock``) on ``folder/.wsol.lock``, held while the
    folder is written: one writer per output folder. The lock file holds the holder's PID;
    the kernel drops the lock when the holder exits, however it exits. A forked child
    (a DataLoader worker) closes its copy of the descriptor at once, so a worker that
    outlives a killed run for a moment does not keep the folder locked."""

    _held: ClassVar[set[int]] = set()  # descriptors of the locks this process holds

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self.created_folder = False

    def acquire(self) -> FolderLock:
        """Take the lock at once, or raise :class:`FolderBusyError` naming the holder."""
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"out={self.folder} is a file, not a folder")
        try:
            self.folder.mkdir(parents=True)
            self.created_folder = True
        except FileExistsError:
            pass  # made by us earlier or by a process racing us: the lock decides
        except OSError as e:
            raise UsageError(
                f"cannot create the output folder {self.folder}: {e.strerror}"
            ) from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, _file_mode())
        except OSError as e:
            raise UsageError(
                f"cannot write to the output folder {self.folder}: {e.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise FolderBusyError(
                    f"{self.folder} is in use by another wsol process (pid {holder})"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        FolderLock._held.add(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            FolderLock._held.discard(self._fd)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @classmethod
    def _forget_in_child(cls) -> None:
        for fd in cls._held:
            with contextlib.suppress(OSError):
                os.close(fd)  # the parent's descriptor still holds the lock
        cls._held = set()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


os.register_at_fork(after_in_child=FolderLock._forget_in_child)
