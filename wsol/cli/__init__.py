"""The ``wsol`` command: a thin layer over the library that owns the console.

Exit codes: 0 the run completed; 3 it completed but some images failed (see
``failures.jsonl``); 2 the command or config was wrong and nothing was done;
1 an unexpected error; 130 interrupted by Ctrl-C and 143 by SIGTERM (rerunning the
same command resumes).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shlex
import signal
import sys
import threading
import time
import warnings

from wsol.cli.commands import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from wsol.cli.console import LogLines, format_table
from wsol.cli.parser import build_parser
from wsol.errors import WsolError
from wsol.fileio import deferring
from wsol.versions import check_torch_pair, torchvision_failure

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "build_parser",
    "format_table",
    "main",
    "parse_args",
]


class Terminated(BaseException):
    """SIGTERM arrived."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def redeliver_swallowed(unraisable, fallback=sys.__unraisablehook__, delay: float = 0.05):
    """``sys.unraisablehook``: a signal's exception that Python had to drop is sent again.

    A handler's exception raised where it cannot propagate (an ``os.fork`` callback such
    as logging's lock release when a DataLoader starts a worker, a finalizer) is printed
    as "Exception ignored" and lost, and the command would go on as if never stopped.
    The same signal is sent again from a thread a moment later, so that it lands in the
    main thread's ordinary code; anything else goes to ``fallback``."""
    exc = unraisable.exc_type
    signum = (
        signal.SIGTERM
        if exc is not None and issubclass(exc, Terminated)
        else signal.SIGINT
        if exc is not None and issubclass(exc, KeyboardInterrupt)
        else None
    )
    if signum is None:
        fallback(unraisable)
        return

    def again() -> None:
        time.sleep(delay)
        os.kill(os.getpid(), signum)

    threading.Thread(target=again, name="wsol-signal-again", daemon=True).start()


def resume_hint(command: str, argv: list[str]) -> str:
    """What to run to resume an interrupted command: the same one, less ``--overwrite``
    (which would start it afresh)."""
    if command not in ("run", "train", "calibrate", "compare", "demo"):
        return ""
    again = shlex.join(["wsol", *(a for a in argv if a != "--overwrite")])
    from wsol.run.process_group import world_size

    if world_size() > 1:  # one of torchrun's processes: wsol alone would be refused
        return "; what was finished is on disk, and the same torchrun command resumes it"
    if command == "demo":
        return f"; run it again to redo it: {again}"
    return f"; what was finished is on disk, and this resumes it:\n  {again}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with flags anywhere: overrides may come after flags too (`wsol
    run C --overwrite a=b c=d`): argparse leaves the ones after a flag over, and they
    join the command's overrides."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _call(args: argparse.Namespace) -> int:
    """The command, with a failure to import torchvision turned into its one line."""
    try:
        return args.func(args)
    except (RuntimeError, ImportError) as e:
        failure = torchvision_failure(e)
        if failure is None:
            raise
        raise failure from e


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv  # for the command that tells how to resume
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[LogLines()],
    )
    # Big photos (over ~89 Mpx) make PIL warn of a decompression bomb; wsol drafts
    # them down and caps the maps, so the warning is noise on the console.
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    # SIGTERM (a scheduler's kill, `kill PID`) stops a command the way Ctrl-C does.
    # Both wait for a file being written to be in place (fileio.deferring).
    previous = signal.signal(signal.SIGTERM, deferring(_terminate))
    previous_int = signal.signal(signal.SIGINT, deferring(signal.default_int_handler))
    previous_hook, sys.unraisablehook = sys.unraisablehook, redeliver_swallowed
    try:
        # before any command imports torchvision: a mismatched pair is one line, not the
        # 30-line traceback of "operator torchvision::nms does not exist"
        check_torch_pair()
        return _call(args)
    except WsolError as e:
        print(f"wsol: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        where = f" while writing {e.filename}" if e.filename else ""
        print(
            f"wsol: error: disk full{where}; free space and run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except (KeyboardInterrupt, Terminated) as e:
        print(f"\nwsol: interrupted{resume_hint(args.command, argv)}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        sys.unraisablehook = previous_hook


if __name__ == "__main__":
    sys.exit(main())
