from __future__ import annotations

import numpy as np
import torch

from wsol.apps.train import average_precision, train
from wsol.config import TrainConfig
from wsol.models import build_model


def test_average_precision_by_hand():
    scores = np.array([[0.9], [0.8], [0.3], [0.1]])
    targets = np.array([[1], [0], [1], [0]])
    # Ranked: hit (P=1), miss, hit (P=2/3) -> AP = (1 + 2/3) / 2.
    assert average_precision(scores, targets) == (1 + 2 / 3) / 2


def test_tiny_training_run_is_reproducible_and_loadable(tmp_path):
    cfg = dict(num_images=48, val_images=8, epochs=1, batch_size=16, width=8, image_size=64)
    steps = []
    m1 = train(TrainConfig(out=str(tmp_path / "a"), **cfg), lambda s, t, i: steps.append(s))
    train(TrainConfig(out=str(tmp_path / "b"), **cfg))
    assert steps == [1, 2, 3] and m1["steps"] == 3
    assert 0.0 <= m1["val_map"] <= 1.0
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["train_config"]["num_images"] == 48
    spec = build_model("shapes_net", str(tmp_path / "a" / "model.pt"))
    assert spec.input_size == (64, 64) and len(spec.class_names) == 6
