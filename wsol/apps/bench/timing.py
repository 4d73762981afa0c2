"""Clocks for the benchmarks, and a description of the machine they ran on."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

Status = Callable[[str], None]  # hears of each measurement as it starts
ProgressFactory = Callable[[str], Callable[[int, int], None] | None]


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for the device's queued work: asynchronous CUDA kernels would
    otherwise stop the clock before they ran."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    """Seconds per call of ``fn``, the mean of ``repeats`` calls after one untimed
    warm-up call (allocator, cuDNN autotuning, lazy inits)."""
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what Python knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may run on (a container's or ``taskset``'s limit included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(device: torch.device) -> dict:
    """Where a benchmark ran: the device's name, the CPU, and the versions of what
    does the work. Every number in ``docs/benchmarks.md`` names these."""
    import cv2
    import torchvision

    info = {
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"{cpu_name()}, {cpu_cores()} cores"
        ),
        "cpu": f"{cpu_name()}, {cpu_cores()} cores",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "opencv": cv2.__version__,
        "pytorch_grad_cam": _version("grad-cam"),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def fastest(job: Callable[[], object], rounds: int, announce: Callable[[int], None]):
    """Run ``job`` ``rounds`` times, timing each call: ``(the fastest call's result,
    every call's seconds)``."""
    best, times = None, []
    for r in range(rounds):
        announce(r)
        start = time.perf_counter()
        result = job()
        times.append(time.perf_counter() - start)
        if times[-1] == min(times):
            best = result
    return best, times


def end_to_end_row(images: int, times: list[float], boxes: int) -> dict:
    """A bench row of whole calls over ``images`` files: the fastest of ``times``
    counts, all are kept."""
    seconds = min(times)
    return {
        "images_per_second": images / seconds,
        "seconds": seconds,
        "all_seconds": times,
        "images": images,
        "boxes": boxes,
    }
