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

Each configuration runs in a fresh Python process (``graphattn.experiments.run_isolated``, so
that one configuration's memory, caches and compiled code do not mix with the next): one
warm-up step, then up to ``--repeats`` timed steps (fewer when one step takes longer than
``--budget`` seconds); the table reports the median. ``--rounds K`` sweeps all configurations
K times in turn and reports the median over rounds, which spreads the load of other processes
over all rows. Peak memory (``peak_mb``, in MB) is the peak resident memory the timed steps
added to the process (``graphattn.experiments.PeakMemory``: the kernel's peak counter is
reset after the warm-up step): all memory a steady step needs at its peak (activations,
gradients, workspaces, allocator slack, and the edge list's per-edge tensors); inputs,
parameters, loaded kernels and what the warm-up cached on the graph (its edge list, CSR or
block plan) excluded; the largest over rounds. The useful
FLOPs of a step count only the work the pattern asks for: ``3 x (8 N d^2 + 4 E d)``
(projections q, k, v, out and the E-edge attention, forward + 2x for backward); the rate is
reported as a fraction of this machine's float32 matmul rate, measured in the same child
process right after the configuration (so that both see the same load from other processes).
Scatter and TransformerConv rows are skipped (and marked) above ``--max-edges`` edges, fused
rows above ``--max-fused-edges``. ``results.csv`` names the machine, the command that
reproduces the run and its settings in its ``# key: value`` header lines.

Usage::

    PYTHONPATH=. python benchmarks/dense_vs_sparse.py            # N = 512 .. 16384
    PYTHONPATH=. python benchmarks/dense_vs_sparse.py --quick    # small sizes
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import time
from pathlib import Path

from graphattn.experiments import (
    Goal,
    PeakMemory,
    RunFolder,
    judge_goals,
    machine_info,
    machine_line,
    plots,
    progress,
    run_isolated,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, output_folder

PATTERNS = ("full", "chunked", "window")
#: the settings of a run: the first level is the default, every other one a flag
PRESETS = {
    "full": dict(sizes=[512, 1024, 2048, 4096, 8192, 16384], repeats=5, budget=20.0,
                 max_edges=1_100_000, d_model=256, heads=8, radius=64, chunk_size=128),
    # full attention on scatter: N <= 512
    "quick": dict(sizes=[512, 1024], repeats=3, budget=1.0, max_edges=300_000, d_model=256,
                  heads=8, radius=64, chunk_size=128),
    # tiny settings for CI
    "smoke": dict(sizes=[64, 96], repeats=1, budget=1.0, max_edges=1_100_000, d_model=32,
                  heads=4, radius=4, chunk_size=8),
}  # fmt: skip
HERE = Path(__file__).resolve()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    count, edges = int_at_least(1), int_at_least(0)
    p = ScriptParser(doc=__doc__, presets=PRESETS)
    p.add_argument("--sizes", type=int_at_least(2), nargs="+",
                   help="sequence lengths N (the goals are judged at N = 8192 only)")  # fmt: skip
    p.add_argument("--d-model", type=count)
    p.add_argument("--heads", type=count)
    p.add_argument("--radius", type=edges, help="window radius")
    p.add_argument("--chunk-size", type=count, help="chunk length of the chunked pattern")
    p.add_argument("--repeats", type=count, help="timed steps per configuration")
    p.add_argument("--rounds", type=count, default=1)
    p.add_argument("--budget", type=float_in(0, None, low_open=True),
                   help="seconds of timed steps per configuration (at least one step)")  # fmt: skip
    p.add_argument("--max-edges", type=edges,
                   help="skip scatter and TransformerConv above this many edges")  # fmt: skip
    p.add_argument("--max-fused-edges", type=edges, default=5_000_000,
                   help="skip the fused engine above this many edges (full attention)")  # fmt: skip
    p.add_argument("--out", type=output_folder, default=Path("outputs/dense_vs_sparse"))
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    return args


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a run with these arguments: the presets (``--quick``,
    ``--smoke``) given, then every option whose value differs from what they imply."""
    presets = [f"--{name}" for name in list(PRESETS)[1:] if getattr(args, name)]
    implied = vars(parse_args(presets))
    words = ["python", "benchmarks/dense_vs_sparse.py", *presets]
    for key, value in vars(args).items():
        if key in PRESETS or value == implied[key]:
            continue
        values = value if isinstance(value, list) else [value]
        words += [f"--{key.replace('_', '-')}", *map(str, values)]
    return shlex.join(words)


# ---- work done in the child processes (plain-dict specs: they travel as JSON) -------------
def _pattern(name: str, n: int, spec: dict):
    from graphattn import ChunkedGraph, FullGraph, WindowGraph

    if name == "full":
        return FullGraph(n)
    if name == "chunked":
        return ChunkedGraph(n, chunk_size=spec["chunk_size"])
    return WindowGraph(n, radius=spec["radius"])


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


def probe(spec: dict) -> dict:
    """Engines per pattern, edge counts (per size, in the order of ``sizes``) and the fp32
    matmul rate."""
    import torch

    from graphattn.engines import AttentionRequest, available_engines, resolve_engine

    supported, edges = {}, {}
    for name in PATTERNS:
        graph = _pattern(name, spec["sizes"][0], spec)
        request = AttentionRequest(graph, torch.device("cpu"), torch.float32)
        supported[name] = []
        for engine in available_engines():
            try:
                resolve_engine(engine, request)
            except ValueError:
                continue
            supported[name].append(engine)
        edges[name] = [
            m * m if name == "full" else _pattern(name, m, spec).num_edges for m in spec["sizes"]
        ]
    size = 256 if spec["smoke"] else 2048
    rate = matmul_gflops(size, 1) if spec["smoke"] else matmul_gflops(size, 7)
    return {"engines": supported, "edges": edges, "matmul_size": size, "matmul_gflops": rate}


def run_config(spec: dict) -> dict:
    """Time one configuration: warm-up, then timed steps, with the peak memory they add."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    n, d, heads = spec["n"], spec["d_model"], spec["heads"]
    torch.manual_seed(0)
    x = torch.randn(n, d, requires_grad=True)
    grad = torch.randn(n, d)

    if spec["engine"] == "torch-sdpa":

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
    elif spec["engine"] == "pyg-TransformerConv":
        from torch_geometric.nn import TransformerConv

        module = TransformerConv(d, d // heads, heads=heads)
        edge_index = _pattern(spec["pattern"], n, spec).edge_index()

        def call():
            return module(x, edge_index)
    else:
        from graphattn import MultiHeadAttentionConv

        module = MultiHeadAttentionConv(d, d, heads=heads, engine=spec["engine"])
        graph = _pattern(spec["pattern"], n, spec)
        if spec["engine"] == "scatter":
            graph.edge_index()  # the edge list is scatter's input: build it before measuring

        def call():
            return module(x, graph)

    def step() -> float:
        t = time.perf_counter()
        call().backward(grad)
        x.grad = None
        module.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    first = step()  # warm-up: loads (or compiles) kernels and builds the graph's caches
    count = max(1, min(spec["repeats"], int(spec["budget"] / max(first, 1e-9))))
    with PeakMemory() as mem:  # the steady steps: what every further step needs
        times = [step() for _ in range(count)]
    # after the steps: its buffers must not count in their peak
    rate = matmul_gflops(256 if spec["smoke"] else 1536)
    return {
        "median_s": statistics.median(times),
        "repeats": count,
        "peak_mb": mem.extra_mb,
        "load": os.getloadavg()[0],
        "matmul_gflops": rate,
    }


# ---- the driver ---------------------------------------------------------------------------
COLUMNS = [
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


def _failure(err: Exception) -> str:
    """The status of a configuration whose run failed: for a child that failed, its exit code
    and the last line of its output (a traceback's error); otherwise the exception."""
    lines = str(err).strip().splitlines()
    code = re.search(r"failed \(exit (-?\d+)\)", lines[0]) if lines else None
    if code:
        detail = f"exit {code.group(1)}" + (f": {lines[-1].strip()}" if len(lines) > 1 else "")
    else:
        detail = f"{type(err).__name__}: {lines[-1] if lines else ''}"
    return f"failed: {detail}"[:120]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    folder = RunFolder(args.out)  # writable? checked now, before the measurements
    machine = machine_info()
    print(machine_line(machine))
    print(
        f"settings: N={args.sizes} d_model={args.d_model} heads={args.heads} "
        f"radius={args.radius} chunk_size={args.chunk_size} repeats={args.repeats} "
        f"rounds={args.rounds} budget={args.budget}s max_edges={args.max_edges} "
        f"max_fused_edges={args.max_fused_edges} float32, forward + backward, "
        "each configuration in its own process"
    )
    shape = {
        "d_model": args.d_model,
        "heads": args.heads,
        "radius": args.radius,
        "chunk_size": args.chunk_size,
        "smoke": args.smoke,
    }
    info = run_isolated(f"{HERE}:probe", {"sizes": args.sizes, **shape})
    print(
        f"float32 matmul {info['matmul_size']}^3: {info['matmul_gflops']:.1f} GFLOP/s "
        "(in a fresh process)"
    )
    edges = {name: dict(zip(args.sizes, info["edges"][name], strict=True)) for name in PATTERNS}

    configs = []
    for n in args.sizes:
        configs.append({"n": n, "pattern": "full", "engine": "torch-sdpa"})
        for name in PATTERNS:
            configs += [{"n": n, "pattern": name, "engine": e} for e in info["engines"][name]]
        configs.append({"n": n, "pattern": "window", "engine": "pyg-TransformerConv"})

    rows = []
    for cfg in configs:
        n, d = cfg["n"], args.d_model
        num_edges = edges[cfg["pattern"]][n]
        row = {
            **cfg,
            "d_model": d,
            "heads": args.heads,
            "radius": args.radius,
            "chunk_size": args.chunk_size,
            "num_edges": num_edges,
            "useful_gflop": 3 * (8 * n * d * d + 4 * num_edges * d) / 1e9,
        }
        # Edge-list engines: scatter's and TransformerConv's memory grows with E; fused is lean
        # but its time grows with E too, so full attention at large N stays on SDPA.
        edge_list = ("scatter", "pyg-TransformerConv")
        if (cfg["engine"] in edge_list and num_edges > args.max_edges) or (
            cfg["engine"] == "fused" and num_edges > args.max_fused_edges
        ):
            limit = args.max_fused_edges if cfg["engine"] == "fused" else args.max_edges
            flag = "--max-fused-edges" if cfg["engine"] == "fused" else "--max-edges"
            row["status"] = f"skipped: {num_edges} edges > {flag} {limit}"
        rows.append(row)

    # Rounds sweep all configurations in turn, so that load from other processes drifting
    # over the run spreads over every row instead of favouring the rows measured when quiet.
    results: list[list[dict]] = [[] for _ in rows]
    todo = [(i, cfg) for i, cfg in enumerate(configs) if "status" not in rows[i]]
    timing = {"repeats": args.repeats, "budget": args.budget}
    runs = [job for _ in range(args.rounds) for job in todo]
    for i, cfg in progress(runs, "configurations"):
        if "status" in rows[i]:  # failed in an earlier round
            continue
        try:
            results[i].append(run_isolated(f"{HERE}:run_config", {**cfg, **shape, **timing}))
        except Exception as err:  # e.g. out of memory in the child: report, continue
            rows[i]["status"] = _failure(err)
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

    rows = [{c: r.get(c) for c in COLUMNS} for r in rows]  # every row: every column
    with folder:  # the CSVs and the figure land together
        csv_path = write_table(
            args.out / "results.csv",
            rows,
            settings=vars(args),
            machine=machine,
            command=command_line(args),
        )
        print_results(rows)
        png = plot(rows, args, machine_line(machine), args.out / "time_memory_vs_n.png")
        met = goals({(r["n"], r["pattern"], r["engine"]): r for r in rows}, args)
        if met:
            write_table(args.out / "goals.csv", met, settings=vars(args), machine=machine,
                        command=command_line(args))  # fmt: skip
    print(f"wrote {csv_path} and {png}")
    return rows


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_results(rows: list[dict]) -> None:
    head = (
        f"{'N':>6} {'pattern':<8} {'engine':<20} {'edges':>10} {'median s':>9} {'reps':>4} "
        f"{'peak MB':>8} {'GFLOP/s':>8} {'matmul':>7} {'%matmul':>7} {'vs peer':>8} "
        f"{'vs sdpa':>8}  status"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        frac = r["frac_matmul"]
        print(
            f"{r['n']:>6} {r['pattern']:<8} {r['engine']:<20} {r['num_edges']:>10} "
            f"{_fmt(r['median_s'], '9.4f')} {_fmt(r['repeats'], '4d')} "
            f"{_fmt(r['peak_mb'], '8.1f')} {_fmt(r['gflops'], '8.2f')} "
            f"{_fmt(r['matmul_gflops'], '7.1f')} "
            f"{_fmt(None if frac is None else 100 * frac, '6.1f')}% "
            f"{_fmt(r['speedup_vs_peer'], '7.2f')}x "
            f"{_fmt(r['speedup_vs_sdpa_full'], '7.2f')}x  {r['status']}"
        )
    print(
        "(peer: pyg-TransformerConv on the window graph; sdpa: torch-sdpa full attention; "
        "peak MB: memory the steps added; matmul: float32 1536^3 GFLOP/s measured in the "
        "same process just after; %matmul = useful GFLOP/s / matmul)"
    )


def plot(rows: list[dict], args: argparse.Namespace, machine: str, path: Path) -> Path:
    """Time and peak memory against N (log-log), one line per pattern and engine."""
    series: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["median_s"] is not None:
            series.setdefault((r["pattern"], r["engine"]), []).append(r)

    def panel(column: str, ylabel: str, floor: float = 0.0):
        def draw(ax):  # a colour and marker per series; the peers (not this library) dashed
            styles = plots.series_styles(len(series))
            for ((pattern, engine), pts), style in zip(sorted(series.items()), styles, strict=True):
                line = "--" if engine in ("torch-sdpa", "pyg-TransformerConv") else "-"
                ys = [max(p[column], floor) for p in pts]
                ax.plot([p["n"] for p in pts], ys, line, label=f"{pattern} / {engine}", **style)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length N")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)

        return draw

    return plots.panels(
        path,
        [
            panel("median_s", "median time, forward + backward (s)"),
            panel("peak_mb", "peak memory the steps added (MB)", floor=0.1),
        ],
        title=(
            f"d_model={args.d_model}, heads={args.heads}, radius={args.radius}, "
            f"chunk={args.chunk_size}, float32"
        ),
        panel_size=(6.5, 5.0),
        footer=machine,
    )


#: (column, target, what it means) for window attention on the blocked engine at N = 8192
GOALS = (
    ("speedup_vs_peer", 40.0, ">= 40x faster than TransformerConv"),
    ("speedup_vs_sdpa_full", 12.0, ">= 12x faster than full dense attention (SDPA)"),
    ("frac_matmul", 0.6, ">= 60% of the matmul rate in useful FLOPs"),
)


#: the size the goals are set at: a run without it judges none (at smaller N the fixed costs
#: weigh more, so a miss there says nothing about the goal)
GOAL_N = 8192


def goals(by_key: dict, args: argparse.Namespace) -> list[dict]:
    """The goals at N = 8192 for window attention on the blocked engine, each met or not;
    printed, and empty (with a line saying so) when the run did not measure that row."""
    win = by_key.get((GOAL_N, "window", "blocked"), {})
    if win.get("median_s") is None:
        print(f"goals: set at N = {GOAL_N} (window on the blocked engine), not measured in "
              f"this run: not judged (--sizes {GOAL_N} judges them)")  # fmt: skip
        return []
    out = judge_goals(win, [Goal(*g) for g in GOALS], n=GOAL_N)
    print(f"goals at N={GOAL_N}, radius={args.radius} (window on the blocked engine):")
    for g in out:
        print(f"  {g['goal']}: {g['measured']:.3g} ({'met' if g['met'] else 'missed'})")
    return out


if __name__ == "__main__":
    main()
