"""``wsol run`` on the demo's shapes data writes every export format, trimmed as asked."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from wsol.apps.demo import CHECKPOINT, DEMO_CONFIG
from wsol.config import load_config
from wsol.export import OUTPUTS
from wsol.run import run

ALL = "export.formats=[coco, results, voc, yolo, labelstudio]"


def _run(shapes_root, out, *extra) -> dict:
    """What ``wsol run <demo config> key=value ...`` does; returns the metrics file."""
    overrides = [
        f"data.root={shapes_root}",
        "data.split=val",
        "data.limit=4",
        f"model.weights={CHECKPOINT}",
        "boxes.components=all",
        "report.enabled=false",
        f"out={out}",
        *extra,
    ]
    run(load_config(DEMO_CONFIG, overrides))
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.e2e
def test_run_writes_every_format_and_trims_only_the_files(tmp_path, shapes_root):
    from pycocotools.coco import COCO

    full = _run(shapes_root, tmp_path / "full", ALL)
    out = tmp_path / "trimmed"
    metrics = _run(
        shapes_root,
        out,
        ALL,
        "export.max_per_class=1",
        "export.min_score=0.05",
        "export.labelstudio_root=/data/local-files/?d=shapes/JPEGImages/",
    )
    for name in ("pseudo_labels.json", "results.json", "labelstudio.json"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "pseudo_labels.json").read_text())
    anns = doc["annotations"]
    # The trim: at most one box per (image, class), none under the floor, ids from 1 ...
    assert max(Counter((a["image_id"], a["category_id"]) for a in anns).values()) == 1
    assert min(a["score"] for a in anns) >= 0.05
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    # ... while the metrics scored every box: the same as the untrimmed run's.
    assert (
        metrics["num_boxes_found"]
        == full["num_boxes_found"]
        > len(anns)
        == metrics["num_boxes_written"]
    )
    for key in ("corloc", "maxboxacc_v2", "coco_ap"):
        assert metrics[key] == full[key], key
    # COCO: category ids from 1 with a supercategory, boxes only, every field there.
    assert [c["id"] for c in doc["categories"]] == list(range(1, len(doc["categories"]) + 1))
    assert all(c["supercategory"] for c in doc["categories"])
    assert all(a["segmentation"] == [] and a["iscrowd"] == 0 for a in anns)
    coco = COCO(str(out / "pseudo_labels.json"))
    dt = coco.loadRes(str(out / "results.json"))
    assert len(dt.getAnnIds()) == len(anns)
    # One VOC XML and one YOLO txt per image, one line per written box.
    stems = sorted(im["file_name"].rsplit(".", 1)[0] for im in doc["images"])
    assert len(stems) == 4
    assert sorted(p.stem for p in (out / "voc").glob("*.xml")) == stems
    labels = sorted((out / "yolo" / "labels").glob("*.txt"))
    assert [p.stem for p in labels] == stems
    assert sum(len(p.read_text().splitlines()) for p in labels) == len(anns)
    names = (out / "yolo" / "classes.txt").read_text().splitlines()
    assert names == [c["name"] for c in doc["categories"]]
    assert (out / "yolo" / "data.yaml").is_file()
    # Label Studio: one task per image, under the given root; the config lists every class.
    tasks = json.loads((out / "labelstudio.json").read_text())
    assert sorted(t["data"]["image"] for t in tasks) == [
        f"/data/local-files/?d=shapes/JPEGImages/{s}.jpg" for s in stems
    ]
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) == len(anns)
    config = (out / "labelstudio_config.xml").read_text()
    assert all(f'<Label value="{n}"/>' in config for n in names)
    # Every file is in the run's manifest, so that --overwrite removes it.
    manifest = set(json.loads((out / "run_state.json").read_text())["written"])
    on_disk = {
        p.relative_to(out).as_posix()
        for top in (n for names in OUTPUTS.values() for n in names)
        for p in ([out / top] if (out / top).is_file() else (out / top).rglob("*"))
        if p.is_file()
    }
    assert on_disk and on_disk <= manifest


@pytest.mark.e2e
def test_a_run_whose_exports_hold_no_box_warns(tmp_path, shapes_root):
    m = _run(shapes_root, tmp_path / "none", "export.min_score=1.0")
    assert m["num_boxes_found"] > 0 and m["num_boxes_written"] == 0
    assert m["boxes_dropped"] == {"below export.min_score=1": m["num_boxes_found"]}
    assert m["exports"] == ["pseudo_labels.json"]
    assert "the exports hold no box" in m["export_warning"]
    doc = json.loads((tmp_path / "none" / "pseudo_labels.json").read_text())
    assert doc["annotations"] == []
