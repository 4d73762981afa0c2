"""Training data: labels from the run's readers, validation that never overlaps training,
seeded augmentation, and the validation transform ``wsol run`` uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import REPO
from wsol.config import load_config
from wsol.data import DataError
from wsol.data.loader import ImageDataset
from wsol.schema import ConfigError
from wsol.train.augment import augment, sample_seed, training_transform, validation_transform
from wsol.train.metrics import average_precision, classification_report
from wsol.train.sources import training_images
from wsol.train_config import TrainConfig

VOC = REPO.parent / "shared" / "data" / "voc2012_sample" / "VOCdevkit" / "VOC2012"
needs_voc = pytest.mark.skipif(not VOC.is_dir(), reason="../shared/data/voc2012_sample is absent")


def voc_cfg(**more) -> TrainConfig:
    return load_config(
        REPO / "configs" / "train_voc_lite0.yaml",
        {"data.root": str(VOC), "data.split": "sample", **more},
        cls=TrainConfig,
    )


@needs_voc
def test_voc_labels_and_a_held_out_fraction():
    train, val = training_images(voc_cfg(**{"val.fraction": 0.2}))
    assert len(train) + len(val) == 100 and len(val) == 20
    assert not {s.path for s in train.samples} & {s.path for s in val.samples}
    assert len(train.classes) == 20 and train.labels.shape == (80, 20)
    # Every label row matches the XML's object names (the boxes themselves are unused).
    assert (train.labels.sum(1) >= 1).all()
    again, _ = training_images(voc_cfg(**{"val.fraction": 0.2}))
    assert [s.path for s in again.samples] == [s.path for s in train.samples]


@needs_voc
def test_a_val_split_that_repeats_training_images_is_refused():
    with pytest.raises(DataError, match="100 validation images are also training images"):
        training_images(voc_cfg(**{"val.split": "sample"}))


def test_a_val_key_of_another_format_is_refused():
    cfg = load_config(
        None,
        {"data.format": "folder", "data.root": ".", "val.split": "val"},
        cls=TrainConfig,
    )
    with pytest.raises(ConfigError, match="val.split does not apply to data.format=folder"):
        training_images(cfg)


def test_folder_without_labels_cannot_train(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    cfg = load_config(None, {"data.format": "folder", "data.root": str(tmp_path)}, cls=TrainConfig)
    with pytest.raises(DataError, match="needs data.labels_file"):
        training_images(cfg)


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    cfg = load_config(REPO / "configs" / "train_voc_lite0.yaml", cls=TrainConfig).augment
    t = training_transform(cfg, (32, 48))
    x = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    a = augment(t, x, sample_seed(0, 1, 5))
    b = augment(t, x, sample_seed(0, 2, 5))
    c = augment(training_transform(cfg, (32, 48)), x, sample_seed(0, 1, 5))
    assert a.shape == (32, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, c) and not np.array_equal(a, b)


def test_validation_images_are_what_the_run_feeds_the_model(tmp_path):
    import cv2

    from wsol.data import Sample
    from wsol.data.decode import decode_image

    pixels = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "x.jpg"), pixels)
    run = ImageDataset([Sample(1, str(tmp_path / "x.jpg"), "x.jpg")], (224, 224))[0]["image"]
    mine = validation_transform(decode_image(tmp_path / "x.jpg", max_side=224)[0], (224, 224))
    assert torch.equal(run, torch.from_numpy(mine).permute(2, 0, 1))


def test_average_precision_by_hand():
    # Ranked: hit (P=1), miss, hit (P=2/3) -> AP = (1 + 2/3) / 2.
    assert (
        average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])) == (1 + 2 / 3) / 2
    )
    report = classification_report(
        np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 0]]), ["a", "b"]
    )
    assert report == {"map": 1.0, "ap": {"a": 1.0, "b": None}, "classes_scored": 1}
