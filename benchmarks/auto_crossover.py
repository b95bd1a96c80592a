"""Where the fused engine starts to beat the scatter reference: the threshold behind
``engine="auto"`` on small edge lists.

One layer (d_model 64, 4 heads, float32), forward + backward, on random graphs with 8 edges
per node and a growing number of edges, each engine timed in the same process, alternating,
median of ``--repeats`` steps after a warm-up. The ``ratio`` column is scatter time over fused
time (above 1: fused is faster). ``graphattn.engines.fused.AUTO_MIN_EDGES`` is set from this
table: the edge count from which fused wins at every larger size measured.

    python benchmarks/auto_crossover.py
    python benchmarks/auto_crossover.py --edges 64 256 1024 4096 --repeats 9
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from graphattn import EdgeList, MultiHeadAttentionConv
from graphattn.experiments import RunFolder, machine_line, print_table, write_table
from graphattn.experiments.cli import int_at_least, output_folder

EDGES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)


def _step(conv: MultiHeadAttentionConv, x: torch.Tensor, edges: EdgeList) -> float:
    t0 = time.perf_counter()
    conv(x, edges).sum().backward()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", type=int_at_least(1), nargs="+", default=list(EDGES))
    parser.add_argument("--degree", type=int_at_least(1), default=8, help="edges per node")
    parser.add_argument("--d-model", type=int_at_least(1), default=64)
    parser.add_argument("--heads", type=int_at_least(1), default=4)
    parser.add_argument("--repeats", type=int_at_least(1), default=15)
    parser.add_argument("--out", type=output_folder, default=Path("outputs/auto_crossover"))
    args = parser.parse_args(argv)
    if min(args.edges) < 1 or args.degree < 1 or args.repeats < 1:
        parser.error("--edges, --degree and --repeats must be >= 1")
    folder = RunFolder(args.out)  # writable? checked now, before the compute
    print(machine_line())
    print(f"settings: {vars(args)}")
    torch.manual_seed(0)
    rows = []
    for num_edges in args.edges:
        n = max(2, num_edges // args.degree)
        # an EdgeList, as a model passes it to its layers: the CSR is built once (steady state)
        edges = EdgeList(torch.randint(0, n, (2, num_edges)), n)
        x = torch.randn(n, args.d_model)
        convs = {
            name: MultiHeadAttentionConv(args.d_model, args.d_model, args.heads, engine=name)
            for name in ("scatter", "fused")
        }
        times = {name: [] for name in convs}
        for conv in convs.values():  # warm up (compiles / loads the kernels once)
            _step(conv, x, edges)
        for _ in range(args.repeats):
            for name, conv in convs.items():
                times[name].append(_step(conv, x, edges))
        scatter, fused = (statistics.median(times[k]) for k in ("scatter", "fused"))
        rows.append(
            {
                "edges": num_edges,
                "nodes": n,
                "scatter_ms": scatter * 1e3,
                "fused_ms": fused * 1e3,
                "ratio": scatter / fused,
            }
        )
    print_table(rows, title="forward + backward, median ms (ratio > 1: fused faster)")
    wins = [
        r["edges"] for r in rows if all(s["ratio"] > 1 for s in rows if s["edges"] >= r["edges"])
    ]
    if wins:
        print(f"fused is faster from {min(wins)} edges on (at every larger size measured)")
    else:
        print("fused is not faster at every larger size measured")
    with folder:
        path = write_table(args.out / "auto_crossover.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
