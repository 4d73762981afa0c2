"""Copies from the device to the host that do not hold up the device stage.

A CUDA tensor copied with ``.to("cpu", non_blocking=True)`` lands in pinned (page-locked)
memory and the copy is queued on the current stream behind the work that makes the
tensor; the caller goes on at once. One event recorded after the copies says when they
are all done. :meth:`HostCopies.wait` blocks on that event, on whichever thread reads
them (a run's host stage), while the device stage is already on the next batch. On the
CPU the "copies" are the tensors themselves.
"""

from __future__ import annotations

import numpy as np
import torch


class HostCopies:
    """Named tensors on their way to the host; :meth:`wait` gives them as NumPy arrays.

    Args:
        tensors: name -> tensor (any device) or None.
    """

    def __init__(self, tensors: dict[str, torch.Tensor | None]):
        self._host: dict[str, torch.Tensor | None] = {}
        self._event = None
        for name, t in tensors.items():
            if t is None or t.device.type == "cpu":
                self._host[name] = t
            elif t.device.type == "cuda":
                self._host[name] = t.to("cpu", non_blocking=True)  # pinned, asynchronous
                if self._event is None:
                    self._event = torch.cuda.Event()
            else:  # other accelerators: a plain copy
                self._host[name] = t.cpu()
        if self._event is not None:
            self._event.record()  # on the current stream, after every copy queued above

    @property
    def pending(self) -> bool:
        """Whether some copy may still be in flight."""
        return self._event is not None and not self._event.query()

    def wait(self) -> dict[str, np.ndarray | None]:
        """Block until every copy is done; name -> array (views of the host tensors)."""
        if self._event is not None:
            self._event.synchronize()
        return {k: (t.numpy() if t is not None else None) for k, t in self._host.items()}
