"""Numba kernels of the ``fused`` engine (private; see :mod:`graphattn.engines.fused`).

All kernels take NumPy views of contiguous CPU tensors:

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


@njit(inline="always")
def _score(q, k, ek, rk, i, j, e, r, h, has_ek, has_rel, zero):
    """<q_i^h, k_j^h + ek_e^h + rk_r^h>."""
    s = zero
    for d in range(q.shape[2]):
        kd = k[j, h, d]
        if has_ek:
            kd += ek[e, h, d]
        if has_rel:
            kd += rk[r, h, d]
        s += q[i, h, d] * kd
    return s


@njit(inline="always")
def _value_dot(g, i, v, ev, rv, j, e, r, h, has_ev, has_rel, zero):
    """<g_i^h, v_j^h + ev_e^h + rv_r^h>."""
    s = zero
    for d in range(v.shape[2]):
        vd = v[j, h, d]
        if has_ev:
            vd += ev[e, h, d]
        if has_rel:
            vd += rv[r, h, d]
        s += g[i, h, d] * vd
    return s


@njit(parallel=True, cache=True, fastmath=False)
def forward_kernel(
    q, k, v, t_ptr, t_src, t_eid, ek, ev, rk, rv, etype,
    has_ek, has_ev, has_rel, p_drop, seed, keep_scale, zero, out, lse,
):
    """Online-softmax attention per target; writes ``out [N, H, Dv]`` and ``lse [N, H]``."""
    n, heads, _ = q.shape
    dim_v = v.shape[2]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        m = np.empty(heads, dtype=q.dtype)
        l = np.empty(heads, dtype=q.dtype)
        acc = np.empty((heads, dim_v), dtype=q.dtype)
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            start = t_ptr[i]
            stop = t_ptr[i + 1]
            if start == stop:  # no incoming edge: zero output, lse = -inf
                for h in range(heads):
                    lse[i, h] = -np.inf
                    for d in range(dim_v):
                        out[i, h, d] = zero
                continue
            m[:] = -np.inf
            l[:] = zero
            acc[:] = zero
            for pos in range(start, stop):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                for h in range(heads):
                    s = _score(q, k, ek, rk, i, j, e, r, h, has_ek, has_rel, zero)
                    mh = m[h]
                    if s > mh:  # new running maximum: rescale what was summed so far
                        c = np.exp(mh - s)
                        l[h] *= c
                        for d in range(dim_v):
                            acc[h, d] *= c
                        m[h] = s
                        mh = s
                    w = np.exp(s - mh)
                    l[h] += w
                    w = w * _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    for d in range(dim_v):
                        vd = v[j, h, d]
                        if has_ev:
                            vd += ev[e, h, d]
                        if has_rel:
                            vd += rv[r, h, d]
                        acc[h, d] += w * vd
            for h in range(heads):
                for d in range(dim_v):
                    out[i, h, d] = acc[h, d] / l[h]
                lse[i, h] = m[h] + np.log(l[h])


@njit(parallel=True, cache=True, fastmath=False)
def weights_kernel(q, k, t_ptr, t_src, t_eid, ek, rk, etype, has_ek, has_rel, zero, lse, w):
    """Attention weights ``w [E, H]`` (before dropout), recomputed from the saved ``lse``."""
    n, heads, _ = q.shape
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            for pos in range(t_ptr[i], t_ptr[i + 1]):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                for h in range(heads):
                    s = _score(q, k, ek, rk, i, j, e, r, h, has_ek, has_rel, zero)
                    w[e, h] = np.exp(s - lse[i, h])


@njit(parallel=True, cache=True, fastmath=False)
def backward_target_kernel(
    q, k, v, gout, out, lse, glse, t_ptr, t_src, t_eid, ek, ev, rk, rv, etype,
    has_ek, has_ev, has_rel, need_dek, need_dev, need_drel, p_drop, seed, keep_scale, zero,
    delta, dq, dek, dev, drk_part, drv_part,
):
    """Backward by target: ``delta``, ``dq`` and the gradients of the edge terms.

    ``delta[i, h] = <gout_i^h, out_i^h> - glse[i, h]``; for an edge ``e = (j -> i)`` with
    weight ``P`` and dropout factor ``M``: ``ds = P * (M * <gout_i, v_e> - delta_i)``,
    ``dq_i += ds * k_e``, ``d(key terms)_e = ds * q_i``, ``d(value terms)_e = P M gout_i``.
    ``dq``, ``drk_part`` and ``drv_part`` must be zero on entry.
    """
    n, heads, dim = q.shape
    dim_v = v.shape[2]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        tid = numba.get_thread_id()
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            start = t_ptr[i]
            stop = t_ptr[i + 1]
            for h in range(heads):
                if start == stop:
                    delta[i, h] = zero
                    continue
                acc = zero
                for d in range(dim_v):
                    acc += gout[i, h, d] * out[i, h, d]
                delta[i, h] = acc - glse[i, h]
            for pos in range(start, stop):
                j = t_src[pos]
                e = t_eid[pos]
                r = etype[e] if has_rel else 0
                for h in range(heads):
                    s = _score(q, k, ek, rk, i, j, e, r, h, has_ek, has_rel, zero)
                    p = np.exp(s - lse[i, h])
                    dp = _value_dot(gout, i, v, ev, rv, j, e, r, h, has_ev, has_rel, zero)
                    mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    ds = p * (dp * mfac - delta[i, h])
                    for d in range(dim):
                        kd = k[j, h, d]
                        if has_ek:
                            kd += ek[e, h, d]
                        if has_rel:
                            kd += rk[r, h, d]
                        dq[i, h, d] += ds * kd
                    if need_dek:
                        for d in range(dim):
                            dek[e, h, d] = ds * q[i, h, d]
                    pm = p * mfac
                    if need_dev:
                        for d in range(dim_v):
                            dev[e, h, d] = pm * gout[i, h, d]
                    if need_drel:
                        for d in range(dim):
                            drk_part[tid, r, h, d] += ds * q[i, h, d]
                        for d in range(dim_v):
                            drv_part[tid, r, h, d] += pm * gout[i, h, d]


@njit(parallel=True, cache=True, fastmath=False)
def backward_source_kernel(
    q, k, v, gout, lse, delta, s_ptr, s_dst, s_eid, ek, ev, rk, rv, etype,
    has_ek, has_ev, has_rel, p_drop, seed, keep_scale, zero, dk, dv,
):
    """Backward by source: ``dk_j += ds * q_i`` and ``dv_j += P M gout_i`` over out-edges.

    Scores are recomputed, so no per-edge tensor is stored between the two backward passes.
    ``dk`` and ``dv`` must be zero on entry.
    """
    n, heads, dim = k.shape
    dim_v = v.shape[2]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        for j in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            for pos in range(s_ptr[j], s_ptr[j + 1]):
                i = s_dst[pos]
                e = s_eid[pos]
                r = etype[e] if has_rel else 0
                for h in range(heads):
                    s = _score(q, k, ek, rk, i, j, e, r, h, has_ek, has_rel, zero)
                    p = np.exp(s - lse[i, h])
                    dp = _value_dot(gout, i, v, ev, rv, j, e, r, h, has_ev, has_rel, zero)
                    mfac = _drop_factor(p_drop, seed, e, heads, h, keep_scale, zero)
                    ds = p * (dp * mfac - delta[i, h])
                    pm = p * mfac
                    for d in range(dim):
                        dk[j, h, d] += ds * q[i, h, d]
                    for d in range(dim_v):
                        dv[j, h, d] += pm * gout[i, h, d]
