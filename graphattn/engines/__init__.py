"""Attention engines: pure functions ``(q, k, v, graph, ...) -> (out, weights)``.

See :mod:`graphattn.engines.base` for the contract every engine follows.
"""

from .base import EdgeTerms
from .dense import dense_attention
from .scatter import AttentionPropagation, scatter_attention

__all__ = ["AttentionPropagation", "EdgeTerms", "dense_attention", "scatter_attention"]

from .fused import fused_attention  # noqa: E402

__all__ += ["fused_attention"]
