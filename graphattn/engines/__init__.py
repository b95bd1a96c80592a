"""Attention engines: pure functions ``(q, k, v, graph, ...) -> (out, weights)``.

See :mod:`graphattn.engines.base` for the contract every engine follows.
"""

from .base import EdgeTerms
from .blocked import blocked_attention
from .dense import dense_attention
from .fused import fused_attention
from .scatter import AttentionPropagation, scatter_attention

__all__ = [
    "AttentionPropagation",
    "EdgeTerms",
    "blocked_attention",
    "dense_attention",
    "fused_attention",
    "scatter_attention",
]
