"""What a JPEG file's header says, read without decoding it: stored size, colour
components, the frame type (SOF marker) and the EXIF orientation. It decides which files
nvjpeg can decode (:mod:`wsol.data.gpu_decode`) at about 10 us per file."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# SOF markers nvjpeg decodes: baseline, extended sequential and progressive Huffman.
_SOF_GPU = {0xC0, 0xC1, 0xC2}
_SOF_ALL = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass
class JpegInfo:
    """What a JPEG's header says: stored size, components, SOF marker, EXIF orientation
    and whether an end-of-image marker follows the scan data."""

    height: int
    width: int
    components: int
    precision: int
    sof: int
    orientation: int
    complete: bool

    @property
    def gpu_ok(self) -> bool:
        """Whether nvjpeg can decode it as RGB (8-bit Huffman, gray or YCbCr)."""
        return (
            self.sof in _SOF_GPU
            and self.precision == 8
            and self.components in (1, 3)
            and self.complete
            and self.height > 0
            and self.width > 0
        )


def _exif_orientation(seg: bytes) -> int:
    """The orientation tag (0x0112) of IFD0 in an APP1 Exif segment body, or 1."""
    if not seg.startswith(b"Exif\x00\x00") or len(seg) < 14:
        return 1
    tiff = seg[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (n,) = struct.unpack_from(order + "H", tiff, ifd)
        for k in range(n):
            tag, kind, _count, value = struct.unpack_from(order + "HHI4s", tiff, ifd + 2 + 12 * k)
            if tag == 0x0112 and kind == 3:  # SHORT, stored left-aligned in the value field
                (o,) = struct.unpack_from(order + "H", value)
                return o if 1 <= o <= 8 else 1
    except struct.error:
        return 1
    return 1


def jpeg_info(data: bytes) -> JpegInfo | None:
    """Parse a JPEG's markers up to its first scan (no pixel decoding, a few
    microseconds); None when ``data`` is not a JPEG or its header is cut short."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, orientation, sof, seen_exif = 2, 1, None, False
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            return None
        if marker == 0xE1 and not seen_exif and body.startswith(b"Exif\x00\x00"):
            orientation, seen_exif = _exif_orientation(body), True  # the first, as PIL
        elif marker in _SOF_ALL and sof is None and len(body) >= 6:
            precision, h, w, comps = struct.unpack_from(">BHHB", body)
            sof = (h, w, comps, precision, marker)
        elif marker == 0xDA:  # start of scan: the header is over
            if sof is None:
                return None
            # A truncated file has no end-of-image marker; trailing padding is tolerated.
            complete = data.rfind(b"\xff\xd9", max(pos, n - 1024)) >= 0
            h, w, comps, precision, kind = sof
            return JpegInfo(h, w, comps, precision, kind, orientation, complete)
        pos += 2 + length
    return None
