"""Smoke test of benchmarks/dense_vs_sparse.py: it runs end to end, as a user runs it, on
tiny settings and writes its table, CSV and plot. Times are never asserted."""

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "dense_vs_sparse.py"


def test_dense_vs_sparse_smoke(tmp_path):
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    # full attention at N=96 has 96^2 = 9216 edges: above 5000, scatter is skipped
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--max-edges", "5000", "--out", str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
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
            assert float(r["median_s"]) > 0 and float(r["peak_mb"]) >= 0
            assert float(r["frac_matmul"]) > 0
    assert (tmp_path / "time_memory_vs_n.png").stat().st_size > 1000
