"""Numba kernels of the ``fused`` engine (private; see :mod:`graphattn.engines.fused`).

All kernels take NumPy views of contiguous CPU tensors, flattened over heads (``[N, H * D]``,
so that the per-edge loops run over one contiguous row), and four small records (named
tuples, which numba passes by value):

- ``shape``: :class:`Shape` ``(heads, dim, dim_v)``;
- ``csr``: :class:`CSRArrays` ``(ptr, idx, eid)``: by target, the incoming edges of node ``i``
  sit at positions ``ptr[i]:ptr[i+1]`` with source ``idx[pos]`` and original edge id
  ``eid[pos]``; by source (for ``dk``, ``dv``) the same with targets in ``idx``;
- ``terms``: :class:`TermArrays` ``(ek [E, H*D], ev [E, H*Dv], rk [R, H*D], rv [R, H*Dv],
  etype [E], mask [E], has_ek, has_ev, has_rel, has_mask)``; absent terms are empty arrays,
  so that the argument types, and hence the compiled specialisations, do not depend on the
  options. A masked edge (``mask[e]`` true) takes no part: its score is ``-inf``;
- ``drop``: :class:`DropSpec` ``(p, seed, keep_scale, zero)``: the dropout probability, the
  hash seed, ``1 / (1 - p)`` and a zero of the compute dtype.

Every kernel computes the nodes ``lo:hi`` (targets, or sources for ``backward_source``) and
releases the GIL (``nogil=True``): :mod:`.ops` runs ranges of balanced work on a small pool of
Python threads, which keeps numba's own threading layer (and its OpenMP runtime, which does
not survive ``fork``) out of the process. The kernels are race-free: each node's rows of the
outputs are written by the one call that owns the node, per-edge outputs are written once,
and per-relation gradients go to a partial sum per call (``slot``), reduced afterwards.

**Why it is fast.** A node's edges are processed in tiles of :data:`TILE` edges. The rows a
tile needs (keys and values of the sources, or queries and output gradients of the targets)
are first copied into a small per-thread buffer by a tight loop that keeps many cache misses
in flight, and the rows of the *next* tile are prefetched (``llvm.prefetch``) while the
current one is computed: on graphs without locality the kernels are bound by these random
row reads, not by arithmetic. Scores are then computed tile by tile with one softmax
rescaling per tile (not per edge). The kernels are compiled per head count and size
(:func:`kernels`): sizes known at compile time let LLVM unroll and vectorise the per-head
loops (``python benchmarks/fused_kernels.py`` compares the two builds); :class:`Kernel`
compiles them with LLVM's SLP vectoriser on, which numba leaves off, and the softmax weights
come from branch-free loops with a polynomial float32 ``exp`` (:func:`_expf`), so that the
unrolled per-head dot products, weights and row updates become vector instructions. The
by-source pass reads a target's log-sum-exp and ``delta`` from one packed row ``ld [N, 2H]``
(one cache line per edge instead of two).

Dropout is computed inside the kernels from a counter-based hash of ``(seed, edge, head)``,
so the backward recomputes exactly the mask of the forward without storing it.
"""

from collections import namedtuple
from functools import cache
from types import SimpleNamespace

import numpy as np
from llvmlite import ir
from numba import njit, typeof, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.core.compiler_lock import global_compiler_lock
from numba.core.typing.typeof import Purpose
from numba.extending import intrinsic, overload

# Reassociation lets LLVM vectorise the per-head dot products and row updates; no flag that
# assumes finite values (the kernels use -inf for empty rows and running maxima).
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
TILE = 32  # edges gathered, scored and accumulated together
SPECIALISED_HEADS = (1, 2, 4, 8, 16)
SPECIALISED_DIMS = (8, 16, 32, 64, 128)
"""Head counts and sizes with float32 kernels compiled for them (see :func:`select`)."""
SPECIALISE_MIN_WORK = 100_000
"""Edges + nodes from which :func:`select` takes a build compiled for the head shape: below
it a compile (seconds, once per shape and machine) would not pay off."""

Shape = namedtuple("Shape", "heads dim dim_v")
CSRArrays = namedtuple("CSRArrays", "ptr idx eid")
TermArrays = namedtuple("TermArrays", "ek ev rk rv etype mask has_ek has_ev has_rel has_mask")
DropSpec = namedtuple("DropSpec", "p seed keep_scale zero")

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


@intrinsic
def _f16_to_f32(typingctx, bits):
    """The float32 value of a float16 given by its int16 bits (LLVM ``half`` -> ``float``)."""
    if not (isinstance(bits, types.Integer) and bits.bitwidth == 16):
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _bf16_to_f32(typingctx, bits):
    """The float32 value of a bfloat16 given by its uint16 bits (the high half of a float32)."""
    if not (isinstance(bits, types.Integer) and bits.bitwidth == 16):
        return None

    def codegen(context, builder, signature, args):
        wide = builder.zext(args[0], ir.IntType(32))
        return builder.bitcast(builder.shl(wide, ir.Constant(ir.IntType(32), 16)), ir.FloatType())

    return types.float32(bits), codegen


def _ld(a, i, x):  # pragma: no cover - replaced by the overload below inside numba
    """``a[i, x]`` as a float: 16-bit rows are converted to float32."""
    raise NotImplementedError


@overload(_ld, inline="always")
def _ld_impl(a, i, x):
    if a.dtype == types.int16:
        return lambda a, i, x: _f16_to_f32(a[i, x])
    if a.dtype == types.uint16:
        return lambda a, i, x: _bf16_to_f32(a[i, x])
    return lambda a, i, x: a[i, x]


@njit(inline="always")
def _uniform(seed, idx):
    """A uniform number in [0, 1) from (seed, idx): one splitmix64 step."""
    z = seed + np.uint64(idx) * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _INV53


@njit(inline="always")
def _drop_factor(drop, e, heads, h):
    """1 / (1 - p) if the weight of (edge e, head h) is kept, else 0 (1 without dropout)."""
    if drop.p <= 0.0:
        return drop.keep_scale
    if _uniform(drop.seed, e * heads + h) >= drop.p:
        return drop.keep_scale
    return drop.zero


# The helpers index 2-D arrays by (row, column) instead of taking row views: a view in a
# parallel loop increments the shared reference count of its parent atomically, which makes
# the threads contend for one cache line on every edge.
@njit(inline="always")
def _gather(dst, t, base, j, term, e, rel, r, has_term, has_rel, width):
    """``dst[t, :width] = base[j] + term[e] + rel[r]`` (terms only where present)."""
    for x in range(width):
        dst[t, x] = _ld(base, j, x)
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
                s += _ld(a, i, x) * tile[t, x]
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
def _apply_dropout(a, et, nt, heads, drop):
    """Scale ``a[t, h]`` for the tile's edges by their dropout factors (``1 / (1 - p)`` or
    0). Nothing without dropout (every factor is then exactly 1), so that the loops around
    it stay free of the hash and vectorise."""
    if drop.p > 0.0:
        for t in range(nt):
            e = et[t]
            for h in range(heads):
                a[t, h] *= _drop_factor(drop, e, heads, h)


@njit(inline="always")
def _mask_scores(s, et, nt, heads, terms):
    """The scores of masked edges become ``-inf`` (they take no part in the softmax).

    Returns the number of masked edges among the ``nt``."""
    masked = 0
    if terms.has_mask:
        for t in range(nt):
            if terms.mask[et[t]]:
                masked += 1
                for h in range(heads):
                    s[t, h] = -np.inf
    return masked


@intrinsic
def _bits_to_f32(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``."""
    if not (isinstance(bits, types.Integer) and bits.bitwidth == 32):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _select(typingctx, cond, a, b):
    """``a if cond else b`` as one LLVM ``select`` (no branch, so loops over it vectorise)."""
    if not isinstance(cond, types.Boolean) or a != b:
        return None

    def codegen(context, builder, signature, args):
        flag = context.cast(builder, args[0], signature.args[0], types.boolean)
        if flag.type != ir.IntType(1):  # numba's booleans are i1 as values; i8 in memory
            flag = builder.trunc(flag, ir.IntType(1))
        return builder.select(flag, args[1], args[2])

    return a(cond, a, b), codegen


_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI exact in few bits
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_POLY = tuple(
    np.float32(c)
    for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
              1.6666665459e-1, 5.0000001201e-1)
)  # fmt: skip
_EXP_LO = np.float32(-87.33654)  # below: exp(x) is subnormal; returned as 0
_EXP_HI = np.float32(88.72283)  # above: exp(x) overflows float32


@njit(inline="always", fastmath=_FASTMATH)
def _expf(x):
    """``exp(x)`` for float32 without a library call, so that LLVM can vectorise the loops that
    call it (numba calls libm's scalar ``expf`` otherwise).

    Cephes' ``expf``: ``2**n * p(r)`` with ``r = x - n ln 2`` (``|r| <= ln(2) / 2`` but near
    overflow); relative error below 4e-7. ``-inf`` and results below the smallest normal
    float give 0, ``+inf`` and overflows ``inf``; NaN stays NaN."""
    c = min(max(x, _EXP_LO), _EXP_HI)
    n = min(np.floor(c * _LOG2E + np.float32(0.5)), np.float32(127.0))  # 2**n finite
    r = c - n * _LN2_HI - n * _LN2_LO
    y = _EXP_POLY[0]
    y = y * r + _EXP_POLY[1]
    y = y * r + _EXP_POLY[2]
    y = y * r + _EXP_POLY[3]
    y = y * r + _EXP_POLY[4]
    y = y * r + _EXP_POLY[5]
    y = y * r * r + r + np.float32(1.0)
    y = y * _bits_to_f32(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
    y = _select(x < _EXP_LO, np.float32(0.0), y)
    y = _select(x > _EXP_HI, np.float32(np.inf), y)
    return _select(x != x, x, y)


def _exp(x):  # pragma: no cover - replaced by the overload below inside numba
    """``exp(x)``: :func:`_expf` for float32, ``np.exp`` otherwise."""
    raise NotImplementedError


@overload(_exp, inline="always")
def _exp_impl(x):
    if x == types.float32:
        return lambda x: _expf(x)
    return lambda x: np.exp(x)


@njit(inline="always")
def _weight(score, offset, zero):
    """``exp(score - offset)``, and 0 for a ``-inf`` score even when ``offset`` is ``-inf``;
    NaN whenever ``offset`` is NaN (a softmax that met a NaN or ``+inf`` score is NaN for
    every edge of its node, as in the reference). Branch-free, so that loops over it
    vectorise."""
    w = _exp(score - offset)
    return _select((score == -np.inf) & (offset == offset), zero, w)


@njit(inline="always")
def _prefetch_by_target(lo, hi, csr, k, v, terms):
    """Prefetch the key/value rows (and edge terms) of positions ``lo:hi`` of the target CSR."""
    for pos in range(lo, hi):
        j = csr.idx[pos]
        _prefetch_row(k, j)
        _prefetch_row(v, j)
        if terms.has_ek:
            _prefetch_row(terms.ek, csr.eid[pos])
        if terms.has_ev:
            _prefetch_row(terms.ev, csr.eid[pos])


@njit(inline="always")
def _prefetch_by_source(lo, hi, csr, q, gout, ld):
    """Prefetch the target rows of positions ``lo:hi`` of the source CSR."""
    for pos in range(lo, hi):
        i = csr.idx[pos]
        _prefetch_row(q, i)
        _prefetch_row(gout, i)
        _prefetch_row(ld, i)


@njit(inline="always")
def _prefetch_next_node(i, n, csr, k, v, terms):
    """Prefetch the first tile of node ``i + 1`` (by target) while node ``i`` computes."""
    if i + 1 < n:
        nxt = csr.ptr[i + 1]
        _prefetch_by_target(nxt, min(csr.ptr[i + 2], nxt + TILE), csr, k, v, terms)


@njit(inline="always")
def _kv_tile(t0, nt, stop, csr, k, v, terms, kt, vt, et, width, width_v):
    """Gather the keys and values (with their edge terms) of target-CSR positions
    ``t0:t0+nt`` into ``kt``, ``vt`` and their edge ids into ``et``, after prefetching the
    rows of the node's next tile (positions up to ``stop``)."""
    if t0 + TILE < stop:
        _prefetch_by_target(t0 + TILE, min(stop, t0 + 2 * TILE), csr, k, v, terms)
    for t in range(nt):
        j = csr.idx[t0 + t]
        e = csr.eid[t0 + t]
        r = terms.etype[e] if terms.has_rel else 0
        et[t] = e
        _gather(kt, t, k, j, terms.ek, e, terms.rk, r, terms.has_ek, terms.has_rel, width)
        _gather(vt, t, v, j, terms.ev, e, terms.rv, r, terms.has_ev, terms.has_rel, width_v)


def _build(heads_c: int, dim_c: int, dim_v_c: int) -> SimpleNamespace:
    """Compile (or load from numba's cache) the kernels for ``heads_c`` heads of ``dim_c``
    (queries, keys) and ``dim_v_c`` (values) channels.

    ``0`` means "read the shape from the arguments" (the generic build). The shape is made of
    closure constants, which numba's on-disk cache keys on, so every build is cached apart.
    """

    @njit(nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def forward(q, k, v, shape, csr, terms, drop, out, lse, lo, hi):
        """Online-softmax attention per target; writes ``out [N, H*Dv]`` and ``lse [N, H]``."""
        heads = heads_c if heads_c > 0 else shape.heads
        dim = dim_c if dim_c > 0 else shape.dim
        dim_v = dim_v_c if dim_v_c > 0 else shape.dim_v
        zero = drop.zero
        n = q.shape[0]
        kt = np.empty((TILE, heads * dim), dtype=out.dtype)
        vt = np.empty((TILE, heads * dim_v), dtype=out.dtype)
        s = np.empty((TILE, heads), dtype=out.dtype)
        et = np.empty(TILE, dtype=np.int64)
        m = np.empty(heads, dtype=out.dtype)
        mt = np.empty(heads, dtype=out.dtype)
        l = np.empty(heads, dtype=out.dtype)
        acc = np.empty(heads * dim_v, dtype=out.dtype)
        for i in range(lo, hi):
            start = csr.ptr[i]
            stop = csr.ptr[i + 1]
            _prefetch_next_node(i, n, csr, k, v, terms)
            if start == stop:  # no incoming edge: zero output, lse = -inf
                for h in range(heads):
                    lse[i, h] = -np.inf
                for x in range(heads * dim_v):
                    out[i, x] = zero
                continue
            m[:] = -np.inf
            l[:] = zero
            acc[:] = zero
            live = stop - start  # edges that are not masked
            for t0 in range(start, stop, TILE):
                nt = min(TILE, stop - t0)
                _kv_tile(t0, nt, stop, csr, k, v, terms, kt, vt, et, heads * dim, heads * dim_v)
                _row_dots(q, i, kt, nt, s, heads, dim, zero)
                live -= _mask_scores(s, et, nt, heads, terms)
                for h in range(heads):
                    mt[h] = m[h]
                for t in range(nt):  # the tile's maximum (vectorised over heads)
                    for h in range(heads):
                        mt[h] = _select(s[t, h] > mt[h], s[t, h], mt[h])
                for h in range(heads):  # one rescale per tile, by the tile's new maximum
                    if mt[h] > m[h]:
                        c = _exp(m[h] - mt[h])
                        l[h] *= c
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            acc[x] *= c
                        m[h] = mt[h]
                for t in range(nt):  # s <- weights (branch-free: vectorised)
                    for h in range(heads):
                        w = _weight(s[t, h], m[h], zero)
                        l[h] += w
                        s[t, h] = w
                _apply_dropout(s, et, nt, heads, drop)
                for t in range(nt):
                    for h in range(heads):
                        w = s[t, h]
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            acc[x] += w * vt[t, x]
            for h in range(heads):
                if live == 0:  # every edge masked: as if there were none
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        out[i, x] = zero
                    lse[i, h] = -np.inf
                elif l[h] > zero:
                    inv = 1.0 / l[h]
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        out[i, x] = acc[x] * inv
                    lse[i, h] = m[h] + np.log(l[h])
                else:  # a NaN score, or every score -inf: NaN, as in the reference
                    for x in range(h * dim_v, (h + 1) * dim_v):
                        out[i, x] = np.nan
                    lse[i, h] = np.nan

    @njit(nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def weights(q, k, shape, csr, terms, zero, lse, w, lo, hi):
        """Attention weights ``w [E, H]`` (before dropout), recomputed from the saved ``lse``."""
        heads = heads_c if heads_c > 0 else shape.heads
        dim = dim_c if dim_c > 0 else shape.dim
        kt = np.empty((TILE, heads * dim), dtype=w.dtype)
        s = np.empty((TILE, heads), dtype=w.dtype)
        et = np.empty(TILE, dtype=np.int64)
        for i in range(lo, hi):
            start = csr.ptr[i]
            stop = csr.ptr[i + 1]
            for t0 in range(start, stop, TILE):
                nt = min(TILE, stop - t0)
                for t in range(nt):
                    e = csr.eid[t0 + t]
                    et[t] = e
                    r = terms.etype[e] if terms.has_rel else 0
                    _gather(
                        kt, t, k, csr.idx[t0 + t], terms.ek, e, terms.rk, r,
                        terms.has_ek, terms.has_rel, heads * dim,
                    )  # fmt: skip
                _row_dots(q, i, kt, nt, s, heads, dim, zero)
                _mask_scores(s, et, nt, heads, terms)
                for t in range(nt):
                    for h in range(heads):
                        w[et[t], h] = _weight(s[t, h], lse[i, h], zero)

    @njit(nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def backward_target(
        q, k, v, shape, csr, terms, drop, gout, out, lse, glse, needs, grads, lo, hi, slot
    ):
        """Backward by target: ``ld``, ``dq`` and the gradients of the edge terms.

        ``needs = (dek, dev, drel)`` says which edge-term gradients to compute;
        ``grads = (ld, dq, dek, dev, drk_part, drv_part)`` receives them.
        ``ld[i] = (lse[i, :], delta[i, :])`` packed for the by-source pass, with
        ``delta[i, h] = <gout_i^h, out_i^h> - glse[i, h]``; for an edge ``e = (j -> i)`` with
        weight ``P`` and dropout factor ``M``: ``ds = P * (M * <gout_i, v_e> - delta_i)``,
        ``dq_i += ds * k_e``, ``d(key terms)_e = ds * q_i``, ``d(value terms)_e = P M gout_i``.
        Every row of ``dq`` is written; ``drk_part`` and ``drv_part`` must be zero on entry.
        """
        heads = heads_c if heads_c > 0 else shape.heads
        dim = dim_c if dim_c > 0 else shape.dim
        dim_v = dim_v_c if dim_v_c > 0 else shape.dim_v
        zero = drop.zero
        need_dek, need_dev, need_drel = needs
        ld, dq, dek, dev, drk_part, drv_part = grads
        n = q.shape[0]
        kt = np.empty((TILE, heads * dim), dtype=dq.dtype)
        vt = np.empty((TILE, heads * dim_v), dtype=dq.dtype)
        s = np.empty((TILE, heads), dtype=dq.dtype)
        dp = np.empty((TILE, heads), dtype=dq.dtype)
        et = np.empty(TILE, dtype=np.int64)
        dl = np.empty(heads, dtype=dq.dtype)
        lr = np.empty(heads, dtype=dq.dtype)
        dqa = np.empty(heads * dim, dtype=dq.dtype)
        for i in range(lo, hi):
            start = csr.ptr[i]
            stop = csr.ptr[i + 1]
            _prefetch_next_node(i, n, csr, k, v, terms)
            for h in range(heads):
                lr[h] = lse[i, h]
                ld[i, h] = lr[h]
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
                _kv_tile(t0, nt, stop, csr, k, v, terms, kt, vt, et, heads * dim, heads * dim_v)
                _row_dots(q, i, kt, nt, s, heads, dim, zero)
                _mask_scores(s, et, nt, heads, terms)
                _row_dots(gout, i, vt, nt, dp, heads, dim_v, zero)
                # s <- ds = P (M dp - delta), dp <- P M (branch-free loop: vectorised)
                _apply_dropout(dp, et, nt, heads, drop)
                for t in range(nt):
                    for h in range(heads):
                        p = _weight(s[t, h], lr[h], zero)
                        s[t, h] = p * (dp[t, h] - dl[h])
                        dp[t, h] = p
                _apply_dropout(dp, et, nt, heads, drop)
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
                                dek[e, x] = s[t, h] * _ld(q, i, x)
                if need_dev:
                    for t in range(nt):
                        e = et[t]
                        for h in range(heads):
                            for x in range(h * dim_v, (h + 1) * dim_v):
                                dev[e, x] = dp[t, h] * gout[i, x]
                if need_drel:
                    for t in range(nt):
                        r = terms.etype[et[t]]
                        for h in range(heads):
                            for x in range(h * dim, (h + 1) * dim):
                                drk_part[slot, r, x] += s[t, h] * _ld(q, i, x)
                            for x in range(h * dim_v, (h + 1) * dim_v):
                                drv_part[slot, r, x] += dp[t, h] * gout[i, x]
            for x in range(heads * dim):
                dq[i, x] = dqa[x]

    @njit(nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy")
    def backward_source(q, k, v, shape, csr, terms, drop, gout, ld, dk, dv, lo, hi):
        """Backward by source: ``dk_j = sum ds * q_i`` and ``dv_j = sum P M gout_i`` over out-edges.

        ``csr`` groups the edges by source (``idx`` holds targets). Scores are recomputed, so
        no per-edge tensor is stored between the two backward passes. Every row of ``dk`` and
        ``dv`` is written.
        """
        heads = heads_c if heads_c > 0 else shape.heads
        dim = dim_c if dim_c > 0 else shape.dim
        dim_v = dim_v_c if dim_v_c > 0 else shape.dim_v
        zero = drop.zero
        n = k.shape[0]
        k_terms = terms.has_ek or terms.has_rel
        v_terms = terms.has_ev or terms.has_rel
        qt = np.empty((TILE, heads * dim), dtype=dk.dtype)
        gt = np.empty((TILE, heads * dim_v), dtype=dk.dtype)
        kt = np.empty((TILE, heads * dim), dtype=dk.dtype)
        vt = np.empty((TILE, heads * dim_v), dtype=dk.dtype)
        s = np.empty((TILE, heads), dtype=dk.dtype)
        dp = np.empty((TILE, heads), dtype=dk.dtype)
        lt = np.empty((TILE, heads), dtype=dk.dtype)
        dlt = np.empty((TILE, heads), dtype=dk.dtype)
        et = np.empty(TILE, dtype=np.int64)
        dka = np.empty(heads * dim, dtype=dk.dtype)
        dva = np.empty(heads * dim_v, dtype=dk.dtype)
        for j in range(lo, hi):
            start = csr.ptr[j]
            stop = csr.ptr[j + 1]
            if j + 1 < n:
                nxt = csr.ptr[j + 1]
                _prefetch_by_source(nxt, min(csr.ptr[j + 2], nxt + TILE), csr, q, gout, ld)
            dka[:] = zero
            dva[:] = zero
            for t0 in range(start, stop, TILE):
                nt = min(TILE, stop - t0)
                if t0 + TILE < stop:
                    _prefetch_by_source(t0 + TILE, min(stop, t0 + 2 * TILE), csr, q, gout, ld)
                for t in range(nt):
                    i = csr.idx[t0 + t]
                    e = csr.eid[t0 + t]
                    et[t] = e
                    for x in range(heads * dim):
                        qt[t, x] = _ld(q, i, x)
                    for x in range(heads * dim_v):
                        gt[t, x] = gout[i, x]
                    for h in range(heads):
                        lt[t, h] = ld[i, h]
                        dlt[t, h] = ld[i, heads + h]
                    if k_terms or v_terms:
                        r = terms.etype[e] if terms.has_rel else 0
                        _gather(
                            kt, t, k, j, terms.ek, e, terms.rk, r, terms.has_ek,
                            terms.has_rel, heads * dim,
                        )  # fmt: skip
                        _gather(
                            vt, t, v, j, terms.ev, e, terms.rv, r, terms.has_ev,
                            terms.has_rel, heads * dim_v,
                        )  # fmt: skip
                if k_terms:
                    _pair_dots(qt, kt, nt, s, heads, dim, zero)
                else:
                    _row_dots(k, j, qt, nt, s, heads, dim, zero)
                _mask_scores(s, et, nt, heads, terms)
                if v_terms:
                    _pair_dots(gt, vt, nt, dp, heads, dim_v, zero)
                else:
                    _row_dots(v, j, gt, nt, dp, heads, dim_v, zero)
                # s <- ds = P (M dp - delta), dp <- P M (branch-free loop: vectorised)
                _apply_dropout(dp, et, nt, heads, drop)
                for t in range(nt):
                    for h in range(heads):
                        p = _weight(s[t, h], lt[t, h], zero)
                        s[t, h] = p * (dp[t, h] - dlt[t, h])
                        dp[t, h] = p
                _apply_dropout(dp, et, nt, heads, drop)
                for t in range(nt):
                    for h in range(heads):
                        dsh = s[t, h]
                        pmh = dp[t, h]
                        for x in range(h * dim, (h + 1) * dim):
                            dka[x] += dsh * qt[t, x]
                        for x in range(h * dim_v, (h + 1) * dim_v):
                            dva[x] += pmh * gt[t, x]
            for x in range(heads * dim):
                dk[j, x] = dka[x]
            for x in range(heads * dim_v):
                dv[j, x] = dva[x]

    return SimpleNamespace(
        forward=Kernel(forward),
        weights=Kernel(weights),
        backward_target=Kernel(backward_target),
        backward_source=Kernel(backward_source),
    )


_REFUSALS = ("No matching definition", "compilation disabled")


class Kernel:
    """A kernel's numba dispatcher, compiled with LLVM's SLP vectoriser on.

    numba turns the SLP vectoriser off by default (numba/numba#8852: miscompilations seen
    with older LLVMs), and with it off the per-head loops, which LLVM unrolls fully once the
    head size is a compile-time constant, stay scalar. The dispatcher's own compilation is
    disabled; a call with a new signature (which numba then refuses) compiles it here, under
    numba's compiler lock with ``SLP_VECTORIZE`` set for that compile only, so no other numba
    code in the process is affected (a build found in numba's on-disk cache is loaded, not
    compiled). Calls with known signatures go straight to the dispatcher. The engine's tests
    compare every build with the reference.
    """

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.__name__ = dispatcher.__name__
        dispatcher._can_compile = False  # what disable_compile() sets (it wants a signature)

    def __call__(self, *args):
        try:
            return self.dispatcher(*args)
        except (TypeError, RuntimeError) as error:  # numba's answers when it may not compile:
            # no signature matched, or there was none yet
            if not any(m in str(error) for m in _REFUSALS):
                raise
        self.compile(tuple(typeof(a, Purpose.argument) for a in args))
        return self.dispatcher(*args)

    def compile(self, signature: tuple) -> None:
        """Compile (or load from numba's cache) the kernel for ``signature``, with SLP on."""
        with global_compiler_lock:
            previous = numba_config.SLP_VECTORIZE
            numba_config.SLP_VECTORIZE = 1
            self.dispatcher._can_compile = True
            try:
                self.dispatcher.compile(signature)
            finally:
                self.dispatcher._can_compile = False
                numba_config.SLP_VECTORIZE = previous


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


def select(heads: int, dim: int, dim_v: int, dtype: np.dtype, work: int) -> SimpleNamespace:
    """The build for a call: compiled for the head shape when the values are float32 (the
    dtype whose speed matters), the shape is one of the specialised ones and the graph has at
    least :data:`SPECIALISE_MIN_WORK` edges + nodes; otherwise the generic build."""
    if np.dtype(dtype) == np.float32 and work >= SPECIALISE_MIN_WORK:
        return kernels(heads, dim, dim_v)
    return _generic()
