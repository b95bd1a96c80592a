"""Representation similarity of heads: linear CKA and the heads' outputs (private)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..conv import MultiHeadAttentionConv

__all__ = ["attention_layers", "cka", "head_outputs", "head_similarity"]


def attention_layers(module: nn.Module) -> list[MultiHeadAttentionConv]:
    """The :class:`~graphattn.MultiHeadAttentionConv` layers of ``module`` in the order of
    ``module.modules()`` (for a :class:`~graphattn.nn.GraphTransformer`: first block first);
    ``[module]`` for a layer itself.

    >>> from graphattn.nn import GraphTransformer, GraphTransformerConfig
    >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, num_layers=3))
    >>> len(attention_layers(model))
    3
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module, got {type(module).__name__}")
    return [m for m in module.modules() if isinstance(m, MultiHeadAttentionConv)]


def _centred_features(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or not (x.is_floating_point() or x.dtype == torch.bool):
        raise TypeError(f"`{name}` must be a floating-point tensor")
    if x.dim() == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2:
        raise ValueError(f"`{name}` must have shape [n, features], got {list(x.shape)}")
    x = x.double()
    return x - x.mean(0, keepdim=True)


def cka(a: Tensor, b: Tensor) -> Tensor:
    r"""Linear centred kernel alignment (Kornblith et al., 2019) of two representations of
    the same ``n`` examples.

    With :math:`A, B` the column-centred ``[n, p]`` and ``[n, q]`` matrices,

    .. math::
        \operatorname{CKA}(A, B) = \frac{\lVert B^\top A \rVert_F^2}
            {\lVert A^\top A \rVert_F \, \lVert B^\top B \rVert_F} \in [0, 1],

    1 when :math:`B = c A Q` for a scalar :math:`c \ne 0` and an orthogonal :math:`Q` (a
    rescaled or rotated copy), 0 when every feature of :math:`A` is uncorrelated with every
    feature of :math:`B`. Computed in float64.

    Args:
        a (Tensor): ``[n, p]`` (or ``[n]``) features.
        b (Tensor): ``[n, q]`` (or ``[n]``) features of the same examples.

    Returns:
        a 0-dim float64 tensor. A ``ValueError`` is raised when either input is constant
        over the examples (CKA is then 0 / 0).

    >>> import torch
    >>> a = torch.randn(100, 8)
    >>> q, _ = torch.linalg.qr(torch.randn(8, 8))
    >>> round(float(cka(a, 3 * a @ q + 1)), 6)
    1.0
    """
    x = _centred_features(a, "a")
    y = _centred_features(b, "b")
    if x.size(0) != y.size(0):
        raise ValueError(
            f"`a` and `b` must describe the same examples: {x.size(0)} vs {y.size(0)} rows"
        )
    norm_x = torch.linalg.matrix_norm(x.t() @ x)
    norm_y = torch.linalg.matrix_norm(y.t() @ y)
    for name, norm in (("a", norm_x), ("b", norm_y)):
        if norm <= 0:
            raise ValueError(f"`{name}` is constant over the examples: CKA is undefined")
    return torch.linalg.matrix_norm(y.t() @ x).square() / (norm_x * norm_y)


def head_similarity(head_out: Tensor) -> Tensor:
    r"""The ``[H, H]`` linear-CKA matrix of the heads' outputs on a batch.

    ``head_out[:, h]`` is head :math:`h`'s output :math:`o_i^h = \sum_j \alpha_{ij}^h
    v_j^h` on every node (see :func:`head_outputs`); entry :math:`(h, g)` is
    :func:`cka` of heads :math:`h` and :math:`g`. The diagonal is 1; redundant heads (copies
    of one pattern, up to a rotation or scale of their values) give off-diagonal entries
    near 1. A head that is constant over the batch (for example masked to zero) has an
    undefined CKA: its row and column are NaN.

    Args:
        head_out (Tensor): ``[N, H, D]`` per-head outputs.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> o, other = torch.randn(500, 1, 4, generator=g), torch.randn(500, 1, 4, generator=g)
    >>> sim = head_similarity(torch.cat([o, -2 * o, other], dim=1))  # heads 0 and 1: copies
    >>> round(float(sim[0, 1]), 6), bool(sim[0, 2] < 0.1), sim.shape
    (1.0, True, torch.Size([3, 3]))
    """
    if not isinstance(head_out, Tensor) or not head_out.is_floating_point():
        raise TypeError("`head_out` must be a floating-point tensor [N, H, D]")
    if head_out.dim() != 3:
        raise ValueError(f"`head_out` must have shape [N, H, D], got {list(head_out.shape)}")
    x = head_out.double()
    x = x - x.mean(0, keepdim=True)  # (N, H, D), centred per feature
    cross = torch.einsum("nhd,nge->hgde", x, x)  # (H, H, D, D): X_h^T X_g
    sq = cross.square().sum((-1, -2))  # (H, H): ||X_h^T X_g||_F^2
    norms = sq.diagonal().sqrt()  # (H,): ||X_h^T X_h||_F
    denom = norms.unsqueeze(0) * norms.unsqueeze(1)
    out = sq / denom
    return out.masked_fill(denom <= 0, math.nan)


@torch.no_grad()
def head_outputs(module: nn.Module, *args, **kwargs) -> tuple[Tensor, ...]:
    r"""Run ``module(*args, **kwargs)`` and return every attention layer's per-head outputs.

    For each :class:`~graphattn.MultiHeadAttentionConv` in ``module`` (see
    :func:`attention_layers`), the ``[N, H, D]`` tensor
    :math:`o_i^h = m_h \sum_j \alpha_{ij}^h v_{ij}^h` that the layer concatenates and feeds to
    its output projection :math:`W_O` (:math:`m_h` is the head mask, 1 by default), captured
    by a forward pre-hook on ``lin_out``. Runs without gradients; a layer called more than once
    gives its last call.

    >>> import torch
    >>> from graphattn import FullGraph
    >>> from graphattn.nn import GraphTransformer, GraphTransformerConfig
    >>> model = GraphTransformer(GraphTransformerConfig(in_channels=3, channels=16, heads=4))
    >>> outs = head_outputs(model, torch.randn(10, 3), FullGraph(10))
    >>> len(outs), outs[0].shape, head_similarity(outs[0]).shape
    (2, torch.Size([10, 4, 4]), torch.Size([4, 4]))
    """
    layers = attention_layers(module)
    if not layers:
        raise ValueError("`module` holds no MultiHeadAttentionConv layer")
    captured: dict[int, Tensor] = {}
    handles = []

    def capture(index: int, conv: MultiHeadAttentionConv):
        def hook(_, inputs):
            captured[index] = inputs[0].reshape(-1, conv.heads, conv.head_dim).detach()

        return hook

    try:
        for index, conv in enumerate(layers):
            handles.append(conv.lin_out.register_forward_pre_hook(capture(index, conv)))
        module(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    missing = [i for i in range(len(layers)) if i not in captured]
    if missing:
        raise ValueError(f"attention layer(s) {missing} of `module` did not run")
    return tuple(captured[i] for i in range(len(layers)))
