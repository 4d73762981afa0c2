"""The select and report sides of a compare must not share an image.

Images are matched by the SHA-1 of their bytes, not by name: the same photo saved
under another name (or in another dataset's folder) is still the same image, and two
datasets may use the same file names for different photos.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from wsol.config import ConfigError, DataConfig
from wsol.data import build_dataset

CHUNK = 1 << 20


class OverlapError(ConfigError):
    """The select and report sides share images."""


def file_sha1(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def image_hashes(data: DataConfig) -> dict[str, str]:
    """SHA-1 of each image file the dataset lists -> its path (the first one, where a
    dataset lists the same bytes twice)."""
    hashes: dict[str, str] = {}
    for s in build_dataset(data).samples:
        hashes.setdefault(file_sha1(s.path), s.path)
    return hashes


def check_no_overlap(select: DataConfig, report: DataConfig) -> int:
    """Raise :class:`OverlapError` naming a few of the images both datasets hold (by
    content); return how many images the report side has otherwise."""
    a, b = image_hashes(select), image_hashes(report)
    shared = sorted(set(a) & set(b), key=lambda h: b[h])
    if shared:
        names = ", ".join(
            f"{Path(b[h]).name} (= {Path(a[h]).name})"
            if Path(a[h]).name != Path(b[h]).name
            else Path(b[h]).name
            for h in shared[:3]
        )
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        raise OverlapError(
            f"{len(shared)} of the {len(b)} report images are also on the select side "
            f"(same file content): {names}{more}. The cut must be chosen on other images "
            "than the ones that score it: make the --select and --report data disjoint"
        )
    return len(b)
