"""A small hand-made pseudo-label document whose boxes convert to round numbers."""

from __future__ import annotations

import pytest

from wsol.export import build_document


@pytest.fixture
def small_doc() -> dict:
    """Two classes, two images: ``sub/a.jpg`` (200 x 100) with three boxes and
    ``b.png`` (40 x 40) with none."""
    images = [
        {"id": 1, "file_name": "sub/a.jpg", "height": 100, "width": 200},
        {"id": 2, "file_name": "b.png", "height": 40, "width": 40},
    ]
    anns = [
        {"image_id": 1, "category_id": 1, "bbox": [20.0, 10.0, 50.0, 30.0], "area": 1500.0},
        {"image_id": 1, "category_id": 2, "bbox": [0.0, 0.0, 200.0, 100.0], "area": 20000.0},
        {"image_id": 1, "category_id": 1, "bbox": [100.0, 50.0, 40.0, 20.0], "area": 800.0},
    ]
    for a, s in zip(anns, (0.9, 0.5, 0.3), strict=True):
        a["score"] = s
    cats = [{"id": 1, "name": "cat & dog"}, {"id": 2, "name": "bird", "supercategory": "animal"}]
    return build_document(images, anns, cats, {"method": "gradcam", "model": "resnet50"})
