"""Regularisers of attention models: the orthogonality penalty of the heads.

It lives here, beside :class:`~graphattn.nn.GraphTransformer` (whose
``regularization()`` adds it), and depends on :class:`~graphattn.MultiHeadAttentionConv`
only; :mod:`graphattn.analysis` exports it with the other measurements on heads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..conv import MultiHeadAttentionConv

__all__ = ["orthogonality_penalty"]


def _overlap(weight: Tensor, heads: int, eps: float) -> Tensor:
    """Mean over head pairs of the normalised overlap of their row spaces; weight [C, in]."""
    w = weight.view(heads, -1, weight.size(-1))  # (H, d_h, in): rows of W^h
    gram = torch.einsum("hai,gbi->hgab", w, w)  # (H, H, d_h, d_h): W^h (W^g)^T
    sq = gram.square().sum((-1, -2))  # (H, H): ||W^h (W^g)^T||_F^2
    norms = sq.diagonal().clamp_min(eps).sqrt()  # (H,): ||W^h (W^h)^T||_F
    overlap = sq / (norms.unsqueeze(0) * norms.unsqueeze(1))
    pairs = torch.triu_indices(heads, heads, offset=1, device=weight.device)
    return overlap[pairs[0], pairs[1]].mean()


def orthogonality_penalty(module: nn.Module, *, eps: float = 1e-12) -> Tensor:
    r"""How much the heads' query and key subspaces overlap; 0 when they are orthogonal.

    Head :math:`h` reads its queries from the row space of :math:`W_Q^h` (its
    :math:`d_h` rows of the query projection) and its keys from that of :math:`W_K^h`. For
    two heads :math:`h \ne g`

    .. math::
        \Omega_{hg}(W) = \frac{\lVert W^h W^{g\top} \rVert_F^2}
            {\lVert W^h W^{h\top} \rVert_F \, \lVert W^g W^{g\top} \rVert_F} \in [0, 1]

    (the linear CKA of the two heads' projections of white input): 0 exactly when every row
    of :math:`W^h` is orthogonal to every row of :math:`W^g`, 1 when one head is a rescaled
    or rotated copy of the other. The penalty is the mean of
    :math:`\tfrac12 (\Omega_{hg}(W_Q) + \Omega_{hg}(W_K))` over the pairs of heads, averaged
    over the attention layers of ``module``; a differentiable 0-dim tensor, 0 for one head.
    Add ``weight * orthogonality_penalty(model)`` to a loss, or set
    ``GraphTransformerConfig(orthogonality=weight)`` and add ``model.regularization()``.

    >>> import torch
    >>> from graphattn import MultiHeadAttentionConv
    >>> conv = MultiHeadAttentionConv(8, 8, heads=2)
    >>> with torch.no_grad():  # orthonormal rows: the two heads read disjoint directions
    ...     _ = conv.lin_query.weight.copy_(torch.eye(8))
    ...     _ = conv.lin_key.weight.copy_(torch.eye(8).flip(0))
    >>> float(orthogonality_penalty(conv).detach())
    0.0
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ValueError(f"`eps` must be a finite number > 0, got {eps!r}")
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module, got {type(module).__name__}")
    layers = [m for m in module.modules() if isinstance(m, MultiHeadAttentionConv)]
    if not layers:
        raise ValueError("`module` holds no MultiHeadAttentionConv layer")
    values = []
    for conv in layers:
        if conv.heads == 1:
            continue
        for lin in (conv.lin_query, conv.lin_key):
            if isinstance(lin.weight, nn.parameter.UninitializedParameter):
                raise ValueError(
                    "`module` has lazy attention layers (in_channels=-1) that have not run "
                    "yet: call it once before taking the penalty"
                )
        q = _overlap(conv.lin_query.weight, conv.heads, eps)
        k = _overlap(conv.lin_key.weight, conv.heads, eps)
        values.append((q + k) / 2)
    if not values:
        return layers[0].lin_query.weight.new_zeros(())
    return torch.stack(values).sum() / len(layers)
