"""Check and time the device components path (wsol.localize.device_boxes) on CUDA.

    python tools/gpu_check_device_boxes.py [--batch 256] [--height 375] [--width 500]
                                           [--threads 16] [--images DIR]

1. Equivalence: on CUDA with CuPy, the largest box and score of each map (what a run
   uses, :func:`largest_dense`) and every component's box, area and cv2 order
   (:func:`component_stats`) against the host path (``wsol.localize.components``, cv2),
   on maps of assorted sizes, cuts (values exactly at the cut among them), ties, empty
   regions and padded canvases. Boxes and areas must be equal; scores are reported as
   the largest difference (the GPU's float64 sums are tree reductions, the host's run in
   raster order). The host's masks follow :func:`wsol.localize.cut.cut_mask` (a float32
   map against a Python float compares in float32 under NumPy 2: not the rule).
2. Timing of a batch of ``--batch`` maps of ``--height`` x ``--width``, already
   upsampled and normalized on the device: labelling and largest boxes on the device,
   against the host path (copy to the host, ``detect`` per map on a pool of
   ``--threads`` threads).
3. With ``--images``: nvjpeg decode of the JPEGs there against the CPU decoder.

Exits 0 with a message where CUDA or CuPy is missing; 1 if an equivalence check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsol.localize.components import component_boxes, detect
from wsol.localize.cut import cut_mask, cut_masks
from wsol.localize.device_boxes import (
    component_stats,
    detect_largest,
    largest_dense,
)
from wsol.localize.labelling import has_cupy, label_components
from wsol.localize.maps import minmax_normalize, normalized_threshold


def _maps(rng: np.random.Generator, n: int, h: int, w: int, device) -> torch.Tensor:
    """``n`` normalized maps ``[n, h, w]``: smooth low-resolution noise, upsampled."""
    low = torch.from_numpy(rng.random((n, 1, max(2, h // 24), max(2, w // 24)))).float()
    up = F.interpolate(low.to(device), size=(h, w), mode="bilinear", align_corners=False)
    norm, *_ = minmax_normalize(up[:, 0])
    return norm


def _cases(device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(1, 1), (2, 2), (5, 7), (13, 17), (64, 48), (375, 500), (500, 333)]:
        norm = _maps(rng, 16, h, w, device)
        flat = norm.reshape(16, -1)
        taus = torch.tensor(rng.uniform(0.1, 0.9, 16), device=device)
        cuts = normalized_threshold("fraction", taus, flat.amin(1), flat.amax(1))
        cuts[0], cuts[1] = 1.5, 0.0  # empty, everything
        flat = norm.reshape(16, -1)
        pick = torch.as_tensor(rng.integers(0, h * w, 4), device=device)
        cuts[2:6] = flat[torch.arange(2, 6, device=device), pick].double()  # at a pixel
        out.append((norm, cuts))
    # a padded canvas: a 375 x 500 map among 500 x 375 ones, -inf around it
    canvas = torch.full((8, 500, 500), float("-inf"), device=device)
    canvas[:4, :375, :500] = _maps(rng, 4, 375, 500, device)
    canvas[4:, :500, :375] = _maps(rng, 4, 500, 375, device)
    out.append((canvas, torch.full((8,), 0.4, dtype=torch.float64, device=device)))
    sparse = torch.from_numpy(rng.random((32, 40, 50))).float().to(device)
    out.append((sparse, torch.full((32,), 0.85, dtype=torch.float64, device=device)))
    return out


def check_equivalence(device, backend: str = "cupy") -> bool:
    ok, worst, maps = True, 0.0, 0
    for norm, cuts in _cases(device):
        labels, count = label_components(cut_masks(norm, cuts), backend)
        stats = {k: v.cpu() for k, v in component_stats(labels, count, norm).items()}
        probs = torch.rand(len(norm), device=device)
        for score in ("mean", "max"):
            boxes, scores, empty = (
                t.cpu() for t in largest_dense(labels, count, norm, score, probs)
            )
            for k in range(len(norm)):
                host_norm, cut = norm[k].cpu().numpy(), cuts[k].item()
                host = detect(host_norm, cut, probs[k].item(), "largest", score=score)
                if len(host.boxes) == 0:
                    ok &= bool(empty[k])
                    continue
                ok &= not bool(empty[k]) and np.array_equal(boxes[k].numpy(), host.boxes[0])
                worst = max(worst, abs(scores[k].item() - host.scores[0]))
        for k in range(len(norm)):
            hb, ha, _ = component_boxes(cut_mask(norm[k].cpu().numpy(), cuts[k].item()))
            rows = stats["index"] == k
            ok &= np.array_equal(stats["boxes"][rows].numpy(), hb)
            ok &= np.array_equal(stats["area"][rows].numpy(), ha)
        maps += len(norm)
    verdict = "equal" if ok else "DIFFER"
    print(f"equivalence on {maps} maps: boxes {verdict}, largest score difference {worst:.3g}")
    return ok


def _time(fn, reps: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def time_batch(device, n: int, h: int, w: int, threads: int) -> None:
    norm = _maps(np.random.default_rng(1), n, h, w, device)
    cuts = torch.full((n,), 0.5, dtype=torch.float64, device=device)
    masks = cut_masks(norm, cuts)
    labels, count = label_components(masks, "cupy")
    pool = ThreadPoolExecutor(threads)

    def host_path():
        host = norm.cpu().numpy()
        list(pool.map(lambda k: detect(host[k], 0.5, 1.0), range(n)))

    rows = [
        ("cut masks", _time(lambda: cut_masks(norm, cuts))),
        ("label (cupy)", _time(lambda: label_components(masks, "cupy"))),
        ("largest boxes (dense)", _time(lambda: largest_dense(labels, count, norm))),
        ("component stats (scatter)", _time(lambda: component_stats(labels, count, norm))),
        ("device total", _time(lambda: detect_largest(norm, cuts, backend="cupy"))),
        ("device, scipy on host", _time(lambda: detect_largest(norm, cuts, backend="scipy"), 1)),
        (f"host cv2 detect, {threads} threads", _time(host_path)),
    ]
    print(f"\n{n} maps of {h}x{w}, {count / n:.1f} components per map")
    print(f"{'step':<28}{'ms':>10}{'maps/s':>12}")
    for name, sec in rows:
        print(f"{name:<28}{sec * 1e3:>10.2f}{n / sec:>12.0f}")


def check_decode(device, folder: Path) -> None:
    from wsol.data.decode import decode_image
    from wsol.data.gpu_decode import DecodedImage, decode_jpegs

    paths = sorted(folder.glob("*.jpg"))[:256]
    if not paths:
        print(f"no .jpg files in {folder}")
        return
    datas = [p.read_bytes() for p in paths]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        res = decode_jpegs(datas, device)
        sec = _time(lambda: decode_jpegs(datas, device), 3)
    diffs = []
    for p, r in zip(paths, res, strict=True):
        ref, orig = decode_image(p)
        assert isinstance(r, DecodedImage) and r.orig_size == orig, p
        d = np.abs(r.pixels.permute(1, 2, 0).cpu().numpy().astype(int) - ref)
        diffs.append((d.mean(), d.max()))
    decoders = sorted({r.decoder for r in res})
    mean_diff, max_diff = np.mean([m for m, _ in diffs]), max(x for _, x in diffs)
    print(f"\ndecode of {len(paths)} JPEGs ({', '.join(decoders)}): {len(paths) / sec:.0f} img/s")
    print(f"against the CPU decoder: mean |diff| {mean_diff:.3f}, max {max_diff}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument(
        "--cpu", action="store_true", help="the equivalence check on the CPU (scipy labels)"
    )
    args = ap.parse_args(argv)
    if args.cpu:
        return 0 if check_equivalence(torch.device("cpu"), "scipy") else 1
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (the CPU path is covered by the tests)")
        return 0
    if not has_cupy():
        print(
            "CuPy is not installed: the device labeller is unavailable (pip install cupy-cuda12x)"
        )
        return 0
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(device))
    ok = check_equivalence(device)
    time_batch(device, args.batch, args.height, args.width, args.threads)
    if args.images:
        check_decode(device, args.images)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
