"""torchrun's process group as a run uses it: which process this is, joining and leaving
the group (NCCL on CUDA, gloo on the CPU), and collectives waited for in short Python
steps, so that a signal is handled at once (:mod:`wsol.run.distributed` runs the shards).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from wsol.config import Config, ConfigError
from wsol.models.spec import resolve_device

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "WSOL_DIST_TIMEOUT_HOURS"
# A rank that is done waits at the barrier for the slowest one: after a killed rank is
# resumed, that can be the whole of its shard, so the default is long.
DEFAULT_TIMEOUT_HOURS = 168.0
_POLL_SECONDS = 0.1


def world_size() -> int:
    """How many processes share the run: torchrun's ``WORLD_SIZE``, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank: torchrun's ``RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 and in a plain run: the process that owns the console."""
    return rank() == 0


def join_group(cfg: Config) -> torch.device:
    """Join torchrun's process group (NCCL when the model runs on CUDA, gloo on the CPU),
    on ``cuda:LOCAL_RANK`` for ``model.device=auto|cuda``; the device for collectives."""
    device = resolve_device(cfg.model.device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
        if device.index is not None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
            raise ConfigError(
                f"model.device={cfg.model.device} would put every process of this node on "
                "one GPU; use model.device=auto or cuda (rank r takes cuda:LOCAL_RANK)"
            )
        index = device.index if device.index is not None else local
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local} but this node has {torch.cuda.device_count()} GPUs; "
                "start at most that many processes per node"
            )
        torch.cuda.set_device(index)  # "cuda" now means this rank's GPU
        device = torch.device("cuda", index)
    if not dist.is_initialized():
        try:
            hours = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_HOURS))
        except ValueError:
            raise ConfigError(f"{TIMEOUT_ENV} must be a number of hours") from None
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(hours=hours))
        atexit.register(leave_group)
        logger.info("rank %d of %d joined the %s group", rank(), world_size(), backend)
    return device


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wait(work) -> None:
    """Wait for a collective in short Python steps: a signal (torchrun's SIGTERM when
    another rank failed, Ctrl-C) is handled at once, not after the group's timeout."""
    while not work.is_completed():
        time.sleep(_POLL_SECONDS)
    work.wait()


def barrier(device: torch.device) -> None:
    if world_size() > 1:
        wait(dist.all_reduce(torch.zeros(1, device=device), async_op=True))


def broadcast_json(obj: Any, device: torch.device) -> Any:
    """Rank 0's ``obj`` on every rank (the others pass None)."""
    data = json.dumps(obj).encode() if rank() == 0 else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    wait(dist.broadcast(size, 0, async_op=True))
    if rank() == 0:
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    else:
        buf = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    wait(dist.broadcast(buf, 0, async_op=True))
    return json.loads(buf.cpu().numpy().tobytes())
