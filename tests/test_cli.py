from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from wsol.apps.demo import DEMO_CONFIG
from wsol.cli import EXIT_OK, EXIT_USAGE, build_parser, format_table, main


def test_wrong_key_fails_fast_with_valid_keys(tmp_path, wsol_processes):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cam:\n  methd: gradcam\n")
    p = wsol_processes.run(["run", str(cfg), f"out={tmp_path / 'o'}"])
    assert p.returncode == EXIT_USAGE
    assert "unknown config key 'cam.methd'" in p.stderr and "cam.method" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_unknown_method_lists_methods(tmp_path, wsol_processes):
    args = ["run", str(DEMO_CONFIG), "cam.method=nope", f"out={tmp_path / 'o'}", "data.root=."]
    p = wsol_processes.run(args)
    assert p.returncode == EXIT_USAGE
    assert "unknown cam.method 'nope'; valid:" in p.stderr and "gradcam" in p.stderr


@pytest.mark.e2e
def test_run_on_shapes_prints_table_and_exit_codes(tmp_path, shapes_root, capsys):
    out = tmp_path / "o"
    args = [
        "-q",
        "run",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=val",
        "model.weights=none",
        f"out={out}",
        "report.enabled=false",
    ]
    assert main(args) == EXIT_OK
    first = capsys.readouterr().out
    assert "corloc@cut" in first and "v2@best" in first and "gradcam" in first
    assert "gradcam: @cut: fraction 0.3 of each map's maximum; @best: the sweep's best cut" in first
    assert main(args) == EXIT_USAGE  # refuses to overwrite a finished run
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == EXIT_OK
    assert json.loads((out / "metrics.json").read_text())["num_images"] == 16


def test_format_table_aligns_columns():
    text = format_table(
        {
            "gradcam": {"corloc": 0.8766, "num_images": 300},
            "cam": {"corloc": 0.5, "num_images": 300},
        }
    )
    lines = text.splitlines()
    assert lines[0].split() == ["run", "num_images", "corloc"]
    assert lines[2].split() == ["gradcam", "300", "0.877"]
    assert len({len(line) for line in lines}) == 1


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["demo", "--help"]])
def test_help(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0


@pytest.mark.e2e
def test_partial_run_exits_3_and_records_the_failure(tmp_path, bright_model):
    from wsol.cli import EXIT_PARTIAL

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.full((60, 90, 3), 128, np.uint8)).save(imgs / "ok.png")
    (imgs / "broken.jpg").write_bytes(b"")
    (tmp_path / "labels.json").write_text('{"ok.png": ["bright"], "broken.jpg": "bright"}')
    code = main(
        [
            "-q",
            "run",
            str(DEMO_CONFIG),
            "data.format=folder",
            f"data.root={imgs}",
            f"data.labels_file={tmp_path / 'labels.json'}",
            "model.arch=bright_net",
            "model.target_layer=features",
            f"out={tmp_path / 'o'}",
        ]
    )
    assert code == EXIT_PARTIAL
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["num_failed"] == 1 and metrics["num_images"] == 1
    (line,) = (tmp_path / "o" / "failures.jsonl").read_text().splitlines()
    assert json.loads(line)["path"].endswith("broken.jpg")


@pytest.mark.e2e  # resnet18
def test_bench_reports_wsol_and_reference_side_by_side():
    from wsol.apps.bench import bench_maps

    result = bench_maps("resnet18", "gradcam", batch_size=2, size=32, repeats=1)
    rows = result["images_per_second"]
    assert set(rows) == {
        "forward",
        "wsol gradcam",
        "wsol gradcam + upsample",
        "pytorch-grad-cam GradCAM",
    }
    assert all(v > 0 for v in rows.values())


@pytest.mark.e2e  # resnet18
def test_bench_views_times_each_view_setting(capsys, tmp_path):
    assert (
        main(
            [
                "bench",
                "--arch",
                "resnet18",
                "--batch-size",
                "2",
                "--size",
                "32",
                "--repeats",
                "1",
                "--images",
                "2",
                "--no-glue",
                "--out",
                str(tmp_path),
                "--views",
            ]
        )
        == EXIT_OK
    )
    printed = capsys.readouterr().out
    for row in ("scales [1.0]", "scales [1.0] + flip", "scales [1.0, 1.5, 2.0] + flip"):
        assert f"wsol gradcam to boxes, {row} " in printed, row


def test_unknown_class_map_is_a_one_line_error(tmp_path, shapes_root, capsys):
    code = main(
        [
            "-q",
            "run",
            str(DEMO_CONFIG),
            f"data.root={shapes_root}",
            "data.split=val",
            "model.class_map=nope",
            f"out={tmp_path / 'o'}",
        ]
    )
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "imagenet_to_voc" in err and "Traceback" not in err


@pytest.mark.e2e  # a Python process per script
@pytest.mark.parametrize("script", ["tools/calibrate_demo.py", "tools/bench_cams.py"])
def test_tools_are_thin_scripts_that_start(script):
    p = subprocess.run(
        [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert "usage" in p.stdout.lower()


def test_empty_data_root_is_a_one_line_usage_error(tmp_path, wsol_processes):
    args = ["run", str(REPO / "configs" / "shapes.yaml"), "data.root=", f"out={tmp_path / 'o'}"]
    p = wsol_processes.run(args)
    assert p.returncode == EXIT_USAGE
    assert p.stderr.startswith("wsol: error: data.root is not set") and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_explain_cli_with_the_demo_checkpoint(tmp_path, capsys):
    from wsol.data.synthetic import render

    image = tmp_path / "shape.png"
    Image.fromarray(render(1, "test", 3).image[..., ::-1]).save(image)
    out = tmp_path / "out"
    args = ["explain", str(image), "--model", "shapes_net", "--method", "guided_gradcam"]
    assert main([*args, "--topk", "1", "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "shapes_net predicts" in printed
    assert len(re.findall(r"^ +[01]\.\d{3}  \w+$", printed, flags=re.M)) == 5  # the top 5
    kinds = sorted(p.name.split("_", 2)[2] for p in out.iterdir())
    name = kinds[0].rsplit(".", 1)[0]
    assert kinds == [
        f"{name}.npy",
        f"{name}.png",
        f"{name}_guided_backprop.png",
        f"{name}_guided_gradcam.png",
    ]
    assert main(["explain", str(image), "--model", "shapes_net", "--class", "unicorn"]) == 2
    assert "unknown class 'unicorn'" in capsys.readouterr().err


def test_explain_goes_on_past_a_bad_file(tmp_path, capsys):
    from wsol.data.synthetic import render

    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    Image.fromarray(render(1, "test", 4).image[..., ::-1]).save(good)
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["explain", str(bad), str(good), "--model", "shapes_net", "--out", str(out)])
    assert code == 3  # partial: listed on stderr, the good image explained
    assert f"wsol: error: {bad}: cannot decode image" in capsys.readouterr().err
    assert any(p.name.startswith("good_1_") for p in out.iterdir())


def test_explain_on_nothing_but_a_non_image_is_a_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    code = main(["explain", str(bad), "--model", "shapes_net", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert err == f"wsol: error: {bad}: cannot decode image: not an image format PIL can read\n"


@pytest.mark.parametrize("device", ["cpu:abc", "cuda:x", "gpu"])
def test_bench_with_a_device_torch_does_not_know_is_a_one_line_exit_2(tmp_path, capsys, device):
    code = main(["bench", "--device", device, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.count("\n") == 1
    assert f"bench --device must be auto, cpu, cuda or cuda:N, got {device!r}" in err


@pytest.mark.e2e
def test_overrides_may_follow_flags(tmp_path, shapes_root, capsys):
    out = tmp_path / "o"
    args = [
        "-q",
        "run",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "--overwrite",
        "data.split=val",
        "model.weights=none",
        f"out={out}",
        "report.enabled=false",
    ]
    assert main(args) == EXIT_OK
    assert json.loads((out / "metrics.json").read_text())["num_images"] == 16
    with pytest.raises(SystemExit):
        main(["run", str(DEMO_CONFIG), "--overwrite", "--nonsense"])


def test_console_flags_and_overrides_go_anywhere():
    from wsol.cli import parse_args

    args = parse_args(["run", "C.yaml", "a=b", "--overwrite", "c=d", "-q"])
    assert args.overrides == ["a=b", "c=d"] and args.overwrite and args.quiet
    assert not args.verbose
    assert parse_args(["-v", "run", "C.yaml"]).verbose  # before the subcommand
    assert parse_args(["eval", "--gt", "g", "--pred", "p", "--verbose"]).verbose
    assert parse_args(["-q", "demo", "-v"]).quiet  # -v after does not undo -q before
    assert not parse_args(["demo"]).quiet


def test_interrupt_says_how_to_resume():
    from wsol.cli import resume_hint

    hint = resume_hint("run", ["run", "my config.yaml", "--overwrite", "out=x"])
    # the same command, pasteable (quoted), without --overwrite, which would start afresh
    assert hint.endswith("wsol run 'my config.yaml' out=x")
    assert resume_hint("eval", ["eval", "--gt", "g"]) == ""


@pytest.mark.e2e
def test_run_says_what_it_does(tmp_path, shapes_root, capsys):
    args = [
        "run",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=val",
        f"out={tmp_path / 'o'}",
        "report.enabled=false",
    ]
    assert main(args) == EXIT_OK
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("wsol: ")]
    assert lines[0] == f"wsol: gradcam on {shapes_root} into {tmp_path / 'o'}; loading torch"
    assert lines[1] == f"wsol: reading the voc dataset in {shapes_root}"
    assert lines[2] == "wsol: 16 images, 6 classes; building shapes_net on cpu"
    assert lines[-1] == "wsol: writing the outputs"
    assert main([*args, "--overwrite", "-q"]) == EXIT_OK
    assert "wsol: " not in capsys.readouterr().err


@pytest.mark.e2e
def test_calibrate_prints_a_command_that_works_when_pasted(tmp_path, shapes_root, capsys):
    """The follow-up command keeps the user's data.root (an override here), because it
    runs the calibration's own config.yaml, which names everything by absolute path; and
    it works for a config that cuts by Otsu's threshold, which calibrated cuts replace."""
    import shlex

    args = [
        "-q",
        "calibrate",
        str(DEMO_CONFIG),
        f"data.root={shapes_root}",
        "data.split=val",
        f"out={tmp_path / 'cal'}",
        "report.enabled=false",
        "boxes.threshold_mode=otsu",
    ]
    assert main(args) == EXIT_OK
    out = capsys.readouterr().out
    command = next(ln.strip() for ln in out.splitlines() if ln.strip().startswith("wsol run "))
    pasted = shlex.split(command)[1:]
    other = tmp_path / "elsewhere"
    other.mkdir()
    import os

    here = os.getcwd()
    try:
        os.chdir(other)
        assert main(["-q", *pasted, "data.split=test"]) == EXIT_OK
    finally:
        os.chdir(here)
    applied = json.loads((tmp_path / "cal_applied" / "metrics.json").read_text())
    assert applied["num_images"] == 24 and applied["cut"].startswith("calibrated")


def test_eval_says_which_classes_and_can_score_the_runs_own(tmp_path, voc_root, capsys):
    """A file whose categories name 2 of VOC's 20 classes: by default every GT class is
    scored and the hint says so; --classes pred scores the two."""
    from wsol.boxes import xyxy_to_coco
    from wsol.data import load_voc

    ds = load_voc(voc_root, "sample")
    keep = {"dog": 12, "cat": 8}
    images = [{"id": s.image_id, "file_name": s.file_name} for s in ds.samples]
    anns = [  # each image's first GT box of the class, as a perfect prediction
        {
            "image_id": s.image_id,
            "category_id": keep[ds.classes[c]],
            "bbox": [float(v) for v in xyxy_to_coco(s.boxes[s.box_labels == c][:1])[0]],
            "score": 1.0,
        }
        for s in ds.samples
        for c in s.labels
        if ds.classes[c] in keep
    ]
    cats = [{"id": i, "name": n} for n, i in keep.items()]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    base = ["eval", "--gt", str(voc_root), "--split", "sample", "--pred", str(pred)]
    assert main([*base, "--out", str(tmp_path / "all")]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Scored 20 classes" in printed and "--classes pred scores only those" in printed
    assert main([*base, "--classes", "pred", "--out", str(tmp_path / "pred")]) == EXIT_OK
    assert "Scored 2 classes (2 with GT boxes here): cat, dog" in capsys.readouterr().out
    every = json.loads((tmp_path / "all" / "metrics.json").read_text())
    own = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    assert own["classes"] == ["cat", "dog"] and own["num_pairs"] < every["num_pairs"]
    assert own["corloc"] == 1.0 and every["corloc"] < 0.5  # unpredicted classes count as misses
    assert main([*base, "--classes", "dog,unicorn"]) == EXIT_USAGE
    assert "unicorn" in capsys.readouterr().err


@pytest.mark.e2e  # a fresh Python process
def test_the_command_line_answers_without_loading_torch():
    """`wsol --help` and the parser import nothing heavy (torch takes seconds to load);
    the calibration metrics it lists are the library's."""
    code = (
        "import sys; from wsol.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'cv2', 'numpy') if m in sys.modules))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.strip() == "[]", p.stdout + p.stderr
    from wsol.cli.parser import CALIBRATION_METRICS, RANK_METRICS
    from wsol.compare.leaderboard import RANKABLE
    from wsol.evaluate.calibration import METRICS

    assert CALIBRATION_METRICS == METRICS
    assert RANK_METRICS == RANKABLE


def test_compare_without_candidates_or_sides_is_a_usage_error(capsys, tmp_path):
    base = ["compare", str(DEMO_CONFIG), f"data.root={tmp_path}", f"out={tmp_path / 'c'}"]
    assert main([*base, "--select", "data.split=val"]) == EXIT_USAGE
    assert "--grid FILE or --search" in capsys.readouterr().err
    assert main([*base, "--search", "cam.method=[gradcam, cam]"]) == EXIT_USAGE
    assert "give the select side and the report side" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_version_names_wsol_torch_and_torchvision(capsys):
    from importlib import metadata

    import wsol

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wsol {wsol.__version__} (")
    assert f"torch {metadata.version('torch')}" in line
    assert f"torchvision {metadata.version('torchvision')}" in line


def test_every_option_of_every_command_has_help():
    import argparse

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = {"wsol": parser, **{f"wsol {n}": p for n, p in sub.choices.items()}}
    assert "wsol bench" in commands
    missing = [
        f"{name} {a.option_strings[0] if a.option_strings else a.dest}"
        for name, p in commands.items()
        for a in p._actions
        if not (a.help or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("command", ["explain", "bench"])
def test_help_lists_the_methods(command, capsys):
    from wsol.cams import METHODS

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    listed = text.split("one of: ", 1)[1]
    assert set(METHODS) <= {m.strip(" ,") for m in listed.split()}


def test_unknown_class_names_suggest_the_closest(tmp_path):
    from types import SimpleNamespace

    from wsol.data import AnnotationError
    from wsol.data.folder import load_folder
    from wsol.errors import UsageError, closest_names
    from wsol.evaluate.predictions import scored_classes

    assert closest_names("tabby", ["tabby cat", "tiger cat", "dog"]) == ["tabby cat"]
    assert closest_names("Dog", ["cat", "dog", "hotdog"])[0] == "dog"
    assert closest_names("zebra", ["cat", "dog"]) == []
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "labels.csv").write_text("file,labels\na.png,dgo\n")
    with pytest.raises(AnnotationError, match=r"'dgo' \(did you mean 'dog'\?\)"):
        load_folder(tmp_path, str(tmp_path / "labels.csv"), classes=["cat", "dog"])

    gt = SimpleNamespace(classes=["cat", "dog", "person"])
    with pytest.raises(UsageError, match=r"persn \(did you mean 'person'\?\) not among"):
        scored_classes(gt, {}, "cat,persn")


def test_outputs_line_names_the_report_and_the_failures(tmp_path):
    from wsol.cli.console import format_summary, outputs_line

    line = outputs_line(tmp_path, {"num_failed": 2}, report=True)
    assert line.splitlines() == [
        f"Outputs in {tmp_path}/",
        f"Report: {tmp_path / 'report.html'}",
        f"2 images failed; each is in {tmp_path / 'failures.jsonl'}",
    ]
    assert outputs_line(tmp_path, {"num_failed": 0}, report=True).count("\n") == 1
    assert "failures.jsonl" not in outputs_line(tmp_path, {}, report=False)
    summary = format_summary({"g": {"cut": "otsu", "pxap": 0.4, "maxboxacc_threshold": 0.5}})
    assert "@best: the sweep's best cut" in summary and "@sweep: over every cut" in summary


def test_a_run_whose_every_image_failed_lists_the_reasons_and_ways_out(tmp_path):
    from wsol.cli.console import outputs_line

    fails = [
        {"path": f"/d/{n}", "stage": "decode", "reason": "empty file (0 bytes)"} for n in "ab"
    ] + [{"path": "/d/c", "stage": "decode", "reason": "cannot decode image: truncated"}]
    (tmp_path / "failures.jsonl").write_text("".join(json.dumps(f) + "\n" for f in fails))
    lines = outputs_line(tmp_path, {"num_images": 0, "num_failed": 3}, report=True).splitlines()
    assert lines[2] == f"No image was read: all 3 failed; each is in {tmp_path / 'failures.jsonl'}"
    assert lines[3] == "  2 x empty file (0 bytes): the file is empty: copy the image again"
    assert lines[4].startswith("  1 x cannot decode image: truncated: not an image wsol can decode")
    partial = outputs_line(tmp_path, {"num_images": 5, "num_failed": 3}, report=False)
    assert partial.splitlines()[1].startswith("3 images failed; each is in")
    assert "  2 x empty file" in partial


def test_log_lines_go_above_a_progress_bar(capsys):
    import logging

    from wsol.cli.console import LogLines, progress_bar

    log = logging.getLogger("wsol.test_log_lines")
    handler = LogLines()
    log.addHandler(handler)
    try:
        bar = progress_bar("x")
        bar(0, 4)
        log.warning("first")
        log.warning("second")
        bar(4, 4)
    finally:
        log.removeHandler(handler)
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert "first" in lines and "second" in lines  # each a line of its own, not after the bar


def test_exports_line_counts_the_boxes_written_and_warns_when_none_are():
    from wsol.cli.commands import exports_line

    m = {"num_boxes_found": 30, "num_boxes_written": 30, "exports": ["pseudo_labels.json"]}
    assert exports_line("cam", m) == "cam: pseudo_labels.json: 30 boxes"
    m = {
        "num_boxes_found": 30,
        "num_boxes_written": 12,
        "exports": ["pseudo_labels.json", "results.json"],
        "boxes_dropped": {"below export.min_score=0.05": 18},
    }
    assert exports_line("cam", m) == (
        "cam: pseudo_labels.json, results.json: 12 of 30 boxes each "
        "(18 below export.min_score=0.05)"
    )
    m |= {"num_boxes_written": 0, "export_warning": "the exports hold no box"}
    assert exports_line("cam", m).splitlines()[1] == "WARNING cam: the exports hold no box"
    assert exports_line("cam", {"num_images": 3}) is None
