"""The reference engine: PyG's ``propagate`` with :func:`torch_geometric.utils.softmax`.

It materializes per-edge messages (``E x H x D``), so it is the slowest and most memory-hungry
engine, but it runs on any graph, any device and with every option. Every other engine is
tested against it.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from ..attention.patterns import Pattern
from .base import EdgeTerms

__all__ = ["AttentionPropagation", "scatter_attention"]


class AttentionPropagation(MessagePassing):
    """Parameter-free message passing that computes attention over incoming edges.

    .. math::
        \\alpha_{ij}^h = \\operatorname{softmax}_{j \\in \\mathcal{N}(i)}
            \\langle q_i^h, k_j^h + e^{K,h}_{ij} \\rangle, \\qquad
        o_i^h = \\sum_{j \\in \\mathcal{N}(i)} \\alpha_{ij}^h \\, (v_j^h + e^{V,h}_{ij})

    :class:`~graphattn.MultiHeadAttentionConv` subclasses it, so the layer's own
    ``propagate`` (with PyG's hooks and explain machinery) is the reference engine.
    """

    # The arguments of `propagate` / `edge_updater`, for PyG's generated (jinja) versions.
    # (typing.Optional, not `X | None`: PyG renders these into generated source.)
    propagate_type = {
        "value": Tensor,
        "alpha": Tensor,
        "edge_value": Optional[Tensor],  # noqa: UP045
    }
    edge_updater_type = {
        "query": Tensor,
        "key": Tensor,
        "edge_key": Optional[Tensor],  # noqa: UP045
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("aggr", "sum")
        kwargs.setdefault("node_dim", 0)
        super().__init__(**kwargs)

    def edge_update(  # type: ignore[override]
        self,
        query_i: Tensor,
        key_j: Tensor,
        edge_key: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        if edge_key is not None:
            key_j = key_j + edge_key
        logits = (query_i * key_j).sum(dim=-1)  # (E, H)
        return softmax(logits, index, ptr, size_i)

    def message(  # type: ignore[override]
        self, value_j: Tensor, alpha: Tensor, edge_value: Tensor | None
    ) -> Tensor:
        if edge_value is not None:
            value_j = value_j + edge_value
        return alpha.unsqueeze(-1) * value_j  # (E, H, D)


_REFERENCE = AttentionPropagation()


def scatter_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    graph: Tensor | Pattern,
    *,
    terms: EdgeTerms | None = None,
    dropout: float = 0.0,
    need_weights: bool = False,
    module: AttentionPropagation | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Attention by gather / softmax / scatter over an edge list (see :mod:`.base`).

    ``module`` is the :class:`AttentionPropagation` whose ``propagate`` runs (the layer passes
    itself); by default a shared parameter-free instance.
    """
    module = _REFERENCE if module is None else module
    edge_index = graph.edge_index(q.device) if isinstance(graph, Pattern) else graph
    edge_key, edge_value = (None, None) if terms is None else terms.materialize()
    n = q.size(0)
    alpha = module.edge_updater(
        edge_index, query=q, key=k, edge_key=edge_key, size=(n, n)
    )  # (E, H)
    weights = alpha if need_weights else None
    if dropout > 0.0:
        alpha = F.dropout(alpha, p=dropout, training=True)
    out = module.propagate(
        edge_index, value=v, alpha=alpha, edge_value=edge_value, size=(n, n)
    )  # (N, H, D)
    return out, weights
