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

PRESETS = {"full": dict(agents=1_000_000, repeats=3), "quick": dict(agents=20_000, repeats=1)}


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
    from graphattn.experiments import Run, cli
    from graphattn.experiments.isolate import run_isolated

    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/ordering.py")
    p.add_argument("--agents", type=cli.int_at_least(100))
    p.add_argument("--repeats", type=cli.int_at_least(1))
    p.add_run_options("outputs/ordering", threads=None, progress=False, seed=0)
    args = p.parse_args(argv)
    orders = ["original", "rcm", "degree"]
    if importlib.util.find_spec("pymetis") is not None:
        orders.append("metis")
    with Run.from_args(args) as run:
        print(f"orders: {orders}")
        rows = []
        jobs = [(g, o) for g in ("economy", "random") for o in orders]
        for graph, order in run.progress(jobs, "runs"):
            spec = {"graph": graph, "order": order, "nodes": args.agents,
                    "repeats": args.repeats, "seed": args.seed}  # fmt: skip
            rows.append({"graph": graph, "order": order,
                         **run_isolated(f"{__file__}:measure", spec)})  # fmt: skip
        base = {r["graph"]: r["steady_s"] for r in rows if r["order"] == "original"}
        for r in rows:
            r["speedup"] = base[r["graph"]] / r["steady_s"]
        run.table("ordering", rows, title="fused forward + backward by node ordering")
    return rows


if __name__ == "__main__":
    main()
