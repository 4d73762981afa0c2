"""Per-image failures as a person reads them: the most common reasons, counted, each with
the way out; and ``failures.jsonl`` for a run that stops because no image is readable.

A failure record is one line of ``failures.jsonl``: ``{"image_id", "path", "stage",
"reason"}`` (:class:`wsol.data.loader.Failure`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from wsol.errors import plain_reason
from wsol.fileio import atomic_write_text

logger = logging.getLogger(__name__)

FAILURES_FILE = "failures.jsonl"
# Failed images warned of one line each; past this many a run only counts them (a
# folder of ten thousand unreadable files should not bury the console).
WARN_EACH = 20

# (pattern in the reason, the way out), first match wins. A reason that already says
# what to do (e.g. "... (data.allow_outside_root=true allows it)") needs no entry.
WAYS_OUT: tuple[tuple[str, str], ...] = (
    (r"allow_outside_root", ""),
    (r"file not found|No such file", "check data.root (and data.image_dir for VOC)"),
    (
        r"FIFO|device|socket",
        "wsol reads regular files only; put the image itself there, not a special file",
    ),
    (r"directory", "the name is a folder, not an image file"),
    (r"over the .* limit", "data.max_file_mb raises the limit"),
    (r"Permission denied", "make the file readable by this user"),
    (r"empty file", "the file is empty: copy the image again"),
    (r"listed again|read once", "the image is listed twice; it is read once"),
    (r"\.xml|XML|annotation", "fix or remove the annotation file"),
)
DECODE_WAY_OUT = "not an image wsol can decode: re-save it as JPEG or PNG, or remove it"


def way_out(reason: str, stage: str = "") -> str:
    """What the user can do about a failure of ``reason`` at ``stage`` ("" when the
    reason says it already)."""
    for pattern, hint in WAYS_OUT:
        if re.search(pattern, reason):
            return hint
    if stage == "annotation":
        return "fix or remove the annotation file"
    return DECODE_WAY_OUT if stage == "decode" else ""


def common_reasons(failures: Sequence[dict], top: int = 3) -> list[str]:
    """The ``top`` most common reasons of ``failures`` as lines ``"N x reason: way
    out"``, most common first, and a last line for the rest."""
    counts = Counter((f.get("stage", ""), str(f.get("reason", "?"))) for f in failures)
    lines = []
    for (stage, reason), n in counts.most_common(top):
        hint = way_out(reason, stage)
        lines.append(f"{n} x {reason}" + (f": {hint}" if hint else ""))
    rest = sum(n for _, n in counts.most_common()[top:])
    if rest:
        other = len(counts) - top
        lines.append(f"{rest} more with {other} other reason{'s' if other > 1 else ''}")
    return lines


def holds_results(out: Path) -> bool:
    """Whether ``out`` holds anything but the ``failures.jsonl`` of a stopped run."""
    from wsol.run.journal import OUTPUTS

    return any((out / n).exists() for n in OUTPUTS if n != FAILURES_FILE)


def write_stopped_failures(out: str | Path, failures: Sequence[dict]) -> Path | None:
    """Write ``out/failures.jsonl`` for a run that stopped before it started, because no
    image was readable; None (nothing written) when ``out`` holds a run's results,
    which are never touched by a run that did not start."""
    out = Path(out)
    if holds_results(out):
        return None
    out.mkdir(parents=True, exist_ok=True)
    path = out / FAILURES_FILE
    atomic_write_text(path, "".join(json.dumps(f) + "\n" for f in failures))
    return path


class FailureWarnings:
    """Warns of each failed image in one line that names the file, the stage and the
    reason, up to ``limit`` of them; the ones past it are counted, and :meth:`close`
    says how many (every one is in ``failures.jsonl`` all the same)."""

    def __init__(self, limit: int = WARN_EACH, log: logging.Logger = logger):
        self.logger, self.limit = log, limit
        self.warned = self.unwarned = 0

    def warn(self, failures: Sequence[dict]) -> None:
        for f in failures:
            if self.warned < self.limit:
                path = str(f.get("path", "?"))
                self.logger.warning(
                    "image %s failed at %s: %s",
                    path,
                    f.get("stage", "?"),
                    plain_reason(str(f.get("reason", "?")), path),
                )
                self.warned += 1
            else:
                self.unwarned += 1

    def close(self) -> None:
        """One line for the failures past the limit, if any."""
        if self.unwarned:
            self.logger.warning(
                "%d more images failed (only the first %d are warned of one by one); "
                "every failure is in %s",
                self.unwarned,
                self.limit,
                FAILURES_FILE,
            )
            self.unwarned = 0
