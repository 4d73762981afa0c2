"""Decode and resize images on the device: nvjpeg for a batch of JPEGs, the CPU otherwise.

:func:`decode_jpegs` decodes a list of files (or their bytes) in one
``torchvision.io.decode_jpeg(list, device=...)`` call: batched nvjpeg on CUDA, libjpeg
on the CPU. What nvjpeg cannot take goes to the project's CPU decoder
(:mod:`wsol.data.decode`, PIL) and is then moved to the device, so every file the CPU
loader reads is read here too:

- not a JPEG (PNG, WebP, ...), or a JPEG that is CMYK/YCCK, 12-bit, lossless or
  arithmetic-coded, or has no end-of-image marker (truncated: PIL refuses those,
  nvjpeg may not);
- a JPEG larger than ``max_gpu_pixels`` (the CPU decoder drafts it at reduced scale);
- a JPEG the batched call or its own call fails on.

Per-file failures are returned as :class:`~wsol.data.decode.DecodeError` values in the
file's place, never raised; the loader turns each into a ``Failure(image_id, path,
"decode", str(error))`` as it does for the CPU path.

EXIF orientation: nvjpeg ignores it, so the tag is read from the header here and applied
on the device (flips and transposes), as ``PIL.ImageOps.exif_transpose`` does on the CPU
path; ``apply_exif=False`` leaves the stored orientation.

Pixels: on the CPU, torchvision's libjpeg gives the same bytes as the CPU decoder (PIL)
for the JPEGs tested. nvjpeg's IDCT and chroma upsampling differ from libjpeg's by a few
grey levels; the GPU path does not promise byte-identity with the CPU loader.

Note: ``torchvision.io.decode_jpeg`` is deprecated since torchvision 0.29 in favour of
TorchCodec and emits a ``DeprecationWarning`` (hidden by default outside ``__main__``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from wsol.data.base import Sample
from wsol.data.decode import MAX_FILE_BYTES, DecodeError, decode_bytes, read_regular_file
from wsol.data.jpeg_header import JpegInfo, jpeg_info
from wsol.data.loader import Batch, Failure, FileBatch

# Above this many pixels a JPEG goes to the CPU decoder, which drafts it at reduced scale
# (a 12000 x 9000 photo would need 324 MB of device memory at full size).
MAX_GPU_PIXELS = 2**26


@dataclass
class DecodedImage:
    """One decoded image: ``pixels`` uint8 ``[3, h, w]`` RGB on the device, upright;
    ``orig_size`` ``(H, W)`` the displayed size of the original (``(h, w)`` unless the
    CPU decoder drafted a huge JPEG at reduced scale); ``decoder`` is ``"nvjpeg"``,
    ``"libjpeg"`` (torchvision on the CPU) or ``"pil"`` (the CPU fallback)."""

    pixels: torch.Tensor
    orig_size: tuple[int, int]
    decoder: str


def apply_orientation(pixels: torch.Tensor, orientation: int) -> torch.Tensor:
    """``pixels [C, H, W]`` turned upright for EXIF ``orientation`` 1..8, as
    ``PIL.ImageOps.exif_transpose`` does (5-8 swap height and width)."""
    if orientation == 2:
        out = pixels.flip(-1)
    elif orientation == 3:
        out = pixels.flip(-2, -1)
    elif orientation == 4:
        out = pixels.flip(-2)
    elif orientation == 5:
        out = pixels.transpose(-2, -1)
    elif orientation == 6:
        out = torch.rot90(pixels, -1, dims=(-2, -1))  # 90 degrees clockwise
    elif orientation == 7:
        out = pixels.transpose(-2, -1).flip(-2, -1)
    elif orientation == 8:
        out = torch.rot90(pixels, 1, dims=(-2, -1))
    else:
        return pixels
    return out.contiguous()


def _as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_jpegs(
    items: list[str | Path | bytes],
    device: torch.device | str,
    max_side: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_gpu_pixels: int = MAX_GPU_PIXELS,
    apply_exif: bool = True,
) -> list[DecodedImage | DecodeError]:
    """Decode ``items`` (paths or file bytes) to upright RGB on ``device``.

    Returns one entry per item, in order: a :class:`DecodedImage` (``uint8 [3, h, w]``
    on ``device``) or the :class:`DecodeError` that says why it could not be read
    (missing, empty, over ``max_bytes``, undecodable). JPEGs go through one batched
    ``torchvision.io.decode_jpeg(..., mode=RGB)`` call (gray is replicated, as PIL's
    ``convert("RGB")`` does); the rest, see the module docstring, through the CPU
    decoder, which drafts JPEGs over ``2 * max_side`` like the CPU loader.
    """
    device = torch.device(device)
    out: list[DecodedImage | DecodeError | None] = [None] * len(items)
    datas: list[bytes | None] = [None] * len(items)
    fast: list[tuple[int, JpegInfo]] = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, bytes | bytearray | memoryview):
                data = item if isinstance(item, bytes) else bytes(item)
            else:
                data = read_regular_file(item, max_bytes)
            if len(data) > max_bytes:
                raise DecodeError(f"data of {len(data)} bytes is over the {max_bytes} limit")
            if not data:
                raise DecodeError("empty file (0 bytes)")
        except DecodeError as e:
            out[i] = e
            continue
        datas[i] = data
        info = jpeg_info(data)
        if info is not None and info.gpu_ok and info.height * info.width <= max_gpu_pixels:
            fast.append((i, info))
    decoder = "nvjpeg" if device.type == "cuda" else "libjpeg"
    decoded = _decode_many([_as_tensor(datas[i]) for i, _ in fast], device)  # type: ignore[arg-type]
    for (i, info), pixels in zip(fast, decoded, strict=True):
        if pixels is None:
            continue  # left to the CPU decoder
        o = info.orientation if apply_exif else 1
        pixels = apply_orientation(pixels, o)
        out[i] = DecodedImage(pixels, (pixels.shape[1], pixels.shape[2]), decoder)
    for i, data in enumerate(datas):
        if out[i] is not None or data is None:
            continue
        try:
            arr, orig = decode_bytes(data, max_side, apply_exif)
        except DecodeError as e:
            out[i] = e
            continue
        pixels = torch.from_numpy(arr).permute(2, 0, 1).contiguous().to(device)
        out[i] = DecodedImage(pixels, orig, "pil")
    return out  # type: ignore[return-value]


def _decode_many(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """One batched decode; if it fails, each on its own (None where that fails too)."""
    if not tensors:
        return []
    # Imported here: torchvision's import takes torch._dynamo with it (~1.7 s), which a
    # run that decodes on the CPU and builds no torchvision model never needs.
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        # torchvision 0.29 points to TorchCodec; decode_jpeg works as documented meanwhile
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        try:
            return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
        except (RuntimeError, ValueError):
            pass
        results: list[torch.Tensor | None] = []
        for t in tensors:
            try:
                results.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
            except (RuntimeError, ValueError):
                results.append(None)
        return results


def area_weights(n_in: int, n_out: int, device=None) -> torch.Tensor:
    """``[n_out, n_in]`` float32: output pixel ``o`` is the mean of the input over
    ``[o * s, (o + 1) * s)`` with ``s = n_in / n_out``, each input pixel ``[i, i + 1)``
    weighted by its overlap (cv2's ``INTER_AREA`` when shrinking). Rows sum to 1."""
    s = n_in / n_out
    lo = torch.arange(n_out, dtype=torch.float64)[:, None] * s
    hi = lo + s
    i = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(hi, i + 1) - torch.maximum(lo, i)).clamp_(min=0)
    return (overlap / s).float().to(device)


def resize_on_device(images: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Stretch each ``uint8 [3, h, w]`` image to ``size = (H, W)``: ``uint8 [B, 3, H, W]``
    on the images' device.

    Follows the rule of :func:`wsol.data.loader.resize`: unchanged at the same size; when
    shrinking both sides, cv2's ``INTER_AREA`` (each output pixel the overlap-weighted
    mean of the input pixels under it), as two matrix products in float32; bilinear with
    half-pixel centres otherwise (cv2's ``INTER_LINEAR``). Measured against the CPU
    loader: at most 1 grey level apart (cv2 rounds its bilinear weights to 11 bits and
    adds its area sums in another order). Images of one size are resized in one call.
    """
    h_out, w_out = size
    if not images:
        return torch.zeros((0, 3, h_out, w_out), dtype=torch.uint8)
    out = torch.empty((len(images), 3, h_out, w_out), dtype=torch.uint8, device=images[0].device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[0] != 3:
            raise ValueError(f"expected images uint8 [3, h, w], got {tuple(im.shape)}")
        groups.setdefault((im.shape[1], im.shape[2]), []).append(i)
    for (h, w), idx in groups.items():
        batch = torch.stack([images[i] for i in idx])
        if (h, w) != (h_out, w_out):
            x = batch.float()
            if h_out < h and w_out < w:
                rows = area_weights(h, h_out, x.device)  # [H_out, h]
                cols = area_weights(w, w_out, x.device)  # [W_out, w]
                x = rows @ (x @ cols.T)
                if h % h_out == 0 and w % w_out == 0:  # cv2's integer path rounds half up
                    x = x.add_(0.5).floor_()
            else:
                x = F.interpolate(x, size=(h_out, w_out), mode="bilinear", align_corners=False)
            batch = x.round_().clamp_(0, 255).to(torch.uint8)
        out[idx] = batch
    return out


def decode_batch(
    files: FileBatch,
    samples: list[Sample],
    device: torch.device | str,
    input_size: tuple[int, int],
    max_bytes: int = MAX_FILE_BYTES,
) -> Batch:
    """A loader's :class:`~wsol.data.loader.FileBatch` decoded on ``device`` and
    stretched to ``input_size``: the :class:`~wsol.data.loader.Batch` the CPU loader
    would give (pixels within a few grey levels of it, see :func:`resize_on_device`),
    with its images already on the device. ``samples[k]`` is the sample of
    ``files.indices[k]``; a file that cannot be decoded becomes a failure."""
    decoded = decode_jpegs(files.data, device, max(input_size), max_bytes)
    failures = list(files.failures)
    ok: list[tuple[int, DecodedImage]] = []
    for index, sample, d in zip(files.indices, samples, decoded, strict=True):
        if isinstance(d, DecodeError):
            failures.append(Failure(sample.image_id, sample.path, "decode", str(d)))
        else:
            ok.append((index, d))
    return Batch(
        images=resize_on_device([d.pixels for _, d in ok], input_size).to(device),
        indices=[i for i, _ in ok],
        orig_sizes=[d.orig_size for _, d in ok],
        failures=failures,
        warnings=[],
        regions=[(1.0, 1.0)] * len(ok),
    )
