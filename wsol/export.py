"""Writing results: chunked intermediate files, then the final COCO pseudo-labels.

Every file is written atomically (temp file, fsync, rename), so a killed run never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from wsol.boxes import box_area, coco_to_xyxy, xyxy_to_coco
from wsol.data.base import Dataset, Sample
from wsol.localize import Detections

CHUNK_DIR = "chunks"
_UMASK = os.umask(0)
os.umask(_UMASK)
FAULT_ENV = "WSOL_FAULT"


def fault_point(name: str) -> None:
    """Test hook: ``WSOL_FAULT=name`` kills the process here with SIGKILL, as a crash or
    an out-of-memory kill would, so tests can interrupt a run at an exact point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        fault_point(f"atomic:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=None, separators=(",", ":")) + "\n")


def image_entry(sample: Sample, orig_size: tuple[int, int]) -> dict:
    return {"id": sample.image_id, "file_name": sample.file_name,
            "height": int(orig_size[0]), "width": int(orig_size[1])}


def annotations_for(image_id: int, category_id: int, det: Detections) -> list[dict]:
    """COCO annotations (without ``id``) for one (image, class): ``bbox`` is xywh floats."""
    areas = box_area(det.boxes)
    return [
        {"image_id": image_id, "category_id": category_id,
         "bbox": [round(float(v), 3) for v in box],
         "area": round(float(a), 3), "score": round(float(s), 6)}
        for box, a, s in zip(xyxy_to_coco(det.boxes), areas, det.scores, strict=True)
    ]


class ChunkWriter:
    """Collects per-image records and flushes them as numbered chunk files.

    A chunk file holds ``images``, ``annotations`` (no ids yet) and ``failures``, plus
    whatever ``meta`` the caller adds (the positions it covers, evaluator counters).
    Numbering continues after the chunks already in the folder, for resumed runs.
    """

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir) / CHUNK_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index = len(list(self.dir.glob("chunk_*.json")))
        self.pending: dict[str, list] = {"images": [], "annotations": [], "failures": []}

    def add(self, images: list[dict], annotations: list[dict], failures: list[dict]) -> None:
        self.pending["images"] += images
        self.pending["annotations"] += annotations
        self.pending["failures"] += failures

    def flush(self, meta: dict | None = None) -> Path | None:
        if not any(self.pending.values()) and meta is None:
            return None
        path = self.dir / f"chunk_{self.index:06d}.json"
        atomic_write_json(path, {**self.pending, **(meta or {})})
        self.index += 1
        self.pending = {"images": [], "annotations": [], "failures": []}
        return path


def iter_chunks(out_dir: str | Path) -> Iterator[dict]:
    for path in sorted((Path(out_dir) / CHUNK_DIR).glob("chunk_*.json")):
        yield json.loads(path.read_text())


def write_pseudo_labels(out_dir: str | Path, dataset: Dataset,
                        info: dict | None = None) -> tuple[dict, list[dict]]:
    """Assemble the chunks into ``pseudo_labels.json`` (annotation ids from 1, in order),
    in one pass over them.

    Returns the document written and the failure records the chunks hold.
    """
    images, anns, failures = [], [], []
    for chunk in iter_chunks(out_dir):
        images += chunk["images"]
        failures += chunk["failures"]
        for a in chunk["annotations"]:
            anns.append({"id": len(anns) + 1, **a, "iscrowd": 0})
    doc = {"info": info or {}, "licenses": [], "images": images, "annotations": anns,
           "categories": dataset.coco_categories()}
    atomic_write_json(Path(out_dir) / "pseudo_labels.json", doc)
    return doc, failures


def write_voc_annotations(doc: dict, folder: str | Path) -> int:
    """Write a pseudo-label dict as one VOC XML per image under ``folder`` (named after
    the image file, so ``folder`` can serve as a VOC ``Annotations/``); returns the count.
    Images with no box get an annotation without objects."""
    from wsol.data.voc import voc_xml

    folder = Path(folder)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    for im in doc["images"]:
        anns = per_image.get(im["id"], [])
        boxes = coco_to_xyxy([a["bbox"] for a in anns]).reshape(-1, 4)
        xml = voc_xml(Path(im["file_name"]).name, im["height"], im["width"],
                      [names[a["category_id"]] for a in anns], boxes,
                      [a["score"] for a in anns])
        atomic_write_text(folder / f"{Path(im['file_name']).stem}.xml", xml)
    return len(doc["images"])


def results_list(doc: dict) -> list[dict]:
    """The annotations of a pseudo-label dict as a COCO results list (for ``loadRes``)."""
    return [{k: a[k] for k in ("image_id", "category_id", "bbox", "score")}
            for a in doc["annotations"]]
