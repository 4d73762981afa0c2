"""What names a run: a digest of its config and of every input that decides its output.

``run_state.json`` keeps these digests by part; a later run into the same folder
resumes only when every part is the same, and otherwise says which part changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

FORMAT_VERSION = 3  # fingerprint by part, chunks with a checksum
# Keys that change neither which images are processed nor any number written.
_NEUTRAL = {
    ("out",),
    ("data", "num_workers"),
    ("report", "enabled"),
    ("report", "num_images"),
    ("chunk_images",),
    ("chunk_seconds",),
    ("threads",),
    ("host_threads",),
    ("boxes", "device_components"),  # the same boxes wherever they are found
    ("export",),  # what the files are written as: finalize reads it, no chunk does
}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _stats(paths) -> list:
    """``(path, size, mtime_ns)`` of each file; ``None`` for one that is missing."""
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
            out.append((str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(p), None))
    return out


def _file_hash(path: str) -> str:
    """SHA-256 of a file's bytes (checkpoints, class maps, calibrations: read once)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_parts(cfg, dataset) -> dict[str, str]:
    """Digests of the inputs that decide a run's output besides its config, by name.

    Images and annotation files by size and modification time: a stat per file, cheap
    for a 118k-image dataset where hashing would read it all. The checkpoint, class map
    and calibration files by a SHA-256 of their bytes: one file each, so exact.
    """

    def named_file(value: str) -> str:
        return _file_hash(value) if value and Path(value).is_file() else value

    return {
        "images": digest(_stats(s.path for s in dataset.samples)),
        "annotations": digest(_stats(dataset.sources)),
        "checkpoint": named_file(cfg.model.weights),
        "class map": named_file(cfg.model.class_map),
        "calibration": named_file(cfg.boxes.calibration),
    }


def fingerprint(
    cfg, image_list: list[tuple[int, str]], inputs: dict[str, str] | None = None
) -> dict[str, str]:
    """SHA-256 digests naming a run: ``config`` (the result-relevant keys), ``image
    list`` (the ``(image_id, path)`` list) and each of ``inputs``
    (:func:`input_parts`)."""
    tree = asdict(cfg)
    for path in _NEUTRAL:
        node = tree
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return {
        "config": digest({"config": tree, "format": FORMAT_VERSION}),
        "image list": digest(image_list),
        **(inputs or {}),
    }
