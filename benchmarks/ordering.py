"""Node orderings for locality: the fused engine with and without ``locality_order``.

A generated supply-chain economy (``graphattn.economy``, ``--agents`` nodes) and a random graph
with the same numbers of nodes and edges; for each, the original numbering and the orderings
of ``graphattn.graphs.locality_order`` (``rcm``, ``degree``, and ``metis`` where pymetis is
installed). One layer (d_model 128, 8 heads, float32) on the ``fused`` engine, forward +
backward on a reused ``EdgeList``, median of ``--repeats`` steps after a warm-up, each
configuration in its own process. ``order_s`` is the time to compute the ordering,
``mean_gap`` the mean ``|i - j|`` over edges ``j -> i`` (lower: neighbours closer in memory),
``speedup`` the original numbering's step time over this one's.

    python benchmarks/ordering.py --out results/ordering         # 1M agents
    python benchmarks/ordering.py --quick
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path


def _graph(kind: str, n: int, seed: int):
    import torch

    from graphattn.economy import economy_arrays

    a = economy_arrays(n, seed=seed)
    edge_index = torch.stack([torch.from_numpy(a.src), torch.from_numpy(a.dst)]).long()
    if kind == "random":
        gen = torch.Generator().manual_seed(seed)
        edge_index = torch.randint(0, n, edge_index.shape, generator=gen)
    return edge_index


def measure(spec: dict) -> dict:
    """One (graph, order) configuration, in its own process."""
    import torch

    from graphattn import EdgeList, MultiHeadAttentionConv
    from graphattn.graphs import locality_order

    torch.manual_seed(spec["seed"])
    n = spec["nodes"]
    edge_index = _graph(spec["graph"], n, spec["seed"])
    order_s = 0.0
    if spec["order"] != "original":
        t0 = time.perf_counter()
        edge_index = locality_order(edge_index, n, spec["order"]).edges(edge_index)
        order_s = time.perf_counter() - t0
    conv = MultiHeadAttentionConv(128, 128, 8, add_self_loops=False, engine="fused")
    x = torch.randn(n, 128)
    edges = EdgeList(edge_index, n)
    conv(x, edges).sum().backward()  # warm-up: kernels loaded, CSR built
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        conv(x, edges).sum().backward()
        times.append(time.perf_counter() - t0)
    gap = (edge_index[0] - edge_index[1]).abs().double().mean().item()
    return {"steady_s": statistics.median(times), "order_s": order_s, "mean_gap": gap,
            "edges": int(edge_index.size(1))}  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

    parser = ScriptParser(doc=__doc__)
    parser.add_argument("--agents", type=int_at_least(100), default=1_000_000)
    parser.add_argument("--repeats", type=int_at_least(1), default=3)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--out", type=output_folder, default=Path("outputs/ordering"))
    parser.add_argument("--quick", action="store_true", help="20k agents, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.repeats = 20_000, 1
    if args.agents < 100 or args.repeats < 1:
        parser.error("--agents must be >= 100 and --repeats >= 1")

    from graphattn.experiments import (
        RunFolder,
        machine_line,
        print_table,
        progress,
        write_table,
    )
    from graphattn.experiments.isolate import run_isolated

    folder = RunFolder(args.out)  # writable? checked now, before the compute

    orders = ["original", "rcm", "degree"]
    if importlib.util.find_spec("pymetis") is not None:
        orders.append("metis")
    print(machine_line())
    print(f"settings: {vars(args)}; orders: {orders}")
    rows = []
    jobs = [(g, o) for g in ("economy", "random") for o in orders]
    for graph, order in progress(jobs, "runs"):
        spec = {"graph": graph, "order": order, "nodes": args.agents, "repeats": args.repeats,
                "seed": args.seed}  # fmt: skip
        rows.append({"graph": graph, "order": order, **run_isolated(f"{__file__}:measure", spec)})
    base = {r["graph"]: r["steady_s"] for r in rows if r["order"] == "original"}
    for r in rows:
        r["speedup"] = base[r["graph"]] / r["steady_s"]
    print_table(rows, title="fused forward + backward by node ordering", fmt=".4g")
    with folder:
        path = write_table(args.out / "ordering.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
