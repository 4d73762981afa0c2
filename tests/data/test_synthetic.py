from __future__ import annotations

import json

import numpy as np

from wsol.data.synthetic import SHAPES, render, write_dataset
from wsol.data.voc import load_voc


def test_render_is_deterministic_and_splits_differ():
    a, b = render(3, "test", 5), render(3, "test", 5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(render(3, "val", 5).image, a.image)


def test_objects_masks_and_boxes_agree():
    counts, classes_per_image = [], []
    for i in range(60):
        r = render(1, "test", i)
        counts.append(len(r.labels))
        classes_per_image.append(len(set(r.labels.tolist())))
        assert r.image.shape == (128, 128, 3) and r.image.dtype == np.uint8
        for m, box in zip(r.masks, r.boxes, strict=True):
            ys, xs = np.nonzero(m)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            # Nominal diameter 22-48 px; stars and triangles are drawn 10% larger.
            assert 15 <= box[2] - box[0] <= 48 * 1.1 + 1
        # Objects never touch: each mask is its own region.
        assert not (r.masks.sum(0) > 1).any()
    assert min(counts) >= 1 and max(counts) == 4
    assert np.mean(np.array(classes_per_image) >= 2) > 0.3  # often several classes per image


def test_write_dataset_voc_and_coco_agree(tmp_path):
    root = write_dataset(tmp_path, {"test": 6}, seed=2)
    ds = load_voc(root, "test")
    coco = json.loads((root / "annotations" / "instances_test.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(SHAPES)
    assert len(coco["images"]) == 6 == len(ds)
    for s in ds.samples:
        anns = [a for a in coco["annotations"] if a["image_id"] == s.image_id]
        xywh = np.array([a["bbox"] for a in anns])
        np.testing.assert_allclose(s.boxes[:, :2], xywh[:, :2])
        np.testing.assert_allclose(s.boxes[:, 2:], xywh[:, :2] + xywh[:, 2:])
        assert all("counts" in a["segmentation"] for a in anns)
    assert (root / "SegmentationObject" / "test_00000.png").is_file()
