"""8-connected components of a stack of masks ``[N, H, W]``, labelled in one call.

Backends (:data:`LABEL_BACKENDS`): ``cupy`` (``cupyx.scipy.ndimage.label`` on the CUDA
stream torch is using, data shared through DLPack), ``scipy`` and ``cv2`` (on the host; a
CUDA batch makes one round trip). Each labels the stack in one call with a 3x3x3
structure whose only ones are in the middle plane, so labels never join two masks and
are unique across the batch.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from wsol.errors import unknown_choice

LABEL_BACKENDS = ("cupy", "scipy", "cv2")

# 8-connectivity inside each [H, W] slice of a [N, H, W] stack, none across slices.
_STACK_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STACK_STRUCTURE[1] = True

# cupyx's labeller indexes pixels with int32, so a stack is labelled in chunks below this.
_MAX_LABEL_ELEMENTS = 2**31 - 1


def has_cupy() -> bool:
    """Whether CuPy can be imported (it is never imported at wsol's import time)."""
    return importlib.util.find_spec("cupy") is not None


def default_backend(device: torch.device) -> str:
    """The labeller :func:`label_components` picks for masks on ``device``: ``cupy`` for
    CUDA with CuPy installed, else ``scipy`` when installed, else ``cv2``."""
    if device.type == "cuda" and has_cupy():
        return "cupy"
    return "scipy" if importlib.util.find_spec("scipy") is not None else "cv2"


def _label_host(masks: np.ndarray, backend: str) -> tuple[np.ndarray, int]:
    if backend == "scipy":
        from scipy import ndimage

        labels = np.empty(masks.shape, np.int32)
        count = ndimage.label(masks, structure=_STACK_STRUCTURE, output=labels)
        return labels, int(count)
    import cv2

    labels = np.empty(masks.shape, np.int32)
    total = 0
    for k, m in enumerate(masks):  # cv2 labels one 2-D image per call
        n, lab = cv2.connectedComponents(m.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        labels[k] = np.where(lab > 0, lab + total, 0)
        total += n - 1
    return labels, total


def _label_cupy(masks: torch.Tensor) -> tuple[torch.Tensor, int]:
    import cupy
    from cupyx.scipy import ndimage

    stream = torch.cuda.current_stream(masks.device)
    # Run on torch's stream, so no extra synchronization is needed either side.
    with cupy.cuda.Device(masks.device.index), cupy.cuda.ExternalStream(stream.cuda_stream):
        x = cupy.from_dlpack(masks.contiguous().view(torch.uint8))  # no copy
        labels, count = ndimage.label(x, structure=_STACK_STRUCTURE)
        out = torch.from_dlpack(labels)
    return out, int(count)


def label_components(masks: torch.Tensor, backend: str | None = None) -> tuple[torch.Tensor, int]:
    """8-connected components of each mask of ``masks [N, H, W]`` (bool), in one call.

    Returns ``(labels, count)``: ``labels`` int32 ``[N, H, W]`` on the masks' device
    (int64 past 2**31 - 1 labels),
    0 for background and ``1..count`` for components, unique across the whole batch (a
    label never spans two masks). The numbering is the backend's (not cv2's order);
    :func:`component_stats` restores cv2's order.

    ``backend``: one of :data:`LABEL_BACKENDS`, or None for :func:`default_backend`.
    ``cupy`` needs CUDA masks; the host backends copy CUDA masks to the host and the
    labels back.
    """
    if masks.ndim != 3:
        raise ValueError(f"expected masks [N, H, W], got shape {tuple(masks.shape)}")
    backend = backend or default_backend(masks.device)
    if backend not in LABEL_BACKENDS:
        raise ValueError(unknown_choice("labelling backend", backend, LABEL_BACKENDS))
    if backend == "cupy" and masks.device.type != "cuda":
        raise ValueError("the cupy labelling backend needs masks on a CUDA device")
    masks = masks.bool()
    n, h, w = masks.shape
    if masks.numel() == 0:
        return torch.zeros(masks.shape, dtype=torch.int32, device=masks.device), 0
    step = max(1, _MAX_LABEL_ELEMENTS // max(1, h * w))
    parts, total = [], 0
    for start in range(0, n, step):
        chunk = masks[start : start + step]
        if backend == "cupy":
            lab, count = _label_cupy(chunk)
        else:
            lab_np, count = _label_host(chunk.cpu().numpy(), backend)
            lab = torch.from_numpy(lab_np).to(masks.device)
        lab = lab.to(torch.int32 if total + count < 2**31 else torch.int64)
        if total:
            parts = [p.to(lab.dtype) for p in parts]
            lab = torch.where(lab > 0, lab + total, lab)
        parts.append(lab)
        total += count
    return (parts[0] if len(parts) == 1 else torch.cat(parts)), total
