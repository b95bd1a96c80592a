"""Quickstart: one attention layer, several graphs, several engines.

Shows that ``MultiHeadAttentionConv`` is exactly ``torch.nn.MultiheadAttention`` on a complete
graph, that every engine agrees with the PyG reference, and what the dense engine buys on full
attention over long sequences.

    python examples/quickstart.py [--length 1024] [--d-model 64] [--heads 4]
"""

from __future__ import annotations

import platform
import time

import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.experiments.cli import ScriptParser, int_at_least


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--length", type=int_at_least(1), default=1024, help="sequence length for timing"
    )
    parser.add_argument("--d-model", type=int_at_least(1), default=64)
    parser.add_argument("--heads", type=int_at_least(1), default=4)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(
        f"graphattn quickstart | torch {torch.__version__} | {platform.machine()} | "
        f"{torch.get_num_threads()} threads | d_model={args.d_model} heads={args.heads}"
    )

    # 1. Exactly nn.MultiheadAttention on a complete graph with self-loops.
    mha = torch.nn.MultiheadAttention(args.d_model, args.heads, batch_first=True)
    conv = MultiHeadAttentionConv.from_torch(mha)
    x = torch.randn(3, 17, args.d_model)  # 3 sequences of 17 tokens
    ref, _ = mha(x, x, x)
    pattern = FullGraph.from_sizes([17, 17, 17])
    out = conv(x.reshape(-1, args.d_model), pattern)
    diff = (out - ref.reshape(-1, args.d_model)).abs().max().item()
    print(f"\n1. vs torch.nn.MultiheadAttention, 3 x 17 tokens: max |diff| = {diff:.2e}")

    # 2. Every engine on the same ragged batch gives the same numbers.
    pattern = FullGraph.from_sizes([5, 0, 12, 1])
    x = torch.randn(pattern.num_nodes, args.d_model)
    results = {}
    for engine in ("dense", "scatter"):
        conv.engine = engine
        results[engine] = conv(x, pattern)
    conv.engine = "auto"
    diff = (results["dense"] - results["scatter"]).abs().max().item()
    print(f"2. ragged batch of sizes [5, 0, 12, 1]: dense vs scatter max |diff| = {diff:.2e}")
    print(f"   engine='auto' picks {conv.engine_for(x, pattern)!r} for {pattern}")

    # 3. Attention over suppliers on a tiny supply chain (edges supplier -> customer).
    names = ["mine", "smelter", "mill", "factory", "shop"]
    edge_index = torch.tensor([[0, 0, 1, 2, 1, 3], [1, 2, 3, 3, 2, 4]])
    x = torch.randn(len(names), args.d_model)
    _, att = conv(x, edge_index, return_attention=True)
    print("3. supply chain: factory's attention over its suppliers (head 0):")
    for e in (edge_index[1] == 3).nonzero().flatten().tolist():
        print(f"   {names[edge_index[0, e]]:>8} -> factory: {att.weights[e, 0].item():.3f}")
    print(f"   engine={conv.engine_for(x, edge_index)!r}; mine has no supplier: zero attention")

    # 4. Full attention on one long sequence: dense SDPA vs the edge-list reference.
    n = args.length
    x = torch.randn(n, args.d_model, requires_grad=True)
    pattern = FullGraph(n)
    edges = pattern.edge_index()
    timings = {}
    for engine, graph in (("dense", pattern), ("scatter", edges)):
        conv.engine = engine

        def step(graph=graph):
            conv(x, graph).sum().backward()

        timings[engine] = median_time(step)
    print(f"4. full attention, N={n} ({edges.size(1):,} edges), forward + backward:")
    for engine, t in timings.items():
        print(f"   {engine:>8}: {t * 1e3:8.1f} ms")
    print(f"   dense is {timings['scatter'] / timings['dense']:.1f}x faster than scatter")


if __name__ == "__main__":
    main()
