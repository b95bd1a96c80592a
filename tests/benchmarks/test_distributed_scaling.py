"""benchmarks/distributed_scaling.py: the replication table on a tiny economy (and, slow, the
1 vs 2 process runs)."""

from __future__ import annotations

import pytest
import torch

from graphattn.experiments import read_table

from ._scripts import load_script


def test_replication_table(tmp_path):
    pytest.importorskip("pymetis")
    bench = load_script("distributed_scaling")
    bench.main(
        [
            "--agents",
            "400",
            "--partitions",
            "2",
            "3",
            "--hops",
            "1",
            "2",
            "--only",
            "replication",
            "--out",
            str(tmp_path),
        ]
    )
    rows, meta = read_table(tmp_path / "replication.csv")
    assert len(rows) == 2 * 2 * 2 and "machine" in meta
    for r in rows:
        assert r["replication_edges"] == 1.0 if r["hops"] == 1 else r["replication_edges"] > 1
        assert 1.0 < r["replication_nodes"] <= r["parts"]
    assert (tmp_path / "replication.png").exists()


@pytest.mark.slow
def test_throughput_runs(tmp_path):
    bench = load_script("distributed_scaling")
    threads = torch.get_num_threads()
    try:
        bench.main(
            [
                "--agents",
                "300",
                "--steps",
                "2",
                "--only",
                "throughput",
                "--out",
                str(tmp_path),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    rows, _ = read_table(tmp_path / "throughput.csv")
    assert [r["config"] for r in rows] == ["np1", "np1-t1", *["np2-metis"] * 2, *["np2-random"] * 2]
    assert all(r["graph_edges_per_s"] > 0 and r["train_peak_mb"] > 0 for r in rows)
