"""The fused engine's ``torch.library`` custom ops (forward, backward, weights).

The ops are pure: the graph travels as explicit CSR inputs (by target, and by source for the
backward), so nothing is looked up in a cache behind torch's back, ``torch.library.opcheck``
passes and ``torch.compile`` traces them with their fake implementations. Each op has one
implementation per device: on the CPU (defined here) NumPy views of the tensors go to the
numba kernels of :mod:`.kernels` (imported on first use); on CUDA the Triton kernels of
:mod:`.triton_kernels` run, registered by :mod:`.triton_ops`. The autograd formula and the fake
implementations are shared.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from ..base import cpu_only

__all__ = [
    "accumulate_dtype",
    "backward_op",
    "fused_attention_op",
    "numba_backward",
    "numba_forward",
    "numba_weights",
    "run_ranges",
    "weights_op",
]

_SERIAL_WORK = 16384
"""Below this many edges plus nodes a kernel runs in the calling thread."""
_CHUNKS_PER_THREAD = 4  # balanced chunks per thread, so that a slow chunk does not stall

_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, pool)


def _executor(threads: int) -> ThreadPoolExecutor:
    """The kernels' thread pool of ``threads`` workers: one per process, replaced when
    ``torch.set_num_threads`` changed the count, and new after ``fork`` (the child has no pool
    threads). A replaced pool is not shut down (another Python thread may still be submitting
    to it); once the last caller drops it, the pool is collected and its threads exit, so the
    process holds the threads of one pool, not one pool per thread count ever used."""
    global _pool
    pid = os.getpid()
    with _pool_lock:
        if _pool is None or _pool[:2] != (pid, threads):
            executor = ThreadPoolExecutor(threads, thread_name_prefix="graphattn-fused")
            _pool = (pid, threads, executor)
        return _pool[2]


def chunk_bounds(ptr: np.ndarray, chunks: int) -> np.ndarray:
    """Node boundaries ``[chunks' + 1]`` that split ``ptr``'s nodes into ranges of about equal
    work (edges + nodes), dropping empty ranges."""
    n = ptr.shape[0] - 1
    work = ptr + np.arange(n + 1)  # cumulative edges + nodes
    targets = np.linspace(0, work[-1], chunks + 1)
    bounds = np.searchsorted(work, targets, side="left")
    bounds[0], bounds[-1] = 0, n
    return np.unique(bounds)


def run_ranges(kernel, args: tuple, ptr: np.ndarray, *, slots: bool = False) -> int:
    """Run ``kernel(*args, lo, hi)`` over balanced node ranges on ``torch.get_num_threads()``
    threads (``kernel(*args, lo, hi, slot)`` with ``slots``, ``slot`` numbering the ranges).

    Returns the number of ranges (the ``slot`` count).
    """
    n = ptr.shape[0] - 1
    threads = max(1, torch.get_num_threads())
    if threads == 1 or int(ptr[-1]) + n < _SERIAL_WORK:
        kernel(*args, 0, n, *((0,) if slots else ()))
        return 1
    bounds = chunk_bounds(ptr, threads * _CHUNKS_PER_THREAD)
    executor = _executor(threads)
    futures = [
        executor.submit(kernel, *args, int(lo), int(hi), *((c,) if slots else ()))
        for c, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    for future in futures:
        future.result()
    return len(futures)


def num_ranges(ptr: np.ndarray) -> int:
    """How many ranges (``slot`` values) :func:`run_ranges` will use for ``ptr``."""
    n = ptr.shape[0] - 1
    threads = max(1, torch.get_num_threads())
    if threads == 1 or int(ptr[-1]) + n < _SERIAL_WORK:
        return 1
    return len(chunk_bounds(ptr, threads * _CHUNKS_PER_THREAD)) - 1


@cpu_only
def _kernels(shape, q: Tensor, csr) -> object:
    """The kernel build for this call (see :func:`.kernels.select`)."""
    from . import kernels

    work = int(csr.ptr[-1]) + csr.ptr.shape[0] - 1
    acc = torch.empty(0, dtype=accumulate_dtype(q.dtype)).numpy().dtype
    return kernels.select(shape.heads, shape.dim, shape.dim_v, acc, work)


_BITS = {torch.float16: torch.int16, torch.bfloat16: torch.uint16}  # how numba reads 16-bit rows


@cpu_only
def _np(t: Tensor) -> np.ndarray:
    """A NumPy view; float16/bfloat16 as their int16/uint16 bits (see kernels._ld)."""
    t = t.detach().contiguous()
    return t.view(_BITS[t.dtype]).numpy() if t.dtype in _BITS else t.numpy()


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute and write in: float32 for 16-bit rows."""
    return torch.float32 if dtype in _BITS else dtype


@cpu_only
def _flat(t: Tensor) -> np.ndarray:
    """A contiguous ``[rows, H * D]`` NumPy view of an ``[rows, H, D]`` tensor."""
    a = _np(t)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))  # (rows, H * D)


@cpu_only
def _records(q, v, csr, ek, ev, rk, rv, et, mask, dropout, seed):
    """The kernels' ``shape``, ``csr``, ``terms`` and ``drop`` records."""
    from .kernels import CSRArrays, DropSpec, Shape, TermArrays

    dt = torch.empty(0, dtype=accumulate_dtype(q.dtype)).numpy().dtype.type
    empty = np.empty((0, 0), dtype=dt)
    terms = TermArrays(
        empty if ek is None else _flat(ek),
        empty if ev is None else _flat(ev),
        empty if rk is None else _flat(rk),
        empty if rv is None else _flat(rv),
        np.empty(0, dtype=np.int64) if et is None else _np(et.long()),
        np.empty(0, dtype=np.bool_) if mask is None else _np(mask),
        ek is not None,
        ev is not None,
        rk is not None,
        mask is not None,
    )
    keep = dt(1.0 / (1.0 - dropout))
    drop = DropSpec(float(dropout), np.uint64(int(seed) & (2**64 - 1)), keep, dt(0))
    shape = Shape(q.size(1), q.size(2), v.size(2))
    return shape, CSRArrays(*(_np(t) for t in csr)), terms, drop


def _check_terms(q, v, num_edges, ek, ev, rk, rv, et, mask) -> None:
    """Shapes and relation ids of the edge terms (the kernels do not bounds-check)."""
    heads, dim, dim_v = q.size(1), q.size(2), v.size(2)
    acc = accumulate_dtype(q.dtype)
    for name, t, rows, width in (
        ("edge_key", ek, num_edges, dim),
        ("edge_value", ev, num_edges, dim_v),
        ("rel_key", rk, None, dim),
        ("rel_value", rv, None, dim_v),
    ):
        if t is None:
            continue
        want = [num_edges if rows is not None else t.size(0), heads, width]
        if t.dim() != 3 or list(t.shape) != want or t.dtype != acc:
            raise ValueError(f"`{name}` must be {acc} of shape {want}, got {list(t.shape)}")
    if (rk is None) != (rv is None) or (rk is None) != (et is None):
        raise ValueError("`rel_key`, `rel_value` and `edge_type` must be given together")
    if rk is not None:
        if rk.size(0) != rv.size(0) or et.shape != (num_edges,):
            raise ValueError(
                f"`edge_type` must have shape [{num_edges}] and `rel_key`/`rel_value` the "
                f"same number of relations, got {list(et.shape)}, {rk.size(0)}, {rv.size(0)}"
            )
        if num_edges > 0 and bool(((et < 0) | (et >= rk.size(0))).any()):  # one sync on CUDA
            raise ValueError(f"`edge_type` values must be in [0, {rk.size(0)})")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != (num_edges,)):
        raise ValueError(f"`edge_mask` must be bool of shape [{num_edges}], got {mask.dtype}")


@cpu_only
def numba_forward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    t_ptr: Tensor,
    t_idx: Tensor,
    t_eid: Tensor,
    s_ptr: Tensor,
    s_idx: Tensor,
    s_eid: Tensor,
    edge_key: Tensor | None,
    edge_value: Tensor | None,
    rel_key: Tensor | None,
    rel_value: Tensor | None,
    edge_type: Tensor | None,
    edge_mask: Tensor | None,
    dropout: float,
    seed: Tensor,
) -> tuple[Tensor, Tensor]:
    """Forward: ``(out [N_dst, H, Dv], lse [N_dst, H])`` (lse is ``-inf`` for isolated nodes).

    ``t_*`` is the CSR by target; ``s_*`` the CSR by source, which only the backward reads
    (empty tensors when no gradient will be needed). ``edge_mask`` (bool ``[E]``) marks edges
    that take no part.
    """
    n, heads, _ = q.shape
    if t_ptr.numel() != n + 1:
        raise ValueError(f"`t_ptr` must have {n + 1} entries, got {t_ptr.numel()}")
    terms = (edge_key, edge_value, rel_key, rel_value, edge_type, edge_mask)
    _check_terms(q, v, t_idx.numel(), *terms)
    acc = accumulate_dtype(q.dtype)
    out = q.new_empty(n, heads, v.size(-1), dtype=acc)
    lse = q.new_empty(n, heads, dtype=acc)
    shape, csr, term_arrays, drop = _records(q, v, (t_ptr, t_idx, t_eid), *terms, dropout, seed)
    args = (_flat(q), _flat(k), _flat(v), shape, csr, term_arrays, drop, _flat(out), lse.numpy())
    run_ranges(_kernels(shape, q, csr).forward, args, csr.ptr)
    return out, lse


#: The custom op ``graphattn::fused_attention``: :func:`numba_forward` on the CPU, the Triton
#: kernels on CUDA (registered by :mod:`.triton_ops`).
fused_attention_op = torch.library.custom_op(
    "graphattn::fused_attention", numba_forward, mutates_args=(), device_types="cpu"
)


@fused_attention_op.register_fake
def _(q, k, v, tp, ti, te, sp, si, se, ek, ev, rk, rv, et, mask, dropout, seed):
    n, heads, _ = q.shape
    acc = accumulate_dtype(q.dtype)
    return q.new_empty(n, heads, v.size(-1), dtype=acc), q.new_empty(n, heads, dtype=acc)


@cpu_only
def numba_backward(
    grad_out: Tensor,
    grad_lse: Tensor | None,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    t_ptr: Tensor,
    t_idx: Tensor,
    t_eid: Tensor,
    s_ptr: Tensor,
    s_idx: Tensor,
    s_eid: Tensor,
    edge_key: Tensor | None,
    edge_value: Tensor | None,
    rel_key: Tensor | None,
    rel_value: Tensor | None,
    edge_type: Tensor | None,
    edge_mask: Tensor | None,
    out: Tensor,
    lse: Tensor,
    dropout: float,
    seed: Tensor,
    need_qkv: bool,
    need_edge_key: bool,
    need_edge_value: bool,
    need_rel: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backward: ``(dq, dk, dv, d edge_key, d edge_value, d rel_key, d rel_value)``.

    Gradients that are not needed (or whose input is absent) come back as empty tensors.
    """
    n, heads, dim = q.shape
    dim_v = v.size(-1)
    if need_qkv and s_ptr.numel() != k.size(0) + 1:
        raise RuntimeError(
            "the fused engine's forward ran without the CSR by source, which the backward needs"
        )
    need_edge_key = need_edge_key and edge_key is not None
    need_edge_value = need_edge_value and edge_value is not None
    need_rel = need_rel and rel_key is not None
    terms = (edge_key, edge_value, rel_key, rel_value, edge_type, edge_mask)
    shape, t_csr, term_arrays, drop = _records(q, v, (t_ptr, t_idx, t_eid), *terms, dropout, seed)

    acc = accumulate_dtype(q.dtype)
    gout = _flat(grad_out)
    glse = lse.new_zeros(n, heads) if grad_lse is None else grad_lse
    ld = lse.new_empty(n, 2 * heads)  # (lse, delta) per node, packed for the by-source pass
    dq = torch.empty_like(q, dtype=acc)  # the kernels write every row
    num_edges = t_idx.numel()
    dek = lse.new_empty(num_edges, heads, dim) if need_edge_key else lse.new_empty(0)
    dev = lse.new_empty(num_edges, heads, dim_v) if need_edge_value else lse.new_empty(0)
    if need_rel:
        num_rel, slots = rel_key.size(0), num_ranges(t_csr.ptr)  # type: ignore[union-attr]
        drk_part = lse.new_zeros(slots, num_rel, heads * dim)
        drv_part = lse.new_zeros(slots, num_rel, heads * dim_v)
    else:
        drk_part = drv_part = lse.new_zeros(0, 0, 0)
    kern = _kernels(shape, q, t_csr)
    grads = (
        ld.numpy(),
        _flat(dq),
        _flat(dek) if need_edge_key else term_arrays.ek,
        _flat(dev) if need_edge_value else term_arrays.ev,
        drk_part.numpy(),
        drv_part.numpy(),
    )
    args = (
        _flat(q), _flat(k), _flat(v), shape, t_csr, term_arrays, drop, gout, _flat(out),
        _np(lse), _np(glse), (need_edge_key, need_edge_value, need_rel), grads,
    )  # fmt: skip
    run_ranges(kern.backward_target, args, t_csr.ptr, slots=True)
    if need_qkv:
        dk = torch.empty_like(k, dtype=acc)
        dv = torch.empty_like(v, dtype=acc)
        s_csr = type(t_csr)(_np(s_ptr), _np(s_idx), _np(s_eid))
        args = (
            _flat(q), _flat(k), _flat(v), shape, s_csr, term_arrays, drop, gout, ld.numpy(),
            _flat(dk), _flat(dv),
        )  # fmt: skip
        run_ranges(kern.backward_source, args, s_csr.ptr)
        # gradients of 16-bit rows come back in their dtype (accumulated in float32)
        dq, dk, dv = dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)
    else:
        dq, dk, dv = q.new_empty(0), q.new_empty(0), q.new_empty(0)
    drk = drk_part.sum(0).view_as(rel_key) if need_rel else lse.new_empty(0)
    drv = drv_part.sum(0).view_as(rel_value) if need_rel else lse.new_empty(0)
    # outputs must not alias each other: a gradient that is not needed is its own empty tensor
    return dq, dk, dv, dek, dev, drk, drv


#: The custom op ``graphattn::fused_attention_backward``: :func:`numba_backward` on the CPU,
#: the Triton kernels on CUDA (registered by :mod:`.triton_ops`).
backward_op = torch.library.custom_op(
    "graphattn::fused_attention_backward", numba_backward, mutates_args=(), device_types="cpu"
)


@backward_op.register_fake
def _(
    grad_out, grad_lse, q, k, v, tp, ti, te, sp, si, se, edge_key, edge_value, rel_key,
    rel_value, edge_type, edge_mask, out, lse, dropout, seed, need_qkv, need_edge_key,
    need_edge_value, need_rel,
):  # fmt: skip
    def maybe(flag: bool, like: Tensor | None, empty: Tensor) -> Tensor:
        return torch.empty_like(like) if flag and like is not None else empty.new_empty(0)

    return (
        maybe(need_qkv, q, q),
        maybe(need_qkv, k, q),
        maybe(need_qkv, v, q),
        maybe(need_edge_key, edge_key, lse),
        maybe(need_edge_value, edge_value, lse),
        maybe(need_rel, rel_key, lse),
        maybe(need_rel, rel_value, lse),
    )


_NUM_INPUTS = 17  # inputs of graphattn::fused_attention
_EK, _EV, _RK, _RV = 9, 10, 11, 12  # positions of the edge terms among them


def _setup_context(ctx, inputs, output):
    q, k, v, tp, ti, te, sp, si, se, ek, ev, rk, rv, et, mask, dropout, seed = inputs
    out, lse = output
    saved = (q, k, v, tp, ti, te, sp, si, se, ek, ev, rk, rv, et, mask, seed, out, lse)
    ctx.save_for_backward(*saved)
    ctx.dropout = dropout


def _backward(ctx, grad_out, grad_lse):
    q, k, v, tp, ti, te, sp, si, se, ek, ev, rk, rv, et, mask, seed, out, lse = ctx.saved_tensors
    needs = ctx.needs_input_grad
    need_qkv = bool(needs[0] or needs[1] or needs[2])
    need_rel = bool(needs[_RK] or needs[_RV])
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    dq, dk, dv, dek, dev, drk, drv = torch.ops.graphattn.fused_attention_backward(
        grad_out, grad_lse, q, k, v, tp, ti, te, sp, si, se, ek, ev, rk, rv, et, mask, out, lse,
        ctx.dropout, seed, need_qkv, bool(needs[_EK]), bool(needs[_EV]), need_rel,
    )  # fmt: skip
    grads = [None] * _NUM_INPUTS
    if need_qkv:
        grads[0], grads[1], grads[2] = dq, dk, dv
    if needs[_EK]:
        grads[_EK] = dek
    if needs[_EV]:
        grads[_EV] = dev
    if need_rel:
        grads[_RK], grads[_RV] = drk, drv
    return tuple(grads)


torch.library.register_autograd(
    "graphattn::fused_attention", _backward, setup_context=_setup_context
)


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        "the 'fused' engine has no second derivative: double backward (create_graph=True, "
        "torch.func.hessian) needs engine='scatter'"
    )


def _no_context(ctx, inputs, output):
    pass


torch.library.register_autograd(
    "graphattn::fused_attention_backward", _no_double_backward, setup_context=_no_context
)


@cpu_only
def numba_weights(
    q: Tensor,
    k: Tensor,
    t_ptr: Tensor,
    t_idx: Tensor,
    t_eid: Tensor,
    edge_key: Tensor | None,
    rel_key: Tensor | None,
    edge_type: Tensor | None,
    edge_mask: Tensor | None,
    lse: Tensor,
) -> Tensor:
    """Attention weights ``[E, H]`` (before dropout) from the saved log-sum-exp."""
    w = lse.new_empty(t_idx.numel(), q.size(1))
    terms = (edge_key, None, rel_key, rel_key, edge_type, edge_mask)  # values are not read
    shape, csr, term_arrays, drop = _records(q, q, (t_ptr, t_idx, t_eid), *terms, 0.0, 0)
    args = (_flat(q), _flat(k), shape, csr, term_arrays, drop.zero, _np(lse), w.numpy())
    run_ranges(_kernels(shape, q, csr).weights, args, csr.ptr)
    return w


#: The custom op ``graphattn::fused_attention_weights``: :func:`numba_weights` on the CPU,
#: the Triton kernels on CUDA (registered by :mod:`.triton_ops`).
weights_op = torch.library.custom_op(
    "graphattn::fused_attention_weights", numba_weights, mutates_args=(), device_types="cpu"
)


@weights_op.register_fake
def _(q, k, t_ptr, t_idx, t_eid, edge_key, rel_key, edge_type, edge_mask, lse):
    return lse.new_empty(t_idx.shape[0], q.size(1))
