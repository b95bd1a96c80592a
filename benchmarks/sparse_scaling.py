"""Sparse attention on random graphs of growing size: fused vs scatter vs PyG TransformerConv.

Every (engine, graph size) runs in its own Python process, forward + backward (``out.sum()``,
gradients of the layer's parameters; ``x`` does not require grad), d_model 128, 8 heads:

- ``fused``:   ``MultiHeadAttentionConv(128, 128, heads=8, engine="fused")`` (numba CSR kernels)
- ``scatter``: the same layer with ``engine="scatter"`` (PyG gather / softmax / scatter)
- ``pyg``:     ``torch_geometric.nn.TransformerConv(128, 16, heads=8)`` (out_channels per head)
- ``proj``:    the four 128 x 128 projections of the layer alone (``lin_out(q + k + v)``, no
  attention): a floor on the time and memory of any attention layer with these projections,
  which shows how much of ``fused``'s time is attention at all

Time: the median of ``--repeats`` steps after ``--warmup`` steps (the first step, which builds
the fused engine's cached CSR, is reported separately as ``first_s``).

Peak extra memory: in the worker, after the graph, features and model exist, the kernel's
peak-RSS counter is reset (``echo 5 > /proc/self/clear_refs``) and ``VmRSS`` is read as the
baseline; after all steps, ``VmHWM`` (the peak RSS since the reset) minus that baseline is the
peak extra memory of the steps. This counts everything the process touches (allocator slack
included), not only tensors. Where ``clear_refs`` is not writable the worker falls back to
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus the baseline, which overstates nothing but
can miss a peak lower than an earlier one (it is flagged in the ``mem_method`` column).

Examples::

    python benchmarks/sparse_scaling.py --quick
    python benchmarks/sparse_scaling.py                         # N = 1k, 10k, 100k; E = 16 N
    python benchmarks/sparse_scaling.py --sizes 1000000 --degree 64 --engines fused \\
        --warmup 0 --repeats 1                                   # the 1M-node / 64M-edge run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENGINES = ("fused", "scatter", "pyg", "proj")


# ---- worker (one engine, one size, its own process) --------------------------------------
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _Projections(d_model: int):
    """The layer's four projections without attention: ``lin_out(q + k + v)``."""
    from torch import nn

    class Projections(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(4))

        def forward(self, x, edge_index):
            q, k, v, o = self.lin
            return o(q(x) + k(x) + v(x))

    return Projections()


def worker(spec: dict) -> dict:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    torch.manual_seed(spec["seed"])
    n, e = spec["nodes"], spec["edges"]
    d_model, heads = spec["d_model"], spec["heads"]
    edge_index = torch.randint(0, n, (2, e))
    x = torch.randn(n, d_model)
    if spec["engine"] == "pyg":
        from torch_geometric.nn import TransformerConv

        model = TransformerConv(d_model, d_model // heads, heads=heads)
    elif spec["engine"] == "proj":
        model = _Projections(d_model)
    else:
        from graphattn import MultiHeadAttentionConv

        model = MultiHeadAttentionConv(d_model, d_model, heads, engine=spec["engine"])
        if spec["engine"] == "fused":  # load the cached numba kernels outside the measurement
            small = torch.randint(0, 4, (2, 8))
            model(torch.randn(4, d_model), small).sum().backward()
            model.zero_grad(set_to_none=True)

    import gc

    gc.collect()
    reset = _reset_peak()
    base_kib = _status_kib("VmRSS")
    base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(spec["warmup"] + spec["repeats"]):
        t0 = time.perf_counter()
        out = model(x, edge_index)
        out.sum().backward()
        times.append(time.perf_counter() - t0)
        del out
        model.zero_grad(set_to_none=True)
    if reset and base_kib is not None:
        peak_kib = _status_kib("VmHWM")
        method = "VmHWM"
    else:  # pragma: no cover - kernels without clear_refs
        peak_kib, base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, base_maxrss
        method = "ru_maxrss"
    measured = times[spec["warmup"] :] or times
    return {
        "engine": spec["engine"],
        "nodes": n,
        "edges": e,
        "time_s": statistics.median(measured),
        "first_s": times[0],
        "peak_extra_mb": (peak_kib - base_kib) / 1024,
        "baseline_mb": base_kib / 1024,
        "mem_method": method,
        "steps": len(times),
    }


def run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**_empty(spec), "error": f"timeout after {timeout:.0f}s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {**_empty(spec), "error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _empty(spec: dict) -> dict:
    return {
        "engine": spec["engine"],
        "nodes": spec["nodes"],
        "edges": spec["edges"],
        "time_s": float("nan"),
        "first_s": float("nan"),
        "peak_extra_mb": float("nan"),
        "baseline_mb": float("nan"),
        "mem_method": "",
        "steps": 0,
    }


# ---- driver --------------------------------------------------------------------------------
def machine() -> str:
    import numba
    import torch

    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads)"
    )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="numbers of nodes N"
    )
    parser.add_argument("--degree", type=int, default=16, help="edges per node: E = degree * N")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-edges-pyg",
        type=int,
        default=2_000_000,
        help="skip TransformerConv and scatter above this many edges (they need ~3 KB per edge)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/sparse_scaling"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (CI)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return []
    if args.quick:
        args.sizes, args.warmup, args.repeats = [300, 1_000], 1, 1

    from tqdm import tqdm

    print(f"machine: {machine()}")
    print(
        f"settings: sizes={args.sizes} degree={args.degree} d_model={args.d_model} "
        f"heads={args.heads} engines={args.engines} warmup={args.warmup} "
        f"repeats={args.repeats} (forward + backward, each in its own process)"
    )
    jobs = []
    for n in args.sizes:
        e = n * args.degree
        for engine in args.engines:
            if engine in ("scatter", "pyg") and e > args.max_edges_pyg:
                continue
            jobs.append(
                {
                    "engine": engine,
                    "nodes": n,
                    "edges": e,
                    "d_model": args.d_model,
                    "heads": args.heads,
                    "warmup": args.warmup,
                    "repeats": args.repeats,
                    "seed": args.seed,
                }
            )
    rows = []
    for spec in (bar := tqdm(jobs, desc="runs", file=sys.stderr)):
        bar.set_postfix_str(f"{spec['engine']} N={spec['nodes']}")
        rows.append(run_worker(spec, args.timeout))

    by = {(r["engine"], r["nodes"]): r for r in rows}
    for r in rows:
        fused = by.get(("fused", r["nodes"]))
        for key, col in (("time_s", "time_vs_fused"), ("peak_extra_mb", "mem_vs_fused")):
            r[col] = r[key] / fused[key] if fused and fused[key] > 0 else float("nan")

    args.out.mkdir(parents=True, exist_ok=True)
    fields = [
        "engine",
        "nodes",
        "edges",
        "time_s",
        "first_s",
        "peak_extra_mb",
        "time_vs_fused",
        "mem_vs_fused",
        "baseline_mb",
        "mem_method",
        "steps",
        "error",
    ]
    with open(args.out / "sparse_scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    header = (
        f"{'engine':8} {'N':>9} {'E':>10} {'time s':>9} {'first s':>9} "
        f"{'peak MB':>9} {'time/fused':>10} {'mem/fused':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['engine']:8} {r['nodes']:9d} {r['edges']:10d} {r['time_s']:9.3f} "
            f"{r['first_s']:9.3f} {r['peak_extra_mb']:9.1f} {r['time_vs_fused']:10.2f} "
            f"{r['mem_vs_fused']:10.2f}" + (f"  ({r['error']})" if r.get("error") else "")
        )
    _plot(rows, args, args.out / "sparse_scaling.png")
    print(f"wrote {args.out / 'sparse_scaling.csv'} and {args.out / 'sparse_scaling.png'}")
    return rows


def _plot(rows: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for engine in args.engines:
        pts = sorted(
            (r["edges"], r["time_s"], r["peak_extra_mb"])
            for r in rows
            if r["engine"] == engine and r["time_s"] == r["time_s"]
        )
        if not pts:
            continue
        e, t, m = zip(*pts, strict=True)
        axes[0].plot(e, t, "o-", label=engine)
        axes[1].plot(e, m, "o-", label=engine)
    for ax, label in zip(
        axes, ("forward + backward time (s)", "peak extra memory (MB)"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"edges E (random graphs, E = {args.degree} N)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"d_model {args.d_model}, {args.heads} heads; {machine()}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
