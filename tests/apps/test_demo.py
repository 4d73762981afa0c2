"""The demo end to end: the committed checkpoint must localize its held-out split."""

from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from wsol.apps.demo import TEST_IMAGES, check_demo_out, run_demo
from wsol.errors import UsageError


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    results = run_demo(tmp_path)
    grad, cam = results["gradcam"].metrics, results["cam"].metrics
    rendered = sorted((tmp_path / "data" / "shapes" / "JPEGImages").glob("*.jpg"))
    assert len(rendered) == TEST_IMAGES == 300  # the README's demo: 300 held-out images
    assert grad["num_images"] == len(rendered) and grad["num_failed"] == 0
    assert grad["corloc"] >= 0.80  # the bar for Grad-CAM on the held-out split
    assert cam["num_images"] == TEST_IMAGES and 0.0 < cam["corloc"] < grad["corloc"]
    for name in ("pseudo_labels.json", "metrics.json", "config.yaml", "report.html"):
        assert (tmp_path / name).is_file() and (tmp_path / "cam" / name).is_file()
    coco = COCO(str(tmp_path / "pseudo_labels.json"))
    assert len(coco.getImgIds()) == TEST_IMAGES and len(coco.getAnnIds()) >= TEST_IMAGES
    assert json.loads((tmp_path / "metrics.json").read_text()) == grad


def test_the_demo_refuses_a_folder_that_holds_another_commands_run(tmp_path, reference_run, capsys):
    from wsol.cli import EXIT_USAGE, main

    out = reference_run.out_dir  # a `wsol run` of other data than the demo's
    before = (out / "pseudo_labels.json").read_bytes()
    assert main(["-q", "demo", "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"wsol: error: --out {out} holds another command's run") and (
        err.count("\n") == 1
    )
    assert (out / "pseudo_labels.json").read_bytes() == before
    assert not (out / "data").exists()  # refused before rendering anything
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "last.pt").write_bytes(b"x")
    with pytest.raises(UsageError, match="holds a `wsol train` run \\(last.pt\\)"):
        run_demo(tmp_path / "trained")


def test_the_demo_replaces_its_own_earlier_runs(tmp_path):
    import yaml

    out = tmp_path / "demo"
    for folder in (out, out / "cam"):
        folder.mkdir(parents=True)
        data = {"data": {"root": str(out / "data" / "shapes")}}
        (folder / "config.yaml").write_text(yaml.safe_dump(data))
        (folder / "metrics.json").write_text("{}")
    for folder in (out, out / "cam"):
        check_demo_out(folder, out / "data" / "shapes")  # its own: no error
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "run_state.json").write_text("{}")
    check_demo_out(tmp_path / "killed", tmp_path / "killed" / "data")  # nothing to lose
