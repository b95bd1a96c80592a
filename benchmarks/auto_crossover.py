"""Where the fused engine starts to beat the scatter reference: the threshold behind
``engine="auto"`` on small edge lists.

One layer (d_model 64, 4 heads, float32), forward + backward, on random graphs with 8 edges
per node and a growing number of edges, each engine timed in the same process, alternating,
median of ``--repeats`` steps after a warm-up. The ``ratio`` column is scatter time over fused
time (above 1: fused is faster). ``graphattn.engines.fused.AUTO_MIN_EDGES`` was set from a
recording of this table: the edge count from which fused won at every larger size measured.

    python benchmarks/auto_crossover.py
    python benchmarks/auto_crossover.py --quick   # 4 sizes, 5 repeats
    python benchmarks/auto_crossover.py --edges 64 256 1024 4096 --repeats 9
"""

from __future__ import annotations

import statistics
import time

import torch

from graphattn import EdgeList, MultiHeadAttentionConv
from graphattn.experiments import Run, cli

EDGES = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536]
PRESETS = {
    "full": dict(edges=EDGES, repeats=15),
    "quick": dict(edges=[64, 256, 1024, 4096], repeats=5),
}


def _step(conv: MultiHeadAttentionConv, x: torch.Tensor, edges: EdgeList) -> float:
    t0 = time.perf_counter()
    conv(x, edges).sum().backward()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> list[dict]:
    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/auto_crossover.py")
    p.add_argument("--edges", type=count, nargs="+", help="edge counts E to time")
    p.add_argument("--degree", type=count, default=8)
    p.add_argument("--d-model", type=count, default=64)
    p.add_argument("--heads", type=count, default=4)
    p.add_argument("--repeats", type=count, help="timed steps per engine and size (median)")
    p.add_run_options("outputs/auto_crossover", threads=None, progress=False)
    args = p.parse_args(argv)
    with Run.from_args(args) as run:
        return _sweep(args, run)


def _sweep(args, run: Run) -> list[dict]:
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
        print(
            f"E={num_edges}: scatter {scatter * 1e3:.2f} ms, fused {fused * 1e3:.2f} ms", flush=True
        )
        rows.append(
            {
                "edges": num_edges,
                "nodes": n,
                "scatter_ms": scatter * 1e3,
                "fused_ms": fused * 1e3,
                "ratio": scatter / fused,
            }
        )
    run.table("auto_crossover", rows,
              title="forward + backward, median ms (ratio > 1: fused faster)")  # fmt: skip
    wins = [
        r["edges"] for r in rows if all(s["ratio"] > 1 for s in rows if s["edges"] >= r["edges"])
    ]
    if wins:
        print(f"fused is faster from {min(wins)} edges on (at every larger size measured)")
    else:
        print("fused is not faster at every larger size measured")
    return rows


if __name__ == "__main__":
    main()
