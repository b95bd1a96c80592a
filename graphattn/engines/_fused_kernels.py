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

Dropout is computed inside the kernels from a counter-based hash of ``(seed, edge, head)``,
so the backward recomputes exactly the mask of the forward without storing it.
"""

import numba
import numpy as np
from numba import njit, prange

# Reassociation lets LLVM vectorise the per-head dot products and row updates; no flag that
# assumes finite values (the kernels use -inf for empty rows and running maxima).
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_BLOCK = 64  # nodes per parallel work item (amortises the per-item scratch allocation)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2 ** -53


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
def _edge_row(base, term, rel, has_term, has_rel, j, e, r, row):
    """``row[:] = base[j] + term[e] + rel[r]``."""
    for x in range(row.size):
        row[x] = base[j, x]
    if has_term:
        for x in range(row.size):
            row[x] += term[e, x]
    if has_rel:
        for x in range(row.size):
            row[x] += rel[r, x]
    return row


@njit(inline="always")
def _head_dots(a, i, b, prod, out, heads, dim, zero):
    """``out[h] = <a[i, h*dim:(h+1)*dim], b[h*dim:(h+1)*dim]>`` for every head."""
    for x in range(prod.size):
        prod[x] = a[i, x] * b[x]
    for h in range(heads):
        s = zero
        for d in range(h * dim, (h + 1) * dim):
            s += prod[d]
        out[h] = s


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def forward_kernel(
    q, k, v, heads, dim, dim_v, t_ptr, t_src, t_eid, ek, ev, rk, rv, etype,
    has_ek, has_ev, has_rel, p_drop, seed, keep_scale, zero, out, lse,
):
    """Online-softmax attention per target; writes ``out [N, H*Dv]`` and ``lse [N, H]``."""
    n = q.shape[0]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        m = np.empty(heads, dtype=q.dtype)
        l = np.empty(heads, dtype=q.dtype)
        s = np.empty(heads, dtype=q.dtype)
        acc = np.empty(heads * dim_v, dtype=q.dtype)
        kk = np.empty(heads * dim, dtype=q.dtype)
        vv = np.empty(heads * dim_v, dtype=q.dtype)
        prod = np.empty(heads * dim, dtype=q.dtype)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            start = t_ptr[i]
            stop = t_ptr[i + 1]
            if start == stop:  # no incoming edge: zero output, lse = -inf
                for h in range(heads):
                    lse[i, h] = -np.inf
                for x in range(heads * dim_v):
                    out[i, x] = zero
                continue
            m[:] = -np.inf
            l[:] = zero
            acc[:] = zero
            for pos in range(start, stop):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                krow = _edge_row(k, ek, rk, has_ek, has_rel, j, e, r, kk)
                vrow = _edge_row(v, ev, rv, has_ev, has_rel, j, e, r, vv)
                _head_dots(q, i, krow, prod, s, heads, dim, zero)
                for h in range(heads):
                    sh = s[h]
                    mh = m[h]
                    if sh > mh:  # new running maximum: rescale what was summed so far
                        c = np.exp(mh - sh)
                        l[h] *= c
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            acc[x] *= c
                        m[h] = sh
                        mh = sh
                    w = np.exp(sh - mh)
                    l[h] += w
                    w = w * _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        acc[x] += w * vrow[x]
            for h in range(heads):
                lh = l[h]
                for x in range(h * dim_v, (h + 1) * dim_v):
                    out[i, x] = acc[x] / lh
                lse[i, h] = m[h] + np.log(lh)


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def weights_kernel(
    q, k, heads, dim, t_ptr, t_src, t_eid, ek, rk, etype, has_ek, has_rel, zero, lse, w,
):
    """Attention weights ``w [E, H]`` (before dropout), recomputed from the saved ``lse``."""
    n = q.shape[0]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        s = np.empty(heads, dtype=q.dtype)
        kk = np.empty(heads * dim, dtype=q.dtype)
        prod = np.empty(heads * dim, dtype=q.dtype)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            for pos in range(t_ptr[i], t_ptr[i + 1]):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                krow = _edge_row(k, ek, rk, has_ek, has_rel, j, e, r, kk)
                _head_dots(q, i, krow, prod, s, heads, dim, zero)
                for h in range(heads):
                    w[e, h] = np.exp(s[h] - lse[i, h])


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def backward_target_kernel(
    q, k, v, heads, dim, dim_v, gout, out, lse, glse, t_ptr, t_src, t_eid, ek, ev, rk, rv,
    etype, has_ek, has_ev, has_rel, need_dek, need_dev, need_drel, p_drop, seed, keep_scale,
    zero, delta, dq, dek, dev, drk_part, drv_part,
):
    """Backward by target: ``delta``, ``dq`` and the gradients of the edge terms.

    ``delta[i, h] = <gout_i^h, out_i^h> - glse[i, h]``; for an edge ``e = (j -> i)`` with
    weight ``P`` and dropout factor ``M``: ``ds = P * (M * <gout_i, v_e> - delta_i)``,
    ``dq_i += ds * k_e``, ``d(key terms)_e = ds * q_i``, ``d(value terms)_e = P M gout_i``.
    ``dq``, ``drk_part`` and ``drv_part`` must be zero on entry.
    """
    n = q.shape[0]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        tid = numba.get_thread_id()
        s = np.empty(heads, dtype=q.dtype)
        dp = np.empty(heads, dtype=q.dtype)
        ds = np.empty(heads, dtype=q.dtype)
        pm = np.empty(heads, dtype=q.dtype)
        dl = np.empty(heads, dtype=q.dtype)
        kk = np.empty(heads * dim, dtype=q.dtype)
        vv = np.empty(heads * dim_v, dtype=q.dtype)
        prod = np.empty(heads * dim, dtype=q.dtype)
        prod_v = np.empty(heads * dim_v, dtype=q.dtype)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            start = t_ptr[i]
            stop = t_ptr[i + 1]
            if start == stop:
                for h in range(heads):
                    delta[i, h] = zero
                continue
            for h in range(heads):
                acc = zero
                for x in range(h * dim_v, (h + 1) * dim_v):
                    acc += gout[i, x] * out[i, x]
                dl[h] = acc - glse[i, h]
                delta[i, h] = dl[h]
            for pos in range(start, stop):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                krow = _edge_row(k, ek, rk, has_ek, has_rel, j, e, r, kk)
                vrow = _edge_row(v, ev, rv, has_ev, has_rel, j, e, r, vv)
                _head_dots(q, i, krow, prod, s, heads, dim, zero)
                _head_dots(gout, i, vrow, prod_v, dp, heads, dim_v, zero)
                for h in range(heads):
                    p = np.exp(s[h] - lse[i, h])
                    mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    ds[h] = p * (dp[h] * mfac - dl[h])
                    pm[h] = p * mfac
                for h in range(heads):
                    dsh = ds[h]
                    for x in range(h * dim, (h + 1) * dim):
                        dq[i, x] += dsh * krow[x]
                if need_dek:
                    for h in range(heads):
                        for x in range(h * dim, (h + 1) * dim):
                            dek[e, x] = ds[h] * q[i, x]
                if need_dev:
                    for h in range(heads):
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            dev[e, x] = pm[h] * gout[i, x]
                if need_drel:
                    for h in range(heads):
                        for x in range(h * dim, (h + 1) * dim):
                            drk_part[tid, r, x] += ds[h] * q[i, x]
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            drv_part[tid, r, x] += pm[h] * gout[i, x]


@njit(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
def backward_source_kernel(
    q, k, v, heads, dim, dim_v, gout, lse, delta, s_ptr, s_dst, s_eid, ek, ev, rk, rv, etype,
    has_ek, has_ev, has_rel, p_drop, seed, keep_scale, zero, dk, dv,
):
    """Backward by source: ``dk_j += ds * q_i`` and ``dv_j += P M gout_i`` over out-edges.

    Scores are recomputed, so no per-edge tensor is stored between the two backward passes.
    ``dk`` and ``dv`` must be zero on entry.
    """
    n = k.shape[0]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        s = np.empty(heads, dtype=q.dtype)
        dp = np.empty(heads, dtype=q.dtype)
        kk = np.empty(heads * dim, dtype=q.dtype)
        vv = np.empty(heads * dim_v, dtype=q.dtype)
        prod = np.empty(heads * dim, dtype=q.dtype)
        prod_v = np.empty(heads * dim_v, dtype=q.dtype)
        for j in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            for pos in range(s_ptr[j], s_ptr[j + 1]):
                i = s_dst[pos]
                e = s_eid[pos]
                r = etype[e] if has_rel else 0
                krow = _edge_row(k, ek, rk, has_ek, has_rel, j, e, r, kk)
                vrow = _edge_row(v, ev, rv, has_ev, has_rel, j, e, r, vv)
                _head_dots(q, i, krow, prod, s, heads, dim, zero)
                _head_dots(gout, i, vrow, prod_v, dp, heads, dim_v, zero)
                for h in range(heads):
                    p = np.exp(s[h] - lse[i, h])
                    mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    dsh = p * (dp[h] * mfac - delta[i, h])
                    pmh = p * mfac
                    for x in range(h * dim, (h + 1) * dim):
                        dk[j, x] += dsh * q[i, x]
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        dv[j, x] += pmh * gout[i, x]
