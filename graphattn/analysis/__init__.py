r"""Heads under the microscope: measurements on attention weights, head outputs and models.

On attention weights (an :class:`~graphattn.AttentionOutput` from ``return_attention=True``):

- :func:`attention_entropy`: per head (and node), :math:`-\sum_j \alpha_{ij} \log \alpha_{ij}`;
- :func:`relation_shares`: ``[H, K]`` share of each head's mass on each relation type;
- :func:`attention_distance`: mean :math:`|i - j|` (Chebyshev on grids) spanned by each head;
- :func:`attention_maps`: ``[B, H, L, L]`` dense maps of a batch of graphs of ``L`` nodes.

On head outputs and parameters:

- :func:`cka`: linear centred kernel alignment of two representations;
- :func:`head_outputs` and :func:`head_similarity`: every layer's ``[N, H, D]`` head outputs,
  and their ``[H, H]`` CKA matrix;
- :func:`orthogonality_penalty`: overlap of the heads' query/key subspaces, a regulariser
  (``GraphTransformerConfig(orthogonality=...)`` adds it through ``model.regularization()``).

On models:

- :func:`attention_layers`: the attention layers of a model, in order;
- :func:`mask_heads`: run any model with a ``[layers, heads]`` head mask;
- :func:`head_importance`: the loss increase when each head is masked;
- :func:`top_heads_mask`: a mask keeping the most important heads (pruning).

The scripts ``examples/claims/heads_*.py`` use them to measure five claims about heads
(``docs/heads.md``).
"""

from ._heads import head_importance, mask_heads, orthogonality_penalty, top_heads_mask
from ._similarity import attention_layers, cka, head_outputs, head_similarity
from ._weights import attention_distance, attention_entropy, attention_maps, relation_shares

__all__ = [
    "attention_distance",
    "attention_entropy",
    "attention_layers",
    "attention_maps",
    "cka",
    "head_importance",
    "head_outputs",
    "head_similarity",
    "mask_heads",
    "orthogonality_penalty",
    "relation_shares",
    "top_heads_mask",
]
