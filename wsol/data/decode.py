"""Reading an image file as upright RGB pixels; a file that cannot be read is a DecodeError.

PIL decodes (EXIF orientation, CMYK, palette, 16-bit and transparent images); a huge
JPEG is drafted at reduced scale. PIL's own decompression-bomb limit applies (about
178 million pixels is refused; above 89 million it warns, which the CLI silences).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from wsol.errors import WsolError, plain_reason
from wsol.readfile import InputFileError, read_bytes

# Decoding a 12000 x 9000 JPEG at full size needs ~300 MB; JPEG can decode at 1/2..1/8
# scale for free, so anything above this many times the input size is drafted down.
_DRAFT_FACTOR = 2
_EXIF_SWAPS_AXES = {5, 6, 7, 8}
# Files over this are refused before reading (data.max_file_mb sets it for a run).
MAX_FILE_BYTES = 256 * 2**20


class DecodeError(WsolError, ValueError):
    """An image file that cannot be decoded."""


def _float_scale(arr: np.ndarray) -> float:
    """The white level of a float image: 1 for values in [0, 1] (what float TIFFs from
    scientific and HDR tools hold), else 255 or 65535 as for integer images.

    Raises:
        DecodeError: NaN or infinite pixels, or values no scale fits.
    """
    if not np.isfinite(arr).all():
        raise DecodeError("float image with NaN or infinite pixels")
    lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
    if lo < 0 or hi > 65535:
        raise DecodeError(
            f"float image with values in [{lo:.4g}, {hi:.4g}]; expected [0, 1], [0, 255] "
            "or [0, 65535]"
        )
    return 1.0 if hi <= 1.0 else 255.0 if hi <= 255 else 65535.0


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        # Integer images: 16-bit where a value passes 255, else 8-bit levels.
        integer_hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
        hi = _float_scale(arr) if im.mode == "F" else integer_hi
        gray = (arr.clip(0, hi) * (255.0 / hi)).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Composite on white so transparent pixels don't show their hidden colour.
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.array(im.convert("RGB"))


def read_regular_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    A FIFO, a device (``/dev/zero``), a socket or a directory named like an image is
    refused without reading it (see :mod:`wsol.readfile`: no FIFO can hang the run).

    Raises:
        DecodeError: missing, unreadable, not a regular file, empty, or too large.
    """
    try:
        return read_bytes(path, max_bytes, "data.max_file_mb", allow_empty=False)
    except InputFileError as e:
        raise DecodeError(str(e)) from None


def decode_image(
    path: str | Path, max_side: int | None = None, max_bytes: int = MAX_FILE_BYTES
) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an image file as upright RGB.

    Returns ``(pixels uint8 [h, w, 3], (H, W))``: ``(H, W)`` is the displayed size of the
    original (after EXIF orientation); ``pixels`` may be smaller than that when
    ``max_side`` allowed a reduced-scale JPEG decode.

    Raises:
        DecodeError: missing, empty, truncated or undecodable file, not a regular file,
            or over ``max_bytes``.
    """
    return decode_bytes(read_regular_file(path, max_bytes), max_side)


def decode_bytes(
    data: bytes, max_side: int | None = None, apply_exif: bool = True
) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`decode_image` of a file's bytes (``apply_exif=False``: as stored, not
    turned upright)."""
    try:
        im = Image.open(io.BytesIO(data))
        orientation = im.getexif().get(0x0112, 1) if apply_exif else 1
        width, height = im.size
        if orientation in _EXIF_SWAPS_AXES:
            width, height = height, width
        if max_side and im.format == "JPEG" and max(width, height) > _DRAFT_FACTOR * max_side:
            scale = _DRAFT_FACTOR * max_side / max(width, height)
            im.draft("RGB", (int(im.size[0] * scale) + 1, int(im.size[1] * scale) + 1))
        im.load()  # raises on truncated data, unlike cv2, which only warns
        if apply_exif:
            im = ImageOps.exif_transpose(im)
        pixels = _to_rgb_array(im)
    except DecodeError:
        raise
    except UnidentifiedImageError:  # its message shows the BytesIO object, not the file
        raise DecodeError("cannot decode image: not an image format PIL can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        msg = plain_reason(str(e)) or type(e).__name__
        raise DecodeError(f"cannot decode image: {msg}") from None
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise DecodeError(f"decoded to an empty array of shape {pixels.shape}")
    return np.ascontiguousarray(pixels), (height, width)
