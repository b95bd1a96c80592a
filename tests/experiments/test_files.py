"""Result files are complete or absent: a failed write, an interrupted run and a reader beside a
writer leave every previously good file whole, and readers see the old or the new file."""

from __future__ import annotations

import errno
import json
import os
import threading

import numpy as np
import pytest

import graphattn
from graphattn.experiments import RunFolder, cache_key, read_table, write_table, write_text
from graphattn.experiments import files as files_module
from graphattn.experiments.plots import figure
from graphattn.experiments.tables import main as tables_main

MACHINE = {"cpu": "test cpu", "cores": "2", "torch": "x", "torch_threads": "2"}


def _rows(n: int, value: float) -> list[dict]:
    return [{"i": i, "value": value} for i in range(n)]


def _write(path, rows):
    return write_table(path, rows, machine=MACHINE, command="cmd")


class _DiskFull(OSError):
    def __init__(self):
        super().__init__(errno.ENOSPC, "No space left on device")


def _failing_open(real_open, after: int):
    """``open`` whose text files accept ``after`` characters, then fail as a full disk does."""

    class Cut:
        def __init__(self, f):
            self.f, self.left = f, after

        def write(self, text):
            if len(text) > self.left:
                self.f.write(text[: self.left])
                self.f.flush()
                raise _DiskFull()
            self.left -= len(text)
            return self.f.write(text)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fake(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return Cut(f) if "w" in mode else f

    return fake


def test_a_failed_write_leaves_the_old_table_whole(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    _write(path, _rows(2000, 0.5))
    good = path.read_bytes()
    monkeypatch.setattr("builtins.open", _failing_open(open, after=8000))
    with pytest.raises(OSError, match="No space left"):
        _write(path, _rows(2000, 0.25))
    monkeypatch.undo()
    assert path.read_bytes() == good  # not cut to 8,000 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temporary file left
    rows, _ = read_table(path)
    assert len(rows) == 2000 and rows[0]["value"] == 0.5


def test_a_failed_make_tables_leaves_the_readme_whole(tmp_path, monkeypatch):
    (tmp_path / "r.csv").write_text("a,b\n1,2.5\n")
    doc = tmp_path / "README.md"
    text = "intro\n" + "x" * 40_000 + "\n<!-- table: r.csv -->\nold\n<!-- end table -->\n"
    doc.write_text(text)
    monkeypatch.setattr("builtins.open", _failing_open(open, after=20_000))
    with pytest.raises(OSError, match="No space left"):
        tables_main([str(doc), "--root", str(tmp_path)])
    monkeypatch.undo()
    assert doc.read_text() == text
    assert tables_main([str(doc), "--root", str(tmp_path)]) == 0
    assert "| 1 | 2.5 |" in doc.read_text()


def _draw(ax):
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="x", ylabel="y")


def test_a_failed_figure_leaves_the_old_png_whole(tmp_path):
    path = figure(tmp_path / "f.png", _draw)
    good = path.read_bytes()

    def broken(ax):
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError, match="drawing failed"):
        figure(path, broken)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_a_reader_beside_a_writer_sees_the_old_or_the_new_table(tmp_path):
    """Readers in another thread while a writer rewrites the table: every read is one of the
    two complete tables, never an empty or partial one."""
    path = tmp_path / "r.csv"
    versions = {0.5: _rows(2000, 0.5), 0.25: _rows(2000, 0.25)}
    _write(path, versions[0.5])
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                rows, _ = read_table(path)
            except (ValueError, FileNotFoundError) as err:
                bad.append(repr(err))
                continue
            reads[0] += 1
            if len(rows) != 2000 or rows[-1]["value"] not in versions:
                bad.append(f"{len(rows)} rows")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(16):
            _write(path, versions[0.25 if i % 2 else 0.5])
    finally:
        stop.set()
        thread.join()
    assert reads[0] > 0
    assert not bad, bad[:5]


def test_an_interrupted_run_leaves_the_folder_of_the_last_run(tmp_path):
    out = tmp_path / "out"
    with RunFolder(out) as run:
        _write(run.staging / "a.csv", _rows(3, 1.0))
        _write(run.staging / "b.csv", _rows(3, 1.0))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(KeyboardInterrupt), RunFolder(out) as run:
        _write(run.staging / "a.csv", _rows(3, 2.0))  # the new run's first file ...
        raise KeyboardInterrupt  # ... and the user stops it
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_killed_run_and_a_killed_commit_are_cleaned_up_by_the_next_run(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with RunFolder(out) as run:
        for name in ("a.csv", "b.csv", "c.csv"):
            _write(run.staging / name, _rows(3, 1.0))
    # a run killed before its commit: its staging folder stays, the files do not move
    dead = out / ".run-999999999-dead.partial"
    dead.mkdir()
    (dead / "a.csv").write_text("half")
    # a run killed during its commit: a.csv moved, b.csv and c.csv still staged
    run = RunFolder(out)
    for name in ("a.csv", "b.csv", "c.csv"):
        _write(run.staging / name, _rows(3, 2.0))
    real_replace = os.replace
    moved = []

    def replace_then_die(src, dst):
        if str(dst).endswith(".csv") and moved:
            raise KeyboardInterrupt  # the second move of the commit never happens
        real_replace(src, dst)
        if str(dst).endswith(".csv"):
            moved.append(dst)

    monkeypatch.setattr(files_module.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        run.commit()
    monkeypatch.undo()
    mixed = [read_table(out / n)[0][0]["value"] for n in ("a.csv", "b.csv", "c.csv")]
    assert mixed == [2.0, 1.0, 1.0] and (out / ".run-commit.json").exists()
    RunFolder(out).discard()  # the next run finishes the commit first
    assert [read_table(out / n)[0][0]["value"] for n in ("a.csv", "b.csv", "c.csv")] == [2.0] * 3
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv", "c.csv"]


def test_an_exclusive_run_folder_drops_the_files_of_the_previous_run_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # no run wrote it: never touched
    with RunFolder(out, exclusive=True) as run:
        write_text(run.staging / "neighbourhood_a.graphml", "a")
        write_text(run.staging / "summary.csv", "1")
    with RunFolder(out, exclusive=True) as run:
        write_text(run.staging / "neighbourhood_b.graphml", "b")
        write_text(run.staging / "summary.csv", "2")
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["neighbourhood_b.graphml", "notes.txt", "summary.csv"]
    assert json.loads((out / ".run-manifest.json").read_text())["files"] == [
        "neighbourhood_b.graphml",
        "summary.csv",
    ]


def test_a_run_folder_that_cannot_be_written_fails_at_once(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        RunFolder(tmp_path / "file")
    with pytest.raises(ValueError, match="cannot write into the output folder"):
        RunFolder(tmp_path / "file" / "out")


def test_cache_keys_change_with_every_setting_and_the_library_version(monkeypatch):
    base = {"agents": 100, "density": 0.3, "seed": 0}
    key = cache_key(base)
    assert cache_key(dict(reversed(base.items()))) == key
    for change in ({"density": 0.5}, {"agents": 101}, {"seed": 1}, {"layers": 2}):
        assert cache_key({**base, **change}) != key, change
    monkeypatch.setattr(graphattn, "__version__", "0.0.0")
    assert cache_key(base) != key


def test_numpy_scalars_and_underscored_text_round_trip(tmp_path):
    """Numpy scalars are written as numbers (``np.float64(0.5)`` as ``0.5``, not its repr), and
    text such as ``"1_000"`` reads back as text, not as the int 1000."""
    rows = [{"f": np.float64(0.5), "g": np.float32(0.25), "i": np.int64(3), "s": "1_000",
             "t": "two\nlines", "b": np.bool_(True)}]  # fmt: skip
    rows_back, _ = read_table(_write(tmp_path / "r.csv", rows))
    assert rows_back == [{"f": 0.5, "g": 0.25, "i": 3, "s": "1_000", "t": "two\nlines",
                          "b": "True"}]  # fmt: skip


def test_an_empty_or_cut_file_is_not_an_empty_table(tmp_path):
    for text in ("", "# date: 2024-01-01\n"):
        (tmp_path / "r.csv").write_text(text)
        with pytest.raises(ValueError, match="no header row"):
            read_table(tmp_path / "r.csv")


def test_writes_inside_a_run_folder_block_land_together_at_its_end(tmp_path):
    """Scripts keep their paths: inside ``with RunFolder(out)`` a write to ``out / name`` is
    staged, and appears only when the block ends without an error."""
    out = tmp_path / "out"
    with RunFolder(out):
        path = _write(out / "a.csv", _rows(3, 1.0))
        figure(out / "sub" / "f.png", _draw)
        assert path == out / "a.csv" and not path.exists()
    assert read_table(out / "a.csv")[0][0]["value"] == 1.0 and (out / "sub" / "f.png").exists()
    with pytest.raises(RuntimeError), RunFolder(out):
        _write(out / "a.csv", _rows(3, 2.0))
        _write(tmp_path / "elsewhere.csv", _rows(1, 2.0))  # outside the folder: written now
        raise RuntimeError("the run fails")
    assert read_table(out / "a.csv")[0][0]["value"] == 1.0
    assert (tmp_path / "elsewhere.csv").exists()
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "sub"]
