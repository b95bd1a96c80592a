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
from pathlib import Path

import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.experiments import RunFolder, machine_line, print_table, write_table
from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

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
    parser = ScriptParser(doc=__doc__)
    parser.add_argument("--d-model", type=int_at_least(1), default=256)
    parser.add_argument("--heads", type=int_at_least(1), default=8)
    parser.add_argument(
        "--repeats",
        type=int_at_least(1),
        default=None,
        help="timed steps per layer and batch (median reported; default 7, quick 3)",
    )
    parser.add_argument(
        "--scale",
        type=int_at_least(1),
        default=None,
        help="divide every length by this (default 1, quick 4)",
    )
    parser.add_argument("--out", type=output_folder, default=Path("outputs/mha"))
    parser.add_argument("--quick", action="store_true", help="lengths / 4, 3 repeats")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.scale is None:
        args.scale = 4 if args.quick else 1
    if args.repeats < 1 or args.scale < 1 or args.d_model % args.heads:
        parser.error("--repeats and --scale must be >= 1 and --heads must divide --d-model")
    folder = RunFolder(args.out)  # writable? checked now, before the compute
    print(machine_line())
    print(f"settings: {vars(args)}")
    rows = []
    for name, lengths in BATCHES.items():
        lengths = [max(1, n // args.scale) for n in lengths]
        result = compare(lengths, args.d_model, args.heads, args.repeats)
        rows.append({"batch": name, "tokens": sum(lengths), **result})
        print(f"{name}: layer {result['layer_s']:.3f} s, MHA {result['mha_s']:.3f} s", flush=True)
    print_table(rows, title="forward + backward, median s (ratio < 1: the layer is faster)")
    with folder:
        path = write_table(args.out / "mha.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
