"""``wsol train``: a CAM-ready classifier from image-level labels.

Images and labels come from the dataset readers ``wsol run`` uses (never their boxes),
a backbone gets a fresh global-average-pooling + linear head for the dataset's classes,
and the loop writes a self-describing checkpoint that ``wsol run model.weights=...``
takes as it is.
"""

from __future__ import annotations

from wsol.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
