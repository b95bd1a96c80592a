"""The dense engine: full attention within each graph through PyTorch's SDPA.

For a :class:`~graphattn.patterns.FullGraph` the nodes of each graph are packed into
padded ``[B, H, L, D]`` blocks and attention runs in
:func:`torch.nn.functional.scaled_dot_product_attention` with a key-padding mask. No ``N x N``
edge list is built. Batches whose graphs all have the same size need no mask at all, which
lets SDPA pick its fused kernels.

A :class:`~graphattn.patterns.CausalFullGraph` runs the same way with SDPA's
``is_causal``: padding sits after the real nodes of each block, so the causal mask alone already
hides it from every real query (padded query rows stay finite and are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._runtime import building_cache
from ..patterns import CausalFullGraph, FullGraph, Pattern
from ._finite import first_order, guarded_attention
from .base import AttentionCall, Engine, block_attention, empty_attention, pattern_supports

__all__ = ["ENGINE", "dense_attention", "supports"]


@dataclass(frozen=True)
class _Plan:
    """Where the nodes of a batch sit in padded ``[B, L]`` blocks (graphs of size 0 skipped)."""

    num_blocks: int
    length: int  # L, the longest graph
    slots: Tensor | None  # (N,) block slot b * L + p of every node; None when no padding
    key_mask: Tensor | None  # (B, 1, 1, L) true for real keys; None when no padding


@torch.compiler.assume_constant_result
def _plan(graph: Pattern, device: torch.device) -> _Plan:
    """The block layout of ``graph`` (a pure function of the pattern: cached on it, and a
    constant under ``torch.compile``)."""
    key = ("dense_plan", device)
    plan = graph.cache.get(key)
    if plan is not None:
        return plan
    with building_cache():
        plan = graph.cache[key] = _make_plan(graph, device)
    return plan


def _make_plan(graph: Pattern, device: torch.device) -> _Plan:
    sizes = [n for n in graph.size_list() if n > 0]
    num_blocks, length = len(sizes), max(sizes, default=0)
    if all(n == length for n in sizes):  # no padding: plain views
        plan = _Plan(num_blocks, length, None, None)
    else:
        lengths = torch.tensor(sizes, device=device)
        starts = torch.cumsum(lengths, 0) - lengths
        block = torch.repeat_interleave(
            torch.arange(num_blocks, device=device), lengths, output_size=graph.num_nodes
        )  # (N,)
        position = torch.arange(graph.num_nodes, device=device) - starts[block]
        key_mask = torch.arange(length, device=device) < lengths.unsqueeze(1)  # (B, L)
        plan = _Plan(num_blocks, length, block * length + position, key_mask[:, None, None, :])
    return plan


def dense_attention(call: AttentionCall) -> tuple[Tensor, Tensor | None]:
    """Full attention per graph on padded blocks (see :mod:`.base` for the contract)."""
    q, k, v, graph, need_weights = call.q, call.k, call.v, call.graph, call.need_weights
    if not isinstance(graph, (FullGraph, CausalFullGraph)):
        raise ValueError(
            f"the dense engine needs a FullGraph or CausalFullGraph, got {type(graph).__name__}"
        )
    causal = isinstance(graph, CausalFullGraph)
    if call.terms is not None and not call.terms.empty:
        raise ValueError("the dense engine does not take edge features or relation types")
    plan = _plan(graph, q.device)
    if plan.num_blocks == 0:
        return empty_attention(q, k, v, need_weights)

    def attend(q: Tensor, k: Tensor, v: Tensor, need_probs: bool, weights_only: bool = False):
        if not need_probs:  # SDPA's kernels have no second derivative: say so clearly
            q, k, v = first_order("dense", q, k, v)
        # with a causal mask, padded keys (after a graph's last node) are never attended anyway
        ob, probs = block_attention(
            _blocks(plan, q), _blocks(plan, k), _blocks(plan, v),
            mask=None if causal else plan.key_mask, dropout=0.0 if weights_only else call.dropout,
            need_probs=need_probs, is_causal=causal,
        )  # fmt: skip  # (B, H, L, Dv), (B, H, L, L)
        weights = None if probs is None else _gather_edge_weights(probs, graph, plan)
        return _unblocks(plan, ob), weights  # (N, H, Dv), (E, H)

    if not causal:
        # every node attends to every node of its graph: a non-finite value reaches exactly
        # the nodes that attend to it without further care
        return attend(q, k, v, need_weights)
    neighbours = _CausalNeighbours(plan, graph, q)
    return guarded_attention(q, k, v, attend, neighbours, need_weights=need_weights)


def _blocks(plan: _Plan, t: Tensor) -> Tensor:
    """``[N, H, C]`` node rows -> ``[B, H, L, C]`` blocks (padded slots are 0)."""
    heads, c = t.shape[1:]
    nb, length = plan.num_blocks, plan.length
    if plan.slots is not None:  # scatter the nodes into zero-padded slots
        padded = t.new_zeros(nb * length, heads, c)
        t = padded.index_copy(0, plan.slots, t)
    return t.view(nb, length, heads, c).transpose(1, 2)


def _unblocks(plan: _Plan, tb: Tensor) -> Tensor:
    """``[B, H, L, C]`` blocks -> ``[N, H, C]`` node rows (padded slots dropped)."""
    nb, heads, length, c = tb.shape
    flat = tb.transpose(1, 2).reshape(nb * length, heads, c)  # (B * L, H, C)
    return flat if plan.slots is None else flat.index_select(0, plan.slots)


class _CausalNeighbours:
    """Who attends to whom on a causal graph (for :func:`._finite.guarded_attention`):
    a node reaches every later node of its graph, by running sums over each block."""

    def __init__(self, plan: _Plan, graph: Pattern, q: Tensor):
        self.plan, self.graph, self.dtype, self.device = plan, graph, q.dtype, q.device

    def reach(self, bad: Tensor) -> Tensor:
        flags = _blocks(self.plan, bad.unsqueeze(-1).to(self.dtype))  # (B, H, L, 1)
        return _unblocks(self.plan, flags.cumsum(2)).squeeze(-1) > 0

    def sources(self, rows: Tensor) -> Tensor:
        flags = _blocks(self.plan, rows.unsqueeze(-1).to(self.dtype)).flip(2)  # (B, H, L, 1)
        return _unblocks(self.plan, flags.cumsum(2).flip(2)).squeeze(-1) > 0

    def edge_targets(self) -> Tensor:
        return self.graph.edge_index(self.device)[1]


def _gather_edge_weights(probs: Tensor, graph: Pattern, plan: _Plan) -> Tensor:
    """Pick the ``[E, H]`` weights of the materialized edges out of ``[B, H, L, L]`` blocks."""
    src, dst = graph.edge_index(probs.device)
    if plan.slots is not None:
        src, dst = plan.slots[src], plan.slots[dst]
    block = dst // plan.length
    return probs[block, :, dst - block * plan.length, src - block * plan.length]  # (E, H)


supports = pattern_supports(
    (FullGraph, CausalFullGraph),
    "a FullGraph or CausalFullGraph pattern (attention to the whole graph)",
)
#: The engine as the registry holds it: its function, what it supports, its rank for "auto".
ENGINE = Engine("dense", dense_attention, supports, priority=10, strided_rows=True)
