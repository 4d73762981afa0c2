"""The second reliability pass (issue 14): one writer per folder, nothing removed that
the run did not write, SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO
from wsol.fileio import FolderBusyError, FolderLock

ENV = {**{k: v for k, v in os.environ.items() if k != "WSOL_FAULT"}, "PYTHONPATH": str(REPO)}


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    with (
        FolderLock(tmp_path / "out"),
        pytest.raises(
            FolderBusyError, match=f"in use by another wsol process \\(pid {os.getpid()}\\)"
        ),
    ):
        FolderLock(tmp_path / "out").acquire()
    with FolderLock(tmp_path / "out"):  # released: free again
        pass


def _run_args(shapes_root, out, method):
    """``wsol -q run ...`` on 4 images of the shapes val split."""
    return [
        "-q",
        "run",
        str(REPO / "wsol" / "assets" / "demo.yaml"),
        f"data.root={shapes_root}",
        "data.split=val",
        "data.limit=4",
        "model.weights=DEFAULT",
        f"cam.method={method}",
        "report.enabled=false",
        f"out={out}",
    ]


def test_one_writer_per_out_two_runs_started_together_20_times(
    tmp_path, shapes_root, wsol_processes
):
    for trial in range(20):
        out = tmp_path / f"o{trial}"
        both = [_run_args(shapes_root, out, m) for m in ("gradcam", "cam")]
        done = wsol_processes.run_together(both, env=ENV)  # two processes, forked together
        codes, errors = [p.returncode for p in done], [p.stderr for p in done]
        assert sorted(codes) == [0, 2], (trial, codes, errors)
        loser = errors[codes.index(2)]
        assert "in use by another wsol process" in loser or "different config" in loser, loser
        assert "Traceback" not in loser


def test_resume_cleans_only_its_own_temp_files(tmp_path, shapes_root, wsol_processes):
    cmd = [*_run_args(shapes_root, tmp_path, "gradcam"), "chunk_images=2", "cam.batch_size=2"]
    killed = wsol_processes.run(cmd, env={**ENV, "WSOL_FAULT": "chunk:0"})
    assert killed.returncode == -signal.SIGKILL
    (tmp_path / ".config.yaml.x1.tmp").write_text("a killed write of wsol's")
    (tmp_path / ".notes.txt.tmp").write_text("the user's")
    (tmp_path / "chunks" / ".mine.tmp").write_text("the user's")
    resumed = wsol_processes.run(cmd, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert not (tmp_path / ".config.yaml.x1.tmp").exists()
    assert (tmp_path / ".notes.txt.tmp").exists() and (tmp_path / "chunks" / ".mine.tmp").exists()


@pytest.mark.e2e  # two `python -m wsol train` processes, stopped by SIGTERM
def test_sigterm_stops_like_ctrl_c_and_the_rerun_resumes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "wsol",
        "-q",
        "train",
        str(REPO / "configs" / "demo_train.yaml"),
        "shapes.num_images=32",
        "shapes.val_images=8",
        "shapes.image_size=64",
        "model.weights=none",
        "train.batch_size=16",
        "train.epochs=400",
        "train.threads=1",
        f"out={tmp_path}",
    ]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=60)
    started = time.time()
    assert p.returncode == 143, err
    assert "interrupted; what was finished is on disk, and this resumes it:" in err
    assert f"wsol -q train {REPO / 'configs' / 'demo_train.yaml'}" in err  # pasteable
    assert "Traceback" not in err
    # The same command resumes: it says so, and stops the same way again.
    p = subprocess.Popen([c for c in cmd if c != "-q"], env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
        metrics = tmp_path / "train_metrics.json"  # the first may have stopped before it
        if metrics.exists() and metrics.stat().st_mtime > started:
            break
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "resuming: " in err, err


def test_out_that_is_a_file_is_one_line_exit_2(tmp_path, shapes_root, wsol_processes):
    (tmp_path / "f").write_text("x")
    for cmd in (
        _run_args(shapes_root, tmp_path / "f", "gradcam"),
        _run_args(shapes_root, tmp_path / "f" / "sub", "gradcam"),
    ):
        r = wsol_processes.run(cmd, env=ENV)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("wsol: error: ") and len(r.stderr.strip().splitlines()) == 1


def test_only_regular_files_are_read_and_size_is_capped(tmp_path):
    from wsol.data.decode import DecodeError, decode_image

    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "big.jpg").write_bytes(b"\xff" * 2048)
    started = time.perf_counter()
    for name, why in [("x.jpg", "FIFO"), ("dir.jpg", "directory"), ("zero.jpg", "device")]:
        with pytest.raises(DecodeError, match=f"not a regular file.*{why}"):
            decode_image(tmp_path / name)
    assert time.perf_counter() - started < 5  # nothing waited on the FIFO or read /dev/zero
    with pytest.raises(DecodeError, match="over the .* limit"):
        decode_image(tmp_path / "big.jpg", max_bytes=1024)


@pytest.mark.e2e
def test_a_fifo_and_dev_zero_in_a_folder_dataset_are_recorded_failures(tmp_path, bright_model):
    import json
    from pathlib import Path

    import cv2
    import numpy as np

    from wsol.config import load_config
    from wsol.run import run

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "ok.jpg"), np.full((40, 60, 3), 200, np.uint8))
    os.mkfifo(images / "fifo.jpg")
    (images / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "labels.json").write_text(
        '{"ok.jpg": ["bright"], "fifo.jpg": ["bright"], "zero.jpg": ["bright"]}'
    )
    cfg = load_config(
        None,
        [
            "data.format=folder",
            f"data.root={images}",
            f"data.labels_file={tmp_path / 'labels.json'}",
            "model.arch=bright_net",
            "report.enabled=false",
            "eval.enabled=false",
            f"out={tmp_path / 'out'}",
        ],
    )
    result = run(cfg)
    assert result.metrics["num_images"] == 1 and result.metrics["num_failed"] == 2
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").open()]
    # A symlink in the user's folder is followed, and a special file is refused wherever
    # it lies: the FIFO, and /dev/zero behind the link.
    assert [Path(f["path"]).name for f in failures] == ["fifo.jpg", "zero.jpg"]
    assert all(f["reason"] == "not a regular file (a FIFO, device or socket)" for f in failures)


# --- Resume proves its inputs, and chunks their contents -------------------------------


def _copy_shapes(shapes_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    return root


def _cfg(root, out, *more):
    from wsol.config import load_config

    return load_config(
        REPO / "wsol" / "assets" / "demo.yaml",
        [
            f"data.root={root}",
            "data.split=val",
            "model.weights=DEFAULT",
            "cam.batch_size=4",
            "chunk_images=4",
            "report.enabled=false",
            f"out={out}",
            *more,
        ],
    )


def _as_if_killed(out, keep_chunks: int) -> None:
    """Leave ``out`` as a run killed after its first ``keep_chunks`` chunks leaves it."""
    import shutil

    chunks = sorted((out / "chunks").glob("chunk_*.json"))
    for c in chunks[keep_chunks:]:
        c.unlink()
    for p in out.iterdir():
        if p.name not in ("run_state.json", "config.yaml", "chunks", ".wsol.lock"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("image bytes", "images"),
        ("gt xml", "annotations"),
        ("checkpoint", "checkpoint"),
    ],
)
def test_resume_with_changed_inputs_is_refused_naming_what_changed(
    tmp_path, shapes_root, change, named
):
    import shutil

    from wsol.models import DEMO_CHECKPOINT
    from wsol.run import run
    from wsol.run.journal import RunExistsError

    root = _copy_shapes(shapes_root, tmp_path)
    ckpt = tmp_path / "model.pt"
    shutil.copy(DEMO_CHECKPOINT, ckpt)
    cfg = _cfg(root, tmp_path / "out", f"model.weights={ckpt}")
    run(cfg)
    _as_if_killed(tmp_path / "out", 2)
    if change == "image bytes":
        img = sorted((root / "JPEGImages").glob("*.jpg"))[-1]
        img.write_bytes(img.read_bytes() + b"\0")
    elif change == "gt xml":
        xml = sorted((root / "Annotations").glob("*.xml"))[-1]
        xml.write_text(
            xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1) + " "
        )
    else:
        state = torch_load(ckpt)
        state["state_dict"]["fc.bias"] += 1
        torch_save(state, ckpt)
    with pytest.raises(RunExistsError, match=f"changed since: {named}\\)"):
        run(cfg)
    assert run(cfg, overwrite=True).metrics["num_images"] == 16


def torch_load(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def torch_save(obj, path):
    import torch

    torch.save(obj, path)


def _damage(path, how: str) -> None:
    import json

    if how == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        chunk = json.loads(path.read_text())
        if how == "no eval":
            del chunk["eval"]
        elif how == "images removed":
            chunk["images"] = chunk["images"][:1]
        elif how == "bbox edited":
            chunk["annotations"][0]["bbox"][0] += 5.0
        path.write_text(json.dumps(chunk, separators=(",", ":")))


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["truncated", "empty", "no eval", "images removed", "bbox edited"])
def test_a_damaged_chunk_is_redone_and_the_output_is_as_if_never_killed(tmp_path, shapes_root, how):
    from wsol.run import run

    cfg = _cfg(shapes_root, tmp_path / "b")
    straight = run(cfg)  # what the run writes when nothing happens to it
    expected = (tmp_path / "b" / "pseudo_labels.json").read_bytes()
    _as_if_killed(tmp_path / "b", 3)
    _damage(sorted((tmp_path / "b" / "chunks").glob("chunk_*.json"))[1], how)
    resumed = run(cfg)
    assert (tmp_path / "b" / "pseudo_labels.json").read_bytes() == expected
    assert resumed.metrics["corloc"] == straight.metrics["corloc"]


# --- wsol deletes only what it wrote ---------------------------------------------------


@pytest.mark.e2e
def test_overwrite_removes_only_what_the_run_wrote(tmp_path, shapes_root):
    from wsol.config import with_overrides
    from wsol.run import run

    out = tmp_path / "out"
    first = _cfg(shapes_root, out, "data.limit=6", "report.enabled=true", "report.num_images=3")

    run(with_overrides(first, ["export.formats=[coco, voc, yolo, labelstudio]"]))
    assert len(list((out / "voc").glob("*.xml"))) == 6
    assert len(list((out / "yolo" / "labels").glob("*.txt"))) == 6
    (out / "voc" / "mine.xml").write_text("<annotation/>")
    (out / "overlays").mkdir()  # as an older wsol's report left it, plus the user's file
    (out / "overlays" / "mine.png").write_bytes(b"png")
    (out / "notes.txt").write_text("the user's")
    second = with_overrides(first, ["report.enabled=false", "cam.method=cam"])
    run(second, overwrite=True)
    assert [p.name for p in (out / "overlays").iterdir()] == ["mine.png"]
    assert [p.name for p in (out / "voc").iterdir()] == ["mine.xml"]
    assert not (out / "yolo").exists()  # emptied folders of its own go too
    assert not (out / "labelstudio.json").exists() and not (out / "report.html").exists()
    assert (out / "notes.txt").read_text() == "the user's"
    assert (out / "pseudo_labels.json").is_file() and (out / "metrics.json").is_file()


def test_voc_split_lines_are_read_whole(tmp_path):
    import cv2
    import numpy as np

    from wsol.data import load_voc
    from wsol.data.voc import voc_xml

    root = tmp_path / "VOC"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True)
    for stem in ("img", "img 01"):
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), np.zeros((10, 10, 3), np.uint8))
        xml = voc_xml(f"{stem}.jpg", 10, 10, ["cat"], np.array([[1.0, 1, 5, 5]]), [1.0])
        (root / "Annotations" / f"{stem}.xml").write_text(xml)
    (root / "ImageSets" / "Main" / "val.txt").write_text("img\nimg 01\n")
    (root / "ImageSets" / "Main" / "cat_val.txt").write_text("img  1\nimg 01 -1\n")
    assert [s.file_name for s in load_voc(root, "val").samples] == ["img.jpg", "img 01.jpg"]
    # VOC's per-class split files end each line with a -1/0/1 flag: the id is before it.
    assert [s.file_name for s in load_voc(root, "cat_val").samples] == ["img.jpg", "img 01.jpg"]


# --- Paths stay inside the dataset root ------------------------------------------------


def test_coco_file_names_outside_the_root_are_recorded_failures(tmp_path):
    import json

    import cv2
    import numpy as np

    from wsol.config import load_config
    from wsol.data import build_dataset

    root = tmp_path / "images"
    root.mkdir()
    for p in (root / "in.jpg", tmp_path / "outside.jpg"):
        cv2.imwrite(str(p), np.zeros((10, 10, 3), np.uint8))
    names = ["in.jpg", "../outside.jpg", str(tmp_path / "outside.jpg"), "/etc/hostname"]
    doc = {
        "images": [
            {"id": i + 1, "file_name": n, "height": 10, "width": 10} for i, n in enumerate(names)
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "a"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    data = ["data.format=coco", f"data.root={root}", f"data.ann_file={tmp_path / 'ann.json'}"]
    ds = build_dataset(load_config(None, data).data)
    assert [s.file_name for s in ds.samples] == ["in.jpg"]
    assert [f["reason"].split(" (")[0] for f in ds.failures] == ["outside data.root"] * 3
    ds = build_dataset(load_config(None, [*data, "data.allow_outside_root=true"]).data)
    assert len(ds.samples) == 4


def test_folder_labels_outside_the_root_and_the_run_folder_inside_it(tmp_path):
    import json

    import cv2
    import numpy as np

    from wsol.config import load_config
    from wsol.data import build_dataset

    root = tmp_path / "photos"
    (root / "runs" / "last" / "overlays").mkdir(parents=True)
    cv2.imwrite(str(root / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(root / "runs" / "last" / "overlays" / "x.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "evil.jpg"), np.zeros((10, 10, 3), np.uint8))
    cfg = load_config(None, ["data.format=folder", f"data.root={root}"])
    scanned = build_dataset(cfg.data, exclude=root / "runs" / "last")
    assert [s.file_name for s in scanned.samples] == ["a.jpg"]  # not the last run's overlays
    (tmp_path / "labels.json").write_text(json.dumps({"a.jpg": ["x"], "../evil.jpg": ["x"]}))
    labelled = load_config(
        None,
        ["data.format=folder", f"data.root={root}", f"data.labels_file={tmp_path / 'labels.json'}"],
    )
    ds = build_dataset(labelled.data)
    assert [s.file_name for s in ds.samples] == ["a.jpg"]
    assert (
        ds.failures[0]["path"].endswith("evil.jpg")
        and "outside data.root" in ds.failures[0]["reason"]
    )


@pytest.mark.parametrize(
    ("out", "message"), [("", "out is empty"), ("/", "root of the file system")]
)
def test_out_must_name_a_folder(out, message):
    from wsol.config import ConfigError, load_config
    from wsol.train_config import TrainConfig

    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"out={out}"])
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"out={out}"], cls=TrainConfig)


# --- Expected failures are one line, through the one error base -------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("labels.csv", b"file,tags\na.jpg,x\n", "CSV needs a header"),
        ("labels.csv", b"file,labels\na.jpg\n", "line 2 has no labels column"),
        ("labels.csv", b"file,labels\na.jpg,\xff\xfe\n", "not UTF-8 text"),
        ("labels.json", b'{"a.jpg": 5}', "must map to a label or a list"),
        ("labels.json", b'{"a.jpg": null}', "must map to a label or a list"),
        ("labels.json", b'{"a.jpg": [["x"]]}', "must map to a label or a list"),
    ],
)
def test_malformed_folder_labels_files_are_one_line_errors(tmp_path, name, content, message):
    from wsol.data import AnnotationError, load_folder

    (tmp_path / name).write_bytes(content)
    with pytest.raises(AnnotationError, match=message):
        load_folder(tmp_path, str(tmp_path / name))


def test_a_csv_with_a_bom_as_excel_writes_it_is_read(tmp_path):
    from wsol.data import load_folder

    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbffile,labels\na.jpg,cat\n")
    assert load_folder(tmp_path, str(tmp_path / "l.csv")).classes == ["cat"]


@pytest.mark.parametrize("kind", ["random bytes", "empty", "raw pickle", "wrong keys", "code"])
def test_bad_checkpoints_are_one_line_model_errors(tmp_path, kind):
    import pickle

    import torch

    from wsol.models import ModelError, build_model

    path = tmp_path / "w.pt"
    if kind == "random bytes":
        path.write_bytes(os.urandom(200))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "raw pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "wrong keys":
        torch.save({"state_dict": {"x": torch.zeros(1)}}, path)
    else:
        torch.save({"run": os.system}, path)  # loading it with pickle would run code
    with pytest.raises(ModelError, match="model.weights") as e:
        build_model("resnet18", str(path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"per_class": [1]}, "per_class must be an object"),
        ({"per_class": 5}, "per_class must be an object"),
        ({"images": 4}, "images must be a list"),
        ({"threshold": True}, "numbers in \\[0, 1\\]"),
        ({"per_class": {"cat": 0.3}}, "entries must be objects"),
    ],
)
def test_malformed_calibration_files_are_one_line_errors(tmp_path, extra, message):
    import json

    from wsol.evaluate.calibration import FORMAT, CalibrationError, load_calibration

    doc = {"format": FORMAT, "metric": "maxboxacc", "threshold": 0.3, "score": 0.5, "pairs": 3}
    (tmp_path / "c.json").write_text(json.dumps({**doc, **extra}))
    with pytest.raises(CalibrationError, match=message):
        load_calibration(tmp_path / "c.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repeats", "-1"], "--repeats must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--size", "0"], "--size must be at least 32"),
    ],
)
def test_bench_arguments_are_checked(capsys, args, message):
    from wsol.cli import main

    assert main(["bench", "--arch", "efficientnet_lite0", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value):
    from wsol.config import ConfigError, load_config
    from wsol.train_config import TrainConfig

    with pytest.raises(ConfigError, match="train.lr must be"):
        load_config(None, [f"train.lr={value}"], cls=TrainConfig)
    with pytest.raises(ConfigError, match="eval.iou must be"):
        load_config(None, [f"eval.iou={value}"])


@pytest.mark.e2e
def test_a_full_disk_is_one_line_exit_1_and_the_rerun_resumes(
    tmp_path, shapes_root, monkeypatch, capsys
):
    import errno

    from wsol import fileio
    from wsol.cli import main

    args = ["-q", "run", str(REPO / "wsol" / "assets" / "demo.yaml"), f"data.root={shapes_root}"]
    args += ["data.split=val", "data.limit=4", "model.weights=DEFAULT", f"out={tmp_path}"]
    real_fsync = fileio.os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device", "report.html")

    monkeypatch.setattr(fileio.os, "fsync", full)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "disk full while writing report.html; free space and run the same command again" in err
    monkeypatch.setattr(fileio.os, "fsync", real_fsync)
    assert main(args) == 0


def test_an_empty_split_says_so(tmp_path, shapes_root):
    from wsol.config import load_config
    from wsol.run import run

    cfg = load_config(
        REPO / "wsol" / "assets" / "demo.yaml",
        [f"data.root={shapes_root}", "data.split=val", "data.limit=0", f"out={tmp_path}"],
    )
    with pytest.raises(Exception, match="no images to process .*data.limit=0"):
        run(cfg)


# --- wsol eval is strict ---------------------------------------------------------------


@pytest.fixture
def eval_files(tmp_path, shapes_root):
    """The val GT, and predictions that are its own boxes (a perfect file)."""
    import json

    gt = shapes_root / "annotations" / "instances_val.json"
    doc = json.loads(gt.read_text())
    pred = {
        "images": doc["images"],
        "categories": doc["categories"],
        "annotations": [
            {**{k: a[k] for k in ("id", "image_id", "category_id", "bbox")}, "score": 1.0}
            for a in doc["annotations"]
        ],
    }
    return gt, pred, tmp_path


def _eval(gt, pred, tmp_path, *flags):
    import json

    from wsol.cli import main

    (tmp_path / "pred.json").write_text(json.dumps(pred))
    code = main(
        [
            "-q",
            "eval",
            "--gt",
            str(gt),
            "--pred",
            str(tmp_path / "pred.json"),
            "--out",
            str(tmp_path / "o"),
            *flags,
        ]
    )
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text()) if code == 0 else None
    return code, metrics


def test_a_perfect_file_scores_one(eval_files):
    code, m = _eval(*eval_files)
    assert code == 0 and m["corloc"] == 1.0 and m["num_invalid"] == 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda a: 7,
        lambda a: None,
        lambda a: {**a, "bbox": [1, 2, 3]},
        lambda a: {**a, "bbox": [1, 2, 3, 4, 5]},
        lambda a: {**a, "bbox": 5},
        lambda a: {**a, "bbox": [float("nan")] * 4},
        lambda a: {**a, "bbox": [0, 0, -3, 4]},
        lambda a: {**a, "image_id": [a["image_id"]]},
        lambda a: {**a, "image_id": {"id": a["image_id"]}},
        lambda a: {**a, "score": None},
        lambda a: {**a, "score": float("nan")},
        lambda a: {**a, "category_id": True},
        lambda a: {**a, "category_id": 2**64},
    ],
)
def test_malformed_predictions_are_refused_and_counted(eval_files, edit):
    gt, pred, tmp_path = eval_files
    pred["annotations"][0] = edit(pred["annotations"][0])
    code, m = _eval(gt, pred, tmp_path)
    assert code == 0 and m["num_invalid"] == 1
    assert m["num_predictions"] == len(pred["annotations"]) - 1


def test_all_nan_boxes_score_nothing(eval_files):
    gt, pred, tmp_path = eval_files
    for a in pred["annotations"]:
        a["bbox"] = [float("nan")] * 4
    code, m = _eval(gt, pred, tmp_path)
    assert code == 0 and m["coco_ap"] == 0.0 and m["corloc"] == 0.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: {**p, "annotations": 5}, "needs an 'annotations' list"),
        (lambda p: {**p, "categories": "abc"}, "'categories' must be a list"),
        (lambda p: {**p, "categories": [{"id": 1}]}, "'categories' must be a list"),
        (lambda p: {**p, "images": [1, 2, 3]}, "'images' must be a list"),
        (lambda p: 5, "a COCO dict or a results list"),
    ],
)
def test_malformed_prediction_files_are_one_line_exit_2(eval_files, capsys, edit, message):
    gt, pred, tmp_path = eval_files
    code, _ = _eval(gt, edit(pred), tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_predictions_of_another_split_need_match_ids(eval_files, capsys):
    gt, pred, tmp_path = eval_files
    for im in pred["images"]:
        im["file_name"] = "test_" + im["file_name"]
    code, _ = _eval(gt, pred, tmp_path)
    assert code == 2 and "--match-ids" in capsys.readouterr().err
    code, m = _eval(gt, pred, tmp_path, "--match-ids")
    assert code == 0 and m["corloc"] == 1.0


@pytest.mark.parametrize("iou", ["0", "-1", "nan", "1.5"])
def test_eval_iou_must_be_in_0_1(eval_files, capsys, iou):
    code, _ = _eval(*eval_files, "--iou", iou)
    assert code == 2 and "--iou must be in (0, 1]" in capsys.readouterr().err


def test_eval_paths_that_are_not_files(eval_files, capsys):
    from wsol.cli import main

    gt, _pred, tmp_path = eval_files
    (tmp_path / "f").write_text("x")
    assert main(["eval", "--gt", str(gt), "--pred", str(tmp_path)]) == 2
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00binary")
    assert main(["eval", "--gt", str(tmp_path / "bin.json"), "--pred", str(gt)]) == 2
    assert main(["eval", "--gt", str(gt), "--pred", str(gt), "--out", str(tmp_path / "f")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_python_had_to_drop_is_sent_again(signum):
    # SIGTERM landing in logging's at-fork lock release (a DataLoader starting a worker)
    # was printed as "Exception ignored" and lost: wsol train went on for its 400 epochs.
    from wsol.cli import Terminated, redeliver_swallowed

    exc = Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    class Finalized:
        def __del__(self):
            raise exc()

    other: list = []
    handler = signal.signal(signum, lambda s, f: (_ for _ in ()).throw(exc()))
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: redeliver_swallowed(u, other.append)
    try:
        with pytest.raises(exc):
            Finalized()  # dropped at once: its exception cannot propagate from __del__
            deadline = time.time() + 10
            while time.time() < deadline:
                time.sleep(0.01)
    finally:
        sys.unraisablehook = hook
        signal.signal(signum, handler)
    assert other == []


def test_other_unraisable_exceptions_go_to_the_usual_hook():
    from wsol.cli import redeliver_swallowed

    class Unraisable:
        exc_type = ValueError

    seen: list = []
    redeliver_swallowed(Unraisable(), seen.append)
    assert len(seen) == 1
