"""The journal: chunks named by the positions they cover, resume checks, the fingerprint."""

from __future__ import annotations

import json

import pytest

from wsol.config import load_config
from wsol.run.journal import Journal, RunExistsError, fingerprint


def _records(image_id):
    return {
        "images": [{"id": image_id, "file_name": f"{image_id}.jpg", "height": 4, "width": 4}],
        "annotations": [
            {
                "image_id": image_id,
                "category_id": 1,
                "bbox": [0.0, 0.0, 1.0, 1.0],
                "area": 1.0,
                "score": 0.5,
            }
        ],
        "failures": [],
    }


def test_chunks_are_named_by_range_and_read_in_dataset_order(tmp_path):
    j = Journal(tmp_path / "out")
    assert j.open("fp", overwrite=False) is False
    # Written out of order (as two processes might): read back in dataset order.
    j.write_chunk(2, 4, _records(3), {"seconds": 1.0})
    j.write_chunk(0, 2, _records(1), {"seconds": 2.0})
    names = sorted(p.name for p in (tmp_path / "out" / "chunks").iterdir())
    assert names == ["chunk_000000000_000000002.json", "chunk_000000002_000000004.json"]
    chunks = j.chunks()
    assert [(c["start"], c["end"], c["seconds"]) for c in chunks] == [(0, 2, 2.0), (2, 4, 1.0)]
    assert [im["id"] for im in j.records()["images"]] == [1, 3]
    assert json.loads((tmp_path / "out" / "run_state.json").read_text())["fingerprint"] == "fp"


def test_a_gap_in_the_chunks_is_refused(tmp_path):
    j = Journal(tmp_path)
    j.open("fp", overwrite=False)
    j.write_chunk(0, 2, _records(1), {})
    j.write_chunk(3, 4, _records(4), {})
    with pytest.raises(RunExistsError, match="chunk at image 2 is missing or damaged"):
        j.chunks()
    # A resume keeps what comes before the gap and redoes the rest.
    assert [c["end"] for c in j.resumable_chunks()] == [2]
    assert [p.name for p in (tmp_path / "chunks").glob("chunk_*.json")] == [
        "chunk_000000000_000000002.json"
    ]
    j.close()


def test_open_resumes_refuses_or_replaces(tmp_path):
    j = Journal(tmp_path)
    j.open("fp", overwrite=False)
    j.write_chunk(0, 1, _records(1), {})
    j.close()
    (tmp_path / ".config.yaml.123.tmp").write_text("half")
    (tmp_path / ".x.json.123.tmp").write_text("not wsol's")
    assert j.open("fp", overwrite=False) is True  # same run, unfinished: resume
    j.close()
    assert not (tmp_path / ".config.yaml.123.tmp").exists()  # a killed write's leftovers go
    assert (tmp_path / ".x.json.123.tmp").exists()  # what wsol does not write stays
    with pytest.raises(RunExistsError, match="different config"):
        j.open("other", overwrite=False)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(RunExistsError, match="finished"):
        j.open("fp", overwrite=False)
    (tmp_path / "mine.txt").write_text("user file")
    assert j.open("other", overwrite=True) is False
    assert not (tmp_path / "chunks").exists() and (tmp_path / "mine.txt").exists()
    j.close()


def test_a_folder_being_written_is_refused_at_once(tmp_path):
    first = Journal(tmp_path)
    first.open("fp", overwrite=False)
    with pytest.raises(RunExistsError, match="in use by another wsol process"):
        Journal(tmp_path).open("fp", overwrite=True)
    first.close()
    again = Journal(tmp_path)
    assert again.open("fp", overwrite=False) is True
    again.close()


def test_fingerprint_ignores_neutral_keys_only():
    images = [(1, "a.jpg")]
    base = fingerprint(load_config(None, ["data.root=x"]), images)
    for neutral in ("out=elsewhere", "data.num_workers=2", "report.enabled=false"):
        assert fingerprint(load_config(None, ["data.root=x", neutral]), images) == base
    assert fingerprint(load_config(None, ["data.root=x", "boxes.threshold=0.3"]), images) != base
    assert fingerprint(load_config(None, ["data.root=x"]), [(1, "b.jpg")]) != base
