"""Reading an input file: a regular file of bounded size, or a one-line error.

Every file wsol reads (images, annotations, split and labels files, JSON, calibrations,
configs, checkpoints) goes through :func:`open_regular`. The file is opened without
blocking, so a FIFO named like an annotation cannot hang a run; a FIFO, device
(``/dev/zero``), socket or directory is refused before a byte is read, and so is a
file over the caller's size limit, so no input can take unbounded memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from wsol.errors import WsolError

MiB = 2**20
# Limits by kind of file. They bound memory, and are far above any real file of the kind:
# VOC XML and split files are kilobytes, COCO's train2017 instances JSON is 448 MiB.
MAX_TEXT_BYTES = 256 * MiB  # annotations, split, labels and calibration files
MAX_JSON_BYTES = 4096 * MiB  # COCO instances and prediction files
MAX_CONFIG_BYTES = 16 * MiB  # YAML configs, grids and class maps
MAX_CHECKPOINT_BYTES = 16384 * MiB  # model weights


class InputFileError(WsolError, OSError):
    """An input file that cannot be read: missing, not a regular file, too large, or
    not text. The message is the reason alone; callers put the path before it."""


class InputMissingError(InputFileError, FileNotFoundError):
    """An input file that does not exist."""


def _size(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n >= MiB else f"{n} bytes"


@contextlib.contextmanager
def open_regular(
    path: str | Path, max_bytes: int, limit: str = "", allow_empty: bool = True
) -> Iterator[BinaryIO]:
    """A binary file object of ``path``, checked to be a regular file of at most
    ``max_bytes`` (``limit`` names the setting that raises it, for the message).

    Raises:
        InputMissingError: no such file.
        InputFileError: not a regular file, over the limit, empty (unless
            ``allow_empty``), or unreadable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputMissingError("file not found") from None
    except OSError as e:
        raise InputFileError(f"cannot read file: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
            raise InputFileError(f"not a regular file ({kind})")
        if st.st_size > max_bytes:
            where = f" ({limit})" if limit else ""
            raise InputFileError(
                f"file of {_size(st.st_size)} is over the {_size(max_bytes)} limit{where}"
            )
        if not allow_empty and st.st_size == 0:
            raise InputFileError("empty file (0 bytes)")
        # A regular file never blocks; reads go back to the ordinary blocking mode.
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_bytes(
    path: str | Path, max_bytes: int, limit: str = "", allow_empty: bool = True
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (see :func:`open_regular`);
    a file that grows past the limit while read is refused too."""
    try:
        with open_regular(path, max_bytes, limit, allow_empty) as f:
            data = f.read(max_bytes + 1)
    except InputFileError:
        raise
    except OSError as e:
        raise InputFileError(f"cannot read file: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise InputFileError(f"file grew over the {_size(max_bytes)} limit while read")
    if not allow_empty and not data:
        raise InputFileError("empty file (0 bytes)")
    return data


def read_text(
    path: str | Path, max_bytes: int = MAX_TEXT_BYTES, limit: str = "", encoding: str = "utf-8"
) -> str:
    """:func:`read_bytes` decoded (``utf-8-sig`` drops a byte-order mark).

    Raises:
        InputFileError: as :func:`read_bytes`, or the bytes are not ``encoding`` text.
    """
    data = read_bytes(path, max_bytes, limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise InputFileError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
