"""``benchmarks/gpu.py``: without CUDA it says so and exits 0; its code runs end to end on the
CPU (``--device cpu``, tiny sizes, in process) and writes the documented CSVs. Times are
never asserted."""

import pytest
import torch

from graphattn.experiments import read_table

from ._scripts import load_script


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the check")
def test_without_cuda_it_says_so_and_exits_0(tmp_path, capsys):
    assert load_script("gpu").main(["--out", str(tmp_path)]) == 0
    assert "CUDA is not available: nothing measured" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())  # no CSV pretends to be a measurement


@pytest.mark.xdist_group("fused-builds")  # the fused engine's numba builds load on one worker
def test_its_code_runs_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHATTN_IN_PROCESS", "1")
    gpu = load_script("gpu")
    argv = [
        "--device", "cpu", "--sparse-nodes", "200", "--graphs", "random", "--window-nodes",
        "128", "--radius", "8", "--warmup", "1", "--repeats", "1", "--parity-graphs",
        "window-batch", "--parity-dtypes", "float64", "--out", str(tmp_path),
    ]  # fmt: skip
    assert gpu.main(argv) == 0
    parity, meta = read_table(tmp_path / "parity.csv")
    assert "machine" in meta
    # blocked on the window pattern; fused and scatter (against scatter on the CPU) on its
    # edge list, with and without edge terms; dense and flex decline it on the CPU
    assert sorted((r["engine"], r["terms"]) for r in parity) == [
        ("blocked", "none"), ("fused", "both"), ("fused", "none"), ("scatter", "both"),
        ("scatter", "none"),
    ]  # fmt: skip
    assert all(r["result"] == "pass" and r["graph"] == "window-batch" for r in parity)
    timings, _ = read_table(tmp_path / "timings.csv")
    assert list(timings[0]) == list(gpu.TIMING_COLUMNS)
    by_engine = {r["engine"]: r for r in timings}
    assert set(by_engine) == {"fused", "scatter", "pyg", "blocked", "flex", "sdpa-full"}
    assert by_engine["flex"]["status"].startswith("skipped")
    for name in ("fused", "scatter", "pyg", "blocked", "sdpa-full"):
        r = by_engine[name]
        assert r["status"] == "ok" and r["median_ms"] > 0 and r["memory"] == "rss", r
    assert by_engine["fused"]["edges"] == 200 * 16
    assert by_engine["pyg"]["speedup_vs_peer"] == 1.0
