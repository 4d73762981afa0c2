"""The peer ``wsol bench`` measures wsol against: pytorch-grad-cam with cv2 glue.

This is the job a reasonably written script built on pytorch-grad-cam does to turn a
folder of JPEG files into COCO results, and nothing more:

1. Build the model (the same architecture and seeded random weights as wsol's run), in
   eval mode on the device.
2. A ``torch.utils.data.DataLoader`` (``workers`` processes, pinned memory on CUDA)
   over the files; its dataset reads each file with ``cv2.imread``, converts BGR to RGB,
   keeps the original ``(height, width)``, resizes to the input size with
   ``cv2.resize`` (bilinear), scales to [0, 1] and normalizes with the model's mean and
   std, as ``float32 [3, H, W]``.
3. Per batch: ``pytorch_grad_cam.GradCAM`` (or the method's twin) on the model's target
   layer (its last convolutional stage) with ``targets=None``, so each image's map is
   for its top-1 class; pytorch-grad-cam returns the maps at the input size, min-max
   normalized, as numpy on the CPU. The class and its softmax probability come from the
   logits GradCAM keeps (``cam.outputs``): no second forward pass.
4. Per image, in numpy: ``cv2.resize`` the map to the original size (bilinear), keep
   the pixels at or above ``threshold`` times its maximum, label them with
   ``cv2.connectedComponentsWithStats`` (8-connected), and take the bounding box of the
   largest component as COCO ``[x, y, w, h]`` in original pixels, scored by the class
   probability.
5. ``json.dump`` the COCO results list (``image_id`` = position + 1, ``category_id`` =
   class index + 1, as wsol numbers a folder dataset) to ``out_file``.

It runs in fp32 whatever wsol's precision: pytorch-grad-cam moves activations and
gradients to numpy, which has no bfloat16.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from wsol.models import build_model, resolve_module

# wsol method name -> pytorch-grad-cam class name
GLUE_METHODS = {
    "gradcam": "GradCAM",
    "gradcampp": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
}
GLUE_STAGES = ("load wait", "cam", "boxes", "write")


class JpegFiles(torch.utils.data.Dataset):
    """``paths[i]`` as ``(float32 [3, H, W] normalized, i, height, width)``, by cv2."""

    def __init__(
        self,
        paths: Sequence[Path],
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
    ):
        self.paths = list(paths)
        self.size = size
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        bgr = cv2.imread(str(self.paths[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cv2 cannot read {self.paths[i]}")
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = cv2.resize(rgb, (self.size[1], self.size[0]), interpolation=cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), i, h, w


def largest_box(cam_map: np.ndarray, threshold: float) -> list[float] | None:
    """COCO ``[x, y, w, h]`` (pixel edges, so a one-pixel component is 1 x 1) of the
    largest 8-connected component of ``cam_map >= threshold * max``; None when the map
    is flat zero."""
    peak = float(cam_map.max())
    if not peak > 0.0:  # NaN too
        return None
    mask = (cam_map >= threshold * peak).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (float(v) for v in stats[k, :4])
    return [x, y, w, h]


def glue_pipeline(
    paths: Sequence[Path],
    out_file: str | Path,
    arch: str = "resnet50",
    *,
    method: str = "gradcam",
    size: int = 224,
    batch_size: int = 16,
    device: str = "cpu",
    workers: int = 0,
    threshold: float = 0.2,
    seed: int = 0,
) -> dict:
    """Run the peer pipeline (see the module docstring) on ``paths``; write the COCO
    results list to ``out_file``.

    Returns ``{"images", "boxes", "seconds", "stage_seconds"}``: ``seconds`` is the wall
    time of the whole call (model build to the JSON on disk); ``stage_seconds`` the main
    process's time waiting for the loader, in pytorch-grad-cam, in the per-image box
    step, and writing.

    Raises:
        ImportError: pytorch-grad-cam is not installed.
        ValueError: ``method`` has no pytorch-grad-cam twin.
    """
    import pytorch_grad_cam

    if method not in GLUE_METHODS:
        raise ValueError(
            f"cam method {method!r} has no pytorch-grad-cam twin; valid: {', '.join(GLUE_METHODS)}"
        )
    start = time.perf_counter()
    dev = torch.device(device)
    torch.manual_seed(seed)
    spec = build_model(arch, "none")
    net = spec.net.eval().to(dev)
    layer = resolve_module(net, spec.target_layer)
    loader = torch.utils.data.DataLoader(
        JpegFiles(paths, (size, size), spec.mean, spec.std),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
    )
    stages = dict.fromkeys(GLUE_STAGES, 0.0)
    results: list[dict] = []
    with getattr(pytorch_grad_cam, GLUE_METHODS[method])(model=net, target_layers=[layer]) as cam:
        batches = iter(loader)
        while True:
            t = time.perf_counter()
            try:
                x, index, heights, widths = next(batches)
            except StopIteration:
                break
            t_cam = time.perf_counter()
            maps = cam(input_tensor=x.to(dev, non_blocking=True), targets=None)
            best = torch.softmax(cam.outputs.detach().float(), dim=1).max(dim=1)
            scores, classes = best.values.tolist(), best.indices.tolist()
            t_boxes = time.perf_counter()
            for j, i in enumerate(index.tolist()):
                h, w = int(heights[j]), int(widths[j])
                box = largest_box(
                    cv2.resize(maps[j], (w, h), interpolation=cv2.INTER_LINEAR), threshold
                )
                if box is not None:
                    results.append(
                        {
                            "image_id": i + 1,
                            "category_id": classes[j] + 1,
                            "bbox": box,
                            "score": scores[j],
                        }
                    )
            stages["load wait"] += t_cam - t
            stages["cam"] += t_boxes - t_cam
            stages["boxes"] += time.perf_counter() - t_boxes
    t = time.perf_counter()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w") as f:
        json.dump(results, f)
    stages["write"] = time.perf_counter() - t
    return {
        "images": len(paths),
        "boxes": len(results),
        "seconds": time.perf_counter() - start,
        "stage_seconds": stages,
    }
