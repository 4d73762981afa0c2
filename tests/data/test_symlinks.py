"""Symlinks in the user's dataset tree are their layout and are followed; names that an
annotation or labels file points outside the root are not; a run with nothing readable
says why, counted, with the way out, and leaves failures.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from wsol.config import load_config
from wsol.data import build_dataset
from wsol.run.failures import common_reasons, way_out


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((12, 16, 3), 90, np.uint8))


def test_a_voc_root_whose_folders_are_symlinks_reads_every_image(tmp_path, shapes_root):
    root = tmp_path / "VOC2012"
    root.mkdir()
    for name in ("JPEGImages", "Annotations", "ImageSets"):  # VOC2012/JPEGImages -> /data/...
        (root / name).symlink_to(shapes_root / name, target_is_directory=True)
    data = ["data.format=voc", "data.split=val"]
    linked = build_dataset(load_config(None, [*data, f"data.root={root}"]).data)
    direct = build_dataset(load_config(None, [*data, f"data.root={shapes_root}"]).data)
    assert len(linked.samples) == len(direct.samples) == 16 and not linked.failures
    assert [s.file_name for s in linked.samples] == [s.file_name for s in direct.samples]
    assert all(s.path.startswith(str(root / "JPEGImages")) for s in linked.samples)


def test_a_folder_of_symlinked_files_and_folders_is_scanned_through_them(tmp_path):
    store, root = tmp_path / "store", tmp_path / "photos"
    _jpeg(store / "a.jpg")
    _jpeg(store / "sub" / "b.jpg")
    root.mkdir()
    (root / "a.jpg").symlink_to(store / "a.jpg")
    (root / "more").symlink_to(store / "sub", target_is_directory=True)
    (store / "sub" / "loop").symlink_to(root, target_is_directory=True)  # a link loop
    (root / "again").symlink_to(store / "sub", target_is_directory=True)  # a second way in
    ds = build_dataset(load_config(None, ["data.format=folder", f"data.root={root}"]).data)
    assert [s.file_name for s in ds.samples] == ["a.jpg", "again/b.jpg"] and not ds.failures


def test_names_a_labels_file_points_outside_the_root_are_still_refused(tmp_path):
    store, root = tmp_path / "store", tmp_path / "photos"
    _jpeg(store / "sub" / "b.jpg")
    root.mkdir()
    (root / "more").symlink_to(store / "sub", target_is_directory=True)
    names = ["more/b.jpg", "../store/sub/b.jpg", "more/../../store/sub/b.jpg", str(store)]
    (tmp_path / "labels.json").write_text(json.dumps({n: ["x"] for n in names}))
    data = ["data.format=folder", f"data.root={root}", f"data.labels_file={tmp_path}/labels.json"]
    ds = build_dataset(load_config(None, data).data)
    assert [s.file_name for s in ds.samples] == ["more/b.jpg"]  # through the user's link
    assert len(ds.failures) == 3
    assert all("data.allow_outside_root=true" in f["reason"] for f in ds.failures)


def test_common_reasons_are_counted_with_the_way_out():
    failures = [
        *[{"stage": "decode", "reason": "file not found"}] * 3,
        *[{"stage": "decode", "reason": "not a regular file (a FIFO, device or socket)"}] * 2,
        {"stage": "decode", "reason": "cannot identify image file"},
        {"stage": "path", "reason": "outside data.root (data.allow_outside_root=true allows it)"},
        {"stage": "annotation", "reason": "no <size> element"},
    ]
    lines = common_reasons(failures, top=3)
    assert lines[0] == "3 x file not found: check data.root (and data.image_dir for VOC)"
    assert lines[1].startswith("2 x not a regular file") and "regular files only" in lines[1]
    assert lines[2] == (
        "1 x cannot identify image file: not an image wsol can decode: re-save it as JPEG "
        "or PNG, or remove it"
    )
    assert lines[3] == "2 more with 2 other reasons" and len(lines) == 4
    assert way_out("outside data.root (data.allow_outside_root=true allows it)", "path") == ""
    assert way_out("no <size> element", "annotation") == "fix or remove the annotation file"
    assert way_out("file of 300 MiB is over the 256 MiB limit", "decode").startswith(
        "data.max_file_mb"
    )


def _nothing_readable(tmp_path: Path, out: Path):
    root = tmp_path / "photos"
    root.mkdir(exist_ok=True)
    _jpeg(tmp_path / "x.jpg")
    (tmp_path / "labels.json").write_text(json.dumps({"../x.jpg": ["x"], "/etc/x.jpg": ["x"]}))
    return load_config(
        None,
        [
            "data.format=folder",
            f"data.root={root}",
            f"data.labels_file={tmp_path / 'labels.json'}",
            "model.arch=shapes_net",
            f"out={out}",
        ],
    )


def test_a_run_with_nothing_readable_writes_failures_and_says_why(tmp_path, capsys):
    from wsol.cli import EXIT_USAGE, main
    from wsol.run import run
    from wsol.run.build import NoImagesError
    from wsol.run.journal import Journal

    out = tmp_path / "out"
    cfg = _nothing_readable(tmp_path, out)
    with pytest.raises(NoImagesError) as caught:
        run(cfg)
    message = str(caught.value)
    assert message.startswith(f"no images to process in {tmp_path / 'photos'}: all 2 failed")
    assert f"each is in {out / 'failures.jsonl'}" in message
    assert message.splitlines()[1] == (
        "  2 x outside data.root (data.allow_outside_root=true allows it)"
    )
    records = [json.loads(line) for line in (out / "failures.jsonl").open()]
    assert records == caught.value.failures and [r["stage"] for r in records] == ["path"] * 2
    assert sorted(p.name for p in out.iterdir()) == ["failures.jsonl"]
    # The CLI prints the reasons and exits 2
    config = tmp_path / "c.yaml"
    config.write_text("")
    overrides = [f"{k}={v}" for k, v in _flat(cfg)]
    assert main(["-q", "run", str(config), *overrides]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "wsol: error: no images to process" in err and "  2 x outside data.root" in err
    # The record of the stopped run does not stand in the way of the next one.
    journal = Journal(out)
    assert journal.open({"x": "y"}, overwrite=False) is False
    journal.close()
    assert not (out / "failures.jsonl").exists()


def test_a_stopped_run_never_touches_another_runs_results(tmp_path):
    from wsol.run import run
    from wsol.run.build import NoImagesError

    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "failures.jsonl").write_text("kept\n")
    with pytest.raises(NoImagesError, match="not written to .*another run's results"):
        run(_nothing_readable(tmp_path, out))
    assert (out / "failures.jsonl").read_text() == "kept\n"


def _flat(cfg) -> list[tuple[str, str]]:
    return [
        ("data.format", cfg.data.format),
        ("data.root", cfg.data.root),
        ("data.labels_file", cfg.data.labels_file),
        ("model.arch", cfg.model.arch),
        ("out", cfg.out),
    ]
