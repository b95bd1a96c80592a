"""The fused engine: sparse attention on the CPU without per-edge tensors (numba kernels).

The forward walks a CSR of incoming edges per target node with an online softmax
(FlashAttention's idea applied to graphs) and keeps only a per-(node, head) log-sum-exp. The
backward recomputes the scores: a pass by target gives ``dq`` and the gradients of the edge
terms, a pass by source (a CSR by source, a permutation of the same edges) gives ``dk`` and
``dv``; every output row is written by one thread, so there are no races and no atomics.
Nothing of size ``E x H x D`` is ever allocated (unless edge-feature terms, which are
themselves ``E x H x D``, need gradients).

The kernels are wrapped as the ``torch.library`` custom ops ``graphattn::fused_attention``
(forward, with autograd), ``graphattn::fused_attention_backward`` and
``graphattn::fused_attention_weights``, with fake implementations, so the layer runs under
``torch.compile(fullgraph=True)`` and ``torch.library.opcheck`` passes.

**CSR cache.** Converting an edge list to the two CSRs (a stable ``argsort`` by target and by
source, ``bincount`` + ``cumsum`` for the offsets, all in torch) costs about as much as a
forward pass, so it is cached per graph:

- for a :class:`~graphattn.attention.patterns.Pattern` the CSR is stored on the pattern itself
  (next to its cached ``edge_index``) and lives as long as the pattern;
- for a plain ``edge_index`` tensor a small LRU cache (:data:`CSR_CACHE`, 8 graphs) is keyed on
  the tensor's ``data_ptr``, shape, strides and ``num_nodes`` and validated by a weak reference
  to the tensor and its ``_version``: an entry is used only while that tensor is alive and has
  not been modified in place, and is dropped when the tensor is freed. Reusing the same
  ``edge_index`` tensor across layers and steps therefore builds the CSR once; a new tensor
  with the same content builds it again.

The CSR by source is built lazily, on the first backward.

Dropout is applied inside the kernels with a counter-based hash of ``(seed, edge, head)``
(the seed is drawn from torch's generator, so ``torch.manual_seed`` makes it reproducible),
which lets the backward recompute the mask instead of storing it. Its masks differ from
those of :func:`torch.nn.functional.dropout` in the ``scatter`` engine, with the same
distribution.

Attention weights (``need_weights``) are recomputed from the saved log-sum-exp; they are
returned **without** gradient (use the ``scatter`` engine to backpropagate through weights).
"""

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numba
import numpy as np
import torch
from torch import Tensor

from ..attention.patterns import Pattern
from . import _fused_kernels as K
from .base import EdgeTerms

__all__ = ["CSR", "CSR_CACHE", "CSRCache", "build_csr", "csr_for", "fused_attention"]

_FLOATS = (torch.float32, torch.float64)


# ---- CSR conversion and cache ------------------------------------------------------------
def _sorted_csr(index: Tensor, other: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Group edges by ``index``: ``(ptr [N+1], other[perm], perm)``, stable in edge order."""
    perm = torch.argsort(index, stable=True)  # (E,)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(index, minlength=num_nodes), 0, out=ptr[1:])
    return ptr, other[perm].contiguous(), perm


@dataclass
class CSR:
    """Incoming edges by target, and (lazily) outgoing edges by source, of one graph.

    Attributes:
        num_nodes: number of nodes ``N``.
        t_ptr, t_src, t_eid: int64 ``[N+1]``, ``[E]``, ``[E]``: the incoming edges of node
            ``i`` are positions ``t_ptr[i]:t_ptr[i+1]``, with sources ``t_src`` and original
            edge ids ``t_eid`` (stable: duplicates keep their order).
        source: ``(s_ptr, s_dst, s_eid)``, the same edges grouped by source; built on first use.
    """

    num_nodes: int
    t_ptr: Tensor
    t_src: Tensor
    t_eid: Tensor
    _src: Tensor | None = field(repr=False)
    _source: tuple[Tensor, Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def num_edges(self) -> int:
        return self.t_src.numel()

    @property
    def source(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._source is None:
            dst = self.t_src.new_empty(self.num_edges)
            dst[self.t_eid] = _targets_from_ptr(self.t_ptr, self.num_edges)
            assert self._src is not None
            self._source = _sorted_csr(self._src, dst, self.num_nodes)
            self._src = None  # only needed to build the source CSR
        return self._source


def _targets_from_ptr(ptr: Tensor, num_edges: int) -> Tensor:
    counts = ptr[1:] - ptr[:-1]  # (N,)
    return torch.repeat_interleave(torch.arange(counts.numel()), counts, output_size=num_edges)


def build_csr(edge_index: Tensor, num_nodes: int) -> CSR:
    """Convert an int ``[2, E]`` (source, target) edge list to a :class:`CSR` (vectorised).

    >>> csr = build_csr(torch.tensor([[0, 2, 1], [1, 1, 0]]), 3)
    >>> csr.t_ptr.tolist(), csr.t_src.tolist(), csr.t_eid.tolist()
    ([0, 1, 3, 3], [1, 0, 2], [2, 0, 1])
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape [2, E], got {list(edge_index.shape)}")
    ei = edge_index.detach().to("cpu", torch.long)
    if ei.numel() > 0 and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
        raise ValueError(
            f"`edge_index` values must be in [0, {num_nodes}), "
            f"got range [{int(ei.min())}, {int(ei.max())}]"
        )
    src, dst = ei[0].contiguous(), ei[1].contiguous()  # (E,), (E,)
    t_ptr, t_src, t_eid = _sorted_csr(dst, src, num_nodes)
    return CSR(num_nodes, t_ptr, t_src, t_eid, src)


class CSRCache:
    """A small LRU cache of :class:`CSR` for plain ``edge_index`` tensors (see module doc).

    Args:
        maxsize (int): number of graphs kept. (default: :obj:`8`)
    """

    def __init__(self, maxsize: int = 8):
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple, tuple[weakref.ref, int, CSR]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(edge_index: Tensor, num_nodes: int) -> tuple:
        return (
            edge_index.data_ptr(),
            tuple(edge_index.shape),
            edge_index.stride(),
            edge_index.dtype,
            num_nodes,
        )

    def lookup(self, edge_index: Tensor, num_nodes: int) -> CSR | None:
        key = self._key(edge_index, num_nodes)
        entry = self._entries.get(key)
        if entry is None:
            return None
        ref, version, csr = entry
        owner = ref()
        if owner is None or owner._version != version or edge_index._version != version:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return csr

    def insert(self, edge_index: Tensor, num_nodes: int, csr: CSR) -> None:
        key = self._key(edge_index, num_nodes)
        entries = self._entries

        def drop(ref: weakref.ref, key: tuple = key) -> None:
            entry = entries.get(key)
            if entry is not None and entry[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(edge_index, drop), edge_index._version, csr)
        entries.move_to_end(key)
        while len(entries) > self.maxsize:
            entries.popitem(last=False)

    def get(self, edge_index: Tensor, num_nodes: int) -> CSR:
        """The cached CSR of ``edge_index``, built (and cached) on a miss."""
        csr = self.lookup(edge_index, num_nodes)
        if csr is not None:
            self.hits += 1
            return csr
        self.misses += 1
        csr = build_csr(edge_index, num_nodes)
        self.insert(edge_index, num_nodes, csr)
        return csr

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


CSR_CACHE = CSRCache()
"""The process-wide CSR cache of the fused engine."""


def csr_for(graph: Tensor | Pattern, num_nodes: int | None = None) -> CSR:
    """The (cached) CSR of a graph: stored on a pattern, or in :data:`CSR_CACHE`.

    >>> from graphattn import FullGraph
    >>> g = FullGraph(3)
    >>> csr_for(g) is csr_for(g)
    True
    """
    if isinstance(graph, Pattern):
        edge_index = graph.edge_index("cpu")
        csr = graph.__dict__.get("_fused_csr")
        if csr is None:
            csr = build_csr(edge_index, graph.num_nodes)
            graph._fused_csr = csr  # type: ignore[attr-defined]
        # let the custom op (which only sees the tensor) find it too
        if CSR_CACHE.lookup(edge_index, graph.num_nodes) is not csr:
            CSR_CACHE.insert(edge_index, graph.num_nodes, csr)
        return csr
    if num_nodes is None:
        raise ValueError("`num_nodes` is needed for an edge_index tensor")
    return CSR_CACHE.get(graph, num_nodes)


# ---- numpy plumbing ----------------------------------------------------------------------
def _np(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _flat(t: Tensor) -> np.ndarray:
    """A contiguous ``[rows, H * D]`` NumPy view of an ``[rows, H, D]`` tensor."""
    a = _np(t)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))  # (rows, H * D)


def _terms_np(q: Tensor, ek, ev, rk, rv, et):
    """Flat NumPy views of the edge terms; absent ones become empty arrays of the same type."""
    empty = np.empty((0, 0), dtype=_np(q).dtype)
    return (
        empty if ek is None else _flat(ek),
        empty if ev is None else _flat(ev),
        empty if rk is None else _flat(rk),
        empty if rv is None else _flat(rv),
        np.empty(0, dtype=np.int64) if et is None else _np(et.long()),
    )


def _check_terms(q, v, num_edges, ek, ev, rk, rv, et) -> None:
    """Shapes and relation ids of the edge terms (the kernels do not bounds-check)."""
    _, heads, dim = q.shape
    dim_v = v.size(-1)
    for name, t, rows, width in (
        ("edge_key", ek, num_edges, dim),
        ("edge_value", ev, num_edges, dim_v),
        ("rel_key", rk, None, dim),
        ("rel_value", rv, None, dim_v),
    ):
        if t is None:
            continue
        want = [num_edges if rows is not None else t.size(0), heads, width]
        if t.dim() != 3 or list(t.shape) != want or t.dtype != q.dtype:
            raise ValueError(f"`{name}` must be {q.dtype} of shape {want}, got {list(t.shape)}")
    if (rk is None) != (rv is None) or (rk is None) != (et is None):
        raise ValueError("`rel_key`, `rel_value` and `edge_type` must be given together")
    if rk is not None:
        if rk.size(0) != rv.size(0) or et.shape != (num_edges,):
            raise ValueError(
                f"`edge_type` must have shape [{num_edges}] and `rel_key`/`rel_value` the "
                f"same number of relations, got {list(et.shape)}, {rk.size(0)}, {rv.size(0)}"
            )
        if num_edges > 0 and (int(et.min()) < 0 or int(et.max()) >= rk.size(0)):
            raise ValueError(f"`edge_type` values must be in [0, {rk.size(0)})")


def _scalars(q: Tensor, dropout: float, seed: Tensor):
    dt = _np(q).dtype.type
    keep_scale = dt(1.0 / (1.0 - dropout))
    return float(dropout), np.uint64(int(seed) & (2**64 - 1)), keep_scale, dt(0)


# ---- custom ops --------------------------------------------------------------------------
@torch.library.custom_op("graphattn::fused_attention", mutates_args=(), device_types="cpu")
def _fused_attention_op(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    edge_index: Tensor,
    edge_key: Tensor | None,
    edge_value: Tensor | None,
    rel_key: Tensor | None,
    rel_value: Tensor | None,
    edge_type: Tensor | None,
    dropout: float,
    seed: Tensor,
) -> tuple[Tensor, Tensor]:
    """Forward: ``(out [N, H, Dv], lse [N, H])`` (lse is ``-inf`` for isolated nodes)."""
    n, heads, _ = q.shape
    csr = CSR_CACHE.get(edge_index, n)
    _check_terms(q, v, csr.num_edges, edge_key, edge_value, rel_key, rel_value, edge_type)
    out = q.new_empty(n, heads, v.size(-1))
    lse = q.new_empty(n, heads)
    ek, ev, rk, rv, et = _terms_np(q, edge_key, edge_value, rel_key, rel_value, edge_type)
    p, s, keep, zero = _scalars(q, dropout, seed)
    K.kernels(heads, q.size(-1), v.size(-1)).forward(
        _flat(q),
        _flat(k),
        _flat(v),
        heads,
        q.size(-1),
        v.size(-1),
        csr.t_ptr.numpy(),
        csr.t_src.numpy(),
        csr.t_eid.numpy(),
        ek,
        ev,
        rk,
        rv,
        et,
        edge_key is not None,
        edge_value is not None,
        rel_key is not None,
        p,
        s,
        keep,
        zero,
        _flat(out),
        lse.numpy(),
    )
    return out, lse


@_fused_attention_op.register_fake
def _(q, k, v, edge_index, edge_key, edge_value, rel_key, rel_value, edge_type, dropout, seed):
    n, heads, _ = q.shape
    return q.new_empty(n, heads, v.size(-1)), q.new_empty(n, heads)


@torch.library.custom_op("graphattn::fused_attention_backward", mutates_args=(), device_types="cpu")
def _fused_attention_backward_op(
    grad_out: Tensor,
    grad_lse: Tensor | None,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    edge_index: Tensor,
    edge_key: Tensor | None,
    edge_value: Tensor | None,
    rel_key: Tensor | None,
    rel_value: Tensor | None,
    edge_type: Tensor | None,
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
    csr = CSR_CACHE.get(edge_index, n)
    # the source CSR (built once per graph) is fetched before the gradients are allocated, so
    # that its sorting temporaries do not add to the peak memory
    source = csr.source if need_qkv else None
    need_edge_key = need_edge_key and edge_key is not None
    need_edge_value = need_edge_value and edge_value is not None
    need_rel = need_rel and rel_key is not None
    ek, ev, rk, rv, et = _terms_np(q, edge_key, edge_value, rel_key, rel_value, edge_type)
    p, s, keep, zero = _scalars(q, dropout, seed)
    flags = (edge_key is not None, edge_value is not None, rel_key is not None)
    empty = q.new_empty(0)  # placeholder for gradients that are not computed

    gout = _flat(grad_out)
    glse = q.new_zeros(n, heads) if grad_lse is None else grad_lse
    ld = q.new_empty(n, 2 * heads)  # (lse, delta) per node, packed for the by-source pass
    dq = torch.empty_like(q)  # the kernels write every row
    num_edges = csr.num_edges
    dek = q.new_empty(num_edges, heads, dim) if need_edge_key else empty
    dev = q.new_empty(num_edges, heads, dim_v) if need_edge_value else empty
    threads = numba.get_num_threads()
    if need_rel:
        num_rel = rel_key.size(0)  # type: ignore[union-attr]
        drk_part = q.new_zeros(threads, num_rel, heads * dim)
        drv_part = q.new_zeros(threads, num_rel, heads * dim_v)
    else:
        drk_part = drv_part = q.new_zeros(0, 0, 0)
    kern = K.kernels(heads, dim, dim_v)
    kern.backward_target(
        _flat(q),
        _flat(k),
        _flat(v),
        heads,
        dim,
        dim_v,
        gout,
        _flat(out),
        _np(lse),
        _np(glse),
        csr.t_ptr.numpy(),
        csr.t_src.numpy(),
        csr.t_eid.numpy(),
        ek,
        ev,
        rk,
        rv,
        et,
        *flags,
        need_edge_key,
        need_edge_value,
        need_rel,
        p,
        s,
        keep,
        zero,
        ld.numpy(),
        _flat(dq),
        _flat(dek) if need_edge_key else ek,
        _flat(dev) if need_edge_value else ev,
        drk_part.numpy(),
        drv_part.numpy(),
    )
    if need_qkv:
        dk = torch.empty_like(k)
        dv = torch.empty_like(v)
        assert source is not None
        s_ptr, s_dst, s_eid = source
        kern.backward_source(
            _flat(q),
            _flat(k),
            _flat(v),
            heads,
            dim,
            dim_v,
            gout,
            ld.numpy(),
            s_ptr.numpy(),
            s_dst.numpy(),
            s_eid.numpy(),
            ek,
            ev,
            rk,
            rv,
            et,
            *flags,
            p,
            s,
            keep,
            zero,
            _flat(dk),
            _flat(dv),
        )
    else:
        dq, dk, dv = q.new_empty(0), q.new_empty(0), q.new_empty(0)
    drk = drk_part.sum(0).view_as(rel_key) if need_rel else q.new_empty(0)
    drv = drv_part.sum(0).view_as(rel_value) if need_rel else q.new_empty(0)
    # outputs must not alias each other: a gradient that is not needed is its own empty tensor
    return (
        dq,
        dk,
        dv,
        dek if need_edge_key else q.new_empty(0),
        (dev if need_edge_value else q.new_empty(0)),
        drk,
        drv,
    )


@_fused_attention_backward_op.register_fake
def _(
    grad_out,
    grad_lse,
    q,
    k,
    v,
    edge_index,
    edge_key,
    edge_value,
    rel_key,
    rel_value,
    edge_type,
    out,
    lse,
    dropout,
    seed,
    need_qkv,
    need_edge_key,
    need_edge_value,
    need_rel,
):
    def maybe(flag: bool, like: Tensor | None) -> Tensor:
        return torch.empty_like(like) if flag and like is not None else q.new_empty(0)

    return (
        maybe(need_qkv, q),
        maybe(need_qkv, k),
        maybe(need_qkv, v),
        maybe(need_edge_key, edge_key),
        maybe(need_edge_value, edge_value),
        maybe(need_rel, rel_key),
        maybe(need_rel, rel_value),
    )


def _setup_context(ctx, inputs, output):
    q, k, v, edge_index, ek, ev, rk, rv, et, dropout, seed = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, edge_index, ek, ev, rk, rv, et, seed, out, lse)
    ctx.dropout = dropout


def _backward(ctx, grad_out, grad_lse):
    q, k, v, edge_index, ek, ev, rk, rv, et, seed, out, lse = ctx.saved_tensors
    needs = ctx.needs_input_grad
    need_qkv = bool(needs[0] or needs[1] or needs[2])
    need_rel = bool(needs[6] or needs[7])
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    dq, dk, dv, dek, dev, drk, drv = torch.ops.graphattn.fused_attention_backward(
        grad_out,
        grad_lse,
        q,
        k,
        v,
        edge_index,
        ek,
        ev,
        rk,
        rv,
        et,
        out,
        lse,
        ctx.dropout,
        seed,
        need_qkv,
        bool(needs[4]),
        bool(needs[5]),
        need_rel,
    )
    return (
        dq if need_qkv else None,
        dk if need_qkv else None,
        dv if need_qkv else None,
        None,
        dek if needs[4] else None,
        dev if needs[5] else None,
        drk if need_rel else None,
        drv if need_rel else None,
        None,
        None,
        None,
    )


torch.library.register_autograd(
    "graphattn::fused_attention", _backward, setup_context=_setup_context
)


@torch.library.custom_op("graphattn::fused_attention_weights", mutates_args=(), device_types="cpu")
def _fused_attention_weights_op(
    q: Tensor,
    k: Tensor,
    edge_index: Tensor,
    edge_key: Tensor | None,
    rel_key: Tensor | None,
    edge_type: Tensor | None,
    lse: Tensor,
) -> Tensor:
    """Attention weights ``[E, H]`` (before dropout) from the saved log-sum-exp."""
    n, heads, _ = q.shape
    csr = CSR_CACHE.get(edge_index, n)
    w = q.new_empty(csr.num_edges, heads)
    ek, _, rk, _, et = _terms_np(q, edge_key, None, rel_key, None, edge_type)
    K.kernels(heads, q.size(-1), q.size(-1)).weights(
        _flat(q),
        _flat(k),
        heads,
        q.size(-1),
        csr.t_ptr.numpy(),
        csr.t_src.numpy(),
        csr.t_eid.numpy(),
        ek,
        rk,
        et,
        edge_key is not None,
        rel_key is not None,
        _np(q).dtype.type(0),
        _np(lse),
        w.numpy(),
    )
    return w


@_fused_attention_weights_op.register_fake
def _(q, k, edge_index, edge_key, rel_key, edge_type, lse):
    return q.new_empty(edge_index.size(1), q.size(1))


# ---- the engine --------------------------------------------------------------------------
def _detach(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach()


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    graph: Tensor | Pattern,
    *,
    terms: EdgeTerms | None = None,
    dropout: float = 0.0,
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Sparse attention over incoming edges with the fused CPU kernels (see :mod:`.base`).

    Args:
        q, k, v: ``[N, H, D]`` float32 or float64 CPU tensors (``q`` pre-scaled).
        graph: int ``[2, E]`` edge index or a :class:`~graphattn.attention.patterns.Pattern`.
        terms: edge features and relation embeddings, or :obj:`None`.
        dropout: attention dropout probability (applied in the kernel).
        need_weights: also return the ``[E, H]`` weights (before dropout, no gradient).

    >>> import torch
    >>> q, k, v = torch.randn(3, 4, 3, 5).unbind(0)
    >>> edge_index = torch.tensor([[0, 1, 2, 2], [1, 1, 0, 2]])
    >>> out, w = fused_attention(q, k, v, edge_index, need_weights=True)
    >>> out.shape, w.shape
    (torch.Size([4, 3, 5]), torch.Size([4, 3]))
    >>> torch.allclose(w[:2].sum(0), torch.ones(3))  # node 1's two incoming edges
    True
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOATS:
            raise TypeError(f"`{name}` must be float32 or float64 (fused engine), got {t.dtype}")
        if t.device.type != "cpu":
            raise ValueError(f"the fused engine runs on the CPU; `{name}` is on {t.device}")
        if t.dim() != 3:
            raise ValueError(f"`{name}` must have shape [N, H, D], got {list(t.shape)}")
    if k.shape != q.shape or v.shape[:2] != q.shape[:2] or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(
            f"`q`, `k`, `v` must share N, H and dtype (and q, k also D), got {list(q.shape)} "
            f"{q.dtype}, {list(k.shape)} {k.dtype}, {list(v.shape)} {v.dtype}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
    if isinstance(graph, Pattern):
        edge_index = graph.edge_index(q.device)
        if not torch.compiler.is_compiling():
            csr_for(graph)  # cache the CSR on the pattern
    elif isinstance(graph, Tensor):
        edge_index = graph
    else:
        raise TypeError(
            f"`graph` must be an edge_index tensor or a Pattern, got {type(graph).__name__}"
        )
    t = terms if terms is not None else EdgeTerms()
    edge_type = None if t.rel_key is None else t.edge_type
    if dropout > 0.0:
        seed = torch.randint(0, 2**62, (), dtype=torch.long)
    else:
        seed = torch.zeros((), dtype=torch.long)
    out, lse = torch.ops.graphattn.fused_attention(
        q,
        k,
        v,
        edge_index,
        t.key,
        t.value,
        t.rel_key,
        t.rel_value,
        edge_type,
        float(dropout),
        seed,
    )
    weights = None
    if need_weights:
        weights = torch.ops.graphattn.fused_attention_weights(
            q.detach(),
            k.detach(),
            edge_index,
            _detach(t.key),
            _detach(t.rel_key),
            edge_type,
            lse.detach(),
        )
    return out, weights
