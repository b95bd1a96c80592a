"""The GPU check: every engine's catalogue parity on CUDA, then times and peak GPU memory.

Without CUDA it says so and exits 0: nothing is measured (``--device cpu`` runs the same code
on the CPU, at small sizes, to develop and smoke-test it; its figures say nothing about GPUs).
On CUDA it runs three sections, writing ``parity.csv`` and ``timings.csv`` into ``--out``:

1. **Parity.** Every registered engine, and the FlexAttention prototype below, on every graph
   of the engine catalogue (``tests/conftest.py``) that it supports, against the ``scatter``
   reference on the same device (``graphattn.testing.assert_matches_reference``: outputs,
   weights, gradients of q, k, v and of the edge terms): float32 and float64, plus, for
   ``fused``, edge features and relation types. A failure is a row, not a crash; the script
   exits 1 when any row failed (after timing the rest).
2. **Sparse** (``--sparse-nodes``, default N = 100k): forward + backward of
   ``MultiHeadAttentionConv(128, 128, heads=8, add_self_loops=False)`` on the ``fused``
   (Triton) and ``scatter`` engines and of PyG's ``TransformerConv(128, 16, heads=8)``, on a
   random graph of ``--degree`` 16 edges per node (E = 1.6M) and on an economy of N agents
   (``graphattn.economy``).
3. **Window** (``--window-nodes``, default N = 8192 and 65536, radius 64, d_model 256, 8 heads,
   ``--dtype``): the layer on ``WindowGraph(N, radius=64)`` with the ``blocked`` engine and with
   the FlexAttention prototype (``flex``), and full attention over all N nodes with SDPA (the
   ``dense`` engine on ``FullGraph(N)``: ``sdpa-full``).

Every timed configuration runs in its own process (``graphattn.experiments.run_isolated``):
``--warmup`` steps (Triton and ``torch.compile`` compile there), then ``--repeats`` timed
steps (``torch.cuda.synchronize`` around each); ``median_ms`` is their median. ``peak_mb`` is
``torch.cuda.max_memory_allocated()`` over the timed steps, ``peak_extra_mb`` that minus what
was allocated before them (inputs, parameters, cached graph structures). On the CPU both come
from the resident set (``PeakMemory``; ``memory`` says which). ``speedup_vs_peer`` and
``memory_vs_peer`` compare with TransformerConv (sparse) or ``sdpa-full`` (window) in the same
run. The CSV schema is in ``benchmarks/README.md``.

**FlexAttention.** ``flex`` is an engine defined in this script only (registered for its
process): ``torch.nn.attention.flex_attention`` compiled, with a sliding-window block mask of
the pattern (graph ids and ``|i - j| <= radius``), behind the engine contract (no edge terms,
dropout or weights). Whether it serves windows better than ``blocked`` on a GPU is what the
window section measures; the library offers it as an engine only once that is shown.

    python benchmarks/gpu.py                     # on a GPU machine: the full check
    python benchmarks/gpu.py --quick             # small sizes, a minute
    python benchmarks/gpu.py --device cpu --sparse-nodes 300 --window-nodes 256 --repeats 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
SPARSE_ENGINES = ("fused", "scatter", "pyg")
WINDOW_ENGINES = ("blocked", "flex", "sdpa-full")
GRAPHS = ("random", "economy")
DTYPES = ("float32", "bfloat16", "float16")
#: timings.csv's columns, in order (benchmarks/README.md describes them)
TIMING_COLUMNS = (
    "section", "graph", "nodes", "edges", "engine", "d_model", "heads", "dtype", "radius",
    "device", "median_ms", "min_ms", "peak_mb", "peak_extra_mb", "memory", "status",
    "speedup_vs_peer", "memory_vs_peer",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from graphattn.experiments.cli import ScriptParser

    p = ScriptParser(doc=__doc__)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="where the engines run (cpu: the code without a GPU)")  # fmt: skip
    p.add_argument("--sparse-nodes", type=int, nargs="*", default=[100_000],
                   help="node counts N of the sparse section")  # fmt: skip
    p.add_argument("--degree", type=int, default=16, help="edges per node of the random graph")
    p.add_argument("--graphs", nargs="*", default=list(GRAPHS), choices=GRAPHS,
                   help="graphs of the sparse section")  # fmt: skip
    p.add_argument("--sparse-engines", nargs="*", default=list(SPARSE_ENGINES),
                   choices=SPARSE_ENGINES, help="layers timed in the sparse section")  # fmt: skip
    p.add_argument("--window-nodes", type=int, nargs="*", default=[8192, 65536],
                   help="token counts N of the window section")  # fmt: skip
    p.add_argument("--radius", type=int, default=64)
    p.add_argument("--window-engines", nargs="*", default=list(WINDOW_ENGINES),
                   choices=WINDOW_ENGINES, help="layers timed in the window section")  # fmt: skip
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="dtype of inputs and parameters in the timings")  # fmt: skip
    p.add_argument("--parity-dtypes", nargs="*", default=["float32", "float64"],
                   help="dtypes of the parity check")  # fmt: skip
    p.add_argument("--parity-graphs", nargs="*", default=None,
                   help="catalogue graphs of the parity check (default: all)")  # fmt: skip
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per configuration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("outputs/gpu"))
    p.add_argument("--quick", action="store_true", help="N = 10k sparse, 4096 window")
    args = p.parse_args(argv)
    if args.quick:
        args.sparse_nodes, args.window_nodes, args.repeats = [10_000], [4096], 3
    if (
        min(args.warmup, args.repeats) < 1
        or min(args.sparse_nodes + args.window_nodes, default=2) < 2
    ):
        p.error("--warmup and --repeats must be >= 1, node counts >= 2")
    return args


# ---- the FlexAttention prototype engine --------------------------------------------------------
def flex_engine():
    """The ``flex`` engine: compiled FlexAttention with the window pattern's block mask."""
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    from graphattn.engines import Engine
    from graphattn.patterns import WindowGraph

    compiled = torch.compile(flex_attention, dynamic=False)

    def block_mask(graph: WindowGraph, device):
        key = ("flex_block_mask", device)
        if key not in graph.cache:
            batch = graph.batch(device)
            radius, causal = graph.radius, graph.causal

            def window(b, h, q_idx, kv_idx):
                near = (q_idx - kv_idx <= radius) & (kv_idx - q_idx <= (0 if causal else radius))
                return near & (batch[q_idx] == batch[kv_idx])

            n = graph.num_nodes
            graph.cache[key] = create_block_mask(window, None, None, n, n, device=device)
        return graph.cache[key]

    def flex(call):
        mask = block_mask(call.graph, call.q.device)
        heads = (t.transpose(0, 1).unsqueeze(0) for t in (call.q, call.k, call.v))  # (1, H, N, D)
        out = compiled(*heads, block_mask=mask, scale=1.0)
        return out[0].transpose(0, 1), None  # (N, H, Dv)

    def supports(request):
        if not isinstance(request.graph, WindowGraph) or request.graph.num_nodes == 0:
            return "it needs a non-empty WindowGraph"
        if request.has_edge_terms or request.need_weights or request.dropout > 0:
            return "it takes no edge terms, dropout or weights"
        if request.message_passing:
            return "it does not run PyG's message passing"
        if request.device.type != "cuda":
            return "FlexAttention has a backward on CUDA only"
        return None

    return Engine("flex", flex, supports, priority=10_000, prefers=lambda request: False)


# ---- parity -----------------------------------------------------------------------------------
def _cpu_scatter():
    """``scatter`` run on the CPU as an engine of the device's tensors: the check of the
    ``scatter`` engine itself on the device (the reference of every other engine)."""
    from graphattn.engines import AttentionCall, EdgeTerms, Engine
    from graphattn.engines.scatter import scatter_attention
    from graphattn.patterns import EdgeList

    def on_cpu(call):
        graph, terms, device = call.graph, call.terms, call.q.device
        if isinstance(graph, EdgeList):
            graph = EdgeList(graph.edge_index.cpu(), graph.num_src, graph.num_dst)
        if terms is not None:
            terms = EdgeTerms(*(None if t is None else t.cpu() for t in (
                terms.key, terms.value, terms.rel_key, terms.rel_value, terms.edge_type,
                terms.mask)))  # fmt: skip
        out, w = scatter_attention(AttentionCall(
            call.q.cpu(), call.k.cpu(), call.v.cpu(), graph, terms=terms,
            need_weights=call.need_weights,
        ))  # fmt: skip
        return out.to(device), None if w is None else w.to(device)

    return Engine("scatter-on-cpu", on_cpu, lambda request: None, priority=10_000)


def _inputs(case, dtype, device, gen, terms_kind):
    """Random q (scaled), k, v and edge terms of 3 heads of 11 channels, on ``device``."""
    import torch

    from graphattn.engines import EdgeTerms

    def rand(*shape):
        return torch.randn(*shape, dtype=dtype, generator=gen).to(device).requires_grad_()

    q, k, v = (rand(case.num_nodes, 3, 11) for _ in range(3))
    q = (q.detach() * 11**-0.5).requires_grad_()
    if terms_kind == "none":
        return q, k, v, None
    e = case.num_edges
    edge_type = torch.randint(0, 4, (e,), generator=gen).to(device)
    return q, k, v, EdgeTerms(rand(e, 3, 11), rand(e, 3, 11), rand(4, 3, 11), rand(4, 3, 11),
                              edge_type)  # fmt: skip


def parity(args) -> list[dict]:
    """Every engine against the reference on the catalogue: one row per (engine, graph,
    dtype, terms) that the engine supports."""
    import torch

    from graphattn.engines import available_engines, get_engine
    from graphattn.testing import assert_matches_reference

    sys.path.insert(0, str(ROOT))
    from tests.conftest import CATALOGUE  # the engine catalogue every engine test draws from

    device = torch.device(args.device)
    cases = [c for c in CATALOGUE if args.parity_graphs is None or c.name in args.parity_graphs]
    gen = torch.Generator().manual_seed(args.seed)
    engines = [get_engine(n) for n in available_engines()]
    # flex is checked as an Engine object (not registered: this process's registry stays as
    # it is); it declines everything off CUDA
    engines = [e for e in engines if e.name != "scatter"] + [flex_engine(), _cpu_scatter()]
    rows = []
    for engine, case, dtype_name, terms_kind in (
        (e, c, d, t) for e in engines for c in cases for d in args.parity_dtypes
        for t in ("none", "both")
    ):  # fmt: skip
        if engine.name in ("dense", "blocked", "flex"):
            if case.pattern is None or terms_kind != "none":
                continue
            graph = case.pattern
        else:
            graph = case.edge_index.to(device)
        q, k, v, terms = _inputs(case, getattr(torch, dtype_name), device, gen, terms_kind)
        row = {"engine": "scatter" if engine.name == "scatter-on-cpu" else engine.name,
               "graph": case.name, "dtype": dtype_name, "terms": terms_kind,
               "device": str(device)}  # fmt: skip
        try:
            assert_matches_reference(
                engine, q, k, v, graph, terms=terms, need_weights=engine.name != "flex"
            )
            row.update(result="pass", detail="")
        except ValueError as err:  # the engine declines this graph or option: no row
            if "cannot run this call" in str(err):
                continue
            row.update(result="FAIL", detail=f"ValueError: {err}".replace("\n", " ")[:300])
        except Exception as err:  # a mismatch or a crash: reported, not raised
            row.update(
                result="FAIL", detail=f"{type(err).__name__}: {err}".replace("\n", " ")[:300]
            )
        rows.append(row)
    return rows


# ---- timings ----------------------------------------------------------------------------------
def _sparse_model(engine: str, d_model: int, heads: int):
    if engine == "pyg":
        from torch_geometric.nn import TransformerConv

        return TransformerConv(d_model, d_model // heads, heads=heads)
    from graphattn import MultiHeadAttentionConv

    return MultiHeadAttentionConv(d_model, d_model, heads, add_self_loops=False, engine=engine)


def measure(spec: dict) -> dict:
    """One configuration, in its own process: ``spec`` names the section, graph and engine."""
    import torch

    from graphattn import EdgeList, FullGraph, MultiHeadAttentionConv, WindowGraph
    from graphattn.engines import register_engine
    from graphattn.experiments import PeakMemory, benchmark_graph

    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    dtype = getattr(torch, spec["dtype"])
    n, engine, d_model, heads = spec["nodes"], spec["engine"], spec["d_model"], spec["heads"]
    if spec["section"] == "sparse":
        edge_index = benchmark_graph(spec["graph"], n, spec["degree"], spec["seed"]).to(device)
        graph = edge_index if engine == "pyg" else EdgeList(edge_index, n)
        model = _sparse_model(engine, d_model, heads)
        edges = edge_index.size(1)
    else:
        if engine == "flex":  # registered in the configuration's own process
            register_engine(flex_engine())
        graph = FullGraph(n) if engine == "sdpa-full" else WindowGraph(n, radius=spec["radius"])
        name = "dense" if engine == "sdpa-full" else engine
        model = MultiHeadAttentionConv(d_model, d_model, heads, add_self_loops=False, engine=name)
        edges = graph.num_edges
    model = model.to(device, dtype)
    x = torch.randn(n, d_model, device=device, dtype=dtype)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def step() -> float:
        sync()
        t0 = time.perf_counter()
        model(x, graph).float().sum().backward()
        sync()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(spec["warmup"]):
        step()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        times = [step() for _ in range(spec["repeats"])]
        peak = torch.cuda.max_memory_allocated(device)
        peak_mb, extra_mb, memory = peak / 1e6, (peak - base) / 1e6, "cuda_max_allocated"
    else:
        with PeakMemory() as mem:
            times = [step() for _ in range(spec["repeats"])]
        peak_mb, extra_mb, memory = mem.peak_mb, mem.extra_mb, "rss"
    return {
        "edges": int(edges),
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "peak_mb": peak_mb,
        "peak_extra_mb": extra_mb,
        "memory": memory,
    }


def _jobs(args) -> list[dict]:
    base = {"device": args.device, "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed}  # fmt: skip
    jobs = []
    for kind in args.graphs:
        for n in args.sparse_nodes:
            for engine in args.sparse_engines:
                jobs.append({**base, "section": "sparse", "graph": kind, "nodes": n,
                             "engine": engine, "degree": args.degree, "d_model": 128,
                             "heads": 8, "dtype": "float32", "radius": None})  # fmt: skip
    for n in args.window_nodes:
        for engine in args.window_engines:
            jobs.append({**base, "section": "window", "graph": "window", "nodes": n,
                         "engine": engine, "degree": None, "d_model": 256, "heads": 8,
                         "dtype": args.dtype, "radius": args.radius})  # fmt: skip
    return jobs


def timings(args) -> list[dict]:
    from graphattn.experiments import progress, run_isolated

    rows = []
    for spec in progress(_jobs(args), "configurations"):
        row = {k: spec[k] for k in ("section", "graph", "nodes", "engine", "d_model", "heads",
                                    "dtype", "radius")}  # fmt: skip
        row["device"] = spec["device"]
        if spec["engine"] == "flex" and spec["device"] != "cuda":
            rows.append({**row, "status": "skipped: FlexAttention has a backward on CUDA only"})
            continue
        try:
            result = run_isolated(f"{HERE}:measure", spec, timeout=args.timeout)
            rows.append({**row, **result, "status": "ok"})
        except Exception as err:  # out of memory, timeout: reported
            rows.append({**row, "status": f"{type(err).__name__}: {str(err)[-200:]}"})
    rows = [{c: r.get(c, "" if c == "memory" else math.nan) for c in TIMING_COLUMNS} for r in rows]
    for r in rows:
        peer_engine = "pyg" if r["section"] == "sparse" else "sdpa-full"
        peer = next(
            (p for p in rows if p["engine"] == peer_engine and p["status"] == "ok"
             and (p["section"], p["graph"], p["nodes"]) == (r["section"], r["graph"], r["nodes"])),
            None,
        )  # fmt: skip
        ok = peer is not None and r["status"] == "ok"
        r["speedup_vs_peer"] = peer["median_ms"] / r["median_ms"] if ok else math.nan
        extra = r["peak_extra_mb"]
        r["memory_vs_peer"] = peer["peak_extra_mb"] / extra if ok and extra > 0 else math.nan
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available: nothing measured (this check needs a GPU; "
              "--device cpu runs its code on the CPU)")  # fmt: skip
        return 0
    from graphattn.experiments import machine_line, print_table, write_table

    print(machine_line())
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"settings: {vars(args)}")
    parity_rows = parity(args)
    failed = [r for r in parity_rows if r["result"] != "pass"]
    print(f"\nparity: {len(parity_rows) - len(failed)} of {len(parity_rows)} pass")
    if failed:
        print_table(failed, title="parity failures")
    write_table(args.out / "parity.csv", parity_rows, settings=vars(args))
    rows = timings(args)
    print_table(
        rows,
        ["section", "graph", "nodes", "engine", "median_ms", "peak_extra_mb", "speedup_vs_peer",
         "memory_vs_peer", "status"],
        title="forward + backward (ms), peak memory (MB)", fmt=".4g",
    )  # fmt: skip
    out = write_table(args.out / "timings.csv", rows, settings=vars(args))
    print(f"wrote {args.out / 'parity.csv'} and {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
