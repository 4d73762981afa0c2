from __future__ import annotations

import os
import stat

from wsol.fileio import atomic_write_json, atomic_write_text


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "f.txt", "one")
    atomic_write_text(tmp_path / "f.txt", "two")
    assert (tmp_path / "f.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    atomic_write_text(tmp_path / "g.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = stat.S_IMODE(os.stat(tmp_path / "g.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)


def test_json_is_compact_with_a_newline(tmp_path):
    atomic_write_json(tmp_path / "a" / "m.json", {"a": [1, 2], "b": "x"})
    assert (tmp_path / "a" / "m.json").read_text() == '{"a":[1,2],"b":"x"}\n'
