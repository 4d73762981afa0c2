"""What makes a run resumable: a fingerprint, a state file, and the chunks already done.

``run_state.json`` is written before any work and names the run by a hash of the
resolved config (less the keys that cannot change results) and of the image list. A
later run into the same folder either resumes it (same fingerprint, not finished),
refuses (different fingerprint, or finished), or, with ``overwrite``, starts afresh.
``metrics.json`` is written last, so its presence marks a finished run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from wsol.export import CHUNK_DIR, FAULT_ENV, atomic_write_json, fault_point

__all__ = ["FAULT_ENV", "RunExistsError", "fault_point", "fingerprint", "open_run"]

STATE_FILE = "run_state.json"
FINISHED_MARKER = "metrics.json"
OUTPUT_FILES = ("pseudo_labels.json", "metrics.json", "metrics_per_class.json", "sweep.json",
                "failures.jsonl", "config.yaml", "report.html", STATE_FILE)
# Keys that change neither which images are processed nor any number written.
_NEUTRAL = {("out",), ("data", "num_workers"), ("report", "enabled"), ("report", "num_images")}


class RunExistsError(RuntimeError):
    """The output folder holds results that this run must not touch."""


def fingerprint(cfg, image_list: list[tuple[int, str]]) -> str:
    """SHA-256 of the result-relevant config and the ``(image_id, path)`` list."""
    tree = asdict(cfg)
    for path in _NEUTRAL:
        node = tree
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    payload = json.dumps({"config": tree, "images": image_list}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _clear(out: Path) -> None:
    for name in (*OUTPUT_FILES, CHUNK_DIR, "overlays", "voc"):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def open_run(out: Path, fp: str, overwrite: bool) -> bool:
    """Prepare ``out`` for the run with fingerprint ``fp``; return True when resuming.

    Raises:
        RunExistsError: ``out`` holds a finished run, a run of another config or dataset,
            or results wsol did not write, and ``overwrite`` is off.
    """
    state_path = out / STATE_FILE
    existing = [n for n in (*OUTPUT_FILES, CHUNK_DIR) if (out / n).exists()]
    if existing and not overwrite:
        if not state_path.is_file():
            raise RunExistsError(
                f"{out} already holds results ({', '.join(existing[:3])}) of no resumable "
                "run; pass --overwrite to replace them or choose another out=")
        try:
            previous = json.loads(state_path.read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError):
            previous = None
        if previous != fp:
            raise RunExistsError(
                f"{out} holds a run of a different config or dataset; results of two runs "
                "are never mixed. Pass --overwrite to replace it or choose another out=")
        if (out / FINISHED_MARKER).exists():
            raise RunExistsError(
                f"{out} already holds this finished run; pass --overwrite to run it again")
        return True
    if existing:
        _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state_path, {"fingerprint": fp, "version": 1})
    return False
