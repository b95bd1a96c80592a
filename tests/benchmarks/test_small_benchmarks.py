"""In-process smoke tests of the small benchmarks: they run end to end and write their CSV.
Times are never asserted."""

import pytest

from graphattn.experiments import read_table

from ._scripts import load_script


def test_mha_benchmark_smoke(tmp_path):
    rows = load_script("mha").main(
        [
            "--d-model",
            "16",
            "--heads",
            "2",
            "--repeats",
            "1",
            "--scale",
            "64",
            "--out",
            str(tmp_path),
        ]
    )
    assert [r["batch"] for r in rows] == ["8 x 512", "ragged"]
    assert all(r["engine"] == "dense" and r["ratio"] > 0 for r in rows)
    table, meta = read_table(tmp_path / "mha.csv")
    assert len(table) == 2 and "machine" in meta


def test_import_time_parses_importtime_output():
    stderr = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |     torch._C
import time:       200 |    4000000 |   torch
import time:       300 |    6500000 | graphattn
"""
    assert load_script("import_time").parse(stderr) == {"torch": 4.0, "graphattn": 6.5}


def test_ordering_measure_in_process():
    bench = load_script("ordering")
    for graph, order in (("economy", "original"), ("random", "rcm")):
        spec = {"graph": graph, "order": order, "nodes": 300, "repeats": 1, "seed": 0}
        r = bench.measure(spec)
        assert r["steady_s"] > 0 and r["mean_gap"] > 0 and r["edges"] > 0
        assert (r["order_s"] > 0) == (order != "original")


@pytest.mark.xdist_group("fused-builds")  # one worker compiles the special builds
def test_precision_smoke(tmp_path):
    rows = load_script("precision").main(
        ["--nodes", "64", "--degree", "4", "--d-model", "16", "--heads", "2", "--repeats", "1",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert [(r["dtype"], r["layer"]) for r in rows] == [
        ("float16", "fused"), ("float16", "eager TransformerConv"),
        ("bfloat16", "fused"), ("bfloat16", "eager TransformerConv"),
    ]  # fmt: skip
    assert all(r["max_err"] >= r["mean_err"] >= 0 for r in rows)
    assert isinstance(rows[0]["within_2x_of_eager"], bool)
