"""Instance masks: COCO segmentations (polygons or RLE) and VOC ``SegmentationObject`` PNGs.

Masks are decoded per image on demand (for PxAP) and never kept, so memory does not grow
with the dataset. COCO segmentations follow pycocotools: polygons are lists of
``[x0, y0, x1, y1, ...]`` in continuous pixel coordinates, RLE is ``{"size": [H, W],
"counts": ...}`` (compressed string or uncompressed list), column-major.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from wsol.readfile import MAX_TEXT_BYTES, read_bytes


def decode_segmentation(seg, height: int, width: int) -> np.ndarray:
    """A COCO segmentation -> bool mask ``[height, width]``.

    Raises ``ValueError`` when an RLE's size is not ``(height, width)`` (the mask would
    not line up with the image).
    """
    from pycocotools import mask as mask_utils

    if isinstance(seg, dict):
        size = [int(v) for v in seg["size"]]
        if size != [height, width]:
            raise ValueError(f"RLE size {size} does not match the image {[height, width]}")
        rle = seg
        if isinstance(seg["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(seg, height, width)
        elif isinstance(seg["counts"], str):
            rle = {"size": size, "counts": seg["counts"].encode("ascii")}
        return mask_utils.decode(rle).astype(bool)
    polys = [p for p in seg if len(p) >= 6]  # a polygon needs three points
    if not polys:
        return np.zeros((height, width), bool)
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def class_mask(sample, cls: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Foreground and ignored pixels of class ``cls`` in ``sample``, both bool ``[H, W]``.

    The foreground is the union of the class's non-ignored instances; the ignored region
    is the union of its ignored instances (VOC difficult, COCO crowd) outside the
    foreground. ``None`` when some box of the class has no segmentation.
    """
    segs = sample.segmentations
    idx = np.flatnonzero(sample.box_labels == cls)
    if segs is None or len(idx) == 0 or any(segs[i] is None for i in idx):
        return None
    fg = np.zeros((height, width), bool)
    ign = np.zeros((height, width), bool)
    for i in idx:
        m = decode_segmentation(segs[i], height, width)
        if sample.ignore[i]:
            ign |= m
        else:
            fg |= m
    return fg, ign & ~fg


def has_masks(samples) -> bool:
    """Whether any sample carries a segmentation (PxAP is computed only then)."""
    return any(
        s.segmentations is not None and any(g is not None for g in s.segmentations) for s in samples
    )


def voc_instance_segmentations(png_path: str | Path, num_objects: int) -> list[dict | None]:
    """COCO RLEs of the objects of a VOC ``SegmentationObject`` PNG, in XML order.

    VOC numbers instances ``1..N`` in the order of the objects in the XML (palette
    indices, or plain gray levels as the synthetic generator writes them); 255 is void
    and belongs to no instance. Returns ``num_objects`` entries, ``None`` for an object
    with no pixel. To attach masks to a VOC dataset, set ``Sample.segmentations`` to this
    list when ``SegmentationObject/<stem>.png`` exists.
    """
    from PIL import Image, UnidentifiedImageError
    from pycocotools import mask as mask_utils

    data = read_bytes(png_path, MAX_TEXT_BYTES, allow_empty=False)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("P", "L"):
                raise ValueError(f"{png_path}: expected a palette or gray PNG, got mode {im.mode}")
            index = np.asarray(im)
    except UnidentifiedImageError:  # its message shows the BytesIO object, not the file
        raise ValueError(f"{png_path}: not an image PIL can read") from None
    out: list[dict | None] = []
    for k in range(1, num_objects + 1):
        m = index == k
        if not m.any():
            out.append(None)
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        out.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"]})
    return out
