"""What every engine receives and returns.

An engine is a pure function with no parameters::

    engine(q, k, v, graph, *, terms, dropout, need_weights) -> (out, weights)

- ``q, k, v``: ``[N, H, D]`` in the compute dtype (float32 or float64; the layer upcasts
  float16/bfloat16). ``q`` is already multiplied by ``D ** -0.5``: engines take plain dot
  products.
- ``graph``: an int64 ``[2, E]`` ``edge_index`` (source, target) or a
  :class:`~graphattn.attention.patterns.Pattern`.
- ``terms``: :class:`EdgeTerms` (edge features and relation embeddings added to each edge's
  key and value) or :obj:`None`.
- ``dropout``: probability of dropping an attention weight (0 outside training).
- ``need_weights``: also return the attention weights ``[E, H]``, taken before dropout, in
  the order of ``graph`` (or of the pattern's materialized ``edge_index``).
- ``out``: ``[N, H, D]``; a node with no incoming edge gets zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["EdgeTerms", "block_attention"]


@dataclass(frozen=True)
class EdgeTerms:
    """Per-edge additions to the key and value of edge ``j -> i``.

    ``k_ij = k_j + key[e] + rel_key[edge_type[e]]`` and likewise for values. Relation
    embeddings are kept per relation (``[R, H, D]``) so that an engine can index them per edge
    without an ``E x H x D`` tensor.

    Args:
        key, value: ``[E, H, D]`` edge-feature terms, or :obj:`None`.
        rel_key, rel_value: ``[R, H, D]`` relation embeddings, or :obj:`None`.
        edge_type: int64 ``[E]`` relation of each edge; given with ``rel_key``/``rel_value``.
    """

    key: Tensor | None = None
    value: Tensor | None = None
    rel_key: Tensor | None = None
    rel_value: Tensor | None = None
    edge_type: Tensor | None = None

    @property
    def empty(self) -> bool:
        return self.key is None and self.value is None and self.rel_key is None

    def materialize(self) -> tuple[Tensor | None, Tensor | None]:
        """The total ``[E, H, D]`` key and value additions (``None`` where there are none)."""
        key, value = self.key, self.value
        if self.rel_key is not None:
            assert self.edge_type is not None and self.rel_value is not None
            rk = self.rel_key[self.edge_type]
            rv = self.rel_value[self.edge_type]
            key = rk if key is None else key + rk
            value = rv if value is None else value + rv
        return key, value

    def to(self, dtype) -> EdgeTerms:
        def cast(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(dtype)

        return EdgeTerms(
            cast(self.key),
            cast(self.value),
            cast(self.rel_key),
            cast(self.rel_value),
            self.edge_type,
        )


def block_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None,
    dropout: float,
    need_probs: bool,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Attention inside dense blocks ``[B, H, L, D]`` (``q`` pre-scaled), for the block engines.

    ``mask`` is boolean, broadcastable to ``[B, H, Lq, Lk]`` and true where a query may attend
    (or :obj:`None`); ``is_causal`` adds the causal mask. Without ``need_probs`` this is one
    :func:`~torch.nn.functional.scaled_dot_product_attention` call; with it the softmax is
    computed explicitly so that the probabilities, taken before dropout, can be returned.

    Returns ``(out [B, H, Lq, Dv], probs [B, H, Lq, Lk] or None)``.
    """
    if not need_probs:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=1.0, is_causal=is_causal
        )
        return out, None
    logits = q @ k.transpose(-1, -2)  # (B, H, Lq, Lk)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    if is_causal:
        lq, lk = logits.shape[-2:]
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
    probs = logits.softmax(dim=-1)
    dropped = F.dropout(probs, p=dropout, training=True) if dropout > 0.0 else probs
    return dropped @ v, probs
