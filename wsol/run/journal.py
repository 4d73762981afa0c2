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

import json
import logging
import re
from pathlib import Path

from wsol.errors import WsolError
from wsol.export import OUTPUTS as EXPORT_OUTPUTS
from wsol.fileio import LOCK_FILE, FolderBusyError, FolderLock, atomic_write_json
from wsol.readfile import MAX_JSON_BYTES, MAX_TEXT_BYTES, read_text
from wsol.run.fingerprint import FORMAT_VERSION, digest, fingerprint, input_parts

STATE_FILE = "run_state.json"
FINISHED_MARKER = "metrics.json"
CHUNK_DIR = "chunks"
RANK_DIR = "ranks"  # a sharded run's per-process journals, ranks/<r>/ (run.distributed)
RECORDS = ("images", "annotations", "failures")
WARNINGS_FILE = "warnings.jsonl"  # the dataset's warnings (wsol.data.Dataset.warnings)
CHECKSUM = "sha256"  # of the chunk's JSON without this key (sorted keys)
CHUNK_KEYS = {"start", "end", *RECORDS, CHECKSUM}
# Everything a run may write; `overwrite` clears these and nothing else.
EXPORTS = tuple(name for names in EXPORT_OUTPUTS.values() for name in names)
OUTPUTS = (
    *EXPORTS,
    "metrics.json",
    "metrics_per_class.json",
    "sweep.json",
    "per_image.npz",
    "failures.jsonl",
    WARNINGS_FILE,
    "config.yaml",
    "report.html",
    "calibration.json",
    STATE_FILE,
    CHUNK_DIR,
    RANK_DIR,
    "overlays",  # written by runs before the report inlined its pictures
)
_CHUNK_NAME = re.compile(r"chunk_(\d+)_(\d+)\.json")
logger = logging.getLogger(__name__)


__all__ = ["FinishedRunError", "Journal", "RunExistsError", "fingerprint", "input_parts"]


class RunExistsError(WsolError, RuntimeError):
    """The output folder holds results that this run must not touch."""


class FinishedRunError(RunExistsError):
    """The output folder holds this very run, finished (same fingerprint): a command
    that only reads its results (``calibrate``) may take them from there."""


class Journal:
    """The run folder ``out``: its state file and chunks."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.chunk_dir = self.out / CHUNK_DIR
        self._lock = FolderLock(self.out)

    def open(self, fp: dict[str, str], overwrite: bool) -> bool:
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

    def _open(self, fp: dict[str, str], overwrite: bool) -> bool:
        state_path = self.out / STATE_FILE
        existing = [n for n in OUTPUTS if (self.out / n).exists()]
        if existing == ["failures.jsonl"] and not state_path.exists():
            # the record of a run that stopped before it started, no run's result
            (self.out / "failures.jsonl").unlink()
            existing = []
        if existing and not overwrite:
            if not state_path.is_file():
                raise RunExistsError(
                    f"{self.out} already holds results ({', '.join(existing[:3])}) of no "
                    "resumable run; pass --overwrite to replace them or choose another out="
                )
            try:
                previous = json.loads(read_text(state_path, MAX_TEXT_BYTES)).get("fingerprint")
            except (OSError, json.JSONDecodeError, AttributeError):
                previous = None
            if previous != fp:
                if isinstance(previous, dict):
                    changed = [k for k in {**previous, **fp} if previous.get(k) != fp.get(k)]
                    what = f" (changed since: {', '.join(changed)})"
                else:
                    what = ""
                raise RunExistsError(
                    f"{self.out} holds a run of a different config or dataset{what}; results "
                    "of two runs are never mixed. Pass --overwrite to replace it or choose "
                    "another out="
                )
            if (self.out / FINISHED_MARKER).exists():
                raise FinishedRunError(
                    f"{self.out} already holds this finished run; pass --overwrite to run it again"
                )
            self._clean_temp_files()
            return True
        if existing:
            self._clear()
        self._clean_temp_files()  # (a kill while run_state.json was first written)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state_path, {"fingerprint": fp, "version": FORMAT_VERSION})
        return False

    def record_written(self, paths) -> None:
        """Add files this run wrote under ``out`` (exports, overlays) to the manifest in
        ``run_state.json``: what a later ``--overwrite`` removes, and nothing else."""
        state_path = self.out / STATE_FILE
        state = json.loads(state_path.read_text())
        written = set(state.get("written", []))
        for p in paths:
            rel = Path(p).resolve().relative_to(self.out.resolve())
            written.add(rel.as_posix())
        atomic_write_json(state_path, {**state, "written": sorted(written)})

    def _clear(self) -> None:
        """Remove what an earlier run wrote here, and nothing else: its fixed-name files,
        its chunks, and the files its manifest lists (``overlays/``, ``voc/``). Files
        wsol did not write stay, and so do the folders that hold them."""
        try:
            written = json.loads(read_text(self.out / STATE_FILE, MAX_TEXT_BYTES)).get(
                "written", []
            )
        except (OSError, json.JSONDecodeError, AttributeError):
            written = []
        self._clear_ranks()
        root = self.out.resolve()
        folders = set()
        for rel in written:
            p = (self.out / rel).resolve()
            if p.is_relative_to(root) and p.is_file():
                p.unlink()
                folders.update(q for q in p.parents if q.is_relative_to(root) and q != root)
        for folder in sorted(folders, key=lambda q: len(q.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):  # emptied: ours (yolo/labels)
                folder.rmdir()
        for p in self.chunk_dir.glob("chunk_*.json") if self.chunk_dir.is_dir() else []:
            p.unlink()
        for name in OUTPUTS:
            p = self.out / name
            if p.is_file():
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()

    def _clear_ranks(self) -> None:
        """Remove the rank journals of a sharded run (``ranks/<r>/``), each cleared as
        :meth:`_clear` clears a folder, under its own lock."""
        ranks = self.out / RANK_DIR
        for folder in sorted(ranks.iterdir()) if ranks.is_dir() else []:
            if not (folder.is_dir() and folder.name.isdigit()):
                continue
            journal = Journal(folder)
            try:
                journal._lock.acquire()
            except FolderBusyError as e:
                raise RunExistsError(f"{e}; wait for it to finish") from None
            try:
                journal._clear()
            finally:
                journal.close()
            (folder / LOCK_FILE).unlink(missing_ok=True)
            if not any(folder.iterdir()):
                folder.rmdir()

    def _clean_temp_files(self) -> None:
        """Remove the temp files a killed atomic write of this run may have left: those
        of the files it writes, nothing else."""
        leftovers = [p for n in OUTPUTS for p in self.out.glob(f".{n}.*.tmp")]
        leftovers += self.chunk_dir.glob(".chunk_*.json.*.tmp")
        for folder in (self.out / n for n in EXPORTS):  # voc/<image>.xml, yolo/labels/...
            leftovers += folder.rglob(".*.*.tmp") if folder.is_dir() else []
        for p in leftovers:
            p.unlink(missing_ok=True)

    def write_chunk(self, start: int, end: int, records: dict[str, list], meta: dict) -> Path:
        """Journal the results of dataset positions ``[start, end)``: ``records`` holds
        the :data:`RECORDS` lists, ``meta`` anything else the run needs back."""
        path = self.chunk_dir / f"chunk_{start:09d}_{end:09d}.json"
        body = {"start": start, "end": end, **{k: records.get(k, []) for k in RECORDS}, **meta}
        atomic_write_json(path, {**body, CHECKSUM: digest(body)})
        return path

    def _found(self) -> list[tuple[int, int, Path]]:
        found = []
        for path in self.chunk_dir.glob("chunk_*.json"):
            m = _CHUNK_NAME.fullmatch(path.name)
            if m:
                found.append((int(m.group(1)), int(m.group(2)), path))
        return sorted(found)

    def chunks(self) -> list[dict]:
        """Every chunk, in dataset order; they must cover ``[0, end)`` without a gap or
        an overlap, and each must hold what was written (its checksum).

        Raises:
            RunExistsError: a gap, or a chunk that is not what was written.
        """
        chunks, pos = [], 0
        for start, end, path in self._found():
            chunk = _read_chunk(path, start, end) if start == pos else None
            if chunk is None:
                raise RunExistsError(
                    f"{self.out}: the chunk at image {pos} is missing or damaged; run the "
                    "command again to redo it, or pass --overwrite to start afresh"
                )
            chunks.append(chunk)
            pos = end
        return chunks

    def resumable_chunks(self) -> list[dict]:
        """The chunks a resumed run keeps: those before the first gap or damaged chunk
        (truncated, not JSON, missing a part, or edited since it was written). That one
        and every later chunk are removed, so their images are done again."""
        chunks, pos = [], 0
        found = self._found()
        for i, (start, end, path) in enumerate(found):
            chunk = _read_chunk(path, start, end) if start == pos else None
            if chunk is None:
                for _s, _e, later in found[i:]:
                    later.unlink(missing_ok=True)
                logger.warning(
                    "%s is damaged or out of place: it and %d later chunks are redone",
                    path,
                    len(found) - i - 1,
                )
                break
            chunks.append(chunk)
            pos = end
        return chunks

    def records(self) -> dict[str, list]:
        """The :data:`RECORDS` of all chunks, concatenated in dataset order."""
        out: dict[str, list] = {k: [] for k in RECORDS}
        for chunk in self.chunks():
            for k in RECORDS:
                out[k] += chunk[k]
        return out


def _read_chunk(path: Path, start: int, end: int) -> dict | None:
    """A chunk that is exactly what :meth:`Journal.write_chunk` wrote, else None."""
    try:
        chunk = json.loads(read_text(path, MAX_JSON_BYTES))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(chunk, dict) or CHUNK_KEYS - set(chunk):
        return None
    body = {k: v for k, v in chunk.items() if k != CHECKSUM}
    if chunk[CHECKSUM] != digest(body) or (chunk["start"], chunk["end"]) != (start, end):
        return None
    return chunk
