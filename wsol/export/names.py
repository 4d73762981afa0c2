"""One label file per image: the file names of per-image formats (VOC XML, YOLO txt)."""

from __future__ import annotations

from pathlib import Path


def per_image_names(images: list[dict], suffix: str) -> dict[int, str]:
    """Each image's label file name: its file's stem with ``suffix`` (e.g. ``.xml``),
    flat, as VOC's ``Annotations/`` and YOLO's ``labels/`` have them; where two images
    share a stem (``sub1/x.jpg``, ``sub2/x.jpg``, ``x.png``), each of those gets its image
    id appended instead (``x_1.xml``), so no two images share a file."""
    wanted = {im["id"]: (Path(im["file_name"]).stem or str(im["id"])) for im in images}
    counts: dict[str, int] = {}
    for stem in wanted.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {
        i: f"{stem}{suffix}" if counts[stem] == 1 else f"{stem}_{i}{suffix}"
        for i, stem in wanted.items()
    }
