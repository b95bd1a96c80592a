"""How fast can any CSR attention kernel be on this machine? The random-row-read floor.

On a random graph every edge of the fused engine reads two rows of its other endpoint from
memory: the forward and the backward pass by target read ``k_j`` and ``v_j``, the backward
pass by source reads ``q_i`` and ``gout_i``; each row is ``H * D`` floats (512 bytes at
d_model 128 in float32). This script times a numba kernel that does nothing but that read
over the same CSR (summing the products of the two rows into a per-node accumulator, so the
reads cannot be optimised away), with the same thread count and tiling as the engine. Three
such passes are a lower bound for the engine's forward + backward, whatever its arithmetic.

    python benchmarks/gather_floor.py --out results/gather_floor   # N = 100k, E = 1.6M, d 128
    python benchmarks/gather_floor.py --quick   # N = 10k, 3 repeats
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

_TILE = 32
PRESETS = {"full": dict(nodes=100_000, repeats=7), "quick": dict(nodes=10_000, repeats=3)}


@njit(parallel=True, fastmath=True)
def _gather_pass(ptr, src, a, b, out):  # pragma: no cover - timed, compiled by numba
    n = out.shape[0]
    width = a.shape[1]
    for blk in prange((n + 63) // 64):
        ta = np.empty((_TILE, width), dtype=a.dtype)
        tb = np.empty((_TILE, width), dtype=a.dtype)
        acc = np.empty(width, dtype=a.dtype)
        for i in range(blk * 64, min(n, blk * 64 + 64)):
            acc[:] = 0
            for t0 in range(ptr[i], ptr[i + 1], _TILE):
                nt = min(_TILE, ptr[i + 1] - t0)
                for t in range(nt):
                    j = src[t0 + t]
                    for x in range(width):
                        ta[t, x] = a[j, x]
                        tb[t, x] = b[j, x]
                for t in range(nt):
                    for x in range(width):
                        acc[x] += ta[t, x] * tb[t, x]
            for x in range(width):
                out[i, x] = acc[x]


def main(argv: list[str] | None = None) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # graphattn, uninstalled too
    from graphattn.experiments import Run, cli

    count = cli.int_at_least(1)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/gather_floor.py")
    p.add_argument("--nodes", type=cli.int_at_least(2))
    p.add_argument("--degree", type=count, default=16)
    p.add_argument("--d-model", type=count, default=128, help="row width H * D")
    p.add_argument("--repeats", type=count, help="timed passes (the best and median reported)")
    p.add_argument("--seed", type=cli.int_at_least(0), default=0)
    p.add_argument("--out", type=cli.output_folder, help="write gather_floor.csv into this folder")
    args = p.parse_args(argv)
    if args.out is None:  # print only
        return _measure(args)
    with Run.from_args(args) as run:
        result = _measure(args)
        run.table("gather_floor", [result])
    return result


def _measure(args) -> dict:
    import torch

    from graphattn import EdgeList
    from graphattn.engines.fused import csr_for

    gen = torch.Generator().manual_seed(args.seed)
    n, e = args.nodes, args.nodes * args.degree
    csr = csr_for(EdgeList(torch.randint(0, n, (2, e), generator=gen), n))
    rng = np.random.default_rng(args.seed)
    a = rng.standard_normal((n, args.d_model), dtype=np.float32)
    b = rng.standard_normal((n, args.d_model), dtype=np.float32)
    out = np.empty_like(a)
    ptr, src = csr.ptr.numpy(), csr.idx.numpy()
    _gather_pass(ptr, src, a, b, out)  # compile / load, and warm up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        _gather_pass(ptr, src, a, b, out)
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    gbytes = 2 * e * args.d_model * 4 / 1e9
    print(
        f"N={n} E={e} row width {args.d_model} (float32): one pass reads {gbytes:.2f} GB "
        f"of rows; best {best:.3f} s, median {median:.3f} s over {args.repeats} "
        f"({gbytes / best:.1f} GB/s at best)"
    )
    print(
        f"floor for forward + backward (3 passes): {3 * best:.3f} s best, {3 * median:.3f} s median"
    )
    result = {"nodes": n, "edges": e, "d_model": args.d_model, "best_s": best,
              "median_s": median, "floor_s": 3 * best, "gbytes_per_s": gbytes / best}  # fmt: skip
    return result


if __name__ == "__main__":
    main()
