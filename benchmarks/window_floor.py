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


def main(argv: list[str] | None = None) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphattn, uninstalled too
    from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--nodes", type=int_at_least(2), default=None, help="tokens N (default 8192, quick 2048)"
    )
    parser.add_argument("--radius", type=int_at_least(0), default=64)
    parser.add_argument("--d-model", type=int_at_least(1), default=256)
    parser.add_argument("--heads", type=int_at_least(1), default=8)
    parser.add_argument(
        "--repeats",
        type=int_at_least(1),
        default=None,
        help="timed runs of each part (median; default 25, quick 5)",
    )
    parser.add_argument(
        "--matmul-size",
        type=int_at_least(1),
        default=1536,
        help="side of the square matmul that sets the machine's rate",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--out", type=output_folder, help="write window_floor.csv into this folder")
    parser.add_argument("--quick", action="store_true", help="N = 2048, 5 repeats")
    args = parser.parse_args(argv)
    if args.nodes is None:
        args.nodes = 2048 if args.quick else 8192
    if args.repeats is None:
        args.repeats = 5 if args.quick else 25
    for name in ("nodes", "radius", "d_model", "heads", "repeats", "matmul_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    if args.d_model % args.heads:
        parser.error("--d-model must be a multiple of --heads")
    from graphattn.experiments import RunFolder

    folder = RunFolder(args.out) if args.out is not None else None  # writable? checked now

    import torch
    import torch.nn.functional as F

    from graphattn import MultiHeadAttentionConv, WindowGraph
    from graphattn.engines import blocked
    from graphattn.experiments import machine_line, write_table

    print(machine_line())
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
    if folder is not None:
        with folder:
            path = write_table(args.out / "window_floor.csv", [result], settings=vars(args))
        print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
