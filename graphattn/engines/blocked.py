"""The blocked engine: chunked, sliding-window and grid attention as batched dense blocks.

Local attention is computed the way long-document transformers compute it: the nodes of each
graph are cut into query blocks of ``b`` consecutive nodes, every block gathers the keys of the
neighbouring span it can reach, and batched calls of
:func:`torch.nn.functional.scaled_dot_product_attention` (one for all blocks, or one per group
of blocks on a single CPU graph, below) run the blocks with a mask that keeps exactly the
pattern's edges. No edge list is built.

- :class:`~graphattn.patterns.WindowGraph` (``radius`` r, causal or not): a query
  block ``[s, s + b)`` attends to the key span ``[s - r, s + b + r)`` (``[s - r, s + b)`` when
  causal) under a banded mask. Default ``b = 64``; the work done is ``(b + 2r) / (2r + 1)``
  times the useful work.
- :class:`~graphattn.patterns.ChunkedGraph`: one block per chunk, keys of the same
  chunk; a mask only where a graph's last chunk is short.
- :class:`~graphattn.patterns.GridGraph`: the same idea on *rows of patches*: a block
  is ``g`` whole grid rows (about 64 nodes), its key span the ``g + 2r`` rows around them, and
  the mask keeps the pairs within the neighbourhood (Chebyshev or Manhattan radius).

Lengths that are not a multiple of the block size and batches of graphs with different sizes
(zero included) are padded per block; padded keys are masked, padded queries are dropped.

On one graph (a single sequence or grid) the key blocks are overlapping strided views of the
keys, not copies. On CPU in float32/float64 (eager, no dropout) the flash kernel then runs
group by group of blocks (:class:`_GroupedWindows`), so that the key-window gradients, which
overlap ``s / b`` times, never exist for all blocks at once: each group's are added straight
into the key gradients.
Attention weights (``need_weights``) are computed explicitly per block and returned in the
order of the pattern's materialized ``edge_index``. Full attention (``FullGraph``) is the
``dense`` engine's job; this engine declines it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .._runtime import building_cache, static_mode, transforms_active
from ..patterns import ChunkedGraph, GridGraph, Pattern, WindowGraph
from ._finite import first_order, guarded_attention
from .base import (
    AttentionCall,
    Engine,
    block_attention,
    cpu_only,
    empty_attention,
    pattern_supports,
)

__all__ = ["BLOCKED_PATTERNS", "DEFAULT_BLOCK_SIZE", "ENGINE", "blocked_attention", "supports"]

#: Pattern types the blocked engine computes.
BLOCKED_PATTERNS = (ChunkedGraph, WindowGraph, GridGraph)

#: Query nodes per block for windows and grids (grids round it to whole rows). A block of a
#: window of radius ``r`` reads ``block + 2 r`` keys: larger blocks spend less on that halo,
#: smaller ones less on padding and masked pairs. A default, not a measured optimum: no
#: timing of other sizes is committed (:func:`blocked_attention` takes another as
#: ``block_size``).
DEFAULT_BLOCK_SIZE = 64


@dataclass
class _Plan:
    """Where every block reads its queries and keys, and which pairs it keeps.

    Row-based layout: each graph is ``rows`` rows of ``width`` nodes (sequences: width 1); a
    block is ``rows_per_block`` rows of queries and reads the key rows
    ``[y0 - pad_before, y0 + rows_per_block + pad_after)``.
    """

    num_blocks: int
    block: int  # query nodes per block
    span: int  # key nodes per block
    q_index: Tensor | None  # (num_blocks * block,) node of each query slot, N = padding;
    #                         None when the slots are exactly the nodes in order
    k_index: Tensor  # (num_blocks * span,) node of each key slot, N = padding
    node_slot: Tensor | None  # (N,) query slot of each node; None when the identity
    mask: Tensor | None  # (num_blocks, 1, block | 1, span) bool: keep this (query, key) pair
    k_base: Tensor  # (num_blocks,) node index of key slot 0 (may be negative)
    single: bool  # one non-empty graph: blocks are strided views of padded q, k, v
    pad_front: int  # key slots before node 0 in the first block (``single`` only)
    additive: dict = field(default_factory=dict)  # dtype -> interior blocks' mask, 0 / -inf


def _row_plan(
    graph: Pattern,
    width: int,
    rows_per_block: int,
    pad_before: int,
    pad_after: int,
    rel: Tensor | None,
    device: torch.device,
) -> _Plan:
    """Build the block plan of a batch whose graphs are ``size / width`` rows of ``width``."""
    num_nodes = graph.num_nodes
    sizes, starts = graph.sizes, graph.ptr[:-1]
    keep = sizes > 0
    sizes, starts = sizes[keep], starts[keep]
    rows = sizes // width  # (G,)
    blocks_per_graph = (rows + rows_per_block - 1) // rows_per_block  # (G,)
    num_blocks = int(blocks_per_graph.sum())
    graph_of_block = torch.repeat_interleave(
        torch.arange(rows.numel()), blocks_per_graph
    )  # (num_blocks,)
    first_block = torch.cumsum(blocks_per_graph, 0) - blocks_per_graph  # (G,)
    row0 = (torch.arange(num_blocks) - first_block[graph_of_block]) * rows_per_block
    offset = starts[graph_of_block]  # (num_blocks,) first node of the block's graph
    nrows = rows[graph_of_block]  # (num_blocks,)

    block = rows_per_block * width
    key_rows = rows_per_block + pad_before + pad_after
    span = key_rows * width
    q_base = offset + row0 * width  # (num_blocks,) node of query slot 0 (may be virtual)
    k_base = offset + (row0 - pad_before) * width

    # Query slots: row0 + a // width, valid if that row exists.
    q_row = row0[:, None] + torch.arange(rows_per_block).repeat_interleave(width)  # (B, block)
    q_valid = q_row < nrows[:, None]
    # Key slots: row0 - pad_before + c // width, valid inside the graph.
    k_row = (row0 - pad_before)[:, None] + torch.arange(key_rows).repeat_interleave(width)
    k_valid = (k_row >= 0) & (k_row < nrows[:, None])  # (B, span)
    k_index = torch.where(k_valid, k_base[:, None] + torch.arange(span), num_nodes)

    padded_queries = not bool(q_valid.all())
    if padded_queries:
        q_index = torch.where(q_valid, q_base[:, None] + torch.arange(block), num_nodes)
        node_slot = torch.nonzero(q_valid.flatten()).flatten()  # slots in node order
        q_index = q_index.flatten()
    else:
        q_index = node_slot = None

    if rel is None:
        mask = None if bool(k_valid.all()) else k_valid[:, None, None, :]  # (B, 1, 1, span)
    else:
        mask = rel[None] & k_valid[:, None, :]  # (B, block, span)
        if padded_queries:  # padded query rows see every key: finite, and dropped later
            mask = mask | ~q_valid[:, :, None]
        mask = mask[:, None]  # (B, 1, block, span)

    def dev(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(device)

    return _Plan(
        num_blocks,
        block,
        span,
        dev(q_index),
        k_index.flatten().to(device),
        dev(node_slot),
        dev(mask),
        k_base.to(device),
        rows.numel() == 1,
        pad_before * width,
    )


@torch.compiler.assume_constant_result
def _plan(graph: Pattern, block_size: int, device: torch.device) -> _Plan:
    """The block plan of ``graph`` (a pure function of the pattern: cached on it, and a
    constant under ``torch.compile``)."""
    key = ("blocked_plan", block_size, device)
    plan = graph.cache.get(key)
    if plan is None:
        with building_cache():
            plan = graph.cache[key] = _make_plan(graph, block_size, device)
    return plan


def _make_plan(graph: Pattern, block_size: int, device: torch.device) -> _Plan:
    longest = max(graph.size_list(), default=0)
    if isinstance(graph, WindowGraph):
        # A reach beyond the longest graph adds no edge, only padding: clamp it.
        left, right = min(graph.left, longest - 1), min(graph.right, longest - 1)
        block_size = min(block_size, longest)
        a = torch.arange(block_size)[:, None]
        c = torch.arange(block_size + left + right)[None, :]
        rel = (c - a >= 0) & (c - a <= left + right)  # key c is node q_base + c - left
        return _row_plan(graph, 1, block_size, left, right, rel, device)
    if isinstance(graph, ChunkedGraph):
        return _row_plan(graph, 1, min(graph.chunk_size, longest), 0, 0, None, device)
    if isinstance(graph, GridGraph):
        width, r = graph.width, graph.radius
        pad = min(r, graph.height - 1)  # key rows above and below a block
        g = max(1, min(graph.height, round(block_size / width)))
        a = torch.arange(g * width)
        c = torch.arange((g + 2 * pad) * width)
        dy = (c // width)[None, :] - pad - (a // width)[:, None]  # (block, span)
        dx = (c % width)[None, :] - (a % width)[:, None]
        if graph.metric == "chebyshev":
            rel = (dy.abs() <= r) & (dx.abs() <= r)
        else:
            rel = dy.abs() + dx.abs() <= r
        return _row_plan(graph, width, g, pad, pad, rel, device)
    raise ValueError(
        "the blocked engine needs a ChunkedGraph, WindowGraph or GridGraph pattern, "
        f"got {type(graph).__name__}"
    )


def blocked_attention(
    call: AttentionCall, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> tuple[Tensor, Tensor | None]:
    """Local attention on batched dense blocks (see :mod:`.base` for the contract).

    Args:
        call: the :class:`~graphattn.engines.base.AttentionCall`: ``[N, H, D]`` ``q``, ``k``
            and ``v`` (``q`` pre-scaled, ``v`` may have its own last size); a
            :class:`~graphattn.patterns.ChunkedGraph`,
            :class:`~graphattn.patterns.WindowGraph` or
            :class:`~graphattn.patterns.GridGraph` over the ``N`` nodes; no edge terms (edge
            features need an edge list: use ``scatter``); with ``need_weights`` the ``[E, H]``
            weights come in the order of ``graph.edge_index()``.
        block_size: query nodes per block for windows and grids. (default: :obj:`64`)

    >>> from graphattn.patterns import WindowGraph
    >>> from graphattn.engines import AttentionCall, scatter_attention
    >>> q, k, v = torch.randn(3, 10, 2, 4).unbind(0)
    >>> call = AttentionCall(q, k, v, WindowGraph(10, radius=2))
    >>> out, _ = blocked_attention(call, block_size=4)
    >>> torch.allclose(out, scatter_attention(call)[0], atol=1e-6)
    True
    """
    q, k, v, graph, dropout = call.q, call.k, call.v, call.graph, call.dropout
    if not isinstance(graph, BLOCKED_PATTERNS):
        raise ValueError(
            "the blocked engine needs a ChunkedGraph, WindowGraph or GridGraph pattern, "
            f"got {type(graph).__name__}"
        )
    if call.terms is not None and not call.terms.empty:
        raise ValueError("the blocked engine does not take edge features or relation types")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"`block_size` must be a positive int, got {block_size!r}")
    num_nodes = q.size(0)
    if graph.num_nodes != num_nodes:
        raise ValueError(f"`graph` covers {graph.num_nodes} nodes but `q` has {num_nodes}")
    if num_nodes == 0:
        return empty_attention(q, k, v, call.need_weights)

    plan = _plan(graph, block_size, q.device)

    def attend(q: Tensor, k: Tensor, v: Tensor, need_probs: bool, weights_only: bool = False):
        if not need_probs:  # SDPA's kernels have no second derivative: say so clearly
            q, k, v = first_order("blocked", q, k, v)
            if dropout == 0.0 and _grouped_applies(plan, q, v):
                return _GroupedWindows.apply(q, k, v, plan), None
        qb, kb, vb = _query_blocks(plan, q), _key_blocks(plan, k), _key_blocks(plan, v)
        ob, probs = block_attention(
            qb, kb, vb, mask=plan.mask, dropout=0.0 if weights_only else dropout,
            need_probs=need_probs,
        )  # fmt: skip  # (B, H, b, Dv), (B, H, b, s)
        weights = None if probs is None else _gather_edge_weights(probs, graph, plan)
        return _from_query_blocks(plan, ob, num_nodes), weights  # (N, H, Dv), (E, H)

    if plan.mask is None or plan.mask.size(2) == 1:
        # every query of a block attends to every real key of it (chunks): a non-finite value
        # reaches exactly the nodes that attend to it without further care
        return attend(q, k, v, call.need_weights)
    neighbours = _BlockNeighbours(plan, graph, num_nodes, q.dtype)
    return guarded_attention(q, k, v, attend, neighbours, need_weights=call.need_weights)


def _query_blocks(plan: _Plan, t: Tensor) -> Tensor:
    """``[N, H, C]`` node rows -> ``[B, H, b, C]`` query blocks (padded slots are 0)."""
    num_nodes, heads, c = t.shape
    nb, b = plan.num_blocks, plan.block
    if plan.single:
        extra = nb * b - num_nodes  # padded query slots at the end
        tb = (F.pad(t, (0, 0, 0, 0, 0, extra)) if extra else t).view(nb, b, heads, c)
    elif plan.q_index is None:
        tb = t.view(nb, b, heads, c)
    else:
        tb = _with_pad_row(t).index_select(0, plan.q_index).view(nb, b, heads, c)
    return tb.transpose(1, 2)


def _key_blocks(plan: _Plan, t: Tensor) -> Tensor:
    """``[N, H, C]`` node rows -> ``[B, H, s, C]`` key blocks (padded slots are 0)."""
    num_nodes, heads, c = t.shape
    nb, b, s = plan.num_blocks, plan.block, plan.span
    if plan.single:  # overlapping strided views of the padded rows: no gather
        back = nb * b - num_nodes + s - b - plan.pad_front
        if t.requires_grad and not transforms_active():
            tb = _KeyWindows.apply(t, plan.pad_front, back, s, b)
        else:
            tb = _windows(F.pad(t, (0, 0, 0, 0, plan.pad_front, back)), s, b)
    else:
        tb = _with_pad_row(t).index_select(0, plan.k_index).view(nb, s, heads, c)
    return tb.transpose(1, 2)


def _windows(padded: Tensor, s: int, b: int) -> Tensor:
    """``[(B - 1) b + s, H, C]`` rows -> ``[B, s, H, C]`` windows of ``s`` rows every ``b`` (a
    view: the windows overlap in memory)."""
    return padded.unfold(0, s, b).permute(0, 3, 1, 2)


def _pieces(s: int, b: int) -> int:
    """Block-sized pieces of a window of ``s`` rows (the last one may be partial)."""
    return -(-s // b)


def _add_windows(
    total: Tensor, grad: Tensor, first: int, s: int, b: int, assign_last: bool = False
) -> None:
    """Add the gradients ``grad [G, s, H, C]`` of the windows of blocks ``first ..`` into
    ``total [chunks, b, H, C]``, the padded rows in chunks of ``b``: window row ``j * b + i``
    of block ``n`` is padded row ``(n + j) * b + i``, so each piece is one shifted slice.

    ``assign_last`` (only when ``b`` divides ``s``, so the last piece is a whole block): that
    piece is copied, not added, and first. Folded group by group in increasing block order,
    chunk ``c`` first hears from block ``c - last``'s last piece, so only the chunks before
    ``last = s // b - 1`` need zeroing beforehand."""
    count = grad.size(0)
    pieces = _pieces(s, b)
    if assign_last:
        j = pieces - 1
        total[first + j : first + j + count].copy_(grad[:, j * b : (j + 1) * b])
        pieces = j
    for j in range(pieces):
        width = min(b, s - j * b)
        total[first + j : first + j + count, :width] += grad[:, j * b : j * b + width]


class _KeyWindows(torch.autograd.Function):
    """:func:`_windows` of ``t`` padded by ``front`` and ``back`` zero rows, whose backward
    adds the windows' gradients back in ``ceil(s / b)`` shifted slices (``unfold``'s own
    backward, a generic scatter, costs several times as much here).

    The backward is made of differentiable operations, so the explicit-softmax path
    (``need_weights``) stays twice differentiable through it.
    """

    @staticmethod
    def forward(t, front, back, s, b):
        return _windows(F.pad(t, (0, 0, 0, 0, front, back)), s, b)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.shape, ctx.front, ctx.s, ctx.b = inputs[0].shape, inputs[1], inputs[3], inputs[4]

    @staticmethod
    def backward(ctx, grad):  # grad: (B, s, H, C)
        num_nodes, heads, c = ctx.shape
        s, b, nb = ctx.s, ctx.b, grad.size(0)
        total = grad.new_zeros(nb + _pieces(s, b) - 1, b, heads, c)
        _add_windows(total, grad, 0, s, b)
        rows = total.view(-1, heads, c)
        return rows[ctx.front : ctx.front + num_nodes], None, None, None, None


# ---- single graphs on CPU: the flash kernel group by group ------------------------------
_FLASH = "_scaled_dot_product_flash_attention_for_cpu"

#: Key-window bytes per group of blocks in :class:`_GroupedWindows`: small enough that a
#: group's temporaries come back from the allocator warm, large enough for many parallel
#: (block, head) items per kernel call.
GROUP_KEY_BYTES = 4 << 20


def _grouped_applies(plan: _Plan, q: Tensor, v: Tensor) -> bool:
    """Whether the grouped flash calls serve this call: one graph, CPU, float32/float64,
    eager, a value head size equal to the query's (the flash kernel needs it), and SDPA's
    flash backend not switched off (``torch.nn.attention.sdpa_kernel``)."""
    return (
        plan.single
        and q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.float64)
        and v.size(-1) == q.size(-1)
        and not static_mode()
        and torch.backends.cuda.flash_sdp_enabled()  # the global flag, CPU included
        and hasattr(torch.ops.aten, _FLASH)
    )


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean mask as 0 / -inf in ``dtype`` (the flash kernel's own mask type)."""
    return torch.zeros((), dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))


def _group_mask(plan: _Plan, g0: int, g1: int, interior: bool, dtype) -> Tensor | None:
    """The additive mask of blocks ``[g0, g1)``. Blocks whose keys and queries all lie
    inside the graph share one ``[1, 1, b | 1, s]`` mask (the band), converted once and
    cached on the plan; the few groups at the ends convert their own slice per call."""
    if plan.mask is None:
        return None
    if not interior:
        return _additive(plan.mask[g0:g1], dtype)
    band = plan.additive.get(dtype)
    if band is None:
        band = plan.additive[dtype] = _additive(plan.mask[g0 : g0 + 1], dtype)
    return band


def _segment(t: Tensor, start: int, length: int) -> Tensor:
    """Rows ``[start, start + length)`` of ``t``, zero rows where they fall outside it (a
    view when they all fall inside)."""
    n = t.size(0)
    if start >= 0 and start + length <= n:
        return t[start : start + length]
    lo = min(max(start, 0), n)
    hi = min(max(start + length, lo), n)
    front = min(max(lo - start, 0), length)
    return F.pad(t[lo:hi], (0, 0, 0, 0, front, length - front - (hi - lo)))


@cpu_only
class _GroupedWindows(torch.autograd.Function):
    """Blocked attention of one graph as flash-kernel calls on groups of blocks.

    One call over all blocks allocates every block's key-window gradients at once (the
    windows overlap, so ``s / b`` times the keys) and pads the whole key sequence; here each
    group of blocks reads its query rows and key windows as views of ``q``, ``k``, ``v``
    (only groups at the ends copy, to pad), and the backward adds each group's key-window
    gradients straight into the key gradients, so the large temporaries are one group's.
    The logsumexp of every group is kept for the backward, as the flash kernel's own
    backward needs it.
    """

    @staticmethod
    def forward(ctx, q, k, v, plan):
        fwd = getattr(torch.ops.aten, _FLASH)
        heads, dv = v.shape[1:]
        out = q.new_empty(q.size(0), heads, dv)
        lse = []
        for g0, _, rows, kw, vw, m in _groups(plan, q, k, v):
            o, l = fwd(rows, kw, vw, attn_mask=m, scale=1.0)  # (G, H, b, Dv), (G, H, b)
            _put_blocks(out, plan, g0, o)
            lse.append(l)
        ctx.plan = plan
        ctx.save_for_backward(q, k, v, out, *lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        # Not once_differentiable: under create_graph the kernel's backward records a node
        # without a derivative, so the inputs' first_order markers still see a gradient
        # that requires grad and raise their clear error, even when ``grad`` does not.
        bwd = getattr(torch.ops.aten, _FLASH + "_backward")
        plan = ctx.plan
        q, k, v, out, *lse = ctx.saved_tensors
        b, s, front, n = plan.block, plan.span, plan.pad_front, q.size(0)
        chunks = plan.num_blocks + _pieces(s, b) - 1
        # dq, dk, dv side by side in one buffer of padded rows, as the columns of the layer's
        # stacked projection: its backward then takes them without a concatenation
        buf = q.new_empty(chunks * b, 3, *q.shape[1:])
        assign = s % b == 0  # copy each window's last piece (see _add_windows)
        buf[: (s - b if assign else chunks * b), 1:].zero_()  # the chunks no copy reaches
        dq, dk, dv = (buf[front : front + n, i] for i in range(3))
        dk_chunks, dv_chunks = (buf[:, i].view(chunks, b, *q.shape[1:]) for i in (1, 2))
        grad = grad.contiguous()
        for i, (g0, g1, rows, kw, vw, m) in enumerate(_groups(plan, q, k, v)):
            go, o = (_query_rows(plan, t, g0, g1) for t in (grad, out))
            gq, gk, gv = bwd(go, rows, kw, vw, o, lse[i], 0.0, False, attn_mask=m, scale=1.0)
            _put_blocks(dq, plan, g0, gq)
            # (G, s, H, D) windows; groups come in increasing block order, as assigning needs
            _add_windows(dk_chunks, gk.transpose(1, 2), g0, s, b, assign)
            _add_windows(dv_chunks, gv.transpose(1, 2), g0, s, b, assign)
        return dq, dk, dv, None


def _put_blocks(rows: Tensor, plan: _Plan, g0: int, blocks: Tensor) -> None:
    """Write query blocks ``[G, H, b, C]`` from block ``g0`` on into the node rows ``rows [N,
    H, C]`` (padded query slots past the last node dropped), one strided copy."""
    b, count = plan.block, blocks.size(0)
    lo = g0 * b
    whole = min(count, (rows.size(0) - lo) // b)  # blocks with no padded slot
    blocks = blocks.transpose(1, 2)  # (G, b, H, C)
    if whole:
        rows[lo : lo + whole * b].view(whole, b, *rows.shape[1:]).copy_(blocks[:whole])
    if whole < count:  # the last block, cut short
        rest = rows.size(0) - lo - whole * b
        rows[lo + whole * b :].copy_(blocks[whole, :rest])


def _query_rows(plan: _Plan, t: Tensor, g0: int, g1: int) -> Tensor:
    """Blocks ``[g0, g1)`` of the node rows ``t [N, H, C]`` as ``[G, H, b, C]``."""
    b = plan.block
    return _segment(t, g0 * b, (g1 - g0) * b).view(g1 - g0, b, *t.shape[1:]).transpose(1, 2)


def _groups(plan: _Plan, q: Tensor, k: Tensor, v: Tensor):
    """``(g0, g1, query blocks, key windows, value windows, mask)`` of each group of blocks."""
    b, s, n = plan.block, plan.span, q.size(0)
    per_group = max(1, GROUP_KEY_BYTES // (s * k[0].numel() * k.element_size()))
    for g0 in range(0, plan.num_blocks, per_group):
        g1 = min(g0 + per_group, plan.num_blocks)
        start, length = g0 * b - plan.pad_front, (g1 - g0 - 1) * b + s
        kw = _windows(_segment(k, start, length), s, b).transpose(1, 2)  # (G, H, s, D)
        vw = _windows(_segment(v, start, length), s, b).transpose(1, 2)
        interior = start >= 0 and start + length <= n and g1 * b <= n
        mask = _group_mask(plan, g0, g1, interior, q.dtype)
        yield g0, g1, _query_rows(plan, q, g0, g1), kw, vw, mask


def _from_query_blocks(plan: _Plan, tb: Tensor, num_nodes: int) -> Tensor:
    """``[B, H, b, C]`` query blocks -> ``[N, H, C]`` node rows (padded slots dropped)."""
    nb, heads, b, c = tb.shape
    flat = tb.transpose(1, 2).reshape(nb * b, heads, c)  # (B * b, H, C): query slots
    if plan.single or plan.node_slot is None:
        return flat[:num_nodes]
    return flat.index_select(0, plan.node_slot)


def _with_pad_row(t: Tensor) -> Tensor:
    return torch.cat([t, t.new_zeros(1, *t.shape[1:])])  # (N + 1, H, C): row N = 0


class _BlockNeighbours:
    """Who attends to whom in a blocked call with a per-pair mask (for
    :func:`._finite.guarded_attention`), computed on the blocks as small matrix products of
    0/1 flags."""

    def __init__(self, plan: _Plan, graph: Pattern, num_nodes: int, dtype: torch.dtype):
        self.plan, self.graph, self.num_nodes, self.dtype = plan, graph, num_nodes, dtype

    def reach(self, bad: Tensor) -> Tensor:
        keys = _key_blocks(self.plan, bad.unsqueeze(-1).to(self.dtype))  # (B, H, s, 1)
        count = self.plan.mask.to(self.dtype) @ keys  # (B, 1, b, s) @ -> (B, H, b, 1)
        return _from_query_blocks(self.plan, count, self.num_nodes).squeeze(-1) > 0

    def sources(self, rows: Tensor) -> Tensor:
        plan = self.plan
        queries = _query_blocks(plan, rows.unsqueeze(-1).to(self.dtype))  # (B, H, b, 1)
        count = plan.mask.transpose(-1, -2).to(self.dtype) @ queries  # (B, H, s, 1)
        heads = rows.size(1)
        flat = count.squeeze(-1).transpose(1, 2).reshape(-1, heads)  # (B * s, H): key slots
        total = flat.new_zeros(self.num_nodes + 1, heads).index_add(0, plan.k_index, flat)
        return total[: self.num_nodes] > 0  # (N, H); row N gathered the padded slots

    def edge_targets(self) -> Tensor:
        return self.graph.edge_index(self.plan.k_index.device)[1]


def _gather_edge_weights(probs: Tensor, graph: Pattern, plan: _Plan) -> Tensor:
    """Pick the ``[E, H]`` weights of the materialized edges out of ``[B, H, b, s]`` blocks."""
    src, dst = graph.edge_index(probs.device)
    slot = dst if plan.node_slot is None else plan.node_slot[dst]  # query slot of each target
    blk = slot // plan.block
    return probs[blk, :, slot - blk * plan.block, src - plan.k_base[blk]]  # (E, H)


supports = pattern_supports(BLOCKED_PATTERNS, "a ChunkedGraph, WindowGraph or GridGraph pattern")
#: The engine as the registry holds it: its function, what it supports, its rank for "auto".
ENGINE = Engine("blocked", blocked_attention, supports, priority=20, strided_rows=True)
