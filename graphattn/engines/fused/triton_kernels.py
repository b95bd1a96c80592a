"""Triton kernels of the ``fused`` engine (private; see :mod:`.triton_ops`, which launches them).

The same algorithm as the numba kernels of :mod:`.kernels`, written for a GPU. One program
takes a block of ``BLOCK_N`` consecutive target nodes (forward, weights, backward by target)
or source nodes (backward by source) and walks their edges of a CSR together, ``BLOCK_E``
edges of each node per step, with all heads at once: a step gathers a
``[BLOCK_N, BLOCK_E, BLOCK_H, BLOCK_D]`` tile of rows from the edges' other endpoints (plus
the per-edge and per-relation terms), masked where a node's edges, the block, the head count
or the head size end; scores are per-head dot products reduced over the last axis, and the
online softmax keeps each node's running maximum, sum and weighted values in registers
(``[BLOCK_N, BLOCK_H, ...]``). A block steps as far as its longest row. Block sizes are
``tl.constexpr`` powers of two (:func:`.triton_ops.block_sizes` chooses them); the kernels
trust the shapes, dtypes and indices that :mod:`.triton_ops` checked.

Arguments shared by the kernels:

- ``q [N_dst, H * D]``, ``k [N_src, H * D]``, ``v [N_src, H * Dv]``: contiguous rows, 16-bit
  (float16/bfloat16, converted on load), float32 or float64; everything is computed in the
  element type of the output buffers (float32 for 16-bit rows, else the rows' dtype);
- ``ptr`` int64 ``[N + 1]``, ``idx``/``eid`` int32 ``[E]``: the CSR (by target: ``idx``
  holds sources; by source: targets), ``eid`` the original edge ids; ``N`` its node count;
- ``ek [E, H * D]``, ``ev [E, H * Dv]``, ``rk [R, H * D]``, ``rv [R, H * Dv]``,
  ``etype`` int64 ``[E]``, ``emask`` uint8 ``[E]`` (1: the edge takes no part): read only
  where the matching ``HAS_*`` flag is set (any tensor otherwise);
- dropout: ``seed`` (an int64, taken as uint64), ``thresh`` and ``keep``: an edge's weight
  for head ``h`` is kept, times ``keep[0]`` (``1 / (1 - p)`` in the compute dtype), when the
  top 53 bits of the splitmix64 hash of ``seed + (e * H + h) * golden`` are at least
  ``thresh = ceil(p * 2**53)``: exactly the numba kernels' test ``u >= p`` with
  ``u = bits * 2**-53``, in integers.

NaN and infinity semantics follow the numba kernels: a masked edge scores ``-inf`` and has
weight 0; a node whose edges are all masked (or that has none) gets a zero output and
``lse = -inf``; a NaN or ``+inf`` score makes every weight and output of its node NaN.
"""

import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

# splitmix64's constants (globals that a kernel reads must be constexpr)
_GOLDEN = tl.constexpr(0x9E3779B97F4A7C15)
_MIX1 = tl.constexpr(0xBF58476D1CE4E5B9)
_MIX2 = tl.constexpr(0x94D049BB133111EB)


@triton.jit
def _offsets(H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """Offsets ``[BLOCK_H, BLOCK_W]`` of the head slices within a row of ``H * W``, ``-1``
    where a head or channel does not exist (the padding of a block)."""
    oh = tl.arange(0, BLOCK_H)
    ow = tl.arange(0, BLOCK_W)
    ok = (oh[:, None] < H) & (ow[None, :] < W)
    return tl.where(ok, oh[:, None] * W + ow[None, :], -1)


@triton.jit
def _block(ptr, N, BLOCK_N: tl.constexpr):
    """This program's nodes ``[BLOCK_N]`` (int64), whether each exists, and their CSR
    ranges ``start``, ``stop`` (empty for nodes past ``N``)."""
    nodes = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    real = nodes < N
    start = tl.load(ptr + nodes, mask=real, other=0)
    stop = tl.load(ptr + nodes + 1, mask=real, other=0)
    return nodes, real, start, stop


@triton.jit
def _node_rows(base, nodes, real, tail, width, ACC: tl.constexpr):
    """Rows ``nodes`` of ``base`` (rows of ``width = H * W``) as ``[BLOCK_N, BLOCK_H,
    BLOCK_W]`` in the compute dtype; ``tail`` are the offsets of :func:`_offsets`."""
    ok = real[:, None, None] & (tail >= 0)[None, :, :]
    ptrs = base + nodes[:, None, None] * width + tail[None, :, :]
    return tl.load(ptrs, mask=ok, other=0.0).to(ACC)


@triton.jit
def _node_heads(base, nodes, real, H, BLOCK_H: tl.constexpr, ACC: tl.constexpr):
    """``base[nodes, :H]`` of an ``[N, H]`` tensor as ``[BLOCK_N, BLOCK_H]`` (0 in padding)."""
    oh = tl.arange(0, BLOCK_H)
    ok = real[:, None] & (oh < H)[None, :]
    return tl.load(base + nodes[:, None] * H + oh[None, :], mask=ok, other=0.0).to(ACC)


@triton.jit
def _tile(start, stop, t0, idx, eid, etype, HAS_REL: tl.constexpr, BLOCK_E: tl.constexpr):
    """Edges ``t0 : t0 + BLOCK_E`` of every node of the block: ``(on, other endpoint, edge
    id, relation)``, each ``[BLOCK_N, BLOCK_E]`` (``on`` false past a node's last edge)."""
    pos = start[:, None] + t0 + tl.arange(0, BLOCK_E)[None, :]
    on = pos < stop[:, None]
    other = tl.load(idx + pos, mask=on, other=0).to(tl.int64)
    e = tl.load(eid + pos, mask=on, other=0).to(tl.int64)
    r = e * 0
    if HAS_REL:
        r = tl.load(etype + e, mask=on, other=0)
    return on, other, e, r


@triton.jit
def _edge_rows(
    base, rows, HAS_BASE: tl.constexpr, on, tail, width, term, e, HAS_TERM: tl.constexpr, rel,
    r, HAS_REL: tl.constexpr, ACC: tl.constexpr,
):  # fmt: skip
    """``[BLOCK_N, BLOCK_E, BLOCK_H, BLOCK_W]``: ``base[rows] + term[e] + rel[r]`` of every
    edge of the tile, for the parts whose ``HAS_*`` flag is set; all are rows of ``width``."""
    ok = on[:, :, None, None] & (tail >= 0)[None, None, :, :]
    out = tl.zeros(ok.shape, dtype=ACC)
    if HAS_BASE:
        ptrs = base + rows[:, :, None, None] * width + tail[None, None, :, :]
        out += tl.load(ptrs, mask=ok, other=0.0).to(ACC)
    if HAS_TERM:
        ptrs = term + e[:, :, None, None] * width + tail[None, None, :, :]
        out += tl.load(ptrs, mask=ok, other=0.0)
    if HAS_REL:
        out += tl.load(
            rel + r[:, :, None, None] * width + tail[None, None, :, :], mask=ok, other=0.0
        )
    return out


@triton.jit
def _scores(s, on, e, emask, HAS_MASK: tl.constexpr):
    """Scores ``[BLOCK_N, BLOCK_E, BLOCK_H]`` with masked edges and padding at ``-inf``, and
    the number ``[BLOCK_N]`` of masked edges of each node in the tile."""
    dead = on == 0
    count = tl.zeros([on.shape[0]], tl.int32)
    if HAS_MASK:
        masked = (tl.load(emask + e, mask=on, other=0) != 0) & on
        dead = dead | masked
        count = tl.sum(masked.to(tl.int32), 1)
    return tl.where(dead[:, :, None], float("-inf"), s), count


@triton.jit
def _weight(s, offset):
    """``exp(s - offset)``, and 0 for a ``-inf`` score unless ``offset`` is NaN (numba's
    ``_weight``)."""
    w = tl.exp(s - offset)
    return tl.where((s == float("-inf")) & (offset == offset), 0.0, w)


@triton.jit
def _keep_factor(e, H, seed, thresh, keep, BLOCK_H: tl.constexpr):
    """``[BLOCK_N, BLOCK_E, BLOCK_H]``: the dropout factor of (edge ``e``, head): ``keep``
    or 0."""
    oh = tl.arange(0, BLOCK_H)
    counter = (e[:, :, None] * H + oh[None, None, :]).to(tl.int64).to(tl.uint64, bitcast=True)
    z = seed.to(tl.int64).to(tl.uint64, bitcast=True) + counter * _GOLDEN
    z = (z ^ (z >> 30)) * _MIX1
    z = (z ^ (z >> 27)) * _MIX2
    z = z ^ (z >> 31)
    return tl.where((z >> 11) >= thresh.to(tl.int64).to(tl.uint64, bitcast=True), keep, 0.0)


@triton.jit
def _store_rows(base, nodes, real, tail, width, value):
    """``base[nodes] = value`` for ``[BLOCK_N, BLOCK_H, BLOCK_W]`` rows (real nodes only)."""
    ok = real[:, None, None] & (tail >= 0)[None, :, :]
    tl.store(base + nodes[:, None, None] * width + tail[None, :, :], value, mask=ok)


@triton.jit(do_not_specialize=["seed", "thresh"])
def forward_kernel(
    q, k, v, ptr, idx, eid, ek, ev, rk, rv, etype, emask, keep, out, lse,
    seed, thresh, N, H, D, DV,
    HAS_EK: tl.constexpr, HAS_EV: tl.constexpr, HAS_REL: tl.constexpr,
    HAS_MASK: tl.constexpr, DROPOUT: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
):  # fmt: skip
    """Online-softmax attention of a block of targets: ``out [N, H * Dv]``, ``lse [N, H]``."""
    ACC: tl.constexpr = out.dtype.element_ty
    nodes, real, start, stop = _block(ptr, N, BLOCK_N)
    oh = tl.arange(0, BLOCK_H)
    tail_k = _offsets(H, D, BLOCK_H, BLOCK_D)
    tail_v = _offsets(H, DV, BLOCK_H, BLOCK_DV)
    qb = _node_rows(q, nodes, real, tail_k, H * D, ACC)  # (BN, BH, BD)
    keep_scale = 1.0
    if DROPOUT:
        keep_scale = tl.load(keep).to(ACC)
    m = tl.full([BLOCK_N, BLOCK_H], float("-inf"), ACC)
    l = tl.zeros([BLOCK_N, BLOCK_H], ACC)
    acc = tl.zeros([BLOCK_N, BLOCK_H, BLOCK_DV], ACC)
    live = stop - start  # (BN,) edges that are not masked
    for t0 in range(0, tl.max(stop - start, 0), BLOCK_E):
        on, j, e, r = _tile(start, stop, t0, idx, eid, etype, HAS_REL, BLOCK_E)
        kt = _edge_rows(k, j, True, on, tail_k, H * D, ek, e, HAS_EK, rk, r, HAS_REL, ACC)
        s, masked = _scores(tl.sum(qb[:, None, :, :] * kt, 3), on, e, emask, HAS_MASK)
        live -= masked
        # the running maximum ignores NaN scores, which reach the sum through their weights
        m_new = tl.maximum(m, tl.max(tl.where(s == s, s, float("-inf")), 1))  # (BN, BH)
        alpha = tl.where(m_new > m, tl.exp(m - m_new), 1.0)
        w = _weight(s, m_new[:, None, :])  # (BN, BE, BH)
        l = l * alpha + tl.sum(w, 1)
        if DROPOUT:
            w = w * _keep_factor(e, H, seed, thresh, keep_scale, BLOCK_H)
        vt = _edge_rows(v, j, True, on, tail_v, H * DV, ev, e, HAS_EV, rv, r, HAS_REL, ACC)
        acc = acc * alpha[:, :, None] + tl.sum(w[:, :, :, None] * vt, 1)
        m = m_new
    fine = l > 0.0  # else a NaN or +inf score met the softmax (or every score was -inf)
    res = tl.where(fine[:, :, None], acc / l[:, :, None], float("nan"))
    log_sum = tl.where(fine, m + tl.log(l), float("nan"))
    none = (live == 0)[:, None]  # no edge that takes part: as if there were none
    res = tl.where(none[:, :, None], 0.0, res)
    log_sum = tl.where(none, float("-inf"), log_sum)
    _store_rows(out, nodes, real, tail_v, H * DV, res.to(ACC))
    ok = real[:, None] & (oh < H)[None, :]
    tl.store(lse + nodes[:, None] * H + oh[None, :], log_sum.to(ACC), mask=ok)


@triton.jit
def weights_kernel(
    q, k, ptr, idx, eid, ek, rk, etype, emask, lse, w, N, H, D,
    HAS_EK: tl.constexpr, HAS_REL: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Attention weights ``w [E, H]`` (before dropout) of a block of targets' edges,
    recomputed from the saved ``lse``."""
    ACC: tl.constexpr = w.dtype.element_ty
    nodes, real, start, stop = _block(ptr, N, BLOCK_N)
    oh = tl.arange(0, BLOCK_H)
    tail_k = _offsets(H, D, BLOCK_H, BLOCK_D)
    qb = _node_rows(q, nodes, real, tail_k, H * D, ACC)
    lb = _node_heads(lse, nodes, real, H, BLOCK_H, ACC)  # (BN, BH)
    for t0 in range(0, tl.max(stop - start, 0), BLOCK_E):
        on, j, e, r = _tile(start, stop, t0, idx, eid, etype, HAS_REL, BLOCK_E)
        kt = _edge_rows(k, j, True, on, tail_k, H * D, ek, e, HAS_EK, rk, r, HAS_REL, ACC)
        s, _ = _scores(tl.sum(qb[:, None, :, :] * kt, 3), on, e, emask, HAS_MASK)
        p = _weight(s, lb[:, None, :])
        ok = on[:, :, None] & (oh < H)[None, None, :]
        tl.store(w + e[:, :, None] * H + oh[None, None, :], p.to(ACC), mask=ok)


@triton.jit(do_not_specialize=["seed", "thresh"])
def backward_target_kernel(
    q, k, v, ptr, idx, eid, ek, ev, rk, rv, etype, emask, keep, gout, out, lse, glse,
    delta, dq, dek, dev, drk, drv,
    seed, thresh, N, H, D, DV,
    HAS_EK: tl.constexpr, HAS_EV: tl.constexpr, HAS_REL: tl.constexpr,
    HAS_MASK: tl.constexpr, DROPOUT: tl.constexpr,
    NEED_DEK: tl.constexpr, NEED_DEV: tl.constexpr, NEED_REL: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
):  # fmt: skip
    """Backward by target: ``delta [N, H]``, ``dq [N, H * D]`` and the gradients of the edge
    terms, for a block of targets.

    ``delta_i = <gout_i, out_i> - glse_i`` per head; for an edge ``e = (j -> i)`` with weight
    ``P = exp(s - lse_i)`` and dropout factor ``M``: ``ds = P (M <gout_i, v_e> - delta_i)``,
    ``dq_i += ds k_e``, ``d(key terms)_e = ds q_i``, ``d(value terms)_e = P M gout_i``. The
    per-relation gradients ``drk``, ``drv`` (zero on entry) are summed with atomic adds.
    """
    ACC: tl.constexpr = dq.dtype.element_ty
    nodes, real, start, stop = _block(ptr, N, BLOCK_N)
    oh = tl.arange(0, BLOCK_H)
    tail_k = _offsets(H, D, BLOCK_H, BLOCK_D)
    tail_v = _offsets(H, DV, BLOCK_H, BLOCK_DV)
    qb = _node_rows(q, nodes, real, tail_k, H * D, ACC)  # (BN, BH, BD)
    gb = _node_rows(gout, nodes, real, tail_v, H * DV, ACC)  # (BN, BH, BDV)
    lb = _node_heads(lse, nodes, real, H, BLOCK_H, ACC)  # (BN, BH)
    db = tl.sum(gb * _node_rows(out, nodes, real, tail_v, H * DV, ACC), 2)
    db -= _node_heads(glse, nodes, real, H, BLOCK_H, ACC)
    ok_h = real[:, None] & (oh < H)[None, :]
    tl.store(delta + nodes[:, None] * H + oh[None, :], db, mask=ok_h)
    keep_scale = 1.0
    if DROPOUT:
        keep_scale = tl.load(keep).to(ACC)
    dqb = tl.zeros([BLOCK_N, BLOCK_H, BLOCK_D], ACC)
    for t0 in range(0, tl.max(stop - start, 0), BLOCK_E):
        on, j, e, r = _tile(start, stop, t0, idx, eid, etype, HAS_REL, BLOCK_E)
        kt = _edge_rows(k, j, True, on, tail_k, H * D, ek, e, HAS_EK, rk, r, HAS_REL, ACC)
        vt = _edge_rows(v, j, True, on, tail_v, H * DV, ev, e, HAS_EV, rv, r, HAS_REL, ACC)
        s, _ = _scores(tl.sum(qb[:, None, :, :] * kt, 3), on, e, emask, HAS_MASK)
        p = tl.where(on[:, :, None], _weight(s, lb[:, None, :]), 0.0)  # (BN, BE, BH)
        dp = tl.sum(gb[:, None, :, :] * vt, 3)
        pm = p
        if DROPOUT:
            factor = _keep_factor(e, H, seed, thresh, keep_scale, BLOCK_H)
            dp = dp * factor
            pm = p * factor
        ds = p * (dp - db[:, None, :])
        dqb += tl.sum(ds[:, :, :, None] * kt, 1)
        grad_key = ds[:, :, :, None] * qb[:, None, :, :]  # (BN, BE, BH, BD)
        grad_value = pm[:, :, :, None] * gb[:, None, :, :]  # (BN, BE, BH, BDV)
        ok_k = on[:, :, None, None] & (tail_k >= 0)[None, None, :, :]
        ok_v = on[:, :, None, None] & (tail_v >= 0)[None, None, :, :]
        if NEED_DEK:
            ptrs = dek + e[:, :, None, None] * (H * D) + tail_k[None, None, :, :]
            tl.store(ptrs, grad_key, mask=ok_k)
        if NEED_DEV:
            ptrs = dev + e[:, :, None, None] * (H * DV) + tail_v[None, None, :, :]
            tl.store(ptrs, grad_value, mask=ok_v)
        if NEED_REL:
            ptrs = drk + r[:, :, None, None] * (H * D) + tail_k[None, None, :, :]
            tl.atomic_add(ptrs, grad_key, mask=ok_k)
            ptrs = drv + r[:, :, None, None] * (H * DV) + tail_v[None, None, :, :]
            tl.atomic_add(ptrs, grad_value, mask=ok_v)
    _store_rows(dq, nodes, real, tail_k, H * D, dqb)


@triton.jit(do_not_specialize=["seed", "thresh"])
def backward_source_kernel(
    q, k, v, ptr, idx, eid, ek, ev, rk, rv, etype, emask, keep, gout, lse, delta, dk, dv,
    seed, thresh, N, H, D, DV,
    HAS_EK: tl.constexpr, HAS_EV: tl.constexpr, HAS_REL: tl.constexpr,
    HAS_MASK: tl.constexpr, DROPOUT: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
):  # fmt: skip
    """Backward by source over a block of sources' out-edges (``idx`` holds targets):
    ``dk_j = sum ds q_i`` and ``dv_j = sum P M gout_i``, scores recomputed. Every row of
    ``dk`` and ``dv`` is written."""
    ACC: tl.constexpr = dk.dtype.element_ty
    nodes, real, start, stop = _block(ptr, N, BLOCK_N)
    oh = tl.arange(0, BLOCK_H)
    tail_k = _offsets(H, D, BLOCK_H, BLOCK_D)
    tail_v = _offsets(H, DV, BLOCK_H, BLOCK_DV)
    kb = _node_rows(k, nodes, real, tail_k, H * D, ACC)  # (BN, BH, BD)
    vb = _node_rows(v, nodes, real, tail_v, H * DV, ACC)
    keep_scale = 1.0
    if DROPOUT:
        keep_scale = tl.load(keep).to(ACC)
    dkb = tl.zeros([BLOCK_N, BLOCK_H, BLOCK_D], ACC)
    dvb = tl.zeros([BLOCK_N, BLOCK_H, BLOCK_DV], ACC)
    for t0 in range(0, tl.max(stop - start, 0), BLOCK_E):
        on, i, e, r = _tile(start, stop, t0, idx, eid, etype, HAS_REL, BLOCK_E)
        qt = _edge_rows(
            q, i, True, on, tail_k, H * D, q, e, False, q, r, False, ACC
        )  # (BN, BE, BH, BD)
        gt = _edge_rows(gout, i, True, on, tail_v, H * DV, q, e, False, q, r, False, ACC)
        ok_h = on[:, :, None] & (oh < H)[None, None, :]
        lt = tl.load(lse + i[:, :, None] * H + oh[None, None, :], mask=ok_h, other=0.0)
        dt = tl.load(delta + i[:, :, None] * H + oh[None, None, :], mask=ok_h, other=0.0)
        kt = _edge_rows(k, i, False, on, tail_k, H * D, ek, e, HAS_EK, rk, r, HAS_REL, ACC)
        kt += kb[:, None, :, :]
        vt = _edge_rows(v, i, False, on, tail_v, H * DV, ev, e, HAS_EV, rv, r, HAS_REL, ACC)
        vt += vb[:, None, :, :]
        s, _ = _scores(tl.sum(qt * kt, 3), on, e, emask, HAS_MASK)
        p = tl.where(on[:, :, None], _weight(s, lt.to(ACC)), 0.0)
        dp = tl.sum(gt * vt, 3)
        pm = p
        if DROPOUT:
            factor = _keep_factor(e, H, seed, thresh, keep_scale, BLOCK_H)
            dp = dp * factor
            pm = p * factor
        ds = p * (dp - dt.to(ACC))
        dkb += tl.sum(ds[:, :, :, None] * qt, 1)
        dvb += tl.sum(pm[:, :, :, None] * gt, 1)
    _store_rows(dk, nodes, real, tail_k, H * D, dkb)
    _store_rows(dv, nodes, real, tail_v, H * DV, dvb)


INTERPRETED = isinstance(forward_kernel, InterpretedFunction) and isinstance(
    tl.sum, InterpretedFunction
)
"""Whether these kernels, and Triton's own language functions they call (``tl.sum``, ...),
were built for Triton's interpreter: they then run on CPU tensors, through NumPy. Both are
built so only when ``TRITON_INTERPRET=1`` was set before Triton was first imported."""
