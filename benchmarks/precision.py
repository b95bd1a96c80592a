"""16-bit rows: the fused engine on float16/bfloat16 inputs, against float32 and against an
eager low-precision peer.

One layer (d_model 128, 8 heads), forward + backward on a random graph (``--nodes``,
``--degree`` edges per node). The fused engine keeps q, k, v in 16 bits in memory and
accumulates in float32 inside the kernels. The eager peer is PyG's ``TransformerConv`` converted
to the same dtype (every op in 16 bits, as PyTorch runs it eagerly). Errors are against the same
layer in float64 on the same (16-bit-rounded) inputs and parameters: ``max_err`` and
``mean_err`` of the output. The rule: the fused 16-bit error must be within 2x of the eager
peer's error in that dtype (``within_2x_of_eager``). ``time_vs_fused_f32`` compares step times
with the fused engine on float32 inputs, measured in the same process.

    python benchmarks/precision.py --out results/precision
    python benchmarks/precision.py --quick     # N = 2000, one repeat: seconds
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch_geometric.nn import TransformerConv

from graphattn import EdgeList, MultiHeadAttentionConv
from graphattn.experiments import Run, cli

PRESETS = {"full": dict(nodes=100_000, repeats=3), "quick": dict(nodes=2000, repeats=1)}


def _step(model, x, graph, repeats: int) -> float:
    model(x, graph).float().sum().backward()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x, graph).float().sum().backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _errors(model, x, graph) -> tuple[float, float]:
    with torch.no_grad():
        out = model(x, graph).double()
        ref = copy.deepcopy(model).double()(x.double(), graph)
    diff = (out - ref).abs()
    return float(diff.max()), float(diff.mean())


def main(argv: list[str] | None = None) -> list[dict]:
    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/precision.py")
    p.add_argument("--nodes", type=cli.int_at_least(2))
    p.add_argument("--degree", type=count, default=16)
    p.add_argument("--d-model", type=count, default=128)
    p.add_argument("--heads", type=count, default=8)
    p.add_argument("--repeats", type=count, help="timed steps (the median is reported)")
    p.add_run_options("outputs/precision", threads=None, progress=False)
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    with Run.from_args(args) as run:
        return _compare(args, run)


def _compare(args, run: Run) -> list[dict]:
    torch.manual_seed(0)
    n, d, h = args.nodes, args.d_model, args.heads
    edge_index = torch.randint(0, n, (2, n * args.degree))
    edges = EdgeList(edge_index, n)
    x = torch.randn(n, d)
    ours = MultiHeadAttentionConv(d, d, h, add_self_loops=False, engine="fused")
    peer = TransformerConv(d, d // h, heads=h)
    f32 = _step(ours, x, edges, args.repeats)
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        xd = x.to(dtype)
        for name, model, graph in (
            ("fused", ours, edges),
            ("eager TransformerConv", peer, edge_index),
        ):
            m = copy.deepcopy(model).to(dtype)
            max_err, mean_err = _errors(m, xd, graph)
            step = _step(m, xd, graph, args.repeats)
            print(f"{dtype}, {name}: step {step:.3f} s, max error {max_err:.2e}", flush=True)
            rows.append({"dtype": str(dtype).removeprefix("torch."), "layer": name,
                         "step_s": step, "time_vs_fused_f32": step / f32,
                         "max_err": max_err, "mean_err": mean_err})  # fmt: skip
    for ours_row, eager in zip(rows[::2], rows[1::2], strict=True):
        ours_row["within_2x_of_eager"] = ours_row["max_err"] <= 2 * eager["max_err"]
        eager["within_2x_of_eager"] = ""  # the peer the rule compares with
    print(f"fused float32 step: {f32:.3f} s")
    run.table("precision", rows, {**run.settings, "fused_f32_s": f32},
              title="16-bit inputs: step time and error against float64", fmt=".3g")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
