"""The fused engine's three kernels alone: the build compiled for the head shape vs the generic one.

Times the forward, the backward pass by target and the backward pass by source of
``graphattn.engines.fused.kernels`` on a random graph, without the layer, autograd or
allocation of the outputs (they are allocated once and reused), for the build compiled for
``(heads, d_model / heads)`` and for the generic build that reads the shape at run time.
Prints and writes (``fused_kernels.csv`` in ``--out``) the best and the median of
``--repeats`` calls per kernel, for ``--rounds`` interleaved rounds (the machine's noise shows
as the spread between rounds).

    python benchmarks/fused_kernels.py            # N = 100k, E = 1.6M, 8 heads x 16 channels
    python benchmarks/fused_kernels.py --quick    # N = 10k, one round of 3 repeats
    python benchmarks/fused_kernels.py --nodes 10000 --heads 4 --d-model 128 --rounds 1
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

PRESETS = {
    "full": dict(nodes=100_000, repeats=7, rounds=2),
    "quick": dict(nodes=10_000, repeats=3, rounds=1),
}


def _time(fn, args, repeats: int) -> tuple[float, float]:
    fn(*args)  # compile / load, warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphattn, uninstalled too
    from graphattn.experiments import Run, cli

    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/fused_kernels.py")
    p.add_argument("--nodes", type=cli.int_at_least(2))
    p.add_argument("--degree", type=count, default=16)
    p.add_argument("--heads", type=count, default=8)
    p.add_argument("--d-model", type=count, default=128)
    p.add_argument("--repeats", type=count, help="timed calls per kernel")
    p.add_argument("--rounds", type=count, help="interleaved rounds over both builds")
    p.add_run_options("outputs/fused_kernels", threads=None, progress=False, seed=0)
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    with Run.from_args(args) as run:
        rows = _time_builds(args)
        run.table("fused_kernels", rows)
    return rows


def _time_builds(args) -> list[dict]:
    import numpy as np
    import torch

    from graphattn import EdgeList
    from graphattn.engines.fused import csr_for
    from graphattn.engines.fused import kernels as K
    from graphattn.engines.fused.ops import run_ranges

    n, e, h = args.nodes, args.nodes * args.degree, args.heads
    d = args.d_model // h
    gen = torch.Generator().manual_seed(args.seed)
    edges = EdgeList(torch.randint(0, n, (2, e), generator=gen), n)
    by_target = K.CSRArrays(*(a.numpy() for a in csr_for(edges, "target").as_tuple()))
    by_source = K.CSRArrays(*(a.numpy() for a in csr_for(edges, "source").as_tuple()))
    rng = np.random.default_rng(args.seed)
    q, k, v, gout = (rng.standard_normal((n, h * d), dtype=np.float32) for _ in range(4))
    q *= d**-0.5
    out, dq, dk, dv = (np.empty_like(q) for _ in range(4))
    lse, glse = np.empty((n, h), np.float32), np.zeros((n, h), np.float32)
    ld = np.empty((n, 2 * h), np.float32)
    no2, no3 = np.empty((0, 0), np.float32), np.empty((0, 0, 0), np.float32)
    terms = K.TermArrays(
        no2, no2, no2, no2, np.empty(0, np.int64), np.empty(0, np.bool_), False, False, False, False
    )
    drop = K.DropSpec(0.0, np.uint64(0), np.float32(1), np.float32(0))
    shape = K.Shape(h, d, d)
    grads = (ld, dq, no2, no2, no3, no3)
    builds = {"compiled": K.kernels(h, d, d), "generic": K._generic()}
    if builds["compiled"] is builds["generic"]:
        print(f"note: {h} heads of {d} have no compiled build; both rows are the generic one")

    print(f"N={n} E={e} heads={h} head size={d} float32, best / median of {args.repeats} (s)")
    rows = []
    for rnd in range(args.rounds):
        for name, kern in builds.items():
            fwd = _time(
                run_ranges,
                (kern.forward, (q, k, v, shape, by_target, terms, drop, out, lse), by_target.ptr),
                args.repeats,
            )
            tgt_args = (
                q, k, v, shape, by_target, terms, drop, gout, out, lse, glse, (False,) * 3, grads
            )  # fmt: skip
            tgt = _time(
                lambda kern=kern, tgt_args=tgt_args: run_ranges(
                    kern.backward_target, tgt_args, by_target.ptr, slots=True
                ),
                (),
                args.repeats,
            )
            src = _time(
                run_ranges,
                (kern.backward_source, (q, k, v, shape, by_source, terms, drop, gout, ld, dk, dv),
                 by_source.ptr),
                args.repeats,
            )  # fmt: skip
            row = {
                "round": rnd,
                "build": name,
                "forward_best_s": fwd[0],
                "forward_median_s": fwd[1],
                "backward_target_best_s": tgt[0],
                "backward_target_median_s": tgt[1],
                "backward_source_best_s": src[0],
                "backward_source_median_s": src[1],
                "total_best_s": fwd[0] + tgt[0] + src[0],
            }
            rows.append(row)
            print(
                f"round {rnd} {name:9} forward {fwd[0]:.3f} / {fwd[1]:.3f}   "
                f"by target {tgt[0]:.3f} / {tgt[1]:.3f}   by source {src[0]:.3f} / "
                f"{src[1]:.3f}   sum of best {row['total_best_s']:.3f}",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
