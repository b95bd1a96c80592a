"""Numba kernels of the ``fused`` engine (private; see :mod:`graphattn.engines.fused`).

All kernels take NumPy views of contiguous CPU tensors, flattened over heads (``[N, H * D]``,
so that the per-edge loops run over one contiguous row; ``heads``, ``dim`` and ``dim_v`` are
passed separately):

- ``q, k`` ``[N, H, D]``, ``v`` ``[N, H, Dv]`` in float32 or float64 (one specialisation each);
- a CSR by target ``(t_ptr [N+1], t_src [E], t_eid [E])``: the incoming edges of node ``i`` sit
  at positions ``t_ptr[i]:t_ptr[i+1]``, with source ``t_src[pos]`` and original edge id
  ``t_eid[pos]``; and, for the backward, a CSR by source ``(s_ptr, s_dst, s_eid)``;
- edge terms ``ek [E, H, D]``, ``ev [E, H, Dv]``, ``rk [R, H, D]``, ``rv [R, H, Dv]`` and
  ``etype [E]``, with flags saying which are present (absent ones are empty arrays, so that the
  argument types, and hence the compiled specialisations, do not depend on the options).

Every kernel is parallel over blocks of nodes and race-free: each node's rows of the outputs
are written by the one thread that owns the node, per-edge outputs are written once, and
per-relation gradients go to per-thread partial sums reduced afterwards.

**Why it is fast.** A node's edges are processed in tiles of :data:`TILE` edges. The rows a
tile needs (keys and values of the sources, or queries and output gradients of the targets)
are first copied into a small per-thread buffer by a tight loop that keeps many cache misses
in flight, and the rows of the *next* tile are prefetched (``llvm.prefetch``) while the
current one is computed: on graphs without locality the kernels are bound by these random
row reads, not by arithmetic. Scores are then computed tile by tile with one softmax
rescaling per tile (not per edge). The kernels are compiled per head count and size
(:func:`kernels`): sizes known at compile time let LLVM unroll and vectorise the per-head
loops (``python benchmarks/fused_kernels.py``: N = 100k, E = 1.6M, 8 heads of 16, best of
7 in two rounds: forward 0.28 s compiled for the shape vs 0.40 s generic; both backward
passes together 0.73-0.82 s vs 1.19-1.21 s).
The by-source pass reads a target's log-sum-exp and ``delta`` from one packed row
``ld [N, 2H]`` (one cache line per edge instead of two).

Dropout is computed inside the kernels from a counter-based hash of ``(seed, edge, head)``,
so the backward recomputes exactly the mask of the forward without storing it.
"""

from functools import cache
from types import SimpleNamespace

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# Reassociation lets LLVM vectorise the per-head dot products and row updates; no flag that
# assumes finite values (the kernels use -inf for empty rows and running maxima).
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_BLOCK = 64  # nodes per parallel work item (amortises the per-item scratch allocation)
TILE = 32  # edges gathered, scored and accumulated together
SPECIALISED_HEADS = (1, 2, 4, 8, 16)
SPECIALISED_DIMS = (8, 16, 32, 64, 128)
"""Head counts and sizes with kernels compiled for them; other shapes share a generic build."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2 ** -53


@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Hint the CPU to load row ``row`` of the 2-D C-contiguous array ``arr`` into cache.

    One ``llvm.prefetch`` (read, high locality) per 64-byte line of the row. A prefetch never
    faults, so an out-of-range row is harmless (but is never asked for).
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(row, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        ptr_t = ir.PointerType()
        base = builder.ptrtoint(ary.data, i64)
        row64 = builder.sext(args[1], i64) if args[1].type.width < 64 else args[1]
        start = builder.add(base, builder.mul(row64, strides[0]))
        nbytes = builder.mul(shape[1], strides[1])
        fnty = ir.FunctionType(ir.VoidType(), [ptr_t, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        step = context.get_constant(types.intp, 64)
        zero = context.get_constant(types.intp, 0)
        with cgutils.for_range_slice(builder, zero, nbytes, step) as (off, _):
            addr = builder.inttoptr(builder.add(start, off), ptr_t)
            builder.call(fn, [addr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, row), codegen


@njit(inline="always")
def _uniform(seed, idx):
    """A uniform number in [0, 1) from (seed, idx): one splitmix64 step."""
    z = seed + np.uint64(idx) * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _INV53


@njit(inline="always")
def _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero):
    """1 / (1 - p) if the weight of (edge e, head h) is kept, else 0 (1 without dropout)."""
    if p_drop <= 0.0:
        return keep_scale
    if _uniform(seed, e * heads + h) >= p_drop:
        return keep_scale
    return zero


# The helpers index 2-D arrays by (row, column) instead of taking row views: a view in a
# parallel loop increments the shared reference count of its parent atomically, which makes
# the threads contend for one cache line on every edge.
@njit(inline="always")
def _gather(dst, t, base, j, term, e, rel, r, has_term, has_rel, width):
    """``dst[t, :width] = base[j] + term[e] + rel[r]`` (terms only where present)."""
    for x in range(width):
        dst[t, x] = base[j, x]
    if has_term:
        for x in range(width):
            dst[t, x] += term[e, x]
    if has_rel:
        for x in range(width):
            dst[t, x] += rel[r, x]


@njit(inline="always")
def _row_dots(a, i, tile, nt, out, heads, dim, zero):
    """``out[t, h] = <a[i, h-th slice], tile[t, h-th slice]>`` for ``t < nt`` and every head."""
    for t in range(nt):
        for h in range(heads):
            s = zero
            for x in range(h * dim, (h + 1) * dim):
                s += a[i, x] * tile[t, x]
            out[t, h] = s


@njit(inline="always")
def _pair_dots(a, tile, nt, out, heads, dim, zero):
    """``out[t, h] = <a[t, h-th slice], tile[t, h-th slice]>`` for ``t < nt`` and every head."""
    for t in range(nt):
        for h in range(heads):
            s = zero
            for x in range(h * dim, (h + 1) * dim):
                s += a[t, x] * tile[t, x]
            out[t, h] = s


@njit(inline="always")
def _prefetch_by_target(lo, hi, t_src, t_eid, k, v, ek, ev, has_ek, has_ev):
    """Prefetch the key/value rows (and edge terms) of positions ``lo:hi`` of the target CSR."""
    for pos in range(lo, hi):
        j = t_src[pos]
        _prefetch_row(k, j)
        _prefetch_row(v, j)
        if has_ek:
            _prefetch_row(ek, t_eid[pos])
        if has_ev:
            _prefetch_row(ev, t_eid[pos])


@njit(inline="always")
def _prefetch_by_source(lo, hi, s_dst, q, gout, ld):
    """Prefetch the target rows of positions ``lo:hi`` of the source CSR."""
    for pos in range(lo, hi):
        i = s_dst[pos]
        _prefetch_row(q, i)
        _prefetch_row(gout, i)
        _prefetch_row(ld, i)


@njit(inline="always")
def _kv_tile(
    t0,
    nt,
    stop,
    t_src,
    t_eid,
    etype,
    k,
    v,
    ek,
    ev,
    rk,
    rv,
    has_ek,
    has_ev,
    has_rel,
    kt,
    vt,
    et,
    width,
    width_v,
):
    """Gather the keys and values (with their edge terms) of target-CSR positions
    ``t0:t0+nt`` into ``kt``, ``vt`` and their edge ids into ``et``, after prefetching the
    rows of the node's next tile (positions up to ``stop``)."""
    if t0 + TILE < stop:
        _prefetch_by_target(
            t0 + TILE, min(stop, t0 + 2 * TILE), t_src, t_eid, k, v, ek, ev, has_ek, has_ev
        )
    for t in range(nt):
        j = t_src[t0 + t]
        e = t_eid[t0 + t]
        r = etype[e] if has_rel else 0
        et[t] = e
        _gather(kt, t, k, j, ek, e, rk, r, has_ek, has_rel, width)
        _gather(vt, t, v, j, ev, e, rv, r, has_ev, has_rel, width_v)


def _build(heads_c: int, dim_c: int, dim_v_c: int) -> SimpleNamespace:
    """Compile (or load from numba's cache) the kernels for ``heads_c`` heads of ``dim_c``
    (queries, keys) and ``dim_v_c`` (values) channels.

    ``0`` means "read the shape from the arguments" (the generic build). The shape is made of
    closure constants, which numba's on-disk cache keys on, so every build is cached apart.
    """

    @njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def forward(
        q,
        k,
        v,
        heads_a,
        dim_a,
        dim_v_a,
        t_ptr,
        t_src,
        t_eid,
        ek,
        ev,
        rk,
        rv,
        etype,
        has_ek,
        has_ev,
        has_rel,
        p_drop,
        seed,
        keep_scale,
        zero,
        out,
        lse,
    ):
        """Online-softmax attention per target; writes ``out [N, H*Dv]`` and ``lse [N, H]``."""
        heads = heads_c if heads_c > 0 else heads_a
        dim = dim_c if dim_c > 0 else dim_a
        dim_v = dim_v_c if dim_v_c > 0 else dim_v_a
        n = q.shape[0]
        nblocks = (n + _BLOCK - 1) // _BLOCK
        for b in prange(nblocks):
            kt = np.empty((TILE, heads * dim), dtype=q.dtype)
            vt = np.empty((TILE, heads * dim_v), dtype=q.dtype)
            s = np.empty((TILE, heads), dtype=q.dtype)
            et = np.empty(TILE, dtype=np.int64)
            m = np.empty(heads, dtype=q.dtype)
            l = np.empty(heads, dtype=q.dtype)
            acc = np.empty(heads * dim_v, dtype=q.dtype)
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                start = t_ptr[i]
                stop = t_ptr[i + 1]
                if i + 1 < n:  # the next node's first tile, while this node computes
                    nxt = t_ptr[i + 1]
                    _prefetch_by_target(
                        nxt,
                        min(t_ptr[i + 2], nxt + TILE),
                        t_src,
                        t_eid,
                        k,
                        v,
                        ek,
                        ev,
                        has_ek,
                        has_ev,
                    )
                if start == stop:  # no incoming edge: zero output, lse = -inf
                    for h in range(heads):
                        lse[i, h] = -np.inf
                    for x in range(heads * dim_v):
                        out[i, x] = zero
                    continue
                m[:] = -np.inf
                l[:] = zero
                acc[:] = zero
                for t0 in range(start, stop, TILE):
                    nt = min(TILE, stop - t0)
                    _kv_tile(
                        t0,
                        nt,
                        stop,
                        t_src,
                        t_eid,
                        etype,
                        k,
                        v,
                        ek,
                        ev,
                        rk,
                        rv,
                        has_ek,
                        has_ev,
                        has_rel,
                        kt,
                        vt,
                        et,
                        heads * dim,
                        heads * dim_v,
                    )
                    _row_dots(q, i, kt, nt, s, heads, dim, zero)
                    for h in range(heads):  # one rescale per tile, by the tile's new maximum
                        mx = m[h]
                        for t in range(nt):
                            if s[t, h] > mx:
                                mx = s[t, h]
                        if mx > m[h]:
                            c = np.exp(m[h] - mx)
                            l[h] *= c
                            for x in range(h * dim_v, (h + 1) * dim_v):
                                acc[x] *= c
                            m[h] = mx
                    for t in range(nt):
                        e = et[t]
                        for h in range(heads):
                            w = np.exp(s[t, h] - m[h])
                            l[h] += w
                            w = w * _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                            for x in range(h * dim_v, (h + 1) * dim_v):
                                acc[x] += w * vt[t, x]
                for h in range(heads):
                    inv = 1.0 / l[h]
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        out[i, x] = acc[x] * inv
                    lse[i, h] = m[h] + np.log(l[h])

    @njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def weights(
        q, k, heads_a, dim_a, t_ptr, t_src, t_eid, ek, rk, etype, has_ek, has_rel, zero, lse, w
    ):
        """Attention weights ``w [E, H]`` (before dropout), recomputed from the saved ``lse``."""
        heads = heads_c if heads_c > 0 else heads_a
        dim = dim_c if dim_c > 0 else dim_a
        n = q.shape[0]
        nblocks = (n + _BLOCK - 1) // _BLOCK
        for b in prange(nblocks):
            kt = np.empty((TILE, heads * dim), dtype=q.dtype)
            s = np.empty((TILE, heads), dtype=q.dtype)
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                start = t_ptr[i]
                stop = t_ptr[i + 1]
                for t0 in range(start, stop, TILE):
                    nt = min(TILE, stop - t0)
                    for t in range(nt):
                        e = t_eid[t0 + t]
                        r = etype[e] if has_rel else 0
                        _gather(kt, t, k, t_src[t0 + t], ek, e, rk, r, has_ek, has_rel, heads * dim)
                    _row_dots(q, i, kt, nt, s, heads, dim, zero)
                    for t in range(nt):
                        e = t_eid[t0 + t]
                        for h in range(heads):
                            w[e, h] = np.exp(s[t, h] - lse[i, h])

    @njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def backward_target(
        q,
        k,
        v,
        heads_a,
        dim_a,
        dim_v_a,
        gout,
        out,
        lse,
        glse,
        t_ptr,
        t_src,
        t_eid,
        ek,
        ev,
        rk,
        rv,
        etype,
        has_ek,
        has_ev,
        has_rel,
        need_dek,
        need_dev,
        need_drel,
        p_drop,
        seed,
        keep_scale,
        zero,
        ld,
        dq,
        dek,
        dev,
        drk_part,
        drv_part,
    ):
        """Backward by target: ``ld``, ``dq`` and the gradients of the edge terms.

        ``ld[i] = (lse[i, :], delta[i, :])`` packed for the by-source pass, with
        ``delta[i, h] = <gout_i^h, out_i^h> - glse[i, h]``; for an edge ``e = (j -> i)`` with
        weight ``P`` and dropout factor ``M``: ``ds = P * (M * <gout_i, v_e> - delta_i)``,
        ``dq_i += ds * k_e``, ``d(key terms)_e = ds * q_i``, ``d(value terms)_e = P M gout_i``.
        Every row of ``dq`` is written; ``drk_part`` and ``drv_part`` must be zero on entry.
        """
        heads = heads_c if heads_c > 0 else heads_a
        dim = dim_c if dim_c > 0 else dim_a
        dim_v = dim_v_c if dim_v_c > 0 else dim_v_a
        n = q.shape[0]
        nblocks = (n + _BLOCK - 1) // _BLOCK
        for b in prange(nblocks):
            tid = numba.get_thread_id()
            kt = np.empty((TILE, heads * dim), dtype=q.dtype)
            vt = np.empty((TILE, heads * dim_v), dtype=q.dtype)
            s = np.empty((TILE, heads), dtype=q.dtype)
            dp = np.empty((TILE, heads), dtype=q.dtype)
            et = np.empty(TILE, dtype=np.int64)
            dl = np.empty(heads, dtype=q.dtype)
            dqa = np.empty(heads * dim, dtype=q.dtype)
            for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                start = t_ptr[i]
                stop = t_ptr[i + 1]
                if i + 1 < n:
                    nxt = t_ptr[i + 1]
                    _prefetch_by_target(
                        nxt,
                        min(t_ptr[i + 2], nxt + TILE),
                        t_src,
                        t_eid,
                        k,
                        v,
                        ek,
                        ev,
                        has_ek,
                        has_ev,
                    )
                for h in range(heads):
                    ld[i, h] = lse[i, h]
                if start == stop:
                    for h in range(heads):
                        ld[i, heads + h] = zero
                    for x in range(heads * dim):
                        dq[i, x] = zero
                    continue
                for h in range(heads):
                    a = zero
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        a += gout[i, x] * out[i, x]
                    dl[h] = a - glse[i, h]
                    ld[i, heads + h] = dl[h]
                dqa[:] = zero
                for t0 in range(start, stop, TILE):
                    nt = min(TILE, stop - t0)
                    _kv_tile(
                        t0,
                        nt,
                        stop,
                        t_src,
                        t_eid,
                        etype,
                        k,
                        v,
                        ek,
                        ev,
                        rk,
                        rv,
                        has_ek,
                        has_ev,
                        has_rel,
                        kt,
                        vt,
                        et,
                        heads * dim,
                        heads * dim_v,
                    )
                    _row_dots(q, i, kt, nt, s, heads, dim, zero)
                    _row_dots(gout, i, vt, nt, dp, heads, dim_v, zero)
                    for t in range(nt):  # s <- ds, dp <- P * M
                        e = et[t]
                        for h in range(heads):
                            p = np.exp(s[t, h] - lse[i, h])
                            mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                            s[t, h] = p * (dp[t, h] * mfac - dl[h])
                            dp[t, h] = p * mfac
                    for t in range(nt):
                        for h in range(heads):
                            dsh = s[t, h]
                            for x in range(h * dim, (h + 1) * dim):
                                dqa[x] += dsh * kt[t, x]
                    if need_dek:
                        for t in range(nt):
                            e = et[t]
                            for h in range(heads):
                                for x in range(h * dim, (h + 1) * dim):
                                    dek[e, x] = s[t, h] * q[i, x]
                    if need_dev:
                        for t in range(nt):
                            e = et[t]
                            for h in range(heads):
                                for x in range(h * dim_v, (h + 1) * dim_v):
                                    dev[e, x] = dp[t, h] * gout[i, x]
                    if need_drel:
                        for t in range(nt):
                            r = etype[et[t]]
                            for h in range(heads):
                                for x in range(h * dim, (h + 1) * dim):
                                    drk_part[tid, r, x] += s[t, h] * q[i, x]
                                for x in range(h * dim_v, (h + 1) * dim_v):
                                    drv_part[tid, r, x] += dp[t, h] * gout[i, x]
                for x in range(heads * dim):
                    dq[i, x] = dqa[x]

    @njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def backward_source(
        q,
        k,
        v,
        heads_a,
        dim_a,
        dim_v_a,
        gout,
        ld,
        s_ptr,
        s_dst,
        s_eid,
        ek,
        ev,
        rk,
        rv,
        etype,
        has_ek,
        has_ev,
        has_rel,
        p_drop,
        seed,
        keep_scale,
        zero,
        dk,
        dv,
    ):
        """Backward by source: ``dk_j = sum ds * q_i`` and ``dv_j = sum P M gout_i`` over out-edges.

        Scores are recomputed, so no per-edge tensor is stored between the two backward
        passes. Every row of ``dk`` and ``dv`` is written.
        """
        heads = heads_c if heads_c > 0 else heads_a
        dim = dim_c if dim_c > 0 else dim_a
        dim_v = dim_v_c if dim_v_c > 0 else dim_v_a
        n = k.shape[0]
        k_terms = has_ek or has_rel
        v_terms = has_ev or has_rel
        nblocks = (n + _BLOCK - 1) // _BLOCK
        for b in prange(nblocks):
            qt = np.empty((TILE, heads * dim), dtype=q.dtype)
            gt = np.empty((TILE, heads * dim_v), dtype=q.dtype)
            kt = np.empty((TILE, heads * dim), dtype=q.dtype)
            vt = np.empty((TILE, heads * dim_v), dtype=q.dtype)
            s = np.empty((TILE, heads), dtype=q.dtype)
            dp = np.empty((TILE, heads), dtype=q.dtype)
            lt = np.empty((TILE, heads), dtype=q.dtype)
            dlt = np.empty((TILE, heads), dtype=q.dtype)
            et = np.empty(TILE, dtype=np.int64)
            dka = np.empty(heads * dim, dtype=q.dtype)
            dva = np.empty(heads * dim_v, dtype=q.dtype)
            for j in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
                start = s_ptr[j]
                stop = s_ptr[j + 1]
                if j + 1 < n:
                    nxt = s_ptr[j + 1]
                    _prefetch_by_source(nxt, min(s_ptr[j + 2], nxt + TILE), s_dst, q, gout, ld)
                dka[:] = zero
                dva[:] = zero
                for t0 in range(start, stop, TILE):
                    nt = min(TILE, stop - t0)
                    if t0 + TILE < stop:
                        _prefetch_by_source(t0 + TILE, min(stop, t0 + 2 * TILE), s_dst, q, gout, ld)
                    for t in range(nt):
                        i = s_dst[t0 + t]
                        e = s_eid[t0 + t]
                        et[t] = e
                        for x in range(heads * dim):
                            qt[t, x] = q[i, x]
                        for x in range(heads * dim_v):
                            gt[t, x] = gout[i, x]
                        for h in range(heads):
                            lt[t, h] = ld[i, h]
                            dlt[t, h] = ld[i, heads + h]
                        if k_terms or v_terms:
                            r = etype[e] if has_rel else 0
                            _gather(kt, t, k, j, ek, e, rk, r, has_ek, has_rel, heads * dim)
                            _gather(vt, t, v, j, ev, e, rv, r, has_ev, has_rel, heads * dim_v)
                    if k_terms:
                        _pair_dots(qt, kt, nt, s, heads, dim, zero)
                    else:
                        _row_dots(k, j, qt, nt, s, heads, dim, zero)
                    if v_terms:
                        _pair_dots(gt, vt, nt, dp, heads, dim_v, zero)
                    else:
                        _row_dots(v, j, gt, nt, dp, heads, dim_v, zero)
                    for t in range(nt):
                        e = et[t]
                        for h in range(heads):
                            p = np.exp(s[t, h] - lt[t, h])
                            mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                            dsh = p * (dp[t, h] * mfac - dlt[t, h])
                            pmh = p * mfac
                            for x in range(h * dim, (h + 1) * dim):
                                dka[x] += dsh * qt[t, x]
                            for x in range(h * dim_v, (h + 1) * dim_v):
                                dva[x] += pmh * gt[t, x]
                for x in range(heads * dim):
                    dk[j, x] = dka[x]
                for x in range(heads * dim_v):
                    dv[j, x] = dva[x]

    return SimpleNamespace(
        forward=forward,
        weights=weights,
        backward_target=backward_target,
        backward_source=backward_source,
    )


@cache
def kernels(heads: int, dim: int, dim_v: int) -> SimpleNamespace:
    """The kernels for ``heads`` heads of ``dim`` (queries, keys) and ``dim_v`` (values).

    Shapes with ``heads`` in :data:`SPECIALISED_HEADS` and both sizes in
    :data:`SPECIALISED_DIMS` get kernels compiled for them (on first use, then loaded from
    numba's on-disk cache); any other shape shares one generic build.
    """
    if heads in SPECIALISED_HEADS and dim in SPECIALISED_DIMS and dim_v in SPECIALISED_DIMS:
        return _build(heads, dim, dim_v)
    return _generic()


@cache
def _generic() -> SimpleNamespace:
    return _build(0, 0, 0)
