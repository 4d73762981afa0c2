"""Pictures as ``data:`` URIs, so that ``report.html`` is one file that opens anywhere."""

from __future__ import annotations

import base64

import cv2
import numpy as np

JPEG_QUALITY = 85  # photos and heatmaps: about 20 kB for a 320 px thumbnail


def data_uri(rgb: np.ndarray, fmt: str = "jpeg", quality: int = JPEG_QUALITY) -> str:
    """An RGB ``uint8 [H, W, 3]`` picture as a ``data:image/<fmt>;base64,...`` URI
    (``fmt`` is ``jpeg`` or ``png``)."""
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"unknown picture format {fmt!r}; valid: jpeg, png")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} picture as {fmt}")
    return f"data:image/{fmt};base64,{base64.b64encode(data.tobytes()).decode('ascii')}"
