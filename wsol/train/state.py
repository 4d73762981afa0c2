"""What a training run keeps on disk, written atomically after every epoch.

Each epoch writes ``last.pt``, then ``model.pt`` (when the epoch is the best so far),
then ``train_metrics.json``. A run killed between any two of them resumes: the epoch
after ``last.pt`` is redone, and a ``model.pt`` behind the best epoch that ``last.pt``
records is written again from ``last.pt``, whose weights are that epoch's. A
``model.pt`` never exists without the ``last.pt`` of its run.

- ``model.pt``: the best epoch's network (by validation mAP), self-describing: its
  architecture, classes, preprocessing and CAM layers, so ``wsol run
  model.weights=model.pt`` and ``wsol explain --weights model.pt`` need nothing else.
- ``last.pt``: the same description plus everything a resume needs: optimizer, step,
  epoch, RNG states, the history, and the config it was trained with.
- ``train_metrics.json``: per-epoch loss and validation AP, the class weights used.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import torch

from wsol.errors import UsageError, WsolError
from wsol.fileio import atomic_write
from wsol.models.checkpoint import TRAINED_FORMAT, load_state
from wsol.models.spec import ModelSpec

MODEL_FILE = "model.pt"
STATE_FILE = "last.pt"
METRICS_FILE = "train_metrics.json"
CONFIG_FILE = "train_config.yaml"
WRITTEN = (MODEL_FILE, STATE_FILE, METRICS_FILE, CONFIG_FILE)


def describe(spec: ModelSpec, arch: str, dilate_last: bool) -> dict:
    """The description a checkpoint carries (see ``TRAINED_KEYS`` in
    :mod:`wsol.models.checkpoint`)."""
    return {
        "format": TRAINED_FORMAT,
        "arch": arch,
        "class_names": list(spec.class_names),
        "multi_label": bool(spec.multi_label),
        "dilate_last": bool(dilate_last),
        "input_size": [int(v) for v in spec.input_size],
        "mean": [float(v) for v in spec.mean],
        "std": [float(v) for v in spec.std],
        "resize": "stretch",
        "target_layer": spec.target_layer,
        "cam_layer": spec.cam_layer,
        "fc_layer": spec.fc_layer,
    }


def save(path: Path, obj: dict) -> None:
    """``torch.save`` into memory, then one atomic write: a full disk is then a plain
    ``OSError`` (ENOSPC) naming the file, where torch's zip writer, failing mid-file,
    raised ``RuntimeError: ... unexpected pos`` on top of it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer()
    atomic_write(path, lambda f: f.write(data))


def best_epoch_saved(path: Path) -> int | None:
    """The epoch whose weights ``model.pt`` holds, or None (absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        _state, meta = load_state(path)
    except WsolError:
        return None
    epoch = (meta.get("train_metrics") or {}).get("epoch")
    return epoch if isinstance(epoch, int) else None


def model_payload(net: torch.nn.Module, description: dict, dtype: str, extra: dict) -> dict:
    state = {
        k: (v.half() if dtype == "fp16" and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in net.state_dict().items()
    }
    return {**description, **extra, "state_dict": state}


def rng_state() -> dict:
    """The global generators a training step may draw from (dropout, stochastic depth).
    Data order and augmentation are drawn from ``(seed, epoch, index)`` instead."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    """``random.setstate`` wants the tuples that a round trip through a checkpoint keeps
    as lists or tuples; rebuild them."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def load_resume(path: Path) -> dict:
    """The full contents of ``last.pt`` (state dict under ``state_dict``)."""
    state, meta = load_state(path)
    return {**meta, "state_dict": state}


# Keys that may differ between a run and its resume: they do not change the result.
_FREE_KEYS = ("out", "data.num_workers")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def prepare_out(out: Path, config: dict, overwrite: bool) -> dict | None:
    """The saved state to resume from, or None to start afresh. Refuses to mix runs."""
    for name in WRITTEN:  # temp files of a write that was killed
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if overwrite:
        for name in WRITTEN:
            (out / name).unlink(missing_ok=True)
        return None
    if (out / STATE_FILE).is_file():
        saved = load_resume(out / STATE_FILE)
        old, new = _flat(saved.get("config", {})), _flat(config)
        changed = sorted(
            k for k in set(old) | set(new) if k not in _FREE_KEYS and old.get(k) != new.get(k)
        )
        if changed:
            raise UsageError(
                f"{out} holds a training run with other settings ({', '.join(changed[:6])}); "
                "rerun with --overwrite to start afresh, or choose another out"
            )
        return saved
    if (out / MODEL_FILE).exists():
        raise UsageError(
            f"{out / MODEL_FILE} exists, with no {STATE_FILE} to resume from; "
            "rerun with --overwrite to replace it, or choose another out"
        )
    return None
