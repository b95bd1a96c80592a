"""The reference engine: PyG's ``propagate`` with :func:`torch_geometric.utils.softmax`.

It materializes per-edge messages (``E x H x D``), so it is the slowest and most memory-hungry
engine, but it runs on any graph, any device and with every option, and it is the one that
runs PyG's message passing for real: given the layer as ``module``, the layer's own
``edge_update`` and ``message`` (both from :class:`AttentionMessages`) run inside its
``propagate``, so PyG's hooks, explainers and ``flow`` see them. Every other engine is tested
against it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from ..patterns import Pattern
from .base import AttentionCall, AttentionRequest, Engine

__all__ = ["ENGINE", "AttentionMessages", "AttentionPropagation", "scatter_attention"]


class AttentionMessages:
    """PyG's message-passing methods of attention, mixed into a
    :class:`~torch_geometric.nn.conv.MessagePassing` (placed before it in the bases): the
    weights in :meth:`edge_update`, the weighted values in :meth:`message`, and
    :meth:`explain_message` for PyG's explainers.

    :class:`AttentionPropagation` (the reference's own module) and
    :class:`~graphattn.MultiHeadAttentionConv` (so that PyG's hooks and explainers see the
    layer's messages) both take them from here. They run inside ``edge_updater(edge_index,
    query=, key=, edge_key=, edge_mask=)`` and ``propagate(edge_index, value=, alpha=,
    edge_value=)``, as :func:`scatter_attention` calls them.
    """

    # The arguments of `propagate` / `edge_updater`, for PyG's generated (jinja) versions.
    # (typing.Optional, not `X | None`: PyG renders these into generated source.)
    propagate_type = {"value": Tensor, "alpha": Tensor, "edge_value": Optional[Tensor]}  # noqa: UP045
    edge_updater_type = {  # noqa: UP045
        "query": Tensor,
        "key": Tensor,
        "edge_key": Optional[Tensor],  # noqa: UP045
        "edge_mask": Optional[Tensor],  # noqa: UP045
    }

    def edge_update(
        self,
        query_i: Tensor,
        key_j: Tensor,
        edge_key: Tensor | None,
        edge_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        """Attention weights ``[E, H]``: the softmax over each target's incoming edges of
        ``<q_i, k_j + e^K_ij>`` (``q`` pre-scaled); masked edges get weight 0."""
        if edge_key is not None:
            key_j = key_j + edge_key
        logits = (query_i * key_j).sum(dim=-1)  # (E, H)
        if edge_mask is not None:
            logits = logits.masked_fill(edge_mask.unsqueeze(-1), float("-inf"))
        return softmax(logits, index, ptr, size_i)

    def message(self, value_j: Tensor, alpha: Tensor, edge_value: Tensor | None) -> Tensor:
        """The message ``alpha_ij (v_j + e^V_ij)`` of every edge, ``[E, H, Dv]``."""
        if edge_value is not None:
            value_j = value_j + edge_value
        return alpha.unsqueeze(-1) * value_j

    def explain_message(self, inputs: Tensor, dim_size: int | None) -> Tensor:
        """PyG's explainers: scale every message by the (sigmoid of the) explained edge mask.

        The mask covers the caller's edges; the self-loops a layer appends after them
        (``add_self_loops``) are kept unexplained (factor 1), as in PyG's own layers.
        """
        edge_mask = self._edge_mask
        if edge_mask is None:
            raise ValueError("no `edge_mask` to explain; set it with PyG's explain utilities")
        if self._apply_sigmoid:
            edge_mask = edge_mask.sigmoid()
        extra = inputs.size(0) - edge_mask.size(0)
        if extra < 0:
            raise ValueError(
                f"the explained `edge_mask` has {edge_mask.size(0)} entries but the layer "
                f"passes {inputs.size(0)} messages"
            )
        if extra:
            edge_mask = torch.cat([edge_mask, edge_mask.new_ones(extra)])
        return inputs * edge_mask.view(-1, *([1] * (inputs.dim() - 1)))


class AttentionPropagation(AttentionMessages, MessagePassing):
    """Parameter-free message passing with :class:`AttentionMessages`: the module
    :func:`scatter_attention` propagates through when it is not given the layer."""

    def __init__(self):
        super().__init__(aggr="sum", node_dim=0)


_REFERENCE = AttentionPropagation()


def scatter_attention(call: AttentionCall) -> tuple[Tensor, Tensor | None]:
    """Attention by gather / softmax / scatter over an edge list (see :mod:`.base`).

    ``call.module`` is the :class:`~torch_geometric.nn.conv.MessagePassing` whose
    ``edge_updater`` and ``propagate`` run (the layer passes itself); by default a shared
    parameter-free :class:`AttentionPropagation`. Its ``flow`` is honoured: ``call.graph``
    always points source -> target, and is handed to ``propagate`` in the orientation its
    ``flow`` expects.
    """
    q, k, v, graph, terms = call.q, call.k, call.v, call.graph, call.terms
    module = _REFERENCE if call.module is None else call.module
    edges = graph.edge_list(q.device) if isinstance(graph, Pattern) else graph
    edge_index, size = edges.edge_index, (k.size(0), q.size(0))
    if module.flow == "target_to_source":
        edge_index, size = edge_index.flip(0), (q.size(0), k.size(0))
    update_size = size
    if torch.jit.is_tracing():
        # sizes are tensors there, and PyG's check of a given size against its tensors' would
        # warn: it reads them from `query` and `key`, and only the target count is given to
        # `propagate`, where no tensor carries it
        update_size = None
        size = (None, size[1]) if module.flow == "source_to_target" else (size[0], None)
    edge_key, edge_value = (None, None) if terms is None else terms.materialize()
    mask = None if terms is None else terms.mask
    alpha = module.edge_updater(
        edge_index, query=q, key=k, edge_key=edge_key, edge_mask=mask, size=update_size
    )  # (E, H)
    weights = alpha if call.need_weights else None
    if call.dropout > 0.0:
        alpha = F.dropout(alpha, p=call.dropout, training=True)
    out = module.propagate(
        edge_index, value=v, alpha=alpha, edge_value=edge_value, size=size
    )  # (N_dst, H, Dv)
    return out, weights


def supports(request: AttentionRequest) -> str | None:
    """:obj:`None`: the reference serves every request."""
    return None


#: The engine as the registry holds it: its function, what it supports, its rank for "auto".
ENGINE = Engine("scatter", scatter_attention, supports, priority=1000, strided_rows=True)
