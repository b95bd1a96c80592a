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
from pathlib import Path

import torch

from graphattn import EdgeList, MultiHeadAttentionConv
from graphattn.experiments import RunFolder, machine_line, print_table, write_table
from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

EDGES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)


def _step(conv: MultiHeadAttentionConv, x: torch.Tensor, edges: EdgeList) -> float:
    t0 = time.perf_counter()
    conv(x, edges).sum().backward()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> list[dict]:
    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--edges", type=int_at_least(1), nargs="+", default=None, help="edge counts E to time"
    )
    parser.add_argument("--degree", type=int_at_least(1), default=8, help="edges per node")
    parser.add_argument("--d-model", type=int_at_least(1), default=64)
    parser.add_argument("--heads", type=int_at_least(1), default=4)
    parser.add_argument(
        "--repeats",
        type=int_at_least(1),
        default=None,
        help="timed steps per engine and size (median reported; default 15, quick 5)",
    )
    parser.add_argument("--out", type=output_folder, default=Path("outputs/auto_crossover"))
    parser.add_argument("--quick", action="store_true", help="E = 64, 256, 1024, 4096; 5 repeats")
    args = parser.parse_args(argv)
    if args.edges is None:
        args.edges = [64, 256, 1024, 4096] if args.quick else list(EDGES)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 15
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
