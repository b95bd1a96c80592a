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

import torch
from torch import Tensor
from torch_geometric.utils import to_dense_batch

from ..patterns import CausalFullGraph, FullGraph, Pattern
from .base import EdgeTerms, Engine, Graph, block_attention, pattern_supports

__all__ = ["ENGINE", "dense_attention", "supports"]


def dense_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    graph: Graph,
    *,
    terms: EdgeTerms | None = None,
    dropout: float = 0.0,
    need_weights: bool = False,
    module=None,
) -> tuple[Tensor, Tensor | None]:
    """Full attention per graph on padded blocks (see :mod:`.base` for the contract)."""
    if not isinstance(graph, (FullGraph, CausalFullGraph)):
        raise ValueError(
            f"the dense engine needs a FullGraph or CausalFullGraph, got {type(graph).__name__}"
        )
    causal = isinstance(graph, CausalFullGraph)
    if terms is not None and not terms.empty:
        raise ValueError("the dense engine does not take edge features or relation types")
    num_nodes, heads, dim = q.shape
    dim_v = v.size(-1)

    sizes = graph.sizes
    nonempty = sizes[sizes > 0]
    if num_nodes == 0 or nonempty.numel() == 0:
        out = v.new_zeros(num_nodes, heads, dim_v)
        return out, (q.new_zeros(0, heads) if need_weights else None)

    num_blocks, length = nonempty.numel(), int(nonempty.max())
    uniform = bool((nonempty == length).all())
    if uniform:  # no padding: plain views
        qb, kb, vb = (t.view(num_blocks, length, heads, -1).transpose(1, 2) for t in (q, k, v))
        mask = None
        batch = None
    else:
        batch = torch.repeat_interleave(
            torch.arange(num_blocks, device=q.device), nonempty.to(q.device)
        )

        def pad(t: Tensor) -> Tensor:
            dense, _ = to_dense_batch(t.reshape(num_nodes, -1), batch, 0.0, length, num_blocks)
            return dense.view(num_blocks, length, heads, -1).transpose(1, 2)  # (B, H, L, D)

        qb, kb, vb = pad(q), pad(k), pad(v)
        mask = torch.arange(length, device=q.device) < nonempty.to(q.device).unsqueeze(1)
        key_mask = mask[:, None, None, :]  # (B, 1, 1, L): padded keys are never attended

    # with a causal mask, padded keys (after a graph's last node) are never attended anyway
    ob, probs = block_attention(
        qb,
        kb,
        vb,
        mask=None if (mask is None or causal) else key_mask,
        dropout=dropout,
        need_probs=need_weights,
        is_causal=causal,
    )  # (B, H, L, Dv), (B, H, L, L)
    weights = None if probs is None else _gather_edge_weights(probs, graph, nonempty)

    ob = ob.transpose(1, 2)  # (B, L, H, Dv)
    out = ob.reshape(num_nodes, heads, dim_v) if mask is None else ob[mask]
    return out, weights


def _gather_edge_weights(probs: Tensor, graph: Pattern, nonempty: Tensor) -> Tensor:
    """Pick the ``[E, H]`` weights of the materialized edges out of ``[B, H, L, L]`` blocks."""
    device = probs.device
    src, dst = graph.edge_index(device)
    starts = torch.cumsum(nonempty, 0) - nonempty  # start node of each non-empty graph
    block = torch.repeat_interleave(
        torch.arange(nonempty.numel(), device=device), nonempty.to(device)
    )[dst]
    start = starts.to(device)[block]
    return probs[block, :, dst - start, src - start]  # (E, H)


supports = pattern_supports(
    (FullGraph, CausalFullGraph),
    "a FullGraph or CausalFullGraph pattern (attention to the whole graph)",
)
ENGINE = Engine("dense", dense_attention, supports, priority=10)
