"""A run's on-disk state: the fingerprint, ``run_state.json``, and the chunks of results.

``run_state.json`` is written before any work and names the run by a hash of the
resolved config (less the keys that cannot change results) and of the image list. A
later run into the same folder either resumes it (same fingerprint, not finished),
refuses (different fingerprint, or finished), or, with ``overwrite``, starts afresh.
``metrics.json`` is written last, so its presence marks a finished run.

Results are journaled in chunks, each one atomic file named by the dataset positions it
covers (``chunks/chunk_<start>_<end>.json``), so a chunk's name says what it holds
whoever wrote it: a resumed run, or one of several processes writing disjoint ranges.
A chunk holds per-image ``images``, ``annotations`` (no ids yet) and ``failures``
records, plus the caller's metadata (evaluator counters, timings).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from wsol.errors import WsolError
from wsol.fileio import LOCK_FILE, FolderBusyError, FolderLock, atomic_write_json

STATE_FILE = "run_state.json"
FINISHED_MARKER = "metrics.json"
CHUNK_DIR = "chunks"
FORMAT_VERSION = 2  # chunks named by range, evaluator state per evaluator
RECORDS = ("images", "annotations", "failures")
# Everything a run may write; `overwrite` clears these and nothing else.
OUTPUTS = (
    "pseudo_labels.json",
    "metrics.json",
    "metrics_per_class.json",
    "sweep.json",
    "failures.jsonl",
    "config.yaml",
    "report.html",
    "calibration.json",
    STATE_FILE,
    CHUNK_DIR,
    "overlays",
    "voc",
)
# Keys that change neither which images are processed nor any number written.
_NEUTRAL = {("out",), ("data", "num_workers"), ("report", "enabled"), ("report", "num_images")}
_CHUNK_NAME = re.compile(r"chunk_(\d+)_(\d+)\.json")


class RunExistsError(WsolError, RuntimeError):
    """The output folder holds results that this run must not touch."""


def fingerprint(cfg, image_list: list[tuple[int, str]]) -> str:
    """SHA-256 of the result-relevant config and the ``(image_id, path)`` list."""
    tree = asdict(cfg)
    for path in _NEUTRAL:
        node = tree
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    payload = json.dumps(
        {"config": tree, "images": image_list, "format": FORMAT_VERSION},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class Journal:
    """The run folder ``out``: its state file and chunks."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.chunk_dir = self.out / CHUNK_DIR
        self._lock = FolderLock(self.out)

    def open(self, fp: str, overwrite: bool) -> bool:
        """Lock the folder and prepare it for the run with fingerprint ``fp``; True when
        resuming. The lock is held until :meth:`close`: one writer per folder.

        Raises:
            RunExistsError: another process is writing the folder; or it holds a
                finished run, a run of another config or dataset, or results wsol did
                not write, and ``overwrite`` is off.
        """
        try:
            self._lock.acquire()
        except FolderBusyError as e:
            raise RunExistsError(f"{e}; wait for it to finish or choose another out=") from None
        try:
            return self._open(fp, overwrite)
        except BaseException:
            self.close(refused=True)
            raise

    def close(self, refused: bool = False) -> None:
        """Release the folder's lock (a refused run also takes back the folder it made)."""
        self._lock.release()
        if refused and self._lock.created_folder:
            (self.out / LOCK_FILE).unlink(missing_ok=True)
            if not any(self.out.iterdir()):
                self.out.rmdir()

    def _open(self, fp: str, overwrite: bool) -> bool:
        state_path = self.out / STATE_FILE
        existing = [n for n in OUTPUTS if (self.out / n).exists()]
        if existing and not overwrite:
            if not state_path.is_file():
                raise RunExistsError(
                    f"{self.out} already holds results ({', '.join(existing[:3])}) of no "
                    "resumable run; pass --overwrite to replace them or choose another out="
                )
            try:
                previous = json.loads(state_path.read_text()).get("fingerprint")
            except (OSError, json.JSONDecodeError, AttributeError):
                previous = None
            if previous != fp:
                raise RunExistsError(
                    f"{self.out} holds a run of a different config or dataset; results of two "
                    "runs are never mixed. Pass --overwrite to replace it or choose another out="
                )
            if (self.out / FINISHED_MARKER).exists():
                raise RunExistsError(
                    f"{self.out} already holds this finished run; pass --overwrite to run it again"
                )
            self._clean_temp_files()
            return True
        if existing:
            self._clear()
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state_path, {"fingerprint": fp, "version": FORMAT_VERSION})
        return False

    def _clear(self) -> None:
        for name in OUTPUTS:
            p = self.out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def _clean_temp_files(self) -> None:
        """Remove the temp files a killed atomic write of this run may have left: those
        of the files it writes, nothing else."""
        leftovers = [p for n in OUTPUTS for p in self.out.glob(f".{n}.*.tmp")]
        leftovers += self.chunk_dir.glob(".chunk_*.json.*.tmp")
        for p in leftovers:
            p.unlink(missing_ok=True)

    def write_chunk(self, start: int, end: int, records: dict[str, list], meta: dict) -> Path:
        """Journal the results of dataset positions ``[start, end)``: ``records`` holds
        the :data:`RECORDS` lists, ``meta`` anything else the run needs back."""
        path = self.chunk_dir / f"chunk_{start:09d}_{end:09d}.json"
        atomic_write_json(
            path, {"start": start, "end": end, **{k: records.get(k, []) for k in RECORDS}, **meta}
        )
        return path

    def chunks(self) -> list[dict]:
        """Every chunk, in dataset order; they must cover ``[0, end)`` without a gap or
        an overlap."""
        found = []
        for path in self.chunk_dir.glob("chunk_*.json"):
            m = _CHUNK_NAME.fullmatch(path.name)
            if m:
                found.append((int(m.group(1)), int(m.group(2)), path))
        found.sort()
        chunks, pos = [], 0
        for start, end, path in found:
            if start != pos:
                raise RunExistsError(
                    f"{self.out}: chunk files are not contiguous at image "
                    f"{pos}; pass --overwrite to start afresh"
                )
            chunks.append(json.loads(path.read_text()))
            pos = end
        return chunks

    def records(self) -> dict[str, list]:
        """The :data:`RECORDS` of all chunks, concatenated in dataset order."""
        out: dict[str, list] = {k: [] for k in RECORDS}
        for chunk in self.chunks():
            for k in RECORDS:
                out[k] += chunk[k]
        return out
