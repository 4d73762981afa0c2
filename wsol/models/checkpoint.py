"""Reading weights from disk: a wsol checkpoint or a plain state dict, never code.

A wsol checkpoint is a dict with ``state_dict`` and metadata (``class_names``,
``input_size``, ``mean``, ``std``, ...); anything else that is a dict of tensors is a
plain state dict. Files are read with ``weights_only=True``, so a checkpoint cannot run
code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from wsol.models.spec import ModelError
from wsol.readfile import MAX_CHECKPOINT_BYTES, InputFileError, InputMissingError, open_regular

NO_WEIGHTS = ("none", "")


def is_path(weights: str) -> bool:
    """Whether ``model.weights`` names a file rather than ``none`` or a hub weight set."""
    w = weights.strip()
    return w.lower() not in (*NO_WEIGHTS, "default") and (
        Path(w).suffix in (".pt", ".pth", ".bin") or Path(w).is_file()
    )


def load_state(path: str | Path) -> tuple[dict, dict]:
    """``(state dict, metadata)`` of a wsol checkpoint or a plain state dict.

    Raises:
        ModelError: the file is missing, unreadable, not a torch file, or holds
            something other than a dict of tensors.
    """
    path = Path(path)
    try:
        with open_regular(path, MAX_CHECKPOINT_BYTES) as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except InputMissingError:
        raise ModelError(f"model.weights: no checkpoint at {path}") from None
    except InputFileError as e:
        raise ModelError(f"model.weights: {path}: {e}") from None
    except pickle.UnpicklingError:
        raise ModelError(
            f"model.weights: {path} is not a checkpoint of tensors (it may hold code, "
            "which wsol never runs; save the state dict with torch.save(model.state_dict()))"
        ) from None
    except Exception as e:  # random bytes can make the unpickler raise anything
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"model.weights: {path} is not a readable checkpoint ({first})") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        state, meta = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    elif isinstance(obj, dict):
        state, meta = obj, {}
    else:
        raise ModelError(f"model.weights: {path} holds a {type(obj).__name__}, not a state dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"model.weights: {path} does not hold a state dict of tensors")
    return state, meta


def load_into(net: torch.nn.Module, state: dict, where: str) -> None:
    """``net.load_state_dict(state)``, with a one-line error when they do not fit."""
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else "shapes differ"
        raise ModelError(
            f"model.weights: {where} does not fit the architecture: {detail[:300]}"
        ) from None


# ``wsol train`` checkpoints carry this in ``format``, and describe their network.
TRAINED_FORMAT = "wsol.classifier/1"
TRAINED_KEYS = ("arch", "class_names", "multi_label", "dilate_last", "input_size", "mean", "std")


def trained_checkpoint(weights: str) -> tuple[dict, dict] | None:
    """``(state dict, metadata)`` when ``weights`` is a checkpoint written by ``wsol
    train``; ``None`` for anything else (no path, a plain state dict, another format).

    Raises:
        ModelError: the checkpoint says it is one but lacks part of its description.
    """
    if not is_path(weights):
        return None
    state, meta = load_state(weights)
    if meta.get("format") != TRAINED_FORMAT:
        return None
    missing = [k for k in TRAINED_KEYS if k not in meta]
    if missing:
        raise ModelError(f"model.weights: {weights} lacks {', '.join(missing)} in its description")
    return state, meta
