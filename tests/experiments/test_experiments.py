"""The shared study/benchmark plumbing: result tables, markdown rendering, isolation."""

from __future__ import annotations

import textwrap

import pytest
import torch

from graphattn.experiments import read_table, run_isolated, write_table
from graphattn.experiments.tables import check, render

MACHINE = {"cpu": "test cpu", "cores": "2", "torch": "x", "torch_threads": "2"}


def _write(tmp_path, rows, name="r.csv"):
    return write_table(tmp_path / name, rows, settings={"k": 3}, machine=MACHINE, command="cmd")


def test_table_round_trip_keeps_numbers_and_header(tmp_path):
    rows = [
        {"L": 1, "k": 2, "nmse": 0.1 + 0.2, "name": "a"},
        {"L": 2, "k": 2, "nmse": 1e-9, "name": "b"},
    ]
    path = _write(tmp_path, rows)
    got, meta = read_table(path)
    assert got == rows  # floats round-trip exactly
    assert meta["command"] == "cmd" and "test cpu" in meta["machine"]
    assert meta["settings"] == '{"k": 3}'


def test_write_table_rejects_ragged_rows(tmp_path):
    with pytest.raises(ValueError, match="columns"):
        _write(tmp_path, [{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="empty"):
        _write(tmp_path, [])


def test_render_pivot_columns_and_values(tmp_path):
    cells = [(1, 1, 0.5), (1, 2, 0.25), (2, 1, 0.125)]
    _write(tmp_path, [{"L": a, "k": b, "nmse": c} for a, b, c in cells])
    text = textwrap.dedent("""\
        <!-- table: r.csv | pivot: L, k, nmse | fmt: .2f -->
        stale
        <!-- end table -->
        <!-- table: r.csv | columns: k, nmse | where: L=1 | labels: nmse=error -->
        <!-- end table -->
        best <!-- value: r.csv | where: L=2, k=1 | column: nmse | fmt: .3f -->?<!-- end value -->.
        """)
    out = render(text, tmp_path)
    assert "| L \\ k | k = 1 | k = 2 |\n|---|---|---|\n| 1 | 0.50 | 0.25 |\n| 2 | 0.12 |  |" in out
    assert "| k | error |\n|---|---|\n| 1 | 0.5 |\n| 2 | 0.25 |" in out
    assert "best <!-- value: r.csv | where: L=2, k=1 | column: nmse | fmt: .3f -->0.125<!--" in out
    assert render(out, tmp_path) == out  # idempotent


def test_every_table_gets_a_caption_from_its_csv_header(tmp_path):
    """The date and machine under a table are the CSV's, so another recording (another
    machine) changes the caption and `check` reports the document as stale."""
    _write(tmp_path, [{"a": 1, "b": 0.5}])
    doc = "<!-- table: r.csv | note: predates the kernel rewrite -->\nold\n<!-- end table -->\n"
    out = render(doc, tmp_path)
    date = read_table(tmp_path / "r.csv")[1]["date"]
    table, caption = out.split("<!-- end table -->")[0].split("\n\n")[-2:]
    assert table.endswith("| 1 | 0.5 |")  # a blank line between them: the table ends there
    assert caption == (
        f"<sub>Recorded {date} on test cpu, 2 cores, torch x (2 threads); `r.csv`. "
        "predates the kernel rewrite.</sub>\n"
    )
    other = {**MACHINE, "cpu": "another cpu"}
    write_table(tmp_path / "r.csv", [{"a": 1, "b": 0.5}], machine=other, command="cmd")
    assert "on another cpu, 2 cores" in render(out, tmp_path)
    (tmp_path / "doc.md").write_text(out)
    assert check([tmp_path / "doc.md"], tmp_path) == [str(tmp_path / "doc.md")]


def test_check_reports_files_that_drifted(tmp_path):
    _write(tmp_path, [{"a": 1, "b": 0.5}])
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table: r.csv -->\n<!-- end table -->\n")
    assert check([doc], tmp_path) == [str(doc)]
    doc.write_text(render(doc.read_text(), tmp_path))
    assert check([doc], tmp_path) == []
    _write(tmp_path, [{"a": 1, "b": 0.75}])  # a new measurement
    assert check([doc], tmp_path) == [str(doc)]


@pytest.mark.parametrize(
    "marker, match",
    [
        ("<!-- table: r.csv | pivot: a, b -->\n<!-- end table -->", "pivot"),
        ("<!-- table: r.csv | where: a=9 -->\n<!-- end table -->", "no rows"),
        ("<!-- table: r.csv | colour: red -->\n<!-- end table -->", "unknown option"),
        ("<!-- value: r.csv | column: b -->x<!-- end value -->", "exactly one row"),
        ("<!-- table: r.csv | columns: z -->\n<!-- end table -->", "no column"),
    ],
)
def test_bad_markers_fail_clearly(tmp_path, marker, match):
    _write(tmp_path, [{"a": 1, "b": 0.5}, {"a": 2, "b": 0.5}])
    with pytest.raises(ValueError, match=match):
        render(marker, tmp_path)


CHILD = """
import os

import numpy as np

from graphattn_isolate_under_test import PeakMemory


def child(spec):
    with PeakMemory() as mem:
        block = np.ones(spec["mb"] * 10**6 // 8)
        block.sum()
    return {
        "pid": os.getpid(), "extra_mb": mem.extra_mb, "peak_mb": mem.peak_mb,
        "method": mem.method,
        "env": os.environ.get("GRAPHATTN_CHILD_ENV"),
    }
"""


def test_run_isolated_and_peak_memory(tmp_path, monkeypatch):
    """The child runs a script that imports only numpy (and the isolate module by path)."""
    import os
    import shutil

    import graphattn.experiments.isolate as isolate

    shutil.copy(isolate.__file__, tmp_path / "graphattn_isolate_under_test.py")
    (tmp_path / "child.py").write_text(CHILD)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = run_isolated(
        f"{tmp_path / 'child.py'}:child", {"mb": 40}, timeout=60,
        env={"GRAPHATTN_CHILD_ENV": "set"},
    )  # fmt: skip
    assert result["pid"] != os.getpid() and result["env"] == "set"
    assert result["extra_mb"] >= 35 if result["method"] == "VmHWM" else result["extra_mb"] >= 0
    assert result["peak_mb"] >= result["extra_mb"] + 1  # the interpreter itself holds some
    with pytest.raises(RuntimeError, match="failed"):
        run_isolated(f"{tmp_path / 'child.py'}:child", {}, timeout=60)  # KeyError in the child
    with pytest.raises(ValueError, match="target"):
        run_isolated("no-function", {})


def test_fit_and_metrics_learn_a_linear_map():
    from graphattn.experiments import accuracy, fit, normalised_mse, seed_everything

    gen = seed_everything(0)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)
    history = fit(
        model, lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1]),
        lambda epoch: [(x, y)], epochs=200, lr=0.05,
    )  # fmt: skip
    assert history[-1] < 0.01 * history[0]
    seen = []
    stopped = fit(
        model, lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1]),
        lambda epoch: [(x, y)], epochs=50, lr=0.05, stop=lambda e: seen.append(e) or e == 2,
    )  # fmt: skip
    assert len(stopped) == 3 and seen == [0, 1, 2] and not model.training
    assert normalised_mse(model(x).squeeze(-1).detach(), y) < 0.01
    assert accuracy(torch.eye(3), torch.arange(3)) == 1.0


def test_panels_draws_every_panel_and_rejects_bad_input(tmp_path):
    from graphattn.experiments.plots import panels

    seen = []
    draws = [
        lambda ax, i=i: (seen.append(i), ax.plot([0, 1], [i, i]), ax.set(xlabel="x", ylabel="y"))
        for i in range(3)
    ]
    path = panels(tmp_path / "p.png", draws, ncols=2, title="three panels")
    assert seen == [0, 1, 2] and path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="draws"):
        panels(tmp_path / "q.png", [])
    with pytest.raises(ValueError, match="ncols"):
        panels(tmp_path / "q.png", draws, ncols=0)
