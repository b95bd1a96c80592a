"""Dense vs sparse attention: full, chunked and sliding-window attention, forward + backward.

For every sequence length N it times one attention layer (d_model in, d_model out, projections
included) forward + backward on:

- ``torch-sdpa``: a plain full-attention layer (4 linear maps + one
  ``scaled_dot_product_attention`` over all N tokens), no graph library involved;
- this library's ``MultiHeadAttentionConv`` on ``FullGraph``, ``ChunkedGraph(chunk)`` and
  ``WindowGraph(radius)``, once per registered engine that accepts the pattern (``dense``,
  ``blocked``, ``scatter`` and any other registered engine);
- the peer: PyG's ``TransformerConv(d_model, d_model // heads, heads)`` on the window graph's
  edge list (the same edges the ``window`` rows compute).

Each configuration runs in a fresh process forked from a preloaded server (so memory numbers
do not mix): one warm-up step, then up to ``--repeats`` timed steps (fewer when one step takes
longer than ``--budget`` seconds); the table reports the median. ``--rounds K`` sweeps all
configurations K times in turn and reports the median over rounds, which spreads the load of
other processes over all rows. Peak memory is the growth of
the process's peak resident set size (``getrusage().ru_maxrss``) over its resident size just
before the first step: all memory the step needed at its peak (activations, gradients,
workspaces, and the edge list's per-edge tensors), inputs and parameters excluded. The useful
FLOPs of a step count only the work the pattern asks for: ``3 x (8 N d^2 + 4 E d)``
(projections q, k, v, out and the E-edge attention, forward + 2x for backward); the rate is
reported as a fraction of this machine's float32 matmul rate, measured in the same child
process right after the configuration (so that both see the same load from other processes).
Scatter and TransformerConv rows are skipped (and marked) above ``--max-edges`` edges, fused
rows above ``--max-fused-edges``.

Usage::

    PYTHONPATH=. python benchmarks/dense_vs_sparse.py            # N = 512 .. 16384
    PYTHONPATH=. python benchmarks/dense_vs_sparse.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from pathlib import Path

from graphattn.experiments.isolate import in_process

PRELOAD = ["torch", "torch_geometric", "torch_geometric.nn", "graphattn"]
PATTERNS = ("full", "chunked", "window")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192, 16384])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--radius", type=int, default=64, help="window radius")
    p.add_argument("--chunk-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per configuration")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="sweep all configurations this many times; report medians over rounds",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="seconds of timed steps per configuration (at least one step)",
    )
    p.add_argument(
        "--max-edges",
        type=int,
        default=1_100_000,
        help="skip scatter and TransformerConv above this many edges",
    )
    p.add_argument(
        "--max-fused-edges",
        type=int,
        default=5_000_000,
        help="skip the fused engine above this many edges (full attention)",
    )
    p.add_argument("--out", type=Path, default=Path("outputs/dense_vs_sparse"))
    p.add_argument(
        "--quick",
        action="store_true",
        help="N = 512, 1024; 3 repeats in 1 s; edge lists <= 300k (about a minute)",
    )
    p.add_argument("--smoke", action="store_true", help="tiny settings for CI (seconds)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.budget = [512, 1024], 3, 1.0
        args.max_edges = min(args.max_edges, 300_000)  # full attention on scatter: N <= 512
    if args.smoke:
        args.sizes, args.repeats, args.budget = [64, 96], 1, 1.0
        args.d_model, args.heads, args.radius, args.chunk_size = 32, 4, 4, 8
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.d_model % args.heads:
        p.error("--d-model must be divisible by --heads")
    return args


# ---- work done in the child processes -----------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _pattern(name: str, n: int, args: argparse.Namespace):
    from graphattn import ChunkedGraph, FullGraph, WindowGraph

    if name == "full":
        return FullGraph(n)
    if name == "chunked":
        return ChunkedGraph(n, chunk_size=args.chunk_size)
    return WindowGraph(n, radius=args.radius)


def matmul_gflops(size: int = 1536, repeats: int = 5) -> float:
    """Median float32 rate of a square ``size`` matmul on this process's threads."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * size**3 / statistics.median(times) / 1e9


def probe(args: argparse.Namespace) -> dict:
    """Engines per pattern, edge counts, torch facts and the fp32 matmul rate."""
    import torch

    from graphattn.engines import AttentionRequest, available_engines, resolve_engine

    supported, edges = {}, {}
    n = args.sizes[0]
    for name in PATTERNS:
        request = AttentionRequest(_pattern(name, n, args), torch.device("cpu"), torch.float32)
        supported[name] = []
        for engine in available_engines():
            try:
                resolve_engine(engine, request)
            except ValueError:
                continue
            supported[name].append(engine)
        edges[name] = {
            m: _pattern(name, m, args).num_edges if name != "full" else m * m for m in args.sizes
        }
    rate = matmul_gflops(256, 1) if args.smoke else matmul_gflops(2048, 7)
    return {
        "engines": supported,
        "edges": edges,
        "matmul_gflops": rate,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def run_config(cfg: dict) -> dict:
    """Time one configuration: warm-up (which also gives peak memory), then timed steps."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    args = cfg["args"]
    n, d, heads = cfg["n"], args.d_model, args.heads
    torch.manual_seed(0)
    x = torch.randn(n, d, requires_grad=True)
    grad = torch.randn(n, d)

    if cfg["engine"] == "torch-sdpa":

        class FullSDPA(nn.Module):
            def __init__(self):
                super().__init__()
                self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)

            def forward(self, x):
                q, k, v = self.qkv(x).view(1, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
                o = F.scaled_dot_product_attention(q, k, v)  # (1, H, N, D)
                return self.out(o.transpose(1, 2).reshape(n, d))

        module = FullSDPA()

        def call():
            return module(x)
    elif cfg["engine"] == "pyg-TransformerConv":
        from torch_geometric.nn import TransformerConv

        module = TransformerConv(d, d // heads, heads=heads)
        edge_index = _pattern(cfg["pattern"], n, args).edge_index()

        def call():
            return module(x, edge_index)
    else:
        from graphattn import MultiHeadAttentionConv

        module = MultiHeadAttentionConv(d, d, heads=heads, engine=cfg["engine"])
        graph = _pattern(cfg["pattern"], n, args)
        if cfg["engine"] == "scatter":
            graph.edge_index()  # the edge list is scatter's input: build it before measuring

        def call():
            return module(x, graph)

    def step():
        out = call()
        out.backward(grad)
        x.grad = None
        module.zero_grad(set_to_none=True)

    rss0 = _rss_mb()
    t = time.perf_counter()
    step()
    first = time.perf_counter() - t
    peak = _peak_rss_mb() - rss0
    count = max(1, min(args.repeats, int(args.budget / max(first, 1e-9))))
    times = []
    for _ in range(count):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    # after the steps: its buffers must not count in their peak
    rate = matmul_gflops(256 if args.smoke else 1536)
    return {
        "median_s": statistics.median(times),
        "repeats": count,
        "peak_mb": peak,
        "load": os.getloadavg()[0],
        "matmul_gflops": rate,
    }


# ---- the driver ---------------------------------------------------------------------------
def machine_name() -> str:
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node()} ({model}, {os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> list[dict]:
    from tqdm import tqdm

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_name()
    print(f"dense_vs_sparse on {machine}")
    print(
        f"settings: N={args.sizes} d_model={args.d_model} heads={args.heads} "
        f"radius={args.radius} chunk_size={args.chunk_size} repeats={args.repeats} "
        f"rounds={args.rounds} budget={args.budget}s max_edges={args.max_edges} "
        "float32, forward + backward"
    )

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)

    def in_child(fn, arg):
        if in_process():  # GRAPHATTN_IN_PROCESS=1: smoke tests, no memory figures
            return fn(arg)
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            return pool.apply(fn, (arg,))

    info = in_child(probe, args)
    print(
        f"torch {info['torch']}, {info['threads']} threads; float32 matmul 2048^3: "
        f"{info['matmul_gflops']:.1f} GFLOP/s; load average {os.getloadavg()[0]:.1f}"
    )

    configs = []
    for n in args.sizes:
        configs.append({"n": n, "pattern": "full", "engine": "torch-sdpa"})
        for name in PATTERNS:
            configs += [{"n": n, "pattern": name, "engine": e} for e in info["engines"][name]]
        configs.append({"n": n, "pattern": "window", "engine": "pyg-TransformerConv"})

    rows = []
    for cfg in configs:
        n, d = cfg["n"], args.d_model
        edges = info["edges"][cfg["pattern"]][n]
        row = {
            "machine": machine,
            "n": n,
            "pattern": cfg["pattern"],
            "engine": cfg["engine"],
            "d_model": d,
            "heads": args.heads,
            "radius": args.radius,
            "chunk_size": args.chunk_size,
            "num_edges": edges,
            "useful_gflop": 3 * (8 * n * d * d + 4 * edges * d) / 1e9,
        }
        # Edge-list engines: scatter and TransformerConv need ~6 KB per edge; fused is lean but
        # its time grows with E (85 s at 67M edges, N=8192 full), so full attention stays on SDPA.
        edge_list = ("scatter", "pyg-TransformerConv")
        if (cfg["engine"] in edge_list and edges > args.max_edges) or (
            cfg["engine"] == "fused" and edges > args.max_fused_edges
        ):
            limit = args.max_fused_edges if cfg["engine"] == "fused" else args.max_edges
            flag = "--max-fused-edges" if cfg["engine"] == "fused" else "--max-edges"
            row["status"] = f"skipped: {edges} edges > {flag} {limit}"
        rows.append(row)

    # Rounds sweep all configurations in turn, so that load from other processes drifting
    # over the run spreads over every row instead of favouring the rows measured when quiet.
    results: list[list[dict]] = [[] for _ in rows]
    todo = [(i, cfg) for i, cfg in enumerate(configs) if "status" not in rows[i]]
    progress = tqdm(total=len(todo) * args.rounds, desc="configurations", unit="cfg")
    for _ in range(args.rounds):
        for i, cfg in todo:
            try:
                results[i].append(in_child(run_config, {**cfg, "args": args}))
            except Exception as exc:  # e.g. out of memory in the child: report, continue
                rows[i]["status"] = f"failed: {type(exc).__name__}: {exc}"[:120]
            progress.update()
    progress.close()
    for row, got in zip(rows, results, strict=True):
        if "status" in row:
            continue
        row["status"] = "ok"
        row["median_s"] = statistics.median(g["median_s"] for g in got)
        row["repeats"] = sum(g["repeats"] for g in got)
        row["peak_mb"] = max(g["peak_mb"] for g in got)
        row["load"] = statistics.mean(g["load"] for g in got)
        row["matmul_gflops"] = statistics.median(g["matmul_gflops"] for g in got)
        row["gflops"] = row["useful_gflop"] / row["median_s"]
        row["frac_matmul"] = row["gflops"] / row["matmul_gflops"]

    by_key = {(r["n"], r["pattern"], r["engine"]): r for r in rows}
    for r in rows:
        peer = by_key.get((r["n"], "window", "pyg-TransformerConv"), {})
        sdpa = by_key.get((r["n"], "full", "torch-sdpa"), {})
        if "median_s" in r:
            if "median_s" in peer:
                r["speedup_vs_peer"] = peer["median_s"] / r["median_s"]
            if "median_s" in sdpa:
                r["speedup_vs_sdpa_full"] = sdpa["median_s"] / r["median_s"]

    write_csv(rows, args.out / "results.csv")
    print_table(rows, info)
    plot(rows, args, machine, args.out / "time_memory_vs_n.png")
    summarize_targets(by_key, args, info)
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'time_memory_vs_n.png'}")
    return rows


COLUMNS = [
    "machine",
    "n",
    "pattern",
    "engine",
    "d_model",
    "heads",
    "radius",
    "chunk_size",
    "num_edges",
    "median_s",
    "repeats",
    "peak_mb",
    "useful_gflop",
    "gflops",
    "matmul_gflops",
    "frac_matmul",
    "speedup_vs_peer",
    "speedup_vs_sdpa_full",
    "load",
    "status",
]


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict], info: dict) -> None:
    head = (
        f"{'N':>6} {'pattern':<8} {'engine':<20} {'edges':>10} {'median s':>9} {'reps':>4} "
        f"{'peak MB':>8} {'GFLOP/s':>8} {'matmul':>7} {'%matmul':>7} {'vs peer':>8} "
        f"{'vs sdpa':>8}  status"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        frac = r.get("frac_matmul")
        print(
            f"{r['n']:>6} {r['pattern']:<8} {r['engine']:<20} {r['num_edges']:>10} "
            f"{_fmt(r.get('median_s'), '9.4f')} {_fmt(r.get('repeats'), '4d')} "
            f"{_fmt(r.get('peak_mb'), '8.1f')} {_fmt(r.get('gflops'), '8.2f')} "
            f"{_fmt(r.get('matmul_gflops'), '7.1f')} "
            f"{_fmt(None if frac is None else 100 * frac, '6.1f')}% "
            f"{_fmt(r.get('speedup_vs_peer'), '7.2f')}x "
            f"{_fmt(r.get('speedup_vs_sdpa_full'), '7.2f')}x  {r['status']}"
        )
    print(
        "(peer: pyg-TransformerConv on the window graph; sdpa: torch-sdpa full attention; "
        "matmul: float32 1536^3 GFLOP/s measured in the same process just after; "
        "%matmul = useful GFLOP/s / matmul)"
    )


def plot(rows: list[dict], args: argparse.Namespace, machine: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if "median_s" in r:
            series.setdefault((r["pattern"], r["engine"]), []).append(r)
    for (pattern, engine), pts in sorted(series.items()):
        ns = [p["n"] for p in pts]
        style = "--" if engine in ("torch-sdpa", "pyg-TransformerConv") else "-"
        label = f"{pattern} / {engine}"
        axes[0].plot(ns, [p["median_s"] for p in pts], style, marker="o", label=label)
        axes[1].plot(ns, [max(p["peak_mb"], 0.1) for p in pts], style, marker="o", label=label)
    for ax, ylabel in zip(
        axes, ["median time, forward + backward (s)", "peak memory (MB)"], strict=True
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"d_model={args.d_model}, heads={args.heads}, radius={args.radius}, "
        f"chunk={args.chunk_size}, float32 on {machine}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summarize_targets(by_key: dict, args: argparse.Namespace, info: dict) -> None:
    """The issue's targets at N=8192 (or the largest N measured) for window attention."""
    ns = sorted({n for n, _, _ in by_key if n <= 8192})
    if not ns:
        return
    n = ns[-1]
    win = by_key.get((n, "window", "blocked"), {})
    if "median_s" not in win:
        return
    print(f"targets at N={n}, radius={args.radius} (window on the blocked engine):")
    if "speedup_vs_peer" in win:
        print(f"  vs TransformerConv: {win['speedup_vs_peer']:.1f}x faster (target >= 40x)")
    if "speedup_vs_sdpa_full" in win:
        print(f"  vs full dense SDPA: {win['speedup_vs_sdpa_full']:.1f}x faster (target >= 12x)")
    print(
        f"  useful-FLOP rate: {100 * win['frac_matmul']:.1f}% of "
        f"{win['matmul_gflops']:.1f} GFLOP/s matmul (target >= 60%)"
    )


if __name__ == "__main__":
    main()
