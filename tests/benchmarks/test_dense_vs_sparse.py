"""Smoke test of benchmarks/dense_vs_sparse.py: it runs end to end, as a user runs it, on
tiny settings and writes its table, CSV and plot. Times are never asserted."""

import csv

from ._scripts import load_script


def test_dense_vs_sparse_smoke(tmp_path, monkeypatch, capsys):
    """In this process (GRAPHATTN_IN_PROCESS=1); the real runs fork one child per row."""
    monkeypatch.setenv("GRAPHATTN_IN_PROCESS", "1")
    # full attention at N=96 has 96^2 = 9216 edges: above 5000, scatter is skipped
    load_script("dense_vs_sparse").main(["--smoke", "--max-edges", "5000", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "settings:" in printed and "targets at N=96" in printed

    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    status = {(int(r["n"]), r["pattern"], r["engine"]): r["status"] for r in table}
    assert status.pop((96, "full", "scatter")).startswith("skipped: 9216 edges")
    assert set(status.values()) == {"ok"}, status
    for n in (64, 96):
        for key in [
            ("full", "torch-sdpa"),
            ("full", "dense"),
            ("window", "blocked"),
            ("chunked", "blocked"),
            ("window", "scatter"),
            ("window", "pyg-TransformerConv"),
        ]:
            assert (n, *key) in status
    assert (64, "full", "scatter") in status
    for r in table:
        if r["status"] == "ok":
            assert float(r["median_s"]) > 0  # peak_mb means nothing in process
            assert float(r["frac_matmul"]) > 0
    assert (tmp_path / "time_memory_vs_n.png").stat().st_size > 1000
