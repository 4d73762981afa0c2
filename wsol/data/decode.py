"""Reading an image file as upright RGB pixels; a file that cannot be read is a DecodeError.

PIL decodes (EXIF orientation, CMYK, palette, 16-bit and transparent images); a huge
JPEG is drafted at reduced scale. PIL's own decompression-bomb limit applies (about
178 million pixels is refused; above 89 million it warns, which the CLI silences).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from wsol.errors import WsolError

# Decoding a 12000 x 9000 JPEG at full size needs ~300 MB; JPEG can decode at 1/2..1/8
# scale for free, so anything above this many times the input size is drafted down.
_DRAFT_FACTOR = 2
_EXIF_SWAPS_AXES = {5, 6, 7, 8}
# Files over this are refused before reading (data.max_file_mb sets it for a run).
MAX_FILE_BYTES = 256 * 2**20


class DecodeError(WsolError, ValueError):
    """An image file that cannot be decoded."""


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
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
    refused without reading it (opened non-blocking, so a FIFO cannot hang the run).

    Raises:
        DecodeError: missing, unreadable, not a regular file, empty, or too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    except OSError as e:
        raise DecodeError(f"cannot read file: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
            raise DecodeError(f"not a regular file ({kind})")
        if st.st_size > max_bytes:
            raise DecodeError(
                f"file of {st.st_size / 2**20:.0f} MiB is over the {max_bytes / 2**20:.0f} MiB "
                "limit (data.max_file_mb)"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise DecodeError(f"cannot read file: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise DecodeError(f"file grew over the {max_bytes / 2**20:.0f} MiB limit while read")
    return data


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
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        msg = str(e) or type(e).__name__
        raise DecodeError(f"cannot decode image: {msg}") from None
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise DecodeError(f"decoded to an empty array of shape {pixels.shape}")
    return np.ascontiguousarray(pixels), (height, width)
