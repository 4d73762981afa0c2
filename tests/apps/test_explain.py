"""``wsol explain`` and ``wsol.explain``: maps, boxes and pictures for single images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from wsol.apps.explain import explain, gradient_picture, write_explanation
from wsol.cli import main
from wsol.data.synthetic import render
from wsol.errors import UsageError
from wsol.localize import BoxParams
from wsol.models import load_model

CAT = "2007_000528"  # one cat, GT box (123, 67, 319, 310) in continuous pixels


@pytest.fixture(scope="module")
def shapes_image(tmp_path_factory):
    """A rendered test image (held out from training) with its labels."""
    r = render(1, "test", 0)
    path = tmp_path_factory.mktemp("img") / "shapes.png"
    Image.fromarray(r.image[..., ::-1]).save(path)  # render() gives BGR, as cv2 writes it
    return path, r


def test_explain_the_demo_model_on_a_held_out_image(shapes_image, tmp_path):
    path, rendered = shapes_image
    model = load_model("shapes_net")  # the demo checkpoint, packaged
    exp = explain(model, path, "gradcam", topk=2, boxes=BoxParams(threshold=0.37))
    truth = {model.class_names[c] for c in rendered.labels}
    top = exp.top(len(truth))
    assert {name for name, _ in top} == truth and all(p > 0.5 for _, p in top)
    assert exp.targets == [name for name, _ in exp.top(2)]
    assert exp.boxes.shape == (len(exp.labels), 4) == (len(exp.scores), 4)
    assert set(exp.labels) <= set(exp.targets) and len(exp.boxes) >= 1
    h, w = exp.image.shape[:2]
    assert (exp.boxes[:, 2] <= w).all() and (exp.boxes[:, 3] <= h).all()
    assert all(m is not None and m.shape == (h, w) for m in exp.maps.values())
    saved = exp.save(tmp_path / "all.png")
    with Image.open(saved) as im:  # the two classes side by side
        assert im.size[0] > im.size[1] and im.mode == "RGB"
    files = write_explanation(exp, tmp_path / "out", "shapes")
    names = sorted(p.name for p in files)
    first = exp.targets[0]
    assert f"shapes_1_{first}.png" in names and f"shapes_1_{first}.npy" in names
    raw = np.load(tmp_path / "out" / f"shapes_1_{first}.npy")
    assert raw.dtype == np.float32 and raw.shape == (16, 16)  # layer3 of a 128 px input
    with pytest.raises(UsageError, match="was not explained"):
        exp.save(tmp_path / "x.png", "nonexistent")


def test_explain_a_class_by_name_and_bad_names(shapes_image):
    path, _ = shapes_image
    model = load_model("shapes_net")
    exp = explain(model, path, "cam", classes=["star"])
    assert exp.targets == ["star"]
    with pytest.raises(UsageError, match="unknown class 'unicorn'"):
        explain(model, path, classes=["unicorn"])
    with pytest.raises(UsageError, match="RGB uint8"):
        explain(model, np.zeros((4, 4), np.float32))


def test_guided_gradcam_keeps_the_papers_pictures(shapes_image, tmp_path):
    path, _ = shapes_image
    exp = explain(load_model("shapes_net"), path, "guided_gradcam", topk=1)
    assert set(exp.pictures) == {"guided_backprop", "guided_gradcam"}
    for pictures in exp.pictures.values():
        (pic,) = pictures
        assert pic.dtype == np.uint8 and pic.shape[2] == 3 and pic.std() > 0
    files = write_explanation(exp, tmp_path, "s")
    assert sum(p.name.endswith(("_guided_backprop.png", "_guided_gradcam.png")) for p in files) == 2


def test_gradient_picture_is_centred_at_mid_grey():
    g = np.random.default_rng(0).normal(size=(3, 8, 8))
    pic = gradient_picture(g)
    assert pic.shape == (8, 8, 3) and abs(float(pic.mean()) - 127.5) < 3


@pytest.mark.e2e  # EfficientNet-Lite0
def test_explain_cli_on_a_real_voc_photo(voc_root, tmp_path, capsys):
    """Offline ImageNet weights, VOC class names through the class map."""
    image = voc_root / "JPEGImages" / f"{CAT}.jpg"
    config = REPO / "configs" / "voc_lite0.yaml"
    code = main(
        ["explain", str(image), "--config", str(config), "--class", "cat", "--out", str(tmp_path)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "predicts" in printed and "cat" in printed and "boxes (x1, y1, x2, y2)" in printed
    with Image.open(tmp_path / f"{CAT}_1_cat.png") as im:
        assert im.mode == "RGB" and max(im.size) == 360
    assert np.load(tmp_path / f"{CAT}_1_cat.npy").shape == (7, 7)  # conv_head at 224 px


@pytest.mark.e2e  # EfficientNet-Lite0
def test_explain_with_imagenet_names(voc_root):
    model = load_model("efficientnet_lite0")
    exp = explain(model, voc_root / "JPEGImages" / f"{CAT}.jpg", topk=1)
    (name,) = exp.targets
    assert name in ("Egyptian cat", "tabby", "tiger cat")  # ImageNet's domestic cats
    (box,) = exp.boxes[:1]
    gt = np.array([123, 67, 319, 310])
    # The box holds the cat: its centre lies inside the GT box.
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert gt[0] < cx < gt[2] and gt[1] < cy < gt[3]
