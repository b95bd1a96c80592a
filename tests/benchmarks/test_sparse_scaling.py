import pytest

from ._scripts import load_script


def _load():
    return load_script("sparse_scaling")


@pytest.mark.parametrize("graph", ["random", "economy"])
@pytest.mark.parametrize("engine", ["fused", "scatter", "pyg", "proj"])
def test_measure_every_engine_in_process(engine, graph):
    """The measurement itself, in this process (the script runs it in a child)."""
    spec = {
        "graph": graph, "nodes": 64, "engine": engine, "degree": 4, "d_model": 16,
        "heads": 2, "repeats": 1, "new_graphs": 2, "seed": 0,
    }  # fmt: skip
    r = _load().measure(spec)
    assert r["first_s"] > 0 and r["cold_s"] > 0 and r["steady_s"] > 0
    assert r["peak_extra_mb"] >= 0 and r["edges"] > 0


def test_sparse_scaling_smoke(tmp_path, monkeypatch):
    """The script end to end, its runs in this process (``measure`` itself is the same code
    the children run): table, ratios, CSV and PNG."""
    monkeypatch.setenv("GRAPHATTN_IN_PROCESS", "1")
    rows = _load().main(
        ["--sizes", "64", "--degree", "4", "--d-model", "16", "--heads", "2",
         "--engines", "proj", "pyg", "--repeats", "1", "--out", str(tmp_path)]
    )  # fmt: skip
    assert [r["engine"] for r in rows] == ["proj", "pyg"]
    assert rows[1]["speedup_vs_pyg"] == 1.0
    assert all(r["first_vs_steady"] > 0 for r in rows)
    with open(tmp_path / "sparse_scaling.csv") as f:
        assert len([line for line in f if not line.startswith("#")]) == 3  # header + 2 rows
    assert (tmp_path / "sparse_scaling.png").stat().st_size > 0


def test_sparse_scaling_rejects_unknown_engine(tmp_path):
    with pytest.raises(SystemExit):
        _load().main(["--engines", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        _load().main(["--new-graphs", "0", "--out", str(tmp_path)])


def test_goals_are_judged_from_the_fused_rows():
    rows = [
        {"graph": "random", "nodes": 100_000, "engine": "fused", "first_vs_steady": 1.1,
         "speedup_vs_pyg": 5.0, "memory_vs_pyg": 12.0},
        {"graph": "random", "nodes": 100_000, "engine": "pyg", "first_vs_steady": 1.0},
        {"graph": "random", "nodes": 1_000, "engine": "fused", "first_vs_steady": 3.0},
    ]  # fmt: skip
    met = {g["column"]: g["met"] for g in _load().goals(rows)}
    assert met == {"first_vs_steady": True, "speedup_vs_pyg": False, "memory_vs_pyg": True}
    assert _load().goals(rows[1:]) == []
