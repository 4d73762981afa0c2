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


def test_a_signal_during_an_atomic_write_waits_until_the_file_is_in_place(tmp_path):
    import os
    import signal

    from wsol.fileio import atomic_write, deferring

    seen = []

    def handler(signum, frame):
        seen.append((tmp_path / "f.bin").exists())

    previous = signal.signal(signal.SIGTERM, deferring(handler))
    try:

        def write(f):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the write
            f.write(b"data")

        atomic_write(tmp_path / "f.bin", write)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [True]  # delivered once, after the rename
    assert (tmp_path / "f.bin").read_bytes() == b"data"


def test_temp_names_fit_wherever_the_final_name_does(tmp_path):
    from wsol.fileio import temp_prefix

    for name in ("a.json", "x" * 255, "é" * 127, "漢" * 85):
        path = tmp_path / name
        assert len(name.encode()) <= 255
        prefix = temp_prefix(path)
        assert len(prefix.encode()) + 12 <= 255  # + 8 random letters + ".tmp"
        prefix.encode().decode()  # never half a character
        atomic_write_text(path, "x")
        atomic_write_text(path, "y")
        assert path.read_text() == "y"
    assert temp_prefix(tmp_path / "a.json") == ".a.json."
    assert len(list(tmp_path.iterdir())) == 4


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch):
    import errno

    import pytest

    from wsol import fileio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "m.json", "x")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "m.json")
    assert not list(tmp_path.iterdir())
