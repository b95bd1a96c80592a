"""Where the window step's time goes: the layer against its projections and its attention core.

The window goals of ``dense_vs_sparse.py`` (``blocked`` at N = 8192, radius 64, d_model 256,
8 heads) compare the whole layer's forward + backward with the matmul rate. This script
splits that step, in one process, into the two parts no engine can skip, each timed alone
with the layer's own shapes:

- ``projections``: the layer's four products forward + backward (the stacked q/k/v product
  and the output product, biases included), each given a gradient, nothing between them;
- ``flash_core``: PyTorch's CPU flash-attention kernel forward + backward
  (``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu`` and its backward, the
  kernels behind SDPA there) exactly as the ``blocked`` engine calls it: on its groups of
  blocks (query blocks of ``b`` nodes against key windows of ``b + 2r``, under the engine's
  own mask), read as views of q, k, v rows laid out as the stacked product lays them out,
  all groups forward, then all backward; without the engine's copies of the results and its
  fold of the key-window gradients;
- ``layer``: ``MultiHeadAttentionConv(engine="blocked")`` on ``WindowGraph(N, radius)``.

The parts and a float32 ``--matmul-size`` square matmul are timed in turn, ``--repeats``
times each, so that all see the same load; medians. ``frac_matmul`` is the useful FLOP rate
(as in ``dense_vs_sparse.py``: ``3 x (8 N d^2 + 4 E d)``) as a share of the matmul rate;
``frac_bound`` is the share the layer would reach if it cost only ``projections +
flash_core``; ``glue_s`` is what the layer spends beyond the two (gathers, guards, checks,
Python).

    python benchmarks/window_floor.py --out results/window_floor
    python benchmarks/window_floor.py --quick   # N = 2048, 5 repeats
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

PRESETS = {"full": dict(nodes=8192, repeats=25), "quick": dict(nodes=2048, repeats=5)}


def main(argv: list[str] | None = None) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphattn, uninstalled too
    from graphattn.experiments import Run, cli, machine_line

    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/window_floor.py")
    p.add_argument("--nodes", type=cli.int_at_least(2), help="tokens N")
    p.add_argument("--radius", type=count, default=64)
    p.add_argument("--d-model", type=count, default=256)
    p.add_argument("--heads", type=count, default=8)
    p.add_argument("--repeats", type=count, help="timed runs of each part (median)")
    p.add_argument("--matmul-size", type=count, default=1536,
                   help="side of the square matmul that sets the machine's rate")  # fmt: skip
    p.add_argument("--seed", type=cli.int_at_least(0), default=0)
    p.add_argument("--out", type=cli.output_folder, help="write window_floor.csv into this folder")
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    if args.out is None:  # print only
        print(machine_line())
        return _measure(args)
    with Run.from_args(args) as run:
        result = _measure(args)
        run.table("window_floor", [result])
    return result


def _measure(args) -> dict:
    import torch
    import torch.nn.functional as F

    from graphattn import MultiHeadAttentionConv, WindowGraph
    from graphattn.engines import blocked

    torch.manual_seed(args.seed)
    n, d, heads = args.nodes, args.d_model, args.heads
    dim = d // heads
    x = torch.randn(n, d, requires_grad=True)
    grad = torch.randn(n, d)
    graph = WindowGraph(n, radius=args.radius)
    conv = MultiHeadAttentionConv(d, d, heads=heads, engine="blocked")

    def layer():
        conv(x, graph).backward(grad)
        x.grad = None
        conv.zero_grad(set_to_none=True)

    w_qkv = torch.randn(3 * d, d, requires_grad=True)
    b_qkv = torch.zeros(3 * d, requires_grad=True)
    w_out = torch.randn(d, d, requires_grad=True)
    b_out = torch.zeros(d, requires_grad=True)

    g_qkv = torch.randn(n, 3 * d)
    o = torch.randn(n, d, requires_grad=True)  # the attention output, input of the last product

    def projections():
        F.linear(x, w_qkv, b_qkv).backward(g_qkv)
        F.linear(o, w_out, b_out).backward(grad)
        for t in (x, o, w_qkv, b_qkv, w_out, b_out):
            t.grad = None

    plan = blocked._plan(graph, blocked.DEFAULT_BLOCK_SIZE, x.device)
    b, s = plan.block, plan.span
    q, k, v = torch.randn(n, 3, heads, dim).unbind(1)  # the stacked product's row layout
    g_out = torch.randn(n, heads, dim)
    fwd = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    bwd = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward

    def flash_core():
        groups = list(blocked._groups(plan, q, k, v))
        results = [fwd(rows, kw, vw, attn_mask=m, scale=1.0) for _, _, rows, kw, vw, m in groups]
        for (g0, g1, rows, kw, vw, m), (out, lse) in zip(groups, results, strict=True):
            g = blocked._query_rows(plan, g_out, g0, g1)
            bwd(g, rows, kw, vw, out, lse, 0.0, False, attn_mask=m, scale=1.0)

    a = torch.randn(args.matmul_size, args.matmul_size)
    c = torch.randn(args.matmul_size, args.matmul_size)

    def matmul():
        a @ c

    parts = {"layer": layer, "projections": projections, "flash_core": flash_core, "mm": matmul}
    for f in parts.values():  # warm-up: caches, kernels, allocator
        f()
        f()
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.repeats):
        for name, f in parts.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    rate = 2 * args.matmul_size**3 / med["mm"] / 1e9
    useful = 3 * (8 * n * d * d + 4 * graph.num_edges * d) / 1e9
    bound = med["projections"] + med["flash_core"]
    result = {
        "nodes": n, "radius": args.radius, "d_model": d, "heads": heads, "block": b,
        "span": s, "layer_s": med["layer"], "projections_s": med["projections"],
        "flash_core_s": med["flash_core"], "glue_s": med["layer"] - bound,
        "matmul_gflops": rate, "frac_matmul": useful / med["layer"] / rate,
        "frac_bound": useful / bound / rate,
    }  # fmt: skip
    print(
        f"N={n} r={args.radius} d_model={d} heads={heads} (blocks {b} x {s}), medians of "
        f"{args.repeats}: layer {med['layer'] * 1e3:.1f} ms, projections "
        f"{med['projections'] * 1e3:.1f} ms, flash core {med['flash_core'] * 1e3:.1f} ms, "
        f"glue {result['glue_s'] * 1e3:.1f} ms; matmul {rate:.1f} GFLOP/s: layer at "
        f"{result['frac_matmul']:.2f} of it, projections + core alone would be at "
        f"{result['frac_bound']:.2f}"
    )
    return result


if __name__ == "__main__":
    main()
