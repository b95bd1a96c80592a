"""Full attention: the layer on the ``dense`` engine against ``torch.nn.MultiheadAttention``.

One attention layer (d_model 256, 8 heads, float32), forward + backward, on a batch of equal
sequences (8 x 512) and on a ragged batch (lengths 64 .. 960, the same 4096 tokens): the
layer on ``FullGraph.from_sizes(lengths)`` (packed tokens, no padding), ``nn.MultiheadAttention``
on the padded ``[B, L_max, d]`` batch with a ``key_padding_mask`` (what a user of it does).
Both run in this process, alternating, median of ``--repeats`` steps after a warm-up; the
``ratio`` column is the layer's time over MHA's (below 1: the layer is faster).

    python benchmarks/mha.py --out results/mha
    python benchmarks/mha.py --quick   # lengths / 4, 3 repeats
"""

from __future__ import annotations

import statistics
import time

import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.experiments import Run, cli

PRESETS = {"full": dict(repeats=7, scale=1), "quick": dict(repeats=3, scale=4)}
BATCHES = {
    "8 x 512": [512] * 8,
    "ragged": [64, 960, 320, 704, 192, 832, 448, 576],
}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(lengths: list[int], d_model: int, heads: int, repeats: int) -> dict:
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)
    conv = MultiHeadAttentionConv.from_torch(mha)
    pattern = FullGraph.from_sizes(lengths)
    x = torch.randn(sum(lengths), d_model)
    b, l_max = len(lengths), max(lengths)
    padded = torch.zeros(b, l_max, d_model)
    pad_mask = torch.ones(b, l_max, dtype=torch.bool)
    start = 0
    for i, n in enumerate(lengths):
        padded[i, :n], pad_mask[i, :n] = x[start : start + n], False
        start += n

    def step_conv():
        conv(x, pattern).sum().backward()

    def step_mha():
        out, _ = mha(padded, padded, padded, key_padding_mask=pad_mask, need_weights=False)
        out[~pad_mask].sum().backward()  # the real tokens, as the layer

    for step in (step_conv, step_mha):
        step()  # warm-up
    times = {"layer": [], "mha": []}
    for _ in range(repeats):
        times["layer"].append(_timed(step_conv))
        times["mha"].append(_timed(step_mha))
    layer, ref = statistics.median(times["layer"]), statistics.median(times["mha"])
    return {
        "layer_s": layer,
        "mha_s": ref,
        "ratio": layer / ref,
        "engine": conv.engine_for(x, pattern),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/mha.py")
    p.add_argument("--d-model", type=count, default=256)
    p.add_argument("--heads", type=count, default=8)
    p.add_argument("--repeats", type=count, help="timed steps per layer and batch (median)")
    p.add_argument("--scale", type=count, help="divide every length by this")
    p.add_run_options("outputs/mha", threads=None, progress=False)
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    with Run.from_args(args) as run:
        rows = []
        for name, lengths in BATCHES.items():
            lengths = [max(1, n // args.scale) for n in lengths]
            result = compare(lengths, args.d_model, args.heads, args.repeats)
            rows.append({"batch": name, "tokens": sum(lengths), **result})
            print(f"{name}: layer {result['layer_s']:.3f} s, MHA {result['mha_s']:.3f} s",
                  flush=True)  # fmt: skip
        title = "forward + backward, median s (ratio < 1: the layer is faster)"
        run.table("mha", rows, title=title)
    return rows


if __name__ == "__main__":
    main()
