"""Issue 21 item 5: a COCO-class run writes COCO's official category ids, and its files
score against COCO ground truth (a folder run's results.json on coco128 included)."""

from __future__ import annotations

import json

import pytest

from wsol.config import load_config
from wsol.data.base import Dataset
from wsol.data.coco import COCO_CATEGORY_IDS, load_coco, official_coco_ids
from wsol.models.imagenet import BUILTIN_CLASS_MAPS
from wsol.run.build import coco_category_ids


def test_the_official_ids_are_cocos_own(coco_root):
    """The table, written by hand, agrees with coco128's instances file (COCO 2017's)."""
    from tests.conftest import COCO_ANN

    cats = json.loads(COCO_ANN.read_text())["categories"]
    assert {c["name"]: c["id"] for c in cats} == COCO_CATEGORY_IDS
    assert COCO_CATEGORY_IDS["parking meter"] == 14 and COCO_CATEGORY_IDS["toothbrush"] == 90
    assert set(COCO_CATEGORY_IDS.values()).isdisjoint({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})


def _folder(classes):
    return Dataset("folder:x", list(classes), [], list(range(1, len(classes) + 1)))


def test_imagenet_to_coco_on_a_folder_takes_cocos_ids():
    coco_map = list(BUILTIN_CLASS_MAPS["imagenet_to_coco"])
    cfg = load_config(None, ["data.format=folder", "model.class_map=imagenet_to_coco"])
    ids = coco_category_ids(cfg, _folder(coco_map))
    assert ids is not None and len(ids) == 64
    assert dict(zip(coco_map, ids, strict=True))["parking meter"] == 14
    assert dict(zip(coco_map, ids, strict=True))["hair drier"] == 89
    # VOC data whose mappable classes (skip_unmapped) are COCO names: COCO's ids too.
    voc = load_config(None, ["data.format=voc", "model.class_map=imagenet_to_coco"])
    assert coco_category_ids(voc, _folder(["bird", "cat", "dog"])) == [16, 17, 18]


@pytest.mark.parametrize(
    ("overrides", "classes"),
    [
        (["data.format=folder", "model.class_map=imagenet_to_voc"], ["aeroplane", "bird"]),
        (["data.format=folder"], ["bird", "cat"]),  # no class map: 1..K
        # COCO data keeps its own file's ids, whatever they are
        (["data.format=coco", "data.ann_file=x.json", "model.class_map=imagenet_to_coco"], ["cat"]),
        # a class that is not COCO's: no official id for it, so 1..K for all
        (["data.format=folder", "model.class_map=imagenet_to_coco"], ["cat", "kangaroo"]),
    ],
)
def test_other_runs_keep_their_ids(overrides, classes):
    assert coco_category_ids(load_config(None, overrides), _folder(classes)) is None
    assert official_coco_ids(["cat", "kangaroo"]) is None


@pytest.mark.e2e
def test_a_folder_runs_files_carry_cocos_ids_and_score_against_coco_gt(coco_root, tmp_path, capsys):
    """The issue's case: coco128's photos as a folder with the COCO config's map. The
    run's categories are COCO's official ids, and `wsol eval` of its results.json
    against instances_train2017.json ties every box to a GT image and category."""
    from tests.conftest import COCO_ANN
    from tests.helpers import REPO
    from wsol.cli import main
    from wsol.run import run

    out = tmp_path / "run"
    cfg = load_config(
        REPO / "configs" / "coco_lite0.yaml",
        [
            f"out={out}",
            "data.format=folder",
            f"data.root={coco_root / 'train2017'}",
            "data.ann_file=",
            "data.limit=3",
            "data.num_workers=0",
            "model.device=cpu",
            "cam.targets=topk",
            "cam.topk=2",
            "export.formats=[coco,results]",
            "report.enabled=false",
        ],
    )
    run(cfg)
    doc = json.loads((out / "pseudo_labels.json").read_text())
    cats = {c["name"]: c["id"] for c in doc["categories"]}
    assert cats["parking meter"] == 14 and cats["tv"] == 72 and len(cats) == 64
    results = json.loads((out / "results.json").read_text())
    assert results and all(cats[r["category_name"]] == r["category_id"] for r in results)
    gt_ids = {s.file_name: s.image_id for s in load_coco(coco_root / "train2017", COCO_ANN).samples}
    assert all(r["file_name"] in gt_ids for r in results)

    args = ["-q", "eval", "--gt", str(COCO_ANN), "--pred", str(out / "results.json")]
    assert main([*args, "--out", str(tmp_path / "eval")]) == 0
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["num_predictions"] == len(results) > 0 and m["num_dropped"] == 0
    # The same boxes as bare ids (images numbered 1..3 by the run): refused, not scored.
    bare = [{k: r[k] for k in ("image_id", "category_id", "bbox", "score")} for r in results]
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    capsys.readouterr()
    assert main(["-q", "eval", "--gt", str(COCO_ANN), "--pred", str(tmp_path / "bare.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot be tied to the ground truth" in err and "--match-ids" in err
