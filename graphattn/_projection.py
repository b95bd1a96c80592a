"""The attention layer's projections (private): queries, keys and values as one stacked product
where it pays, the per-edge key and value terms, and lazy sizes.

:func:`project_qkv` computes ``q, k, v`` for the engines. When the source and target features
are one tensor and the engine reads row-strided rows, the three projections are one matrix
product with the weights stacked (``[N, 3C]`` columns, ``q``, ``k``, ``v`` views into it): one
wide product, and in the backward one product with a ``3C``-deep inner dimension instead of
three ``C``-deep ones summed. :func:`edge_terms` projects edge features and gathers relation
embeddings into the :class:`~graphattn.engines.EdgeTerms` every engine takes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.parameter import UninitializedParameter
from torch_geometric.nn.dense.linear import Linear

from ._inputs import GraphInput, loop_edge_attr, loop_nodes
from ._runtime import static_mode
from .engines import EdgeTerms, joint_columns

if TYPE_CHECKING:
    from .conv import MultiHeadAttentionConv

__all__ = ["edge_terms", "infer_lazy_sizes", "project_qkv"]


def project_qkv(
    layer: MultiHeadAttentionConv,
    x_src: Tensor,
    x_dst: Tensor,
    rows: torch.dtype | None,
    strided: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(q, k, v)`` of ``layer`` as ``[N, H, D]`` rows in dtype ``rows`` (:obj:`None`: as
    computed); ``q`` is scaled by ``1 / sqrt(D)``, folded into the query projection's (small)
    weight and bias, so no extra pass over the queries, forward or backward.

    When ``x_src is x_dst`` and the engine reads row-strided rows (``strided``), the three are
    column views of one stacked product (see the module's docstring). Only while ``lin_key``
    and ``lin_value`` are plain PyG ``Linear`` modules without forward hooks (pruning, for
    one, recomputes ``weight`` in a pre-hook; an adapter may replace the module): otherwise
    they are called as modules.
    """
    heads, dim = layer.heads, layer.head_dim
    width, scale = heads * dim, 1.0 / math.sqrt(dim)  # C, and the logits' 1 / sqrt(D)
    lq, lin_key, lin_value = layer.lin_query, layer.lin_key, layer.lin_value
    if strided and x_src is x_dst and _plain_linear(lin_key) and _plain_linear(lin_value):
        weight = torch.cat([lq.weight * scale, lin_key.weight, lin_value.weight])  # (3C, C_in)
        bias = None
        if lq.bias is not None:
            bias = torch.cat([lq.bias * scale, lin_key.bias, lin_value.bias])  # (3C,)
        q, k, v = _split_columns(F.linear(x_dst, weight, bias), width)  # 3 x (N, C)
    else:
        bias_q = None if lq.bias is None else lq.bias * scale
        q, k, v = F.linear(x_dst, lq.weight * scale, bias_q), lin_key(x_src), lin_value(x_src)
    q, k, v = (t.view(-1, heads, dim) for t in (q, k, v))  # (N, H, D) each
    if rows is None:
        return q, k, v
    return q.to(rows), k.to(rows), v.to(rows)


class _SplitColumns(torch.autograd.Function):
    """``t.split(width, dim=1)`` whose backward skips the concatenation of the gradients
    when they already are one ``[N, 3C]`` tensor (:func:`~.engines.joint_columns`), as
    the ``blocked`` engine writes them: a pass over ``N x 3C`` values saved per step."""

    @staticmethod
    def forward(t, width):
        return t.split(width, dim=1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):  # unused outputs' gradients come materialized as zeros
        joint = joint_columns(*grads)
        return (torch.cat(grads, dim=1) if joint is None else joint), None


def _split_columns(t: Tensor, width: int) -> tuple[Tensor, ...]:
    """The q, k, v column views of a stacked projection (see :class:`_SplitColumns`)."""
    if static_mode() or not (torch.is_grad_enabled() and t.requires_grad):
        return t.split(width, dim=1)
    return _SplitColumns.apply(t, width)


def _plain_linear(module: nn.Module) -> bool:
    """Whether calling ``module`` is exactly ``F.linear`` with its weight and bias: a PyG
    ``Linear`` (not a subclass) with no forward hooks of its own or global ones."""
    from torch.nn.modules import module as torch_module

    return (
        type(module) is Linear
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and not torch_module._global_forward_hooks
        and not torch_module._global_forward_pre_hooks
    )


def edge_terms(
    layer: MultiHeadAttentionConv,
    graph: GraphInput,
    edge_attr: Tensor | None,
    edge_type: Tensor | None,
    compute: torch.dtype,
) -> EdgeTerms | None:
    """Key and value terms per engine edge from ``layer``'s edge projections and relation
    embeddings: the caller's edges, then zero terms (and a relation of their own) for the
    self-loops the layer appended; and the mask of the caller's self-loops that those
    replace."""
    if edge_attr is None and edge_type is None and graph.mask is None:
        return None
    heads, dim = layer.heads, layer.head_dim
    loops = graph.num_loops
    key = value = rel_key = rel_value = None
    if edge_attr is not None:
        if loops:  # GATConv's fill_value
            edge_attr = torch.cat([edge_attr, loop_edge_attr(graph, edge_attr, layer.fill_value)])
        key = layer.lin_edge_key(edge_attr).view(-1, heads, dim).to(compute)  # (E', H, D)
        value = layer.lin_edge_value(edge_attr).view(-1, heads, dim).to(compute)
    if edge_type is not None:
        rel_key = layer.rel_key.to(compute)  # (R, C)
        rel_value = layer.rel_value.to(compute)
        if loops:  # an extra all-zero relation for the appended self-loops
            none = torch.full_like(loop_nodes(graph, edge_type.size(0)), layer.num_relations)
            edge_type = torch.cat([edge_type, none])
            rel_key = torch.cat([rel_key, rel_key.new_zeros(1, rel_key.size(1))])
            rel_value = torch.cat([rel_value, rel_value.new_zeros(1, rel_value.size(1))])
        rel_key = rel_key.view(-1, heads, dim)  # (R, H, D)
        rel_value = rel_value.view(-1, heads, dim)
    return EdgeTerms(key, value, rel_key, rel_value, edge_type, graph.mask)


def infer_lazy_sizes(pairs: Iterable[tuple[nn.Module | None, Tensor | None]]) -> None:
    """Infer the input size of every lazy (``-1``) PyG ``Linear`` of ``(module, input)``
    ``pairs`` from its input, as its first call does, without computing anything."""
    lazy = [
        (lin, inp)
        for lin, inp in pairs
        if lin is not None
        and inp is not None
        and isinstance(getattr(lin, "weight", None), UninitializedParameter)
    ]
    if lazy:
        with torch.no_grad():
            for lin, inp in lazy:
                lin(inp[:0])
