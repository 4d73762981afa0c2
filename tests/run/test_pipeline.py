"""End-to-end runs of the pipeline on tiny datasets, checking the output contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import method_config, reference_config
from tests.report.page import Page
from wsol.config import ConfigError, load_config
from wsol.errors import WsolError
from wsol.run import run
from wsol.run.journal import RunExistsError

CONTRACT = ("pseudo_labels.json", "metrics.json", "config.yaml", "report.html")


def _scene() -> np.ndarray:
    img = np.full((60, 90, 3), 20, np.uint8)
    img[10:30, 50:70] = 240  # the object: continuous box (50, 10, 70, 30)
    return img


def _write_jpeg(path, arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=98, **kw)
    path.write_bytes(buf.getvalue())


@pytest.mark.e2e
def test_orientation_cmyk_and_bad_files_end_to_end(tmp_path, bright_model):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    _write_jpeg(imgs / "plain.jpg", _scene())
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored pixels rotated 90 degrees clockwise
    _write_jpeg(
        imgs / "rotated.jpg", np.ascontiguousarray(np.rot90(_scene(), 1)), exif=exif.tobytes()
    )
    Image.fromarray(_scene()).convert("CMYK").save(imgs / "cmyk.jpg", quality=98)
    full = (imgs / "plain.jpg").read_bytes()
    (imgs / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (imgs / "zero.jpg").write_bytes(b"")
    names = ["plain.jpg", "rotated.jpg", "cmyk.jpg", "truncated.jpg", "zero.jpg", "missing.jpg"]
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"{n},bright\n" for n in names))
    cfg = load_config(
        None,
        [
            "data.format=folder",
            f"data.root={imgs}",
            f"data.labels_file={tmp_path / 'labels.csv'}",
            "model.arch=bright_net",
            "boxes.threshold=0.5",
            f"out={tmp_path / 'out'}",
            "cam.batch_size=4",
        ],
    )
    result = run(cfg)
    out = tmp_path / "out"
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["path"].rsplit("/", 1)[1] for f in failures) == [
        "missing.jpg",
        "truncated.jpg",
        "zero.jpg",
    ]
    assert all(f["stage"] == "decode" and f["reason"] for f in failures)
    assert result.metrics["num_failed"] == 3 and result.metrics["num_images"] == 3
    doc = json.loads((out / "pseudo_labels.json").read_text())
    by_file = {im["file_name"]: im for im in doc["images"]}
    assert set(by_file) == {"plain.jpg", "rotated.jpg", "cmyk.jpg"}
    for name in ("plain.jpg", "rotated.jpg", "cmyk.jpg"):
        im = by_file[name]
        assert (im["height"], im["width"]) == (60, 90)
        (ann,) = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
        np.testing.assert_allclose(ann["bbox"], [50, 10, 20, 20], atol=1.0, err_msg=name)


def test_output_contract_on_shapes(reference_run, shapes_root):
    from pycocotools.coco import COCO

    result, out = reference_run, reference_run.out_dir
    cfg = reference_config(shapes_root, out)
    for name in CONTRACT:
        assert (out / name).is_file(), name
    assert [c["end"] for c in _chunks(out)] == [16, 24]  # a chunk every 16 images
    coco = COCO(str(out / "pseudo_labels.json"))
    assert len(coco.getImgIds()) == 24
    anns = coco.dataset["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    for a in anns:
        assert set(a) >= {"id", "image_id", "category_id", "bbox", "area", "score"}
        x, y, w, h = a["bbox"]
        assert all(isinstance(v, float) for v in a["bbox"])
        assert x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128 and w > 0 and h > 0
        assert a["area"] == pytest.approx(w * h, abs=0.01)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "num_images",
        "num_failed",
        "images_per_second",
        "corloc",
        "gt_known_loc",
        "maxboxacc",
        "maxboxacc_v2",
        "maxboxacc_v2_iou30",
        "maxboxacc_v2_iou50",
        "maxboxacc_v2_iou70",
        "coco_ap",
        "coco_ap50",
    ):
        assert key in metrics, key
    assert metrics["num_images"] == 24 and metrics["num_failed"] == 0
    assert 0.0 <= metrics["maxboxacc_v2_iou70"] <= metrics["maxboxacc_v2_iou30"] <= 1.0
    # Which cut each number is at: the shipped cut, or the sweep's best (named).
    assert metrics["cut"] == "fraction 0.35 of each map's maximum"
    assert {"corloc", "gt_known_loc", "coco_ap", "whole_image_boxes"} <= set(
        metrics["metrics_at_cut"]
    )
    assert {"maxboxacc", "maxboxacc_v2"} <= set(metrics["metrics_over_sweep"])
    sweep = json.loads((out / "sweep.json").read_text())
    j = sweep["thresholds"].index(metrics["maxboxacc_v2_iou50_threshold"])
    assert sweep["maxboxacc_v2_iou50"][j] == pytest.approx(metrics["maxboxacc_v2_iou50"])
    whole = sum(a["area"] >= 0.9 * 128 * 128 for a in anns) / len(anns)
    assert metrics["whole_image_boxes"] == pytest.approx(whole, abs=1e-4)
    assert metrics == result.metrics
    # config.yaml is the config as resolved: absolute paths, the model's defaults spelled out
    resolved = load_config(out / "config.yaml")
    assert resolved == result.config
    assert resolved.model.target_layer == "layer3" and resolved.model.input_size == [128, 128]
    assert resolved.model.resize == "stretch" and len(resolved.model.mean) == 3
    assert Path(resolved.data.root).is_absolute() and Path(resolved.out).is_absolute()
    assert Path(resolved.data.root) == Path(cfg.data.root).resolve()
    assert resolved.data.split == "test"
    assert resolved.cam == cfg.cam and resolved.boxes == cfg.boxes
    page = Page.load(out / "report.html")
    assert page.count("img") >= 3 and "maxboxacc" in page.text
    sources = [v for _, name, v in page.all_attributes() if name == "src"]
    assert sources and all(src.startswith("data:image/") for src in sources)  # one file
    assert not (out / "overlays").exists()


def test_chunks_are_sized_by_time_as_well_as_by_images(tmp_path, shapes_root, reference_run):
    """With chunk_seconds small, every batch is a chunk, however many images chunk_images
    allows; the pseudo-labels do not depend on where the chunks fell."""
    by_time = ["chunk_images=1000", "chunk_seconds=1e-6", "report.enabled=false"]
    cfg = reference_config(shapes_root, tmp_path / "t", *by_time)
    timed, whole = run(cfg), reference_run
    assert [c["end"] for c in _chunks(timed.out_dir)] == [8, 16, 24]  # every batch of 8
    assert [c["end"] for c in _chunks(whole.out_dir)] == [16, 24]  # every 16 images
    assert (timed.out_dir / "pseudo_labels.json").read_bytes() == (
        whole.out_dir / "pseudo_labels.json"
    ).read_bytes()
    assert timed.metrics["maxboxacc_v2"] == whole.metrics["maxboxacc_v2"]


def _chunks(out: Path) -> list[dict]:
    from wsol.run.journal import Journal

    return Journal(out).chunks()


@pytest.mark.e2e
def test_config_yaml_reruns_the_run_from_any_directory(tmp_path, shapes_root, monkeypatch):
    """``wsol run DIR/config.yaml out=NEW`` from elsewhere reproduces the run, byte for
    byte, though the first run named its data with a relative path."""
    monkeypatch.chdir(shapes_root.parent)
    first = run(
        None,
        [
            "data.format=voc",
            f"data.root={shapes_root.name}",
            "data.split=val",
            "model.arch=shapes_net",
            "model.weights=none",
            "report.enabled=false",
            f"out={tmp_path / 'first'}",
        ],
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = run(first.out_dir / "config.yaml", ["out=again"])
    assert again.out_dir == elsewhere / "again"
    assert (again.out_dir / "pseudo_labels.json").read_bytes() == (
        first.out_dir / "pseudo_labels.json"
    ).read_bytes()
    assert again.metrics["maxboxacc"] == first.metrics["maxboxacc"]


@pytest.mark.e2e
def test_refuses_existing_results_unless_overwrite(tmp_path, shapes_root):
    args = [
        "data.format=voc",
        f"data.root={shapes_root}",
        "data.split=val",
        "data.limit=4",
        "model.arch=shapes_net",
        "model.weights=none",
        "report.enabled=false",
        f"out={tmp_path / 'o'}",
    ]
    run(load_config(None, args))
    with pytest.raises(RunExistsError, match="--overwrite"):
        run(load_config(None, args))
    assert run(load_config(None, args), overwrite=True).metrics["num_images"] == 4


@pytest.mark.parametrize(
    "override, fragment",
    [
        # Choices are checked by the schema, as the config loads.
        ("cam.method=gradcamm", "unknown cam.method 'gradcamm'; valid: cam, deconvnet"),
        ("cam.targets=all", "unknown cam.targets 'all'; valid: gt, prob, topk"),
        ("boxes.components=some", "valid: all, largest"),
        # Names that only the model knows are checked as the run is planned.
        ("model.arch=resnet5000", "unknown model.arch"),
        ("model.target_layer=layer99", "no layer 'layer99'"),
        ("model.target_layer=fc", "2-D output"),
    ],
)
def test_bad_names_fail_before_work(tmp_path, shapes_root, override, fragment):
    out = tmp_path / "never"
    with pytest.raises(WsolError) as e:
        run(
            load_config(
                None,
                [
                    "data.format=voc",
                    f"data.root={shapes_root}",
                    "data.split=val",
                    "model.arch=shapes_net",
                    "model.weights=none",
                    f"out={out}",
                    override,
                ],
            )
        )
    assert fragment in str(e.value)
    assert not out.exists()


def test_same_config_gives_identical_json(tmp_path, shapes_root, reference_run):
    """The reference run again (its decoding in one worker process), in the main process
    and in two workers: the output must not change."""
    expected = (reference_run.out_dir / "pseudo_labels.json").read_bytes()
    for name, workers in (("a", 0), ("c", 2)):
        cfg = reference_config(
            shapes_root, tmp_path / name, "report.enabled=false", f"data.num_workers={workers}"
        )
        run(cfg)
        assert (tmp_path / name / "pseudo_labels.json").read_bytes() == expected, name


@pytest.mark.e2e
@pytest.mark.parametrize("policy", ["stretch", "letterbox"])
def test_resize_policies_give_boxes_in_original_pixels(tmp_path, bright_model, policy):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(_scene()).save(imgs / "a.png")
    (tmp_path / "labels.csv").write_text("file,labels\na.png,bright\n")
    cfg = load_config(
        None,
        [
            "data.format=folder",
            f"data.root={imgs}",
            f"data.labels_file={tmp_path / 'labels.csv'}",
            "model.arch=bright_net",
            "model.input_size=[48, 48]",
            f"model.resize={policy}",
            "boxes.threshold=0.5",
            f"out={tmp_path / 'out'}",
        ],
    )
    run(cfg)
    doc = json.loads((tmp_path / "out" / "pseudo_labels.json").read_text())
    (ann,) = doc["annotations"]
    # 90x60 squeezed into 48x48 blurs the square's edges by about a pixel of the input.
    np.testing.assert_allclose(ann["bbox"], [50, 10, 20, 20], atol=2.5)


def test_pixel_level_method_saves_saliency_pictures(method_runs):
    result = method_runs("guided_backprop")  # a report of 2 images
    assert result.metrics["num_images"] == 4
    page = Page.load(result.out_dir / "report.html")
    saliency = [e for e in page.elements("img") if e.attributes["alt"].endswith(": saliency")]
    assert len(saliency) == 2  # a saliency picture per shown image, inlined
    assert all(e.attributes["src"].startswith("data:image/jpeg;base64,") for e in saliency)


@pytest.mark.e2e  # vgg11
def test_method_that_cannot_fit_the_model_is_a_config_error(tmp_path, shapes_root):
    # VGG has no pooling + linear head, so CAM cannot use it.
    cfg = load_config(
        None,
        [
            "data.format=voc",
            f"data.root={shapes_root}",
            "data.split=val",
            "model.arch=vgg11",
            "model.class_map=" + str(_shapes_map(tmp_path)),
            "cam.method=cam",
            f"out={tmp_path / 'o'}",
        ],
    )
    with pytest.raises(ConfigError, match="cam.method=cam: .*gradcam"):
        run(cfg)
    assert not (tmp_path / "o").exists()


def _shapes_map(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text(
        "".join(
            f"{n}: [{i}]\n"
            for i, n in enumerate(["circle", "square", "triangle", "star", "cross", "ring"])
        )
    )
    return p


def test_export_formats_coco_and_voc(reference_run):
    from wsol.data.voc import parse_voc_xml

    out = reference_run.out_dir
    doc = json.loads((out / "pseudo_labels.json").read_text())
    xmls = sorted((out / "voc").glob("*.xml"))
    assert [p.stem for p in xmls] == sorted(im["file_name"][:-4] for im in doc["images"])
    objects = [o for p in xmls for o in parse_voc_xml(p.read_text())["objects"]]
    assert len(objects) == len(doc["annotations"]) > 0


def test_threshold_mode_sweep_points_to_the_evaluators_sweep(tmp_path, shapes_root):
    with pytest.raises(ConfigError, match="eval.thresholds"):
        load_config(
            None,
            [
                "data.format=voc",
                f"data.root={shapes_root}",
                "data.split=val",
                "boxes.threshold_mode=sweep",
                f"out={tmp_path / 'o'}",
            ],
        )


@pytest.mark.e2e
def test_voc_only_export_writes_no_coco_file(tmp_path, shapes_root):
    out = tmp_path / "o"
    result = run(
        load_config(
            None,
            [
                "data.format=voc",
                f"data.root={shapes_root}",
                "data.split=val",
                "data.limit=2",
                "model.arch=shapes_net",
                "model.weights=none",
                "report.enabled=false",
                "export.formats=[voc]",
                f"out={out}",
            ],
        )
    )
    assert not (out / "pseudo_labels.json").exists()
    assert len(list((out / "voc").glob("*.xml"))) == 2
    assert "coco_ap" in result.metrics  # scoring does not need the COCO file on disk


@pytest.mark.parametrize("method", sorted(__import__("wsol.cams", fromlist=["METHODS"]).METHODS))
def test_every_method_runs_through_the_pipeline(method_runs, method):
    result = method_runs(method)
    assert result.metrics["num_images"] == 4 and result.metrics["num_failed"] == 0
    assert result.metrics["num_bad_maps"] == 0 and result.num_boxes_found >= 4
    assert 0.0 <= result.metrics["corloc"] <= 1.0
    assert (result.out_dir / "report.html").is_file()


def test_multi_scale_and_flip_views_run_end_to_end(tmp_path, shapes_root, method_runs):
    def boxes(result):
        assert result.metrics["num_images"] == 4 and result.metrics["num_bad_maps"] == 0
        return json.loads((result.out_dir / "pseudo_labels.json").read_text())["annotations"]

    single = boxes(method_runs("gradcam"))
    views = ["cam.scales=[1.0, 1.5]", "cam.flip=true"]
    fused = boxes(run(method_config(shapes_root, tmp_path / "views", "gradcam", *views)))
    assert len(fused) == len(single)  # the same targets (chosen at 1x, unmirrored) ...
    assert [a["category_id"] for a in fused] == [a["category_id"] for a in single]
    assert [a["bbox"] for a in fused] != [a["bbox"] for a in single]  # ... other maps
